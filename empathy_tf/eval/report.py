"""A table's results as Markdown, CSV and a bar chart, with the statistics to read them by.

`write_table` takes the cells `experiments.run` asked for, reads what their folders hold
(`tables.collect`) and writes `<output_dir>/tables/<table>[-smoke].{md,csv,png}` atomically. Per
(dataset, row) it shows:

- how many of the requested cells finished ("8/10 folds"), naming the others;
- test P, R, F1, Acc and Macro-F1: mean ± sample std over the finished cells;
- under `kfold:K`: the metrics of all folds' test predictions pooled (`predictions.npz`; every
  example predicted once), for each seed whose K folds all finished;
- the paired difference in F1 to the table's baseline row (cells paired by seed and fold): mean,
  95% t interval and paired t-test p; under `kfold:K` also a paired bootstrap over the pooled
  predictions (examples aligned by id);
- the paper's P/R/F1 beside ours, marking published rows whose F1 disagrees with 2PR/(P+R);
- for domain adaptation rows, the source test F1 and the masked-LM steps and loss.

The header lists the facts behind the numbers (command, protocol, encoders, precision, code
version, machine, compute), each value with its rows when cells disagree. Every number comes
from the cell files.

Example:

    paths, markdown = write_table(registry.get_table("table4"),
                                  [("bert", config, run_dir), ...], "runs", failed={})
    paths["md"]   # runs/tables/table4.md (also "csv" and "png")
"""

import csv
import dataclasses
import io
import os
import sys
import time
import zipfile

import numpy as np

from empathy_tf import io_utils
from empathy_tf.config import parse_protocol
from empathy_tf.errors import EmpathyTFError
from empathy_tf.eval import format as fmt
from empathy_tf.eval import paper as paper_lib
from empathy_tf.eval import stats, tables

METRICS = tables.METRICS
POOLED_METRICS = ("precision", "recall", "f1", "macro_f1")
LABELS = {"precision": "P", "recall": "R", "f1": "F1", "accuracy": "Acc", "macro_f1": "Macro-F1"}
BOOTSTRAP_SAMPLES = 10000
INCONSISTENT_MARK = "†"


@dataclasses.dataclass
class Pooled:
    """A row's test predictions pooled over all folds, for each seed whose folds all finished.

    `metrics` maps a metric to (mean, std) over those seeds; `probs` is [seeds, n, C] and
    `labels` [n], both in the order of `ids` (sorted).
    """
    seeds: list
    ids: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    metrics: dict
    positive_class: int | None


@dataclasses.dataclass
class RowResult:
    """Everything the table shows for one (dataset, row)."""
    dataset: str
    row: tables.Row
    cells: list                 # tables.Cell, as requested
    configs: list               # the requested ExperimentConfig of each cell
    test: dict = dataclasses.field(default_factory=dict)   # metric -> (mean, std), fractions
    pooled: Pooled | None = None
    vs_baseline: stats.PairedDifference | None = None      # F1 points
    bootstrap: stats.BootstrapResult | None = None          # F1 fraction
    paper: paper_lib.PaperCell | None = None
    source_f1: tuple = (None, None)
    mlm: dict | None = None
    notes: list = dataclasses.field(default_factory=list)

    @property
    def finished(self):
        return [c for c in self.cells if c.status == "finished"]

    @property
    def complete(self):
        return len(self.finished) == len(self.cells)

    @property
    def in_paper(self):
        """The paper has this row: its transcription holds the cell (or the spec says so and the
        transcription lacks it, shown as missing)."""
        return self.paper is not None or self.row.in_paper

    @property
    def protocol(self):
        return self.configs[0].data.protocol

    @property
    def delta_paper(self):
        """Our mean test F1 − the paper's, in points."""
        mean = self.test.get("f1", (None, None))[0]
        return None if mean is None or self.paper is None else 100.0 * mean - self.paper.f1


# ---------------------------------------------------------------------------------------------
# From cells to results.

