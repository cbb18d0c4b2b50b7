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

import signal

if __name__ == "__mp_main__":
    # Imported as the main module of a cell's own process (runs.run_cell_in_own_process). That
    # process takes signals only through its parent, which forwards them as SIGTERM. A Ctrl-C
    # sent to the terminal's process group while it starts is left pending (the parent starts
    # it with SIGINT blocked) and was seen delivered in the middle of the imports below on a
    # loaded machine, printing a traceback: ignoring SIGINT discards it before any import.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

import dataclasses   # noqa: E402
import math   # noqa: E402
import os   # noqa: E402
import sys   # noqa: E402
import tempfile   # noqa: E402
import time   # noqa: E402

from absl import app, flags, logging   # noqa: E402

from empathy_tf import config as config_lib   # noqa: E402
from empathy_tf import console, hardware, protocols   # noqa: E402
from empathy_tf.errors import ConfigError, EmpathyTFError   # noqa: E402
from experiments import registry   # noqa: E402

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
flags.DEFINE_float("rope", 1.0, "Tables: half-width of the region of practical equivalence of "
                   "the Bayesian comparison with bert, in F1 / macro-F1 points.", lower_bound=0.0)
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


def _set_options(FLAGS):
    return {name: (tuple(FLAGS[name].value) if isinstance(FLAGS[name].value, list)
                   else FLAGS[name].value)
            for name in OPTION_FLAGS if FLAGS[name].value is not None}


def cell_configs(FLAGS):
    """(table spec or None, [(row name, config)]) of every cell the flags ask for."""
    options = _set_options(FLAGS)
    if "seed" in options:
        options["seed"] = parse_seed(options["seed"], "--seed")
    seeds = [parse_seed(s, "--seeds") for s in FLAGS.seeds] if FLAGS.seeds else None
    return registry.cells(FLAGS.exp, options, seeds)


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
    """Fails in seconds, before TensorFlow loads, when a task's files are missing or the target
    cannot be split by the protocol (more folds than examples of a class, or than groups)."""
    from empathy_tf.data import tasks
    seen, splittings = set(), set()
    for config in configs:
        for name in config.data.task_names():
            if name not in seen:
                seen.add(name)
                tasks.get_task(name, **config.data.csv_options()).get_source().check_files(
                    ctx.data_dir)
        splitting = (config.data.dataset, config.data.protocol, config.data.group_by)
        if splitting not in splittings:
            splittings.add(splitting)
            tasks.check_protocol(config.data, ctx.data_dir)


class Progress:
    """Announces each cell before it runs: i/n, what happens to it, elapsed time, estimate.

    What happens (start, resume, reuse, replace) is decided by the cell's identity, as
    `runs.run_cell` will decide it; a folder whose identity differs is announced as refused. The
    estimate is (seconds per trained cell so far) × (cells still to train): cells finished before
    this invocation are reused in no time and count in neither.
    """

    ACTIONS = {"start": "starting", "resume": "resuming from its checkpoint",
               "reuse": "finished earlier, reusing it", "replace": "starting over (the earlier "
               "folder is moved aside)"}

    def __init__(self, run_dirs, ctx):
        self.total = len(run_dirs)
        self.run_dirs = run_dirs
        self.ctx = ctx
        self.finished_before = [not ctx.overwrite and os.path.exists(os.path.join(d, "metrics.json"))
                                for d in run_dirs]
        self.start = time.time()
        self.train_seconds = 0.0
        self.trained = self.reused = self.failed = 0
        self.cell_start = self.start
        self.reusing = False

    def action(self, config, run_dir):
        """What `run_cell` will do with the cell ("start", "reuse", ...; "refused" on mismatch)."""
        from empathy_tf import methods, runs
        try:
            resolved = config.validate().resolved()
            methods.get(resolved.method).validate(resolved)
            return runs.check_existing(run_dir, runs.identity(resolved, self.ctx), self.ctx)
        except EmpathyTFError:
            return "refused"

    def begin(self, i, config):
        from empathy_tf.eval.format import duration
        self.cell_start = time.time()
        action = self.action(config, self.run_dirs[i])
        self.reusing = action == "reuse"
        what = self.ACTIONS.get(action, "refused (see the error below)")
        head = f"{cell_name(config)}: {what}"
        if self.total < 2:
            logging.info("%s -> %s", head, self.run_dirs[i])
            return
        to_train = sum(not f for f in self.finished_before[i:])
        rate = self.train_seconds / self.trained if self.trained else math.nan
        eta = ("0s" if not to_train else "?" if math.isnan(rate) else duration(rate * to_train))
        logging.info("cell %d/%d %s (elapsed %s; %d trained, %d reused, %d failed; ~%s left for "
                     "%d to train)", i + 1, self.total, head, duration(time.time() - self.start),
                     self.trained, self.reused, self.failed, eta, to_train)

    def end(self, i, ok):
        del i
        if not ok:
            self.failed += 1
        elif self.reusing:
            self.reused += 1
        else:
            self.trained += 1
            self.train_seconds += time.time() - self.cell_start


