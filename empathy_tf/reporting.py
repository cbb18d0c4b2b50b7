"""Turns finished run folders into the paper's result tables (Markdown, CSV and a bar chart).

A table is a set of cells (row × dataset × seed), each a run folder written by `runner`. Only
finished cells (those with `metrics.json`) count; missing, unfinished or failed ones are listed
as such ("2/3 seeds"), never averaged as if the row were complete.

Example:

    spec = registry.get_table("table4")
    cells = collect("runs", "table4", spec.datasets, spec.rows, seeds=[0, 1, 2], smoke=False)
    rows = summarize(cells, spec)
    paths = write_table("runs", spec, rows, cells, seeds=[0, 1, 2], smoke=False)
    paths["md"]   # runs/tables/table4.md (also .csv and .png)
"""

import csv
import dataclasses
import io
import math
import os
import sys
import time

import numpy as np

from empathy_tf import io_utils

METRICS = ("precision", "recall", "f1", "accuracy", "macro_f1")
METRIC_LABELS = {"precision": "P", "recall": "R", "f1": "F1", "accuracy": "Acc",
                 "macro_f1": "Macro-F1"}
NON_NEURAL = ("tfidf", "all_positive")
BASELINE_ROW = "bert"  # each row's per-seed test F1 is compared with this row's (paired t-test)
NOT_AVAILABLE = "—"
FINAL_METRICS_MARKER = "final_metrics.json"


@dataclasses.dataclass
class Cell:
    """One (dataset, row, seed) of a table and what its run folder holds.

    Attributes:
        status: "finished" (metrics.json), "unfinished" (config.json only), "not_started" or
            "failed" (the caller saw it fail in this invocation; its folder content is ignored).
        config: the recorded ExperimentConfig fields (config.json), or None.
        metrics: the contents of metrics.json for finished cells, else None.
        error: the failure message of a failed cell.
    """
    dataset: str
    row: str
    seed: int
    run_dir: str
    status: str
    config: dict | None = None
    data_dir: str | None = None
    metrics: dict | None = None
    error: str | None = None


def cell_dir(output_dir, row, dataset, seed, smoke):
    """The run folder of a cell; the same path as runner.run_dir_for."""
    from empathy_tf import runner  # lazy: runner pulls in TensorFlow
    return os.path.join(output_dir, row + ("-smoke" if smoke else ""),
                        runner.dataset_slug(dataset), f"seed{seed}")


def collect(output_dir, table_name, datasets=None, rows=None, seeds=(0, 1, 2), smoke=False,
            failed=None):
    """Reads every cell of a table from its run folder.

    Args:
        output_dir: the --output_dir the cells were run into.
        table_name: a registry table name; supplies `datasets`/`rows` when they are None.
        datasets, rows, seeds: the cells to read.
        smoke: read the `<row>-smoke` folders.
        failed: {(dataset, row, seed): message} of cells that failed in this invocation; they are
            reported as failed even if an older metrics.json lies in their folder (it may belong
            to another config).

    Returns:
        A list of Cell, dataset-major, then row, then seed.
    """
    if datasets is None or rows is None:
        from experiments import registry
        spec = registry.get_table(table_name)
        datasets = spec.datasets if datasets is None else datasets
        rows = spec.rows if rows is None else rows
    failed = failed or {}
    cells = []
    for dataset in datasets:
        for row in rows:
            for seed in seeds:
                run_dir = cell_dir(output_dir, row, dataset, seed, smoke)
                cell = Cell(dataset, row, int(seed), run_dir, "not_started")
                config_path = os.path.join(run_dir, "config.json")
                metrics_path = os.path.join(run_dir, "metrics.json")
                if os.path.exists(config_path):
                    recorded = io_utils.read_json(config_path)
                    cell.config, cell.data_dir = recorded.get("config"), recorded.get("data_dir")
                    cell.status = "unfinished"
                if (dataset, row, int(seed)) in failed:
                    cell.status, cell.error = "failed", failed[(dataset, row, int(seed))]
                elif os.path.exists(metrics_path):
                    cell.status, cell.metrics = "finished", io_utils.read_json(metrics_path)
                cells.append(cell)
    return cells


def mean_std(values):
    """(mean, sample std with ddof=1); std is 0 for a single value, (None, None) for none."""
    values = [float(v) for v in values]
    if not values:
        return None, None
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