def group_cells(table, cells, failed=None):
    """[RowResult] (dataset-major, in table order) of the requested (row, config, run_dir)s.

    A row's cells in a section are those of its name run on `row.dataset_for(section)`: Table 7's
    `newsemp_to_twittemp` section holds `source_only` run on newsemp and `target_only` on
    twittemp. Rows nothing was requested for are left out.
    """
    requested = {}
    for row_name, config, run_dir in cells:
        requested.setdefault((row_name, config.data.dataset), {}).setdefault(run_dir, config)
    results = []
    for dataset in table.datasets:
        for row in table.rows:
            found = requested.get((row.name, row.dataset_for(dataset)), {})
            if not found:
                continue
            group = [tables.Cell(dataset, row.name, config.seed, config.data.fold, run_dir)
                     for run_dir, config in found.items()]
            results.append(RowResult(dataset, row, tables.collect(group, failed),
                                     list(found.values())))
    return results


def summarize(table, results, bootstrap_samples=BOOTSTRAP_SAMPLES):
    """Fills in every RowResult's numbers (see the module docstring); returns `results`."""
    for result in results:
        done = result.finished
        result.test = {m: stats.mean_std([c.metrics["test"][m] for c in done
                                          if m in c.metrics["test"]]) for m in METRICS}
        result.paper = paper_lib.paper_cell(table.paper_table, result.dataset, result.row.name)
        result.source_f1 = stats.mean_std([c.metrics["source"]["test"]["f1"] for c in done
                                           if (c.metrics.get("source") or {}).get("test")])
        result.mlm = _mlm_summary(done)
        result.pooled = _pool(result)
    for result in results:
        baseline = next((r for r in results if r.dataset == result.dataset
                         and r.row.name == table.baseline), None)
        if baseline is None or baseline is result:
            continue
        result.vs_baseline = stats.paired_difference(_f1_points(result), _f1_points(baseline))
        if result.pooled is not None and baseline.pooled is not None:
            result.bootstrap = _bootstrap(result, baseline, bootstrap_samples)
    return results


def _f1_points(result):
    return {(c.seed, c.fold): 100.0 * c.metrics["test"]["f1"] for c in result.finished
            if "f1" in c.metrics["test"]}


def _mlm_summary(done):
    runs = [c.metrics["mlm"] for c in done if c.metrics.get("mlm")]
    if not runs:
        return None
    return {"steps": sorted({r.get("steps") for r in runs if r.get("steps") is not None}),
            "loss_first20": stats.mean_std([r["loss_first20"] for r in runs
                                            if r.get("loss_first20") is not None])[0],
            "loss_last20": stats.mean_std([r["loss_last20"] for r in runs
                                           if r.get("loss_last20") is not None])[0]}


def _positive_class(cell, config):
    """The positive class of the task the cell's predictions are of (None: macro metrics)."""
    from empathy_tf.data import tasks
    # Domain adaptation cells train on one task and predict another; metrics.json names it.
    name = (cell.metrics.get("target") or {}).get("task") or config.data.dataset
    return tasks.get_task(name, **config.data.csv_options()).positive_class


def _read_predictions(cell):
    with np.load(cell.predictions_path, allow_pickle=False) as data:
        return np.asarray(data["ids"]).astype(str), np.asarray(data["labels"]), \
            np.asarray(data["probs"])


def _pool(result):
    """Pooled predictions of a `kfold:K` row (None otherwise, or with a note why not)."""
    kind, folds = parse_protocol(result.protocol)
    if kind != "kfold" or not result.finished:
        return None
    by_seed = {}
    for cell in result.finished:
        by_seed.setdefault(cell.seed, {})[cell.fold] = cell
    seeds = [s for s in sorted(by_seed) if set(by_seed[s]) == set(range(folds))]
    if not seeds:
        result.notes.append(f"pooled: needs all {folds} folds of a seed finished")
        return None
    try:
        first = by_seed[seeds[0]][0]
        positive_class = _positive_class(first, result.configs[0])
        per_seed = [_pool_seed(seed, [by_seed[seed][f] for f in range(folds)]) for seed in seeds]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EmpathyTFError) as e:
        result.notes.append(f"pooled: {e}")
        return None
    ids, labels, _ = per_seed[0]
    for seed, (other_ids, other_labels, _) in zip(seeds[1:], per_seed[1:]):
        if not np.array_equal(ids, other_ids) or not np.array_equal(labels, other_labels):
            result.notes.append(f"pooled: seeds {seeds[0]} and {seed} predicted different "
                                "examples or labels; not pooled")
            return None
    by_metric = [stats.pooled_metrics(labels, probs, positive_class) for _, _, probs in per_seed]
    metrics = {m: stats.mean_std([p[m] for p in by_metric]) for m in POOLED_METRICS
               if m in by_metric[0]}
    return Pooled(seeds, ids, labels, np.stack([p for _, _, p in per_seed]), metrics,
                  positive_class)


