"""Whole jobs: one cell of each row kind, its wall time split, and the projected time of the tables.

Each cell is `python -m experiments.run` in a fresh process (as a table command runs it), in a
fresh output folder per version and dataset, timed from the outside: fold 0 of `--protocol=kfold:10`
on NewsEmp and of `kfold:5` on TwittEmp, seed 0, for the kinds

    bert, mt_sst_emonet, kd_sst_emonet (teachers not cached: SST-2 and CARER teachers trained;
    the `bert` cell before it is its target teacher, as in a table), kd_sst_emonet_cached (the same
    cell again, --overwrite, the teachers reused), cnn, tfidf_lr

(`--aux_cap=2000` for the multi-task kinds, as README's table commands). Per kind, the cell's wall
time (process start to exit) is split, from its `metrics.json` `timing` and the time its
`config.json` was written (the cell's start):

    startup   process start to the cell's start (imports, config, loading the data)
    data      tokenization                  build     building the model
    compile   the first 20 steps (tracing, XLA compilations)
    steps     the other training steps      eval      dev evaluation each epoch + the test
    teachers  training or loading the teachers (KD)
    other     the rest: writing the model, predictions and records, process exit

Then the projected time of the grouped Table 4 (each row of `registry.TABLES["table4"]` under
10 folds: `bert` rows as `bert`, `mt_*` as `mt_sst_emonet`, `kd_*` as the cached KD cell plus,
once, what training its teachers costs; the GloVe rows as `cnn` scaled by their per-cell times
measured before (docs/performance.md), `tfidf_lr` and `all_positive` as `tfidf_lr`) and of
Tables 5-6 under `kfold:5` (3 TwittEmp datasets). With `--baseline_src` (another checkout, e.g.
`git worktree add /tmp/base <commit>`) the same cells run with PYTHONPATH there, and every figure
is printed beside this checkout's with the ratio baseline / this (above 1: this one is faster).

    python -m benchmarks.cells --data_dir=../shared/data --baseline_src=/tmp/base   # ~2 hours
    python -m benchmarks.cells --data_dir=../shared/data --datasets=newsemp --kinds=bert,cnn
    python -m benchmarks.cells --data_dir=../shared/data --smoke                     # ~5 minutes

`--xla_cache` gives each version's cells one persistent XLA cache, empty at the start (what
`hardware.enable_persistent_xla_cache` does for a table's cells in `experiments.run`).
`--smoke` runs every cell with `experiments.run --smoke` (tiny encoder, a few steps): it checks
the whole path, its times say nothing about the real cells.

`--from_runs=DIR` runs nothing: it reads the cells a table command already ran into DIR (seed 0,
`--fold`, the datasets' protocols), one per row, so that the projection uses every row's own
measured cell (`startup` from the cell's `timing.startup_s`, which each cell run in its own
process records). A `kd_*` row's teachers are counted once per table, its other folds at its
cell's time with the cheapest KD row's teacher time:

    python -m experiments.run --exp=table4 --protocol=kfold:10 --seeds=0 --aux_cap=2000 --fold=0
    python -m benchmarks.cells --from_runs=runs --datasets=newsemp
"""

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# kind -> (experiment, extra flags). The cached KD cell reruns the uncached one's cell.
KINDS = {
    "bert": ("bert", []),
    "mt_sst_emonet": ("mt_sst_emonet", []),
    "kd_sst_emonet": ("kd_sst_emonet", []),
    "kd_sst_emonet_cached": ("kd_sst_emonet", ["--overwrite"]),
    "cnn": ("cnn", []),
    "tfidf_lr": ("tfidf_lr", []),
}
AUX_CAP = "--aux_cap=2000"   # the multi-task rows' table commands (README); not with --smoke
# dataset -> protocol of its tables (Table 4: NewsEmp, 10 folds; Tables 5-6: TwittEmp, 5 folds).
PROTOCOLS = {"newsemp": "kfold:10", "twittemp": "kfold:5"}
PARTS = ("startup", "data", "build", "compile", "steps", "eval", "teachers", "other")
# GloVe rows relative to `cnn`: mean per-cell seconds of the Table 4 kfold:10 commands in
# docs/performance.md (cnn 5-7 s, lstm 14-34, bilstm 27-71, convlstm 11-14).
GLOVE_SCALE = {"cnn": 1.0, "lstm": 24 / 6, "bilstm": 49 / 6, "convlstm": 12.5 / 6}
# The projected tables: (name, dataset whose cells stand for it, folds, datasets in the table).
PROJECTIONS = (("table4 (kfold:10)", "newsemp", 10, 1), ("tables 5-6 (kfold:5)", "twittemp", 5, 3))