def cell_name(config):
    """`bert newsemp seed 0` (`... fold 3` under kfold)."""
    fold = (f" fold {config.data.fold}" if protocols.protocol_spec(config.data.protocol).folds > 1
            else "")
    return f"{config.name} {config.data.dataset} seed {config.seed}{fold}"


def options_line(configs):
    """The options that define the cells (their methods' sections, resolved for this machine)
    and differ from the defaults, where every cell that has them agrees.

    Per-cell values (seed, fold) and per-row ones (a table's rows differ in method and tasks)
    are left out; so are options a cell's method does not read (no mlm_* on a BERT cell).
    """
    from empathy_tf import methods
    default = config_lib.ExperimentConfig()
    per_cell = []
    for config in configs:
        config = config.resolved()
        values = {"smoke": config.smoke}
        for section in methods.get(config.method).sections:
            name, _, option = section.partition(".")
            part = getattr(config, name)
            values.update({option: getattr(part, option)} if option else part.identity())
        values.update(dataclasses.asdict(config.execution))
        per_cell.append(values)
    parts = []
    for _, field in config_lib.leaves():
        seen = [cell[field.name] for cell in per_cell if field.name in cell]
        if field.name in ("seed", "fold") or not seen or any(v != seen[0] for v in seen):
            continue
        section = config_lib.LEAF_SECTION[field.name]
        value = getattr(default if section is None else getattr(default, section), field.name)
        if seen[0] != (list(value) if isinstance(value, tuple) else value):
            shown = seen[0]
            parts.append(f"{field.name}={','.join(map(str, shown)) if isinstance(shown, (list, tuple)) else shown}")
    return "options: " + (" ".join(parts) if parts else "the defaults")


def summary_line(config, metrics, run_dir):
    """The cell's result, printed once: `<cell>: test <metrics>  (<time>, <folder>)`."""
    where = f"seed={config.seed}" + (f" fold={config.data.fold}"
                                     if protocols.protocol_spec(config.data.protocol).folds > 1
                                     else "")
    return (f"{config.name} {config.data.dataset} {where}: test "
            f"{console.metrics_text(metrics['test'])}  ({metrics.get('wall_time_s', 0):.0f}s, "
            f"{run_dir})")


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
    lines += ["  csv:PATH                     your own CSV/TSV file (columns: --text_column, "
              "--label_column)",
              f"Methods: {', '.join(sorted(MODULES))}", "Options (flags):"]
    lines += [f"  --{field.name:26s} {field.metadata['help']}" for _, field in config_lib.leaves()
              if field.name not in NOT_FLAGS]
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    console.setup(FLAGS.verbosity)
    # Before TensorFlow runs an op: every cell process then loads the kernels earlier cells
    # compiled instead of compiling them again (hardware.py; EMPATHY_TF_XLA_CACHE=off disables).
    hardware.enable_persistent_xla_cache()
    if FLAGS.list:
        print(list_everything())
        return 0
    from empathy_tf import runs
    try:
        table, cells = cell_configs(FLAGS)
        ctx = runs.RunContext(FLAGS.data_dir, FLAGS.output_dir, FLAGS.tfds_dir, FLAGS.overwrite,
                              FLAGS.allow_stale)
        if not FLAGS.report_only:
            check_inputs([config for _, config in cells], ctx)   # bad input: nothing written
            check_output_dir(ctx.output_dir)
        if any(config.execution.strategy == "multi_worker" for _, config in cells):
            # Collective ops must be configured before TensorFlow runs any op, and reading the
            # data (or loading TensorFlow quietly) runs some; later make_strategy calls reuse
            # this configuration.
            from empathy_tf.training.strategy import make_strategy
            make_strategy("multi_worker")
        if not FLAGS.report_only:
            console.load_tensorflow()   # quietly, before anything else imports it
            logging.info("%s: %d cell%s; %s", FLAGS.exp, len(cells), "s" * (len(cells) != 1),
                         options_line([config for _, config in cells]))
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
    try:
        for i, ((_, config), run_dir) in enumerate(zip(cells, run_dirs)):
            progress.begin(i, config)
            # Several cells: each in a process of its own (bounded memory, see
            # run_cell_in_own_process), except a finished one: reading its metrics here saves
            # the seconds a process takes to start and import TensorFlow.
            run = (runs.run_cell if len(cells) == 1 or progress.reusing
                   else runs.run_cell_in_own_process)
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
                                         FLAGS.output_dir, failed, argv=sys.argv,
                                         rope=FLAGS.rope)
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