def _pool_seed(seed, fold_cells):
    """(ids, labels, probs) of one seed's folds concatenated, sorted by id; each id once."""
    parts = [_read_predictions(c) for c in fold_cells]
    ids = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    probs = np.concatenate([p[2] for p in parts])
    order = np.argsort(ids, kind="stable")
    ids, labels, probs = ids[order], labels[order], probs[order]
    repeated = ids[1:][ids[1:] == ids[:-1]]
    if repeated.size:
        raise ValueError(f"seed {seed}: example id {str(repeated[0])!r} is in the test split of "
                         "more than one fold, so the folds do not partition the data; not pooled")
    return ids, labels, probs


def _bootstrap(result, baseline, samples):
    """Paired bootstrap of pooled F1 against the baseline (seeds both pooled, ids aligned)."""
    a, b = result.pooled, baseline.pooled
    seeds = [s for s in a.seeds if s in b.seeds]
    name = f"`{baseline.row.name}`"
    if not seeds:
        result.notes.append(f"bootstrap: no seed pooled in both this row and {name}")
        return None
    if not np.array_equal(a.ids, b.ids):
        only = len(set(a.ids.tolist()) ^ set(b.ids.tolist()))
        result.notes.append(f"bootstrap: this row and {name} were tested on different examples "
                            f"({only} ids in only one of them)")
        return None
    if not np.array_equal(a.labels, b.labels):
        result.notes.append(f"bootstrap: this row and {name} record different labels")
        return None
    if a.labels.ndim != 1:
        result.notes.append("bootstrap: not available for multi-label tasks")
        return None
    return stats.paired_bootstrap(a.labels, a.probs[[a.seeds.index(s) for s in seeds]],
                                  b.probs[[b.seeds.index(s) for s in seeds]], a.positive_class,
                                  "f1", samples=samples, seed=0)


# ---------------------------------------------------------------------------------------------
# Counting cells.

def _statuses(result):
    kind, _ = parse_protocol(result.protocol)
    several_seeds = len({c.seed for c in result.cells}) > 1
    out = []
    for status, label in (("failed", "failed"), ("unfinished", "unfinished"),
                          ("not_started", "not run")):
        group = [c for c in result.cells if c.status == status]
        if not group:
            continue
        if kind == "kfold" and not several_seeds:
            names = f"{'fold' if len(group) == 1 else 'folds'} {fmt.numbers(c.fold for c in group)}"
        elif kind == "kfold":
            names = ", ".join(f"seed {c.seed} fold {c.fold}" for c in group)
        else:
            names = f"{'seed' if len(group) == 1 else 'seeds'} {fmt.numbers(c.seed for c in group)}"
        out.append(f"{names} {label}")
    return out


def cells_text(result):
    """'3/3 seeds', '8/10 folds (folds 8, 9 not run)', '5/6 cells (2 seeds × 3 folds; ...)'."""
    kind, count = parse_protocol(result.protocol)
    seeds = len({c.seed for c in result.cells})
    unit = "seeds" if kind != "kfold" else ("folds" if seeds == 1 else "cells")
    notes = ([f"{seeds} seeds × {count} folds"] if kind == "kfold" and seeds > 1 else [])
    notes += _statuses(result)
    return (f"{len(result.finished)}/{len(result.cells)} {unit}"
            + (f" ({'; '.join(notes)})" if notes else ""))