def paired_p_value(scores, baseline):
    """Two-sided paired t-test p-value of per-seed scores against the baseline's.

    Args:
        scores, baseline: {seed: score}. Only seeds present in both are paired.

    Returns:
        (p-value or None, number of paired seeds). None when fewer than 2 seeds pair up, or when
        the test is undefined (every paired difference identical, e.g. both rows predict the
        same labels).
    """
    from scipy import stats
    common = sorted(set(scores) & set(baseline))
    if len(common) < 2:
        return None, len(common)
    a = np.array([scores[s] for s in common], np.float64)
    b = np.array([baseline[s] for s in common], np.float64)
    diff = a - b
    if np.ptp(diff) <= 1e-12 * max(1.0, float(np.max(np.abs(diff)))):
        # Identical differences up to rounding: t is 0/0 or ±inf from float noise, not evidence.
        return None, len(common)
    p = float(stats.ttest_rel(a, b).pvalue)
    return (p if math.isfinite(p) else None), len(common)


def summarize(cells, spec=None, baseline_row=BASELINE_ROW):
    """Per (dataset, row): mean ± std over finished seeds, the paper's F1 and the paired test.

    Args:
        cells: from `collect`.
        spec: the registry TableSpec, for the paper's numbers; None: no paper numbers.
        baseline_row: row every other row's per-seed test F1 is compared with.

    Returns:
        A list of dicts, in cell order, with keys dataset, row, in_paper, seeds (requested),
        done / unfinished / not_started / failed (seed lists), test {metric: (mean, std)}
        (fractions), dev_f1 (mean, std), paper {precision, recall, f1} (%, None if unknown),
        delta_f1 (ours − paper, points), p_vs_baseline, n_paired, wall_time_s (sum).
    """
    from experiments import registry
    groups = {}
    for cell in cells:
        groups.setdefault((cell.dataset, cell.row), []).append(cell)
    f1_by_seed = {key: {c.seed: c.metrics["test"]["f1"] for c in group if c.status == "finished"}
                  for key, group in groups.items()}
    summaries = []
    for (dataset, row), group in groups.items():
        done = [c for c in group if c.status == "finished"]
        summary = {
            "dataset": dataset, "row": row, "in_paper": row in registry.PAPER_ROWS,
            "seeds": [c.seed for c in group], "done": [c.seed for c in done],
            **{status: [c.seed for c in group if c.status == status]
               for status in ("unfinished", "not_started", "failed")},
            "test": {m: mean_std([c.metrics["test"][m] for c in done if m in c.metrics["test"]])
                     for m in METRICS},
            "dev_f1": mean_std([c.metrics["dev"]["f1"] for c in done if "f1" in c.metrics["dev"]]),
            "wall_time_s": sum(float(c.metrics.get("wall_time_s") or 0) for c in done),
            "errors": {c.seed: c.error for c in group if c.status == "failed"},
        }
        summary["paper"] = {m: (spec.paper_value(dataset, row, m) if spec else None)
                            for m in ("precision", "recall", "f1")}
        ours_f1 = summary["test"]["f1"][0]
        paper_f1 = summary["paper"]["f1"]
        summary["delta_f1"] = (None if ours_f1 is None or paper_f1 is None
                               else 100.0 * ours_f1 - paper_f1)
        baseline = f1_by_seed.get((dataset, baseline_row), {})
        if row == baseline_row:
            summary["p_vs_baseline"], summary["n_paired"] = None, 0
        else:
            summary["p_vs_baseline"], summary["n_paired"] = paired_p_value(
                f1_by_seed[(dataset, row)], baseline)
        summaries.append(summary)
    return summaries


# ---------------------------------------------------------------------------------------------
# Formatting.

def _pct(value):
    return NOT_AVAILABLE if value is None else f"{100.0 * value:.2f}"


def _pct_pm(pair):
    mean, std = pair
    return NOT_AVAILABLE if mean is None else f"{100.0 * mean:.2f} ± {100.0 * std:.2f}"


