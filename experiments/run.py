"""The one entry point: runs a named experiment, group or table, for one or more seeds or folds.

    python -m experiments.run --exp=bert --dataset=newsemp
    python -m experiments.run --exp=kd_sst_emonet --dataset=newsemp --aux_cap=2000
    python -m experiments.run --exp=baselines --dataset=newsemp --seeds=0,1,2
    python -m experiments.run --exp=table4 --protocol=kfold:10 --seeds=0 --aux_cap=2000  # every row
    python -m experiments.run --exp=table7 --seeds=0,1,2                       # domain adaptation
    python -m experiments.run --exp=bert --dataset=newsemp --smoke              # seconds
    python -m experiments.run --list                         # experiments, tables, tasks, options
    tensorboard --logdir runs

Every config option is a flag of its own (`--epochs=2`, `--aux_cap=2000`; `--list` shows them);
unset flags keep the experiment's value. Each cell (experiment, dataset, seed, fold) runs in turn;
a finished cell is reused, an unfinished one resumed. A cell failing with a user-facing error is
reported and skipped, the others still run, and the exit code is 2 at the end. For a table the
datasets come from the table, the seeds default to 0,1,2, and the table is written to
`<output_dir>/tables/` once every cell has been tried (also when interrupted).
"""

import math
import os
import signal
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF C++ start-up noise out of results

from absl import app, flags, logging

from empathy_tf import config as config_lib
from empathy_tf.errors import ConfigError, EmpathyTFError
from experiments import registry

flags.DEFINE_string("exp", "bert", "Experiment, group or table (--list shows them).")
flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"),
                    "Folder laid out like data/README.md (default: $EMPATHY_DATA_DIR, else ./data).")
flags.DEFINE_string("output_dir", "./runs", "Where run folders, caches, teachers and tables go.")
flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder (default $TFDS_DATA_DIR or "
                    "~/tensorflow_datasets).")
flags.DEFINE_list("seeds", None, "Several seeds, e.g. 0,1,2 (overrides --seed; tables: 0,1,2).")
flags.DEFINE_bool("overwrite", False, "Redo finished cells (earlier folders are moved aside, not "
                  "deleted).")
flags.DEFINE_bool("allow_stale", False, "Reuse cells made by other code or numerics (precision, "
                  "XLA, kernels) instead of refusing them.")
flags.DEFINE_bool("list", False, "List experiments, tables, tasks and options, then exit.")
flags.DEFINE_bool("report_only", False, "Tables: write the table from the cells already in "
                  "--output_dir (finished ones count, missing ones are listed); train nothing.")

# Every config option becomes a flag; None means "keep the experiment's value".
NOT_FLAGS = ("name", "method")
_DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           bool: flags.DEFINE_bool, tuple: flags.DEFINE_list}
OPTION_FLAGS = []
for _section, _field in config_lib.leaves():
    if _field.name in NOT_FLAGS:
        continue
    _kind = config_lib.option_type(_section, _field.name)
    _choices = _field.metadata.get("choices")
    if _choices:
        flags.DEFINE_enum(_field.name, None, list(_choices), _field.metadata["help"])
    else:
        _DEFINE[_kind](_field.name, None, _field.metadata["help"])
    OPTION_FLAGS.append(_field.name)

FLAGS = flags.FLAGS
DEFAULT_TABLE_SEEDS = (0, 1, 2)


def _set_options(FLAGS):
    return {name: (tuple(FLAGS[name].value) if isinstance(FLAGS[name].value, list)
                   else FLAGS[name].value)
            for name in OPTION_FLAGS if FLAGS[name].value is not None}