# ---------------------------------------------------------------------------------------------
# Reading and splitting one cell.

def cell_breakdown(wall_s, cell_start_s, metrics):
    """{part: seconds} of one cell's wall time (see the module docstring); sums to `wall_s`.

    `cell_start_s`: when its config.json was written, in seconds from the process start. `timing`
    keys a cell kind does not record count as 0: their time is in `other`, with whatever else
    the records do not account for.
    """
    timing = metrics.get("timing", {})
    get = lambda key: float(timing.get(key, 0.0))     # noqa: E731
    parts = {"startup": cell_start_s, "data": get("tokenize_s"), "build": get("build_s"),
             "compile": get("first_20_steps_s"),
             "steps": max(get("student_train_s") - get("first_20_steps_s") - get("dev_eval_s"),
                          0.0),
             "eval": get("dev_eval_s") + get("test_s"), "teachers": get("teachers_s")}
    parts["other"] = wall_s - sum(parts.values())
    return {k: parts[k] for k in PARTS}


def recorded_breakdown(metrics):
    """The breakdown of a cell a table ran, from its own records: its wall time is the process's
    start-up (`timing.startup_s`) plus the cell's `wall_time_s`."""
    startup = float(metrics.get("timing", {}).get("startup_s", 0.0))
    return cell_breakdown(startup + float(metrics["wall_time_s"]), startup, metrics)


def read_runs(output_dir, dataset, fold=0, seed=0):
    """{experiment: parts} of the finished cells of `dataset`, `seed`, `fold` under `output_dir`
    (the protocol `PROTOCOLS[dataset]`; train_fraction 1). Two cells of one experiment: an error."""
    cells, where = {}, {}
    for folder, _, files in os.walk(output_dir):
        if "metrics.json" not in files or os.sep + "teachers" + os.sep in folder + os.sep:
            continue
        with open(os.path.join(folder, "metrics.json")) as f:
            metrics = json.load(f)
        if (metrics.get("dataset") != dataset or metrics.get("seed") != seed
                or metrics.get("fold") != fold or metrics.get("protocol") != PROTOCOLS[dataset]
                or "-train" in os.path.basename(folder)):
            continue
        experiment = metrics["experiment"]
        if experiment in where:
            raise RuntimeError(f"two cells of {experiment} on {dataset}: {where[experiment]} and "
                               f"{folder}; give --from_runs one table's folder")
        where[experiment] = folder
        cells[experiment] = recorded_breakdown(metrics)
    if not cells:
        raise RuntimeError(f"no finished cell of {dataset} (seed {seed}, fold {fold}, "
                           f"{PROTOCOLS[dataset]}) under {output_dir}")
    return cells


def find_cell(output_dir, experiment, dataset, since):
    """(run folder, metrics) of the cell of `experiment` on `dataset` finished after `since`."""
    found = []
    for folder, _, files in os.walk(output_dir):
        if "metrics.json" not in files:
            continue
        path = os.path.join(folder, "metrics.json")
        with open(path) as f:
            metrics = json.load(f)
        if (metrics.get("experiment") == experiment and metrics.get("dataset") == dataset
                and os.path.getmtime(path) >= since):
            found.append((os.path.getmtime(path), folder, metrics))
    if not found:
        raise RuntimeError(f"no metrics.json of {experiment} on {dataset} under {output_dir}")
    _, folder, metrics = max(found, key=lambda t: t[0])
    return folder, metrics


def read_cell(output_dir, experiment, dataset, start, end):
    """The breakdown of the cell a process (from `start` to `end`, epoch seconds) ran."""
    folder, metrics = find_cell(output_dir, experiment, dataset, start)
    cell_start = os.path.getmtime(os.path.join(folder, "config.json")) - start
    return cell_breakdown(end - start, cell_start, metrics)


# ---------------------------------------------------------------------------------------------
# Projection and printing.

def row_kind(row, experiment):
    """(measured kind, scale) that stands for one cell of a table row."""
    if experiment in GLOVE_SCALE:
        return "cnn", GLOVE_SCALE[experiment]
    if experiment.startswith("mt_"):
        return "mt_sst_emonet", 1.0
    if experiment.startswith("kd_"):
        return "kd_sst_emonet_cached", 1.0
    if experiment in ("tfidf_lr", "all_positive"):
        return "tfidf_lr", 1.0
    if experiment in KINDS:
        return experiment, 1.0
    raise KeyError(f"table row {row!r} (experiment {experiment!r}) maps to no cell kind")