def _points(value, signed=False):
    if value is None:
        return NOT_AVAILABLE
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _p_value(p):
    if p is None:
        return NOT_AVAILABLE
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def seeds_text(summary):
    """'3/3', or '2/3 (seed 2 failed)', '1/3 (seeds 1, 2 not run)'..."""
    text = f"{len(summary['done'])}/{len(summary['seeds'])}"
    notes = []
    for status, label in (("failed", "failed"), ("unfinished", "unfinished"),
                          ("not_started", "not run")):
        seeds = summary[status]
        if seeds:
            word = "seed" if len(seeds) == 1 else "seeds"
            notes.append(f"{word} {', '.join(map(str, seeds))} {label}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _row_label(summary):
    return f"`{summary['row']}`" + ("" if summary["in_paper"] else " (not in paper)")


def format_duration(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _by_value(cells, value_fn, row_filter=lambda config: True):
    """'a' when every matching cell agrees, else 'a (rows x, y); b (rows z)': mixes show up."""
    rows_by_value = {}
    for cell in cells:
        if cell.config is None or not row_filter(cell.config):
            continue
        rows = rows_by_value.setdefault(value_fn(cell), [])
        if cell.row not in rows:
            rows.append(cell.row)
    if not rows_by_value:
        return "n/a (no recorded cell uses it)"
    if len(rows_by_value) == 1:
        return str(next(iter(rows_by_value)))
    return "; ".join(f"{value} ({', '.join(rows)})" for value, rows in rows_by_value.items())


def _encoder(cell):
    config = cell.config
    if config["method"] == "glove":
        return f"GloVe {config.get('glove_path') or '6B.50d (embedded)'}"
    return config["encoder"]


def _command(argv):
    """The command line as typed: `python -m experiments.run ...` rather than a script path."""
    import shlex
    argv = list(argv)
    if argv and argv[0].endswith(os.path.join("experiments", "run.py")):
        argv[0:1] = ["python", "-m", "experiments.run"]
    return " ".join(shlex.quote(a) for a in argv)


def header_facts(cells, seeds, smoke, argv=None, output_dir=None):
    """The settings a reader needs to interpret the numbers, from the recorded configs.

    Taken from the finished cells (those averaged), or from any recorded cell if none finished.
    When cells disagree (say, two aux caps), every value is listed with its rows.

    Returns:
        A list of (label, text) pairs.
    """
    command = _command(sys.argv if argv is None else argv)
    neural = lambda c: c["method"] not in NON_NEURAL  # noqa: E731
    uses_aux = lambda c: c["method"] in ("mt", "kd")  # noqa: E731
    uses_emotion = lambda c: "emotion" in (c.get("aux_tasks") or ())  # noqa: E731
    finished = [c for c in cells if c.status == "finished"]
    described = finished or cells  # the settings behind the numbers shown, when there are any
    compute = sum(float(c.metrics.get("wall_time_s") or 0) for c in finished)
    precisions = sorted({str(c.metrics.get("precision")) for c in finished
                         if c.metrics.get("precision")})
    facts = [
        ("Command", f"`{command}`"),
        ("Seeds", ", ".join(map(str, seeds)) + " (mean ± sample std over finished seeds, ddof=1; "
                                                "std 0.00 when only one seed finished)"),
        ("Encoder(s)", _by_value(described, _encoder, neural)),
        ("Emotion dataset (`emonet` rows)",
         _by_value(described, lambda c: c.config["emotion_dataset"], uses_emotion)),
        ("Best-epoch selection",
         "dev " + _by_value(described, lambda c: c.config["selection"], neural)),
        ("Aux cap (training examples per auxiliary task, 0 = all)",
         _by_value(described, lambda c: c.config["aux_cap"], uses_aux)),
        ("Numeric precision", ", ".join(precisions) or "n/a"),
        ("Data", _by_value(described, lambda c: c.data_dir)),
        ("Compute", f"{format_duration(compute)} summed over {len(finished)} finished of "
                    f"{len(cells)} cells"),
    ]
    if output_dir:
        facts.append(("TensorBoard", f"`tensorboard --logdir {output_dir}`"))
    if smoke:
        facts.append(("Smoke", "yes: tiny random encoder, a few dozen examples, one epoch; the "
                               "numbers only show that the pipeline runs"))
    facts.append(("Written", time.strftime("%Y-%m-%d %H:%M:%S")))
    return facts


def _markdown(spec, summaries, facts, png_name):
    lines = [f"# {spec.title}" + (" (smoke)" if any(f[0] == "Smoke" for f in facts) else ""), ""]
    lines += [f"- **{label}:** {text}" for label, text in facts]
    columns = ["Row", "Seeds", *(METRIC_LABELS[m] for m in METRICS), "Paper F1",
               "Δ F1 (pts)", "p vs `bert`"]
    for dataset in spec.datasets:
        rows = [s for s in summaries if s["dataset"] == dataset]
        rows = [s for s in rows if s["in_paper"]] + [s for s in rows if not s["in_paper"]]
        lines += ["", f"## {dataset} (test split, %)", "",
                  "| " + " | ".join(columns) + " |",
                  "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
        for s in rows:
            cells = [_row_label(s), seeds_text(s), *(_pct_pm(s["test"][m]) for m in METRICS),
                     _points(s["paper"]["f1"]), _points(s["delta_f1"], signed=True),
                     _p_value(s["p_vs_baseline"])]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "", "P, R and F1 are those of the positive (empathy) class, as in the paper; Acc and "
        "Macro-F1 are extra. Δ F1 = our mean − the paper's, in points. p: two-sided paired "
        "t-test of the row's per-seed test F1 against `bert`'s on the seeds both finished "
        f"(needs ≥ 2). {NOT_AVAILABLE}: not available (paper number not transcribed, no finished "
        "seed, or test undefined). Only finished seeds are averaged; the Seeds column says how "
        "many of the requested ones that is.", "", f"![test F1 per row]({png_name})"]
    errors = [(s, seed, msg) for s in summaries for seed, msg in s["errors"].items()]
    if errors:
        lines += ["", "## Failed cells", ""]
        lines += [f"- `{s['row']}` {s['dataset']} seed {seed}: {msg}" for s, seed, msg in errors]
    return "\n".join(lines) + "\n"


def _csv(summaries, facts):
    out = io.StringIO()
    for label, text in facts:  # comment lines: pandas.read_csv(path, comment="#")
        out.write(f"# {label}: {text}\n")
    writer = csv.writer(out, lineterminator="\n")
    header = ["dataset", "row", "in_paper", "seeds_done", "seeds_requested", "missing_seeds",
              "failed_seeds"]
    for m in METRICS:
        header += [f"test_{m}_mean", f"test_{m}_std"]
    header += ["dev_f1_mean", "dev_f1_std", "paper_precision", "paper_recall", "paper_f1",
               "delta_f1", "p_vs_bert", "n_paired", "wall_time_s"]
    writer.writerow(header)
    fmt = lambda v: "" if v is None else f"{100.0 * v:.2f}"  # noqa: E731
    for s in summaries:
        missing = sorted(set(s["seeds"]) - set(s["done"]))
        row = [s["dataset"], s["row"], int(s["in_paper"]), len(s["done"]), len(s["seeds"]),
               " ".join(map(str, missing)), " ".join(map(str, s["failed"]))]
        for m in METRICS:
            row += [fmt(s["test"][m][0]), fmt(s["test"][m][1])]
        row += [fmt(s["dev_f1"][0]), fmt(s["dev_f1"][1])]
        row += ["" if s["paper"][m] is None else s["paper"][m]
                for m in ("precision", "recall", "f1")]
        row += ["" if s["delta_f1"] is None else f"{s['delta_f1']:.2f}",
                "" if s["p_vs_baseline"] is None else f"{s['p_vs_baseline']:.4g}",
                s["n_paired"], round(s["wall_time_s"], 1)]
        writer.writerow(row)
    return out.getvalue()


def _plot(spec, summaries, path, smoke):
    import matplotlib
    matplotlib.use("Agg")  # no display; must precede pyplot
    from matplotlib import pyplot as plt
    fig, axes = plt.subplots(len(spec.datasets), 1, squeeze=False,
                             figsize=(max(6.0, 0.7 * len(spec.rows) + 2), 3.8 * len(spec.datasets)))
    for ax, dataset in zip(axes[:, 0], spec.datasets):
        rows = [s for s in summaries if s["dataset"] == dataset]
        rows = [s for s in rows if s["in_paper"]] + [s for s in rows if not s["in_paper"]]
        x = np.arange(len(rows))
        means = [100.0 * (s["test"]["f1"][0] or 0.0) for s in rows]
        stds = [100.0 * (s["test"]["f1"][1] or 0.0) for s in rows]
        complete = [len(s["done"]) == len(s["seeds"]) for s in rows]
        colors = ["tab:blue" if s["in_paper"] else "tab:gray" for s in rows]
        bars = ax.bar(x, means, yerr=stds, capsize=3, color=colors, label="ours (mean ± std)")
        for bar, s, full in zip(bars, rows, complete):
            if not full:  # incomplete rows: hatched and labelled with their seed count
                bar.set_hatch("//")
                bar.set_alpha(0.6)
                ax.annotate(f"{len(s['done'])}/{len(s['seeds'])}",
                            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
        paper = [(i, s["paper"]["f1"]) for i, s in enumerate(rows) if s["paper"]["f1"] is not None]
        if paper:
            ax.scatter([i for i, _ in paper], [v for _, v in paper], marker="D", color="tab:red",
                       zorder=3, label="paper")
        ax.set_xticks(x)
        ax.set_xticklabels([s["row"] + ("" if s["in_paper"] else "*") for s in rows],
                           rotation=45, ha="right")
        ax.set_ylabel("test F1 (%)")
        ax.set_ylim(0, 105)
        ax.set_title(f"{spec.title.split(':')[0]} — {dataset}" + (" (smoke)" if smoke else ""))
        ax.legend(loc="upper left", fontsize=8)
    fig.text(0.01, 0.005, "* not in paper; hatched: not all seeds finished", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    io_utils._atomic_replace(path, lambda f: f.write(buf.getvalue()), "wb")


def table_paths(output_dir, table_name, smoke):
    base = os.path.join(output_dir, "tables", table_name + ("-smoke" if smoke else ""))
    return {"md": base + ".md", "csv": base + ".csv", "png": base + ".png"}


def write_table(output_dir, spec, summaries, cells, seeds, smoke, argv=None):
    """Writes `<output_dir>/tables/<table>[-smoke].{md,csv,png}` atomically; returns the paths."""
    paths = table_paths(output_dir, spec.name, smoke)
    facts = header_facts(cells, seeds, smoke, argv, output_dir)
    _plot(spec, summaries, paths["png"], smoke)
    io_utils.atomic_write_text(paths["csv"], _csv(summaries, facts))
    io_utils.atomic_write_text(paths["md"], _markdown(spec, summaries, facts,
                                                      os.path.basename(paths["png"])))
    return paths


def make_table(output_dir, table_name, seeds, smoke, failed=None, argv=None):
    """collect + summarize + write_table for a registry table; returns (paths, summaries)."""
    from experiments import registry
    spec = registry.get_table(table_name)
    cells = collect(output_dir, table_name, spec.datasets, spec.rows, seeds, smoke, failed)
    summaries = summarize(cells, spec)
    return write_table(output_dir, spec, summaries, cells, seeds, smoke, argv), summaries


# ---------------------------------------------------------------------------------------------
# TensorBoard.

def log_final_metrics(config, run_dir, metrics):
    """Writes a finished cell's test/dev F1 as scalars `hparams/test_f1`, `hparams/dev_f1`.

    They land at step 0 in the run's `tb/` folder, beside the hparams session that
    runner.write_hparams records for neural runs, so TensorBoard's HParams dashboard lists them
    as metrics. Rows without a network (tfidf, all_positive) get their hparams session here.
    A marker file makes reruns over reused cells write nothing new.

    Args:
        config: the cell's ExperimentConfig.
        run_dir: its run folder.
        metrics: its metrics.json contents.
    """
    import tensorflow as tf
    tb_dir = os.path.join(run_dir, "tb")
    values = {"test_f1": float(metrics["test"]["f1"]), "dev_f1": float(metrics["dev"]["f1"])}
    marker = os.path.join(tb_dir, FINAL_METRICS_MARKER)
    if os.path.exists(marker) and io_utils.read_json(marker) == values:
        return
    if config.method in NON_NEURAL and not os.path.exists(marker):
        from empathy_tf import runner
        runner.write_hparams(config, run_dir)
    writer = tf.summary.create_file_writer(tb_dir)
    with writer.as_default():
        for name, value in values.items():
            tf.summary.scalar(f"hparams/{name}", value, step=0)
    writer.close()
    io_utils.atomic_write_json(marker, values)