# ---------------------------------------------------------------------------------------------
# Header facts.

def _wall_time(finished):
    return sum(float(c.metrics.get("wall_time_s") or 0) for c in finished)


def _described(results):
    """The cells whose settings the header describes: the finished ones (whose numbers are
    shown), or every recorded one when none finished."""
    cells = [c for r in results for c in r.cells]
    return [c for c in cells if c.status == "finished"] or [c for c in cells if c.record]


def _by_value(cells, value_fn, applies=lambda config: True):
    """'a' when every matching cell agrees, else 'a (rows x, y); b (row z)'."""
    rows_by_value = {}
    for cell in cells:
        if not cell.record or not applies(cell.record["config"]):
            continue
        value = value_fn(cell)
        if value is None:
            continue
        rows = rows_by_value.setdefault(str(value), [])
        if cell.row not in rows:
            rows.append(cell.row)
    if not rows_by_value:
        return "n/a (no recorded cell uses it)"
    if len(rows_by_value) == 1:
        return next(iter(rows_by_value))
    return "; ".join(f"{value} ({'row' if len(rows) == 1 else 'rows'} {', '.join(rows)})"
                     for value, rows in rows_by_value.items())


def _encoder(cell):
    """The cell's encoder, from the sections its identity holds (None: a row without one)."""
    identity, config = cell.record.get("identity", {}), cell.record["config"]
    if "glove" in identity:
        path = config["glove"]["glove"]
        return f"GloVe {path}" if path else "GloVe 6B.50d (embedded)"
    return config["bert"]["encoder"] if "bert" in identity else None


def _protocol_text(protocol):
    kind, count = parse_protocol(protocol)
    return {"split": "split (one seeded train/dev/test split per seed)",
            "kfold": f"{protocol} (stratified {count}-fold cross-validation: each fold is the "
                     "test split once)",
            "repeated": f"{protocol} ({count} seeded splits, seeds 0-{count - 1})"}[kind]


def header_facts(results, output_dir, argv=None):
    """[(label, text)] of the settings a reader needs to interpret the numbers."""
    requested = [(c, config) for r in results for c, config in zip(r.cells, r.configs)]
    described = _described(results)
    finished = [c for c in described if c.status == "finished"]
    with_aux = lambda config: bool(config["data"]["aux_tasks"])  # noqa: E731
    protocols = list(dict.fromkeys(config.data.protocol for _, config in requested))
    kfolds = [p for p in protocols if parse_protocol(p)[0] == "kfold"]
    facts = [
        ("Command", f"`{fmt.command(sys.argv if argv is None else argv)}`"),
        ("Protocol", "; ".join(_protocol_text(p) for p in protocols)),
        ("Seeds", fmt.numbers(config.seed for _, config in requested)
         + " (mean ± sample std over finished cells, ddof=1; std 0.00 for a single cell)"),
    ]
    if kfolds:
        facts.append(("Folds", fmt.numbers(config.data.fold for _, config in requested
                                           if config.data.protocol in kfolds)))
    facts += [
        ("Encoder(s)", _by_value(described, _encoder)),
        ("Emotion dataset (rows with the emotion slot)",
         _by_value(described, lambda c: c.record["config"]["data"]["emotion_dataset"],
                   lambda config: "emotion" in config["data"]["aux_tasks"])),
        ("Best-epoch selection",
         _by_value(described, lambda c: "dev " + c.record["config"]["trainer"]["selection"]
                   if "trainer" in c.record.get("identity", {}) else None)),
        ("Aux cap (training examples per auxiliary task, 0 = all)",
         _by_value(described, lambda c: c.record["config"]["data"]["aux_cap"], with_aux)),
        ("Numeric precision", _by_value(finished, lambda c: c.metrics.get("precision"))
         if finished else "n/a (no finished cell)"),
        ("Code version(s)", _by_value(described, lambda c: (c.metrics or {}).get("code_version")
                                      or c.record.get("code_version"))),
        ("Data", _by_value(described, lambda c: c.record.get("data_dir"))),
        ("Machine(s)", _by_value(described, lambda c: c.record.get("machine"))),
        ("Compute", f"{fmt.duration(_wall_time(finished))} summed over {len(finished)} finished "
                    f"of {len(requested)} requested cells"),
        ("TensorBoard", f"`tensorboard --logdir {output_dir}`"),
    ]
    if any(config.smoke for _, config in requested):
        facts.append(("Smoke", "yes: tiny random encoder, a few dozen examples, one epoch; the "
                               "numbers only show that the pipeline runs"))
    facts.append(("Written", time.strftime("%Y-%m-%d %H:%M:%S")))
    return facts