def row_seconds(row, experiment, cells):
    """Seconds of one cell of a table row, from the measured kinds (`cells`: kind -> parts)."""
    kind, scale = row_kind(row, experiment)
    if kind not in cells:
        raise KeyError(f"row {row!r} needs the kind {kind!r}, not measured")
    return sum(cells[kind].values()) * scale


def project(rows, cells, folds, datasets=1, recorded=False):
    """Seconds of a table: every row's cell × folds × datasets, plus training the KD teachers
    once per dataset (the uncached KD cell minus the cached one) where a row distils.
    `recorded`: `cells` holds each row's own cell (`--from_runs`), see `project_recorded`."""
    if recorded:
        return project_recorded(rows, cells, folds) * datasets
    seconds = sum(row_seconds(name, experiment, cells) for name, experiment in rows) * folds
    if any(experiment.startswith("kd_") for _, experiment in rows):
        seconds += max(sum(cells["kd_sst_emonet"].values())
                       - sum(cells["kd_sst_emonet_cached"].values()), 0.0)
    return seconds * datasets


def project_recorded(rows, cells, folds):
    """Seconds of a table from each row's own fold-0 cell: a row's later folds cost its cell's
    time with the teacher time of the cheapest KD cell (teachers trained once are then cached)."""
    missing = [experiment for _, experiment in rows if experiment not in cells]
    if missing:
        raise KeyError(f"rows without a measured cell: {', '.join(missing)}")
    kd_teachers = [cells[e]["teachers"] for _, e in rows if e.startswith("kd_")]
    cheapest = min(kd_teachers, default=0.0)
    seconds = 0.0
    for _, experiment in rows:
        first = sum(cells[experiment].values())
        later = first - cells[experiment]["teachers"] + cheapest if experiment.startswith(
            "kd_") else first
        seconds += first + (folds - 1) * later
    return seconds


def table_rows():
    from experiments import registry
    return [(row.name, row.experiment) for row in registry.TABLES["table4"].rows]


def _fmt(value, baseline=None):
    if baseline is None:
        return f"{value:8.1f}"
    ratio = f"{baseline / value:5.2f}" if value > 0 else "  -  "
    return f"{value:7.1f} {baseline:7.1f} {ratio}"


def report(results, rows, baseline=None, recorded=False):
    """Lines: per dataset and kind the parts (and the baseline's, with ratios), then projections.

    `results`/`baseline`: {dataset: {kind: {part: seconds}}}; `recorded`: `results` holds each
    row's own cell, keyed by experiment (`read_runs`).
    """
    lines = []
    head = "this" if baseline is None else "this / baseline / ratio"
    for dataset, cells in results.items():
        lines.append(f"cells: {dataset} ({PROTOCOLS.get(dataset, '?')}, fold 0), seconds: {head}")
        for kind, parts in cells.items():
            other = (baseline or {}).get(dataset, {}).get(kind)
            fields = [f"{p}={_fmt(parts[p], other and other[p])}" for p in PARTS]
            total = _fmt(sum(parts.values()), other and sum(other.values()))
            lines.append(f"cells: {dataset} {kind:22s} wall={total} " + " ".join(fields))
    for name, dataset, folds, datasets in PROJECTIONS:
        if dataset not in results:
            continue
        try:
            ours = project(rows, results[dataset], folds, datasets, recorded)
            theirs = (project(rows, baseline[dataset], folds, datasets)
                      if baseline and dataset in baseline else None)
        except KeyError as e:
            lines.append(f"projection: {name}: not projected ({e.args[0]})")
            continue
        hours = f"{ours / 3600:.2f} h" + ("" if theirs is None else
                                          f" (baseline {theirs / 3600:.2f} h, ratio "
                                          f"{theirs / ours:.2f})")
        lines.append(f"projection: {name}: {len(rows)} rows x {folds} folds x {datasets} "
                     f"dataset(s) = {hours}")
    return lines


# ---------------------------------------------------------------------------------------------
# Running the cells.