def cell_configs(FLAGS):
    """(table spec or None, [(row name, config)]) of every cell the flags ask for."""
    from empathy_tf.data import splits
    table = registry.get_table(FLAGS.exp)
    options = _set_options(FLAGS)
    options.pop("seed", None)
    fold = options.pop("fold", None)
    if table is not None and "dataset" in options:
        logging.warning("--dataset=%s is ignored: %s runs on %s", options.pop("dataset"),
                        FLAGS.exp, ", ".join(table.datasets))
    if FLAGS.seeds:
        seeds = [parse_seed(s, "--seeds") for s in FLAGS.seeds]
    else:
        seeds = (list(DEFAULT_TABLE_SEEDS) if table is not None else
                 [parse_seed(FLAGS.seed or 0, "--seed")])
    rows = ([(row.name, row.experiment, row.dataset_for(d)) for d in table.datasets
             for row in table.rows] if table is not None else
            [(name, name, None) for name, _ in registry.expand(FLAGS.exp, None)])
    cells = []
    for row_name, experiment, dataset in rows:
        config = registry.get_config(experiment)
        if FLAGS.smoke:  # first, so that explicit flags (--epochs=3) still win
            config = config.smoked()
        config = config.replace(**options)
        if dataset:
            config = config.replace(dataset=dataset)
        config.validate()
        for seed, cell_fold in splits.cells(config.data.protocol, seeds):
            if fold is not None and fold != cell_fold:
                continue
            cells.append((row_name, config.replace(seed=seed, fold=cell_fold)))
    return table, cells


def parse_seed(value, flag):
    """A seed: a non-negative integer (scikit-learn and NumPy take nothing else)."""
    try:
        seed = int(str(value).strip())
    except ValueError:
        seed = -1
    if seed < 0:
        raise ConfigError(f"{flag}: {value!r} is not a seed; expected non-negative integers, e.g. "
                          f"{flag}=0,1,2" if flag == "--seeds" else f"{flag}=0")
    return seed