# ---------------------------------------------------------------------------------------------
# Markdown.

HOW_TO_READ = (
    "P, R and F1 are those of the positive class (empathy, seeking or providing), as in the "
    "paper; Acc and Macro-F1 (the mean F1 of both classes) are extra. Values are test-split "
    "percentages: mean ± sample std over the finished cells (the Cells column says how many of "
    "the requested ones that is). `all_positive` predicts the positive class for every text: "
    "its F1 is the floor a trained model must beat (its Macro-F1 is low). *Pooled* (K-fold "
    "only): all folds' test predictions of a seed taken together, so every example is predicted "
    "exactly once, and the metrics computed once over them (mean over seeds when several). "
    "*Δ F1 vs {baseline}*: the mean over cells paired by seed and fold of (row F1 − "
    "{baseline} F1), in points, with its 95% t interval; p is the two-sided paired t-test "
    "(needs ≥ 2 pairs). *Bootstrap*: the same difference on the pooled predictions, resampling "
    "the examples {samples} times (the same resample for both rows); its 95% percentile "
    "interval says how much the difference depends on which examples were tested, p tests "
    "\"no difference\". An interval that excludes 0 (p < 0.05) is a difference unlikely to be "
    "chance; with few cells the t interval is wide. Δ F1 vs paper: our mean − the published "
    "F1. {na}: not available.")


def _row_label(result):
    return f"`{result.row.name}`" + ("" if result.in_paper else " (not in paper)")