def run_cells(src, data_dir, work_dir, datasets, kinds, smoke, tfds_dir=None, xla_cache=False):
    """{dataset: {kind: parts}} of the cells run with the source folder `src`.

    `xla_cache`: the cells share a persistent XLA cache, empty at the start (as
    `hardware.enable_persistent_xla_cache` gives a table's cells); else the environment's.
    """
    results = {}
    xla = {}
    if xla_cache:
        cache = tempfile.mkdtemp(prefix="xla-cache-", dir=work_dir)
        xla = {"TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={cache}"}
    for dataset in datasets:
        output_dir = tempfile.mkdtemp(prefix=f"cells-{dataset}-", dir=work_dir)
        results[dataset] = {}
        for kind in kinds:
            experiment, extra = KINDS[kind]
            command = [sys.executable, "-m", "experiments.run", f"--exp={experiment}",
                       f"--dataset={dataset}", f"--protocol={PROTOCOLS[dataset]}", "--fold=0",
                       "--seed=0", f"--data_dir={os.path.abspath(data_dir)}",
                       f"--output_dir={output_dir}", *extra]
            if smoke:
                command.append("--smoke")
            elif experiment.startswith(("mt_", "kd_")):
                command.append(AUX_CAP)
            if tfds_dir:
                command.append(f"--tfds_dir={os.path.abspath(tfds_dir)}")
            env = {**os.environ, "PYTHONPATH": src, "TF_CPP_MIN_LOG_LEVEL": "2", **xla}
            start = time.time()
            done = subprocess.run(command, cwd=src, env=env, capture_output=True, text=True)
            end = time.time()
            if done.returncode:
                raise RuntimeError(f"{' '.join(command)} (in {src}) failed:\n{done.stderr[-3000:]}")
            results[dataset][kind] = read_cell(output_dir, experiment, dataset, start, end)
            print(f"cells: ran {kind} on {dataset} with {src}: {end - start:.1f} s", flush=True)
    return results


def main(argv):
    from absl import flags
    del argv
    FLAGS = flags.FLAGS
    kinds = FLAGS.kinds or list(KINDS)
    if set(kinds) - set(KINDS) or set(FLAGS.datasets) - set(PROTOCOLS):
        raise SystemExit(f"--kinds: some of {list(KINDS)}; --datasets: some of {list(PROTOCOLS)}")
    if "kd_sst_emonet_cached" in kinds and "kd_sst_emonet" not in kinds:
        raise SystemExit("--kinds: kd_sst_emonet_cached reruns kd_sst_emonet's cell; list both")
    from empathy_tf import hardware
    if FLAGS.from_runs:
        results = {d: read_runs(FLAGS.from_runs, d, FLAGS.fold) for d in FLAGS.datasets}
        for line in report(results, table_rows(), recorded=True):
            print(line)
        return
    print(f"machine: {hardware.describe()}", flush=True)
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    ours = run_cells(ROOT, FLAGS.data_dir, FLAGS.work_dir, FLAGS.datasets, kinds, FLAGS.smoke,
                     FLAGS.tfds_dir, FLAGS.xla_cache)
    theirs = None
    if FLAGS.baseline_src:
        theirs = run_cells(os.path.abspath(FLAGS.baseline_src), FLAGS.data_dir, FLAGS.work_dir,
                           FLAGS.datasets, kinds, FLAGS.smoke, FLAGS.tfds_dir, FLAGS.xla_cache)
    for line in report(ours, table_rows(), theirs):
        print(line)


def _define_flags():
    # Defined only when run as a program, so that tests can import the module beside others.
    from absl import flags
    flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"), "Data folder.")
    flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder (default: experiments.run's).")
    flags.DEFINE_string("work_dir", "/tmp/empathy_tf_cells", "Where the fresh output folders go.")
    flags.DEFINE_string("baseline_src", None, "Source folder of the version to compare against.")
    flags.DEFINE_list("datasets", list(PROTOCOLS), "Datasets (newsemp, twittemp).")
    flags.DEFINE_list("kinds", None, f"Cell kinds (default all: {', '.join(KINDS)}).")
    flags.DEFINE_string("from_runs", None, "Run nothing: read the cells a table command ran "
                        "into this output folder (see the module docstring).")
    flags.DEFINE_integer("fold", 0, "--from_runs: the fold whose cells are read.")
    flags.DEFINE_bool("smoke", False, "experiments.run --smoke cells: the path, not the times.")
    flags.DEFINE_bool("xla_cache", False, "Each version's cells share a persistent XLA cache, "
                      "empty at the start (as experiments.run's cells get from "
                      "hardware.enable_persistent_xla_cache).")


if __name__ == "__main__":
    from absl import app
    _define_flags()
    app.run(main)