def check_output_dir(output_dir):
    """Fails at once, naming the folder, when results cannot be written there."""
    try:
        os.makedirs(output_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as e:
        raise ConfigError(f"--output_dir={output_dir}: cannot write there ({e.strerror}); choose "
                          "a folder you can write to") from None


def check_inputs(configs, ctx):
    """Fails in seconds, before TensorFlow loads, when a task's files are missing."""
    from empathy_tf.data import tasks
    seen = set()
    for config in configs:
        for name in config.data.task_names():
            if name not in seen:
                seen.add(name)
                tasks.get_task(name).get_source().check_files(ctx.data_dir)


class Progress:
    """Logs "cell i of n", elapsed time and an estimate of the rest.

    The estimate is (seconds per trained cell so far) × (cells still to train): cells finished
    before this invocation are reused in no time and count in neither.
    """

    def __init__(self, run_dirs, ctx):
        self.total = len(run_dirs)
        self.finished_before = [not ctx.overwrite and os.path.exists(os.path.join(d, "metrics.json"))
                                for d in run_dirs]
        self.start = time.time()
        self.train_seconds = 0.0
        self.trained = self.reused = self.failed = 0
        self.cell_start = self.start

    def begin(self, i, config):
        self.cell_start = time.time()
        if self.total < 2:
            return
        from empathy_tf.eval.format import duration
        to_train = sum(not f for f in self.finished_before[i:])
        rate = self.train_seconds / self.trained if self.trained else math.nan
        eta = ("0s" if not to_train else "?" if math.isnan(rate) else duration(rate * to_train))
        logging.info("cell %d/%d: %s %s seed %d fold %d%s (elapsed %s; %d trained, %d reused, %d "
                     "failed; ~%s left for %d cells to train)", i + 1, self.total, config.name,
                     config.data.dataset, config.seed, config.data.fold,
                     " [finished, reusing]" if self.finished_before[i] else "",
                     duration(time.time() - self.start), self.trained, self.reused, self.failed,
                     eta, to_train)

    def end(self, i, ok):
        if not ok:
            self.failed += 1
        elif self.finished_before[i]:
            self.reused += 1
        else:
            self.trained += 1
            self.train_seconds += time.time() - self.cell_start


def summary_line(config, metrics, run_dir):
    test = metrics["test"]
    parts = [f"{k}={test[k]:.4f}" for k in ("precision", "recall", "f1", "accuracy", "macro_f1")
             if k in test]
    where = f"seed={config.seed}" + (f" fold={config.data.fold}"
                                     if config.data.protocol.startswith("kfold") else "")
    return (f"{config.name} {config.data.dataset} {where}: test " + " ".join(parts) +
            f"  ({metrics.get('wall_time_s', 0):.0f}s, {run_dir})")


def list_everything():
    from empathy_tf.data import tasks
    from empathy_tf.methods.base import MODULES
    lines = ["Experiments:"]
    lines += [f"  {name:28s} {(fn.__doc__ or '').strip().splitlines()[0]}"
              for name, fn in sorted(registry.EXPERIMENTS.items())]
    lines += ["Groups:"] + [f"  {n:28s} {', '.join(rows)}" for n, rows in registry.GROUPS.items()]
    lines += ["Tables:"] + [f"  {n:28s} {t.title}" for n, t in registry.TABLES.items()]
    lines += ["Tasks (--dataset; role):"]
    lines += [f"  {name:28s} {task.role}; labels {list(task.label_names)}"
              for name, task in sorted(tasks.all_tasks().items())]
    lines += ["  csv:PATH                     your own CSV/TSV file (columns text, label)",
              f"Methods: {', '.join(sorted(MODULES))}", "Options (flags):"]
    lines += [f"  --{field.name:26s} {field.metadata['help']}" for _, field in config_lib.leaves()
              if field.name not in NOT_FLAGS]
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.list:
        print(list_everything())
        return 0
    from empathy_tf import runs
    try:
        table, cells = cell_configs(FLAGS)
        ctx = runs.RunContext(FLAGS.data_dir, FLAGS.output_dir, FLAGS.tfds_dir, FLAGS.overwrite,
                              FLAGS.allow_stale)
        if not FLAGS.report_only:
            check_output_dir(ctx.output_dir)
            check_inputs([config for _, config in cells], ctx)
        if any(config.execution.strategy == "multi_worker" for _, config in cells):
            # Collective ops must be configured before TensorFlow runs any op, and reading the
            # data runs some; later make_strategy calls reuse this configuration.
            from empathy_tf.training.strategy import make_strategy
            make_strategy("multi_worker")
        run_dirs = [runs.run_dir_for(config, ctx) for _, config in cells]
    except EmpathyTFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if FLAGS.report_only:
        if table is None:
            print(f"error: --report_only needs a table; {FLAGS.exp} is not one", file=sys.stderr)
            return 2
        _write_table(table, cells, run_dirs, {})
        return 0
    from empathy_tf.training.strategy import is_chief
    chief = is_chief()
    progress = Progress(run_dirs, ctx)
    failed = {}
    # Several cells: each in a process of its own (bounded memory, see run_cell_in_own_process).
    run = runs.run_cell_in_own_process if len(cells) > 1 else runs.run_cell
    try:
        for i, ((_, config), run_dir) in enumerate(zip(cells, run_dirs)):
            progress.begin(i, config)
            try:
                metrics = run(config, ctx)
            except EmpathyTFError as e:
                # One bad cell must not cost the others; it is reported here, in the table and
                # in the exit code.
                failed[run_dir] = str(e)
                progress.end(i, ok=False)
                print(f"error: {config.name} {config.data.dataset} seed {config.seed}: {e}",
                      file=sys.stderr, flush=True)
                continue
            progress.end(i, ok=True)
            print(summary_line(config, metrics, run_dir), flush=True)
    finally:
        if table is not None and chief:  # interrupted or not: leave the (partial) table behind
            _write_table(table, cells, run_dirs, failed)
    if failed:
        print(f"error: {len(failed)} of {len(cells)} cells failed", file=sys.stderr)
        return 2
    return 0


def _write_table(table, cells, run_dirs, failed):
    from empathy_tf.eval import report
    try:
        paths, text = report.write_table(table, [(row, config, run_dir) for (row, config), run_dir
                                                 in zip(cells, run_dirs)],
                                         FLAGS.output_dir, failed, argv=sys.argv)
    except Exception as e:  # noqa: BLE001 - never mask the run's own outcome
        logging.error("could not write the table: %s", e)
        return
    print(text, flush=True)
    print(f"{table.name}: " + ", ".join(paths.values()), flush=True)


def run_main(argv):
    # SIGTERM unwinds like Ctrl-C: a cell being trained checkpoints (training/loop.py), a cell in
    # its own process is stopped through it (runs.run_cell_in_own_process), and the partial table
    # is written on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sys.exit(main(argv))
    except KeyboardInterrupt as e:  # RunInterrupted: checkpointed; either way resumable
        print(f"interrupted: {str(e) or 'stopped by a signal; rerun the same command to resume'}",
              file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    app.run(run_main)