def _table(header, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"] + \
        ["| " + " | ".join(row) + " |" for row in rows]


def _mlm_text(mlm):
    if not mlm:
        return fmt.NA
    steps = "/".join(map(str, mlm["steps"])) or "?"
    losses = ("" if mlm["loss_first20"] is None or mlm["loss_last20"] is None
              else f" ({mlm['loss_first20']:.2f}→{mlm['loss_last20']:.2f})")
    return steps + losses


def _difference_text(diff):
    if diff is None:
        return fmt.NA
    if diff.mean is None:
        return f"{fmt.NA} ({diff.note})"
    text = fmt.points(diff.mean, signed=True)
    if diff.ci_low is not None:
        text += f" {fmt.interval(diff.ci_low, diff.ci_high)}"
    return text + f" (n={diff.n}{'; ' + diff.note if diff.note else ''})"


def _bootstrap_text(boot):
    if boot is None:
        return fmt.NA
    return (f"{fmt.points(100 * boot.observed, signed=True)} "
            f"{fmt.interval(100 * boot.ci_low, 100 * boot.ci_high)}")


def _paper_f1_text(result):
    if result.paper is None:
        return fmt.NA
    return fmt.points(result.paper.f1) + (INCONSISTENT_MARK if result.paper.inconsistent else "")


def _pooled_text(pooled, metric):
    """'63.79' for one seed's pooled predictions, '63.79 ± 0.40' over several seeds."""
    if pooled is None or metric not in pooled.metrics:
        return fmt.NA
    mean, std = pooled.metrics[metric]
    return fmt.percent_pm(mean, std) if len(pooled.seeds) > 1 else fmt.percent(mean)


def _any_kfold(results):
    return any(parse_protocol(r.protocol)[0] == "kfold" for r in results)


def _cell_name(cell, protocol):
    fold = f" fold {cell.fold}" if parse_protocol(protocol)[0] == "kfold" else ""
    return f"seed {cell.seed}{fold}"


def _ours_table(results):
    kfold = _any_kfold(results)
    source = any(r.source_f1[0] is not None for r in results)
    mlm = any(r.mlm for r in results)
    header = ["Row", "Cells", *(LABELS[m] for m in METRICS)]
    header += [f"Pooled {LABELS[m]}" for m in POOLED_METRICS] if kfold else []
    header += ["Source test F1"] if source else []
    header += ["MLM steps (loss first→last 20)"] if mlm else []
    rows = []
    for r in results:
        row = [_row_label(r), cells_text(r), *(fmt.percent_pm(*r.test[m]) for m in METRICS)]
        row += [_pooled_text(r.pooled, m) for m in POOLED_METRICS] if kfold else []
        row += [fmt.percent_pm(*r.source_f1)] if source else []
        row += [_mlm_text(r.mlm)] if mlm else []
        rows.append(row)
    return _table(header, rows)


def _compared_table(results, baseline):
    kfold = _any_kfold(results)
    header = ["Row", f"Δ F1 vs `{baseline}` [95% CI]", "p (t-test)"]
    header += [f"Bootstrap Δ pooled F1 vs `{baseline}` [95% CI]", "p (bootstrap)"] if kfold else []
    header += ["Paper P", "Paper R", "Paper F1", "Δ F1 vs paper"]
    rows = []
    for r in results:
        is_baseline = r.row.name == baseline
        row = [_row_label(r)]
        if is_baseline:
            row += ["(baseline)", fmt.NA] + (["(baseline)", fmt.NA] if kfold else [])
        else:
            row += [_difference_text(r.vs_baseline),
                    fmt.p_value(r.vs_baseline.p_value if r.vs_baseline else None)]
            if kfold:
                row += [_bootstrap_text(r.bootstrap),
                        fmt.p_value(r.bootstrap.p_value if r.bootstrap else None)]
        if r.paper is None:
            row += [fmt.NA if r.in_paper else "not in paper", fmt.NA, fmt.NA, fmt.NA]
        else:
            row += [fmt.points(r.paper.precision), fmt.points(r.paper.recall), _paper_f1_text(r),
                    fmt.points(r.delta_paper, signed=True)]
        rows.append(row)
    return _table(header, rows)


def markdown(table, results, facts, png_name, bootstrap_samples=BOOTSTRAP_SAMPLES):
    smoke = any(label == "Smoke" for label, _ in facts)
    lines = [f"# {table.title}" + (" (smoke)" if smoke else ""), ""]
    lines += [f"- **{label}:** {text}" for label, text in facts]
    lines += ["", "## How to read it", "",
              HOW_TO_READ.format(baseline=f"`{table.baseline}`", samples=bootstrap_samples,
                                 na=fmt.NA)]
    for dataset in table.datasets:
        section = [r for r in results if r.dataset == dataset]
        if not section:
            continue
        lines += ["", f"## {dataset}", "", "Ours (test split, %):", ""]
        lines += _ours_table(section)
        lines += ["", f"Against `{table.baseline}` (F1 points) and the paper "
                      f"({table.paper_table}, %):", ""]
        lines += _compared_table(section, table.baseline)
        notes = [f"- `{r.row.name}`: {note}" for r in section for note in r.notes]
        if notes:
            lines += ["", "Notes:", ""] + notes
    marked = [r for r in results if r.paper is not None and r.paper.inconsistent]
    if marked:
        lines += ["", f"{INCONSISTENT_MARK} The published F1 differs from 2PR/(P+R) of the "
                      f"published P and R by more than {paper_lib.INCONSISTENT_POINTS} points "
                      "(shown as published):", ""]
        lines += [f"- {r.dataset} `{r.row.name}`: P {fmt.points(r.paper.precision)}, R "
                  f"{fmt.points(r.paper.recall)} imply F1 {fmt.points(r.paper.implied_f1)}; "
                  f"published {fmt.points(r.paper.f1)}" for r in marked]
    errors = [(r, c) for r in results for c in r.cells if c.status == "failed"]
    if errors:
        lines += ["", "## Failed cells", ""]
        lines += [f"- `{r.row.name}` {r.dataset} {_cell_name(c, r.protocol)}: {c.error}"
                  for r, c in errors]
    lines += ["", f"![test F1 per row]({png_name})"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# CSV.

def csv_text(results, facts):
    """One line per (dataset, row), percentages and points, after `# label: text` comments
    (read with pandas.read_csv(path, comment="#"))."""
    out = io.StringIO()
    for label, text in facts:
        out.write(f"# {label}: {text}\n")
    header = ["dataset", "row", "in_paper", "protocol", "cells_finished", "cells_requested",
              "cells_unfinished", "cells_not_run", "cells_failed"]
    for m in METRICS:
        header += [f"test_{m}_mean", f"test_{m}_std"]
    header += [f"pooled_{m}" for m in POOLED_METRICS]
    header += ["pooled_seeds", "pooled_examples",
               "diff_f1_mean", "diff_f1_ci_low", "diff_f1_ci_high", "diff_f1_p", "diff_n",
               "bootstrap_f1_diff", "bootstrap_ci_low", "bootstrap_ci_high", "bootstrap_p",
               "bootstrap_samples", "paper_precision", "paper_recall", "paper_f1",
               "paper_implied_f1", "paper_inconsistent", "delta_f1_vs_paper",
               "source_test_f1_mean", "source_test_f1_std", "mlm_steps", "mlm_loss_first20",
               "mlm_loss_last20", "wall_time_s", "notes"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    pct = lambda v: "" if v is None else f"{100.0 * v:.4f}"  # noqa: E731
    num = lambda v, digits=4: "" if v is None else f"{v:.{digits}f}"  # noqa: E731
    for r in results:
        def cells_with(status):
            return " ".join(f"s{c.seed}f{c.fold}" for c in r.cells if c.status == status)
        line = [r.dataset, r.row.name, int(r.in_paper), r.protocol, len(r.finished),
                len(r.cells), cells_with("unfinished"), cells_with("not_started"),
                cells_with("failed")]
        for m in METRICS:
            line += [pct(r.test[m][0]), pct(r.test[m][1])]
        pooled = r.pooled.metrics if r.pooled else {}
        line += [pct(pooled[m][0]) if m in pooled else "" for m in POOLED_METRICS]
        line += [" ".join(map(str, r.pooled.seeds)) if r.pooled else "",
                 len(r.pooled.ids) if r.pooled else ""]
        d = r.vs_baseline
        line += [num(d and d.mean), num(d and d.ci_low), num(d and d.ci_high),
                 "" if d is None or d.p_value is None else f"{d.p_value:.4g}", d.n if d else ""]
        b = r.bootstrap
        line += [num(b and 100 * b.observed), num(b and 100 * b.ci_low),
                 num(b and 100 * b.ci_high), "" if b is None else f"{b.p_value:.4g}",
                 b.samples if b else ""]
        p = r.paper
        line += [num(p and p.precision, 2), num(p and p.recall, 2), num(p and p.f1, 2),
                 num(p and p.implied_f1, 2), "" if p is None else int(p.inconsistent),
                 num(r.delta_paper)]
        line += [pct(r.source_f1[0]), pct(r.source_f1[1])]
        mlm = r.mlm or {}
        line += [" ".join(map(str, mlm.get("steps", []))), num(mlm.get("loss_first20")),
                 num(mlm.get("loss_last20"))]
        line += [round(_wall_time(r.finished), 1), "; ".join(r.notes)]
        writer.writerow(line)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Chart.

def plot(table, results, path, smoke=False):
    """Bar chart of test F1 (mean ± std) per row and section, the paper's F1 as diamonds;
    rows with unfinished cells hatched and labelled with their count."""
    import matplotlib
    matplotlib.use("Agg")  # no display; must precede pyplot
    from matplotlib import pyplot as plt
    datasets = [d for d in table.datasets if any(r.dataset == d for r in results)] or \
        list(table.datasets[:1])
    width = max(6.0, 0.7 * max(len(table.rows), 1) + 2)
    fig, axes = plt.subplots(len(datasets), 1, squeeze=False,
                             figsize=(width, 3.8 * len(datasets)))
    for ax, dataset in zip(axes[:, 0], datasets):
        rows = [r for r in results if r.dataset == dataset]
        x = np.arange(len(rows))
        means = [100.0 * (r.test["f1"][0] or 0.0) for r in rows]
        stds = [100.0 * (r.test["f1"][1] or 0.0) for r in rows]
        colors = ["tab:blue" if r.in_paper else "tab:gray" for r in rows]
        bars = ax.bar(x, means, yerr=stds, capsize=3, color=colors, label="ours (mean ± std)")
        for bar, r, std in zip(bars, rows, stds):
            if not r.complete:  # above the error bar, so that it stays readable
                bar.set_hatch("//")
                bar.set_alpha(0.6)
                ax.annotate(f"{len(r.finished)}/{len(r.cells)}",
                            (bar.get_x() + bar.get_width() / 2, bar.get_height() + std + 1),
                            ha="center", va="bottom", fontsize=7)
        pooled = [(i, 100.0 * r.pooled.metrics["f1"][0]) for i, r in enumerate(rows)
                  if r.pooled is not None and "f1" in r.pooled.metrics]
        if pooled:
            ax.scatter([i for i, _ in pooled], [v for _, v in pooled], marker="x", s=40,
                       color="black", zorder=4, label="ours, pooled over folds")
        published = [(i, r.paper.f1) for i, r in enumerate(rows) if r.paper is not None]
        if published:
            ax.scatter([i for i, _ in published], [v for _, v in published], marker="D",
                       color="tab:red", zorder=3, label="paper")
        ax.set_xticks(x)
        ax.set_xticklabels([r.row.name + ("" if r.in_paper else "*") for r in rows],
                           rotation=45, ha="right")
        ax.set_ylabel("test F1 (%)")
        ax.set_ylim(0, 118)  # headroom for the legend above 100
        ax.set_title(f"{table.title.split(':')[0]} — {dataset}" + (" (smoke)" if smoke else ""))
        ax.legend(loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.text(0.01, 0.005, "* not in paper; hatched: not all cells finished", fontsize=7)
    fig.tight_layout()
    try:
        fmt.save_figure(fig, path)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------------

def table_paths(output_dir, table_name, smoke, protocol="split"):
    """`tables/<table>[-<protocol>][-smoke].*`: a k-fold table never overwrites a split one."""
    suffix = "" if protocol == "split" else "-" + protocol.replace(":", "")
    base = os.path.join(output_dir, "tables", table_name + suffix + ("-smoke" if smoke else ""))
    return {"md": base + ".md", "csv": base + ".csv", "png": base + ".png"}


def write_table(table, cells, output_dir, failed=None, argv=None,
                bootstrap_samples=BOOTSTRAP_SAMPLES):
    """Writes `<output_dir>/tables/<table>[-<protocol>][-smoke].{md,csv,png}` atomically.

    Args:
        table: a `tables.TableSpec`.
        cells: [(row name, ExperimentConfig, run_dir)] of every requested cell.
        output_dir: the --output_dir the cells were run into.
        failed: {run_dir: message} of cells that failed in this invocation.
        argv: the command line (default sys.argv), shown in the header.

    Returns:
        ({"md", "csv", "png": path}, the Markdown text).
    """
    results = summarize(table, group_cells(table, cells, failed), bootstrap_samples)
    smoke = any(config.smoke for _, config, _ in cells)
    protocols = {config.data.protocol for _, config, _ in cells}
    paths = table_paths(output_dir, table.name, smoke,
                        protocols.pop() if len(protocols) == 1 else "mixed")
    facts = header_facts(results, output_dir, argv)
    text = markdown(table, results, facts, os.path.basename(paths["png"]), bootstrap_samples)
    plot(table, results, paths["png"], smoke)
    io_utils.atomic_write_text(paths["csv"], csv_text(results, facts))
    io_utils.atomic_write_text(paths["md"], text)
    return paths, text
