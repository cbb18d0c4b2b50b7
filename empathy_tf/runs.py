"""A run's identity and its folder's lifecycle, the same for every method and table.

A cell (experiment × dataset × seed, and fold under `kfold:K` and `repeated_kfold:R:K`) is one
folder:

    <output_dir>/<experiment>[-smoke]/<dataset>/seed<N>[<variant>]        split / repeated:N
    <output_dir>/<experiment>[-smoke]/<dataset>/kfold<K>-seed<N>[<variant>]/fold<F>
                                                        kfold:K / repeated_kfold:R:K (seeds 0..R-1)

where <variant> is `-by_<field>` when the splits keep groups together (`--group_by`; NewsEmp's
default is `-by_response_id`, its writers) and `-train<fraction>` under `--train_fraction` < 1,
e.g. `kfold5-seed0-by_response_id-train0.25/fold2`. Each folder holds `config.json` (the config,
its resolved form and its identity), `split.json` (the grouping and the example ids of every
split, the training ids as used), TensorBoard logs in `tb/`, checkpoints while training, the
method's artifacts and finally `metrics.json`, written last and atomically: its presence means the
cell finished.

A run's **identity** is derived, never listed: the sections its method declares
(`Method.sections`), each normalised by its own `identity()`, after every machine-dependent `auto`
is resolved for this machine (precision, XLA, kernels; `batching=auto` stays, since it depends only
on the number of tasks), plus the seed, the smoke switch, a fingerprint of the data files and the
code version (package version and a hash of the library's and the baselines' sources). Then:

- a finished cell with the same identity is reused, an unfinished one resumed;
- a cell whose identity differs is refused with the differences named; `--overwrite` moves it
  aside (renamed, never deleted); when only the code version or numerics differ (precision, XLA,
  kernels), `--allow_stale` reuses it instead; a cell that never trained is simply replaced;
- a folder is locked by the process running it: another process, `--overwrite` included, is
  refused, and a folder is moved aside only under its lock;
- input (data, encoder, word vectors) is loaded and validated before the folder is touched, so bad
  input loses nothing; a damaged config.json or metrics.json is named, and `--overwrite` recovers.

Example:

    ctx = RunContext(data_dir="../shared/data", output_dir="runs")
    metrics = run_cell(ExperimentConfig(name="bert"), ctx)
    metrics["test"]["f1"]
"""

import contextlib
import ctypes
import ctypes.util
import dataclasses
import errno
import functools
import glob
import hashlib
import importlib.util
import itertools
import multiprocessing
import os
import shutil
import signal
import threading
import time

from absl import logging

import empathy_tf
from empathy_tf import protocols
from empathy_tf import errors, hardware, io_utils, methods
from empathy_tf.data import tasks
from empathy_tf.errors import ConfigError, EmpathyTFError

# The packages whose sources make up the code version: the library and the baselines beside it.
_RESULT_PACKAGES = ("empathy_tf", "baselines")
# Code that only reads finished runs (tables, reports, serving) or formats the console: it cannot
# change a cell's numbers, so editing it does not make earlier cells stale. eval/metrics.py
# computes metrics.json: it counts.
_READ_ONLY = ("empathy_tf/eval/", "empathy_tf/serving/", "empathy_tf/console.py")
_COUNTS_ANYWAY = ("empathy_tf/eval/metrics.py", "empathy_tf/eval/__init__.py")
_cell_process_started = None   # time.time() when this process was started for one cell
_PR_SET_PDEATHSIG = 1   # <linux/prctl.h>
# What --allow_stale may overlook: how the numbers were computed, not what was computed.
STALE_KEYS = ("code_version", "numerics", "bert.dropout_impl", "bert.gelu_impl",
              "bert.bias_grad_impl")


@dataclasses.dataclass(frozen=True)
class RunContext:
    """Where and how cells run; nothing here is part of a cell's identity.

    `callbacks`: Keras callbacks given to every model the cells train (teachers included); they
    live in this process, so cells given callbacks run here (`run_cell`), never in a child.
    """
    data_dir: str
    output_dir: str = "runs"
    tfds_dir: str | None = None
    overwrite: bool = False
    allow_stale: bool = False
    callbacks: tuple = dataclasses.field(default=(), compare=False)

    @property
    def cache_dir(self):
        return os.path.join(self.output_dir, ".cache")


@functools.lru_cache(maxsize=1)
def code_version():
    """`<package version>+<sha256 of the library's and the baselines' sources, 12 hex>`."""
    digest = hashlib.sha256()
    for path, relative in _result_sources():
        if relative.startswith(_READ_ONLY) and relative not in _COUNTS_ANYWAY:
            continue
        digest.update(relative.encode())
        with open(path, "rb") as f:
            digest.update(f.read())
    return f"{empathy_tf.__version__}+{digest.hexdigest()[:12]}"


def _result_sources():
    """[(path, path relative to the package's parent)] of every source that defines results.

    The library's, and the baselines' (baselines/, beside it): found by location, not imported,
    since the library never imports them; absent when the library is installed alone.
    """
    out = []
    for package in _RESULT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = list(spec.submodule_search_locations)[0]
        for path in glob.glob(os.path.join(root, "**", "*.py"), recursive=True):
            out.append((path, os.path.relpath(path, os.path.dirname(root)).replace(os.sep, "/")))
    return sorted(out, key=lambda pair: pair[1])


dataset_slug = io_utils.path_slug   # csv:PATH datasets get folder-safe names


def run_dir_for(config, ctx):
    """The folder of a cell (see the module docstring)."""
    name = config.name + ("-smoke" if config.smoke else "")
    dataset = methods.get(config.method).folder_dataset(config)
    folds = protocols.protocol_spec(config.data.protocol).folds
    base = os.path.join(ctx.output_dir, name, dataset)
    # Grouped splits and training subsamples are other cells: suffixes, so that by-example
    # full-data cells keep the folder names they always had.
    group = config.data.group_field()
    variant = (f"-by_{group}" if group else "") + (
        f"-train{config.data.train_fraction:g}" if config.data.train_fraction < 1 else "")
    if folds > 1:
        return os.path.join(base, f"kfold{folds}-seed{config.seed}{variant}",
                            f"fold{config.data.fold}")
    return os.path.join(base, f"seed{config.seed}{variant}")


def identity(config, ctx):
    """What defines a cell's result (see the module docstring); `config` must be resolved."""
    method = methods.get(config.method)
    out = {"method": config.method, "seed": config.seed, "smoke": config.smoke}
    for section in method.sections:
        if "." in section:   # one option of a section, e.g. "trainer.selection"
            name, option = section.split(".")
            out.setdefault(name, {})[option] = getattr(getattr(config, name), option)
        else:
            out[section] = getattr(config, section).identity()
    out["data_files"] = method.data_fingerprint(config, ctx)
    out["code_version"] = code_version()
    return io_utils.json_roundtrip(out)


def identity_hash(config, ctx):
    return io_utils.fingerprint(identity(config, ctx))


def differences(old, new, prefix=""):
    """Dotted keys whose values differ between two identity dicts, with (old, new) values."""
    out = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out[f"{prefix}{key}"] = (a, b)
    return out


def _only_stale(diffs):
    return all(any(k == s or k.startswith(s + ".") for s in STALE_KEYS) for k in diffs)


REUSE, RESUME, START, REPLACE = "reuse", "resume", "start", "replace"


def read_run_file(path):
    """A run folder's JSON file, or ConfigError naming it when it cannot be parsed."""
    try:
        return io_utils.read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as e:   # JSONDecodeError is a ValueError
        raise ConfigError(f"{path} is unreadable ({type(e).__name__}: {e}); pass --overwrite to "
                          "move its folder aside (it is kept, renamed) and redo the cell, or "
                          "choose another --output_dir") from None


def never_trained(run_dir):
    """The cell wrote config.json but no checkpoint and no metrics: nothing in it is worth
    keeping."""
    return not any(os.path.exists(os.path.join(run_dir, name))
                   for name in ("checkpoints", "metrics.json", "best.weights.h5"))


def check_existing(run_dir, ident, ctx):
    """What to do with a cell folder: REUSE, RESUME, START or REPLACE (ConfigError: refuse)."""
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.exists(config_path):
        return START
    if ctx.overwrite:
        return REPLACE   # before anything is parsed: --overwrite also recovers a corrupt folder
    metrics_path = os.path.join(run_dir, "metrics.json")
    finished = os.path.exists(metrics_path)
    recorded = read_run_file(config_path)
    if finished:
        read_run_file(metrics_path)
    if "identity" not in recorded:
        raise ConfigError(f"{run_dir} holds a run made by an older empathy_tf (no recorded "
                          "identity); pass --overwrite to move it aside (it is kept, renamed) or "
                          "choose another --output_dir")
    diffs = differences(recorded["identity"], ident)
    if not diffs:
        return REUSE if finished else RESUME
    named = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diffs.items())
    if _only_stale(diffs) and ctx.allow_stale:
        logging.warning("%s was made under other code or numerics (%s); reusing it as "
                        "--allow_stale asks", run_dir, named)
        return REUSE if finished else RESUME
    if never_trained(run_dir):
        # Say, a run that failed before its first checkpoint: the corrected command must not
        # be refused for an identity that never produced anything.
        return REPLACE
    hint = (" or --allow_stale to reuse it anyway" if _only_stale(diffs) else "")
    raise ConfigError(f"{run_dir} holds a run with a different identity ({named}); pass "
                      f"--overwrite to move it aside (it is kept, renamed){hint}, or choose "
                      "another --output_dir")


def move_aside(run_dir):
    aside = stem = f"{run_dir}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in itertools.count(2):   # two replacements within a second keep both
        if not os.path.exists(aside):
            break
        aside = f"{stem}-{n}"
    os.replace(run_dir, aside)
    logging.warning("moved the earlier run %s aside to %s", run_dir, aside)
    return aside


def remove_checkpoints(run_dir):
    """Drops resume state once a run is finished: the method's artifacts are what later use needs."""
    shutil.rmtree(os.path.join(run_dir, "checkpoints"), ignore_errors=True)


def read_metrics(run_dir):
    path = os.path.join(run_dir, "metrics.json")
    return read_run_file(path) if os.path.exists(path) else None


def run_cell(config, ctx, run_dir=None):
    """Runs (or reuses, or resumes) one cell; returns its metrics (also in metrics.json).

    Args:
        config: an ExperimentConfig (validated and resolved here).
        ctx: the RunContext.
        run_dir: the folder; by default `run_dir_for(config, ctx)` (teachers pass their own).
    """
    from empathy_tf.training import strategy as strategy_lib   # TensorFlow: loaded only now
    method = methods.get(config.method)
    config = config.validate().resolved()
    method.validate(config)
    if not strategy_lib.is_chief():
        # A non-chief worker runs the same steps (collectives need it) in a folder of its own.
        ctx = dataclasses.replace(ctx, output_dir=os.path.join(
            ctx.output_dir, f".worker-{strategy_lib.worker_name()}"))
        run_dir = None
    run_dir = run_dir or run_dir_for(config, ctx)
    ident = identity(config, ctx)
    action = check_existing(run_dir, ident, ctx)
    if action == REUSE:
        logging.debug("%s already finished; reusing it (--overwrite to redo)", run_dir)
        return read_metrics(run_dir)
    with disk_errors(run_dir):
        return _run_in_folder(config, ctx, run_dir, method, ident)


def _run_in_folder(config, ctx, run_dir, method, ident):
    # Load (and so validate) the data, the encoder and word vectors before touching the run
    # folder: bad input loses nothing and pins no identity.
    datas = method.load_data(config, ctx)
    method.check_resources(config)
    with contextlib.ExitStack() as held:
        # The lock comes first: a folder another process holds is refused, never moved or
        # written. What to do is decided again under it (that process may have finished).
        held.enter_context(io_utils.folder_lock(run_dir))
        action = check_existing(run_dir, ident, ctx)
        if action == REUSE:
            logging.debug("%s already finished; reusing it (--overwrite to redo)", run_dir)
            return read_metrics(run_dir)
        if action == REPLACE:
            if not ctx.overwrite:
                logging.warning("%s holds a cell of other settings that never trained; "
                                "replacing it", run_dir)
            move_aside(run_dir)   # with its lock still held: nobody writes into the moved folder
            held.enter_context(io_utils.folder_lock(run_dir))
        clock = held.enter_context(WallClock(run_dir))
        # In a cell's own process: what starting it cost (imports, config, the data), recorded as
        # timing.startup_s of this segment, so a table's cells account for their whole wall time.
        startup_s = None if _cell_process_started is None else time.time() - _cell_process_started
        io_utils.atomic_write_json(os.path.join(run_dir, "config.json"), {
            "config": config.to_dict(), "identity": ident, "code_version": code_version(),
            "data_dir": os.path.abspath(ctx.data_dir), "machine": hardware.describe(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        io_utils.atomic_write_json(os.path.join(run_dir, "split.json"),
                                   method.split_record(config, datas))
        write_hparams(config, run_dir, ctx)
        metrics = method.run(config, datas, run_dir, ctx, run_cell)
        task = metrics.setdefault("task", config.data.dataset)   # the task the test split is of
        positive_class = tasks.get_task(task, **config.data.csv_options()).positive_class
        metrics.update({"positive_class": positive_class,
                        "experiment": config.name, "dataset": config.data.dataset,
                        "seed": config.seed, "fold": config.data.fold,
                        "protocol": config.data.protocol, "method": config.method,
                        "precision": config.numerics.precision, "xla": config.numerics.xla,
                        "code_version": code_version(),
                        "wall_time_s": round(clock.total(), 1)})
        if startup_s is not None:
            metrics.setdefault("timing", {})["startup_s"] = round(startup_s, 1)
        write_final_metrics(run_dir, metrics)
        io_utils.atomic_write_json(os.path.join(run_dir, "metrics.json"), metrics)
        remove_checkpoints(run_dir)
        clock.finished()
    return metrics   # the caller reports it (experiments.run prints it once)


class WallClock:
    """A cell's wall time over all its segments (a resumed cell ran before its interruption).

    `wall_time.json` in the run folder holds the seconds of the segments before this one; each
    segment adds its own when it ends, however it ends. One killed with SIGKILL cannot: the next
    segment counts it up to the newest file it left (its last checkpoint or log).
    """

    FILE = "wall_time.json"

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, self.FILE)
        self.run_dir = run_dir

    def __enter__(self):
        self.start = time.time()
        self.before = 0.0
        if os.path.exists(self.path):
            try:
                record = io_utils.read_json(self.path)
                self.before = float(record["before_s"])
                if record.get("segment_start") is not None:   # that segment was killed
                    self.before += max(0.0, _newest_mtime(self.run_dir) -
                                       float(record["segment_start"]))
            except (OSError, ValueError, KeyError, TypeError):
                logging.warning("%s is unreadable; this cell's wall_time_s counts this run only",
                                self.path)
        self._write(self.start)
        return self

    def total(self):
        return self.before + time.time() - self.start

    def finished(self):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        self.path = None

    def _write(self, segment_start):
        io_utils.atomic_write_json(self.path, {"before_s": round(self.before, 3),
                                               "segment_start": segment_start})

    def __exit__(self, *exc):
        if self.path is not None and os.path.isdir(self.run_dir):
            with contextlib.suppress(OSError):
                self.before = self.total()
                self._write(None)
        return False


def _newest_mtime(folder):
    newest = 0.0
    for root, _, files in os.walk(folder):
        for name in files:
            if name not in (".lock", WallClock.FILE):
                with contextlib.suppress(OSError):
                    newest = max(newest, os.path.getmtime(os.path.join(root, name)))
    return newest


_DISK_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied"}


@contextlib.contextmanager
def disk_errors(run_dir):
    """A full disk or an unwritable folder becomes one clear error (EmpathyTFError)."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - re-raised unless it is a disk error
        if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
            where, why = e.filename or run_dir, f"{_DISK_ERRNOS[e.errno]} ({e.strerror})"
        elif "No space left on device" in str(e):   # TensorFlow's writers (checkpoints, logs)
            where, why = run_dir, "the disk is full"
        else:
            raise
        raise errors.EmpathyTFError(
            f"cannot write {where}: {why}; free space or choose "
            f"another --output_dir, then rerun the same command (finished cells and checkpoints "
            f"are kept)") from None


def _die_with(parent_pid):
    """Makes this (child) process stop when `parent_pid` dies, even by SIGKILL: no cell trains on
    alone holding its folder's lock. It gets one SIGTERM, so that a training cell checkpoints.

    The kernel sends the parent-death signal again each time the child is handed to another of the
    dying parent's threads, and a second SIGTERM would stop the loop without its checkpoint: so
    the kernel sends SIGUSR1, and its handler turns the first one into the SIGTERM.
    """
    told = []

    def parent_died(signum, frame):
        if not told:
            told.append(signum)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGUSR1, parent_died)
    try:   # Linux: the kernel signals us when the parent dies
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGUSR1) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):   # elsewhere: watch the parent
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGUSR1)
        threading.Thread(target=watch, daemon=True, name="watch-parent").start()
    if os.getppid() != parent_pid:   # it died before we could ask
        os.kill(os.getpid(), signal.SIGUSR1)


def _run_cell_in_child(config, ctx, verbosity, pipe, parent_pid, method_modules):
    global _cell_process_started
    _cell_process_started = time.time()
    # Methods the parent wired in from outside the library (the baselines) exist here too,
    # whatever the parent's main module (experiments.run, benchmarks, a user's script).
    for name, module in method_modules.items():
        methods.register_module(module, name)
    # Signals reach this cell only through its parent (run_cell_in_own_process forwards them
    # once): Ctrl-C in a terminal would otherwise signal it twice, and a second signal stops the
    # loop without its checkpoint.
    os.setpgrp()
    # SIGTERM before or after training (loading data, writing results) unwinds like Ctrl-C, so the
    # lock is released and the cell reports "interrupted"; the loop handles it while training.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    _die_with(parent_pid)
    from empathy_tf import console
    console.setup(verbosity)   # the parent's log format and quiet TensorFlow, before it loads
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})   # see run_cell_in_own_process
        console.load_tensorflow()   # a signal while it loads unwinds like one while training
        pipe.send(("ok", run_cell(config, ctx)))
    except KeyboardInterrupt as e:   # RunInterrupted included
        _send_quietly(pipe, ("interrupted", str(e)))
    except EmpathyTFError as e:
        _send_quietly(pipe, ("error", (type(e).__name__, str(e))))
    finally:
        pipe.close()


def _send_quietly(pipe, message):
    with contextlib.suppress(OSError):   # the parent is gone: nobody to tell
        pipe.send(message)


def run_cell_in_own_process(config, ctx):
    """`run_cell` in a fresh process, so that a table of many cells runs in bounded memory.

    TensorFlow keeps every traced training step alive in its gradient registry (the all-reduce of
    Keras' optimizer registers a custom gradient per trace): about 0.4 GB per MiniLM cell in one
    process. A process per cell returns all of it. Errors come back as the same exception types.

    SIGTERM or SIGINT to this process is passed on to the cell once (it checkpoints at its next
    step boundary, or stops at once when it is not training yet); then RunInterrupted is raised
    here, so the table stops within one cell's checkpoint. The cell stops too when this process
    dies, even by SIGKILL.
    """
    if ctx.callbacks:
        raise ConfigError("callbacks live in this process and cannot reach a cell run in its "
                          "own; run the cell with run_cell")
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_cell_in_child,
                            args=(config, ctx, logging.get_verbosity(), send, os.getpid(),
                                  dict(methods.MODULES)))
    stops = []

    def forward(signum, frame):
        stops.append(signum)
        if len(stops) == 1 and child.pid is not None:
            child.terminate()

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    kind = value = None
    try:
        # The child starts with SIGINT blocked, until it is in a process group of its own: a
        # Ctrl-C meanwhile reaches it once, through `forward`, not as a traceback while it starts.
        # (Not ignored here instead: SIG_IGN is process-wide, and another thread of this process
        # would take and discard the Ctrl-C meant for `forward`.)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            child.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if stops:   # a signal came while the child was starting
            child.terminate()
        send.close()
        with contextlib.suppress(EOFError):
            kind, value = receive.recv()
        child.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.is_alive():   # only on an unexpected error here
            child.terminate()
            child.join()
    if stops or kind == "interrupted":
        raise errors.RunInterrupted(
            value if kind == "interrupted" else
            f"stopped by signal {stops[0]} while running {run_dir_for(config, ctx)}; rerun the "
            "same command to resume")
    if kind is None:
        raise errors.EmpathyTFError(f"the process running {run_dir_for(config, ctx)} ended "
                                    f"with exit code {child.exitcode} before it finished")
    if kind == "error":
        name, message = value
        raise getattr(errors, name, errors.EmpathyTFError)(message)
    return value


HPARAMS_METRICS = (("hparams/test_f1", "test F1"), ("hparams/test_macro_f1", "test macro-F1"),
                   ("hparams/dev_macro_f1", "dev macro-F1"))


def write_hparams(config, run_dir, ctx):
    """The options that define the cell, as a TensorBoard HParams session (runs compared there).

    The hparams are the cell's identity (config.json, written just before): the options of its
    method's sections, minus those its sections declare irrelevant (no mlm_* or glove_* on a
    BERT cell), plus the seed and, as `experiment`, the row's name; an auxiliary teacher is
    named `teacher <task> <hash8>` after its folder. The trial id is the folder relative to
    `--output_dir`. Integer options are written as their decimal strings, so that the dashboard
    shows `3`, not `3.0000`, and never hides a run for a value outside a declared domain. The
    metrics declared are those of `write_final_metrics`, so they are the dashboard's columns.
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp
    trial_id = os.path.relpath(run_dir, ctx.output_dir).replace(os.sep, "/")
    recorded = io_utils.read_json(os.path.join(run_dir, "config.json"))["identity"]
    values = {"experiment": config.name}
    if trial_id.startswith("teachers/") and config.name == "teacher":
        values["experiment"] = f"teacher {config.data.dataset} {os.path.basename(run_dir)[:8]}"
    for key, value in recorded.items():
        if key in ("data_files", "code_version"):
            continue
        for name, leaf in (value.items() if isinstance(value, dict) else [(key, value)]):
            if isinstance(leaf, (list, tuple)):
                leaf = ",".join(map(str, leaf))
            elif isinstance(leaf, int) and not isinstance(leaf, bool):
                leaf = str(leaf)
            values[name] = "" if leaf is None else leaf
    with tf.summary.create_file_writer(os.path.join(run_dir, "tb")).as_default():
        hp.hparams_config(hparams=[hp.HParam(name) for name in values],
                          metrics=[hp.Metric(tag, display_name=shown)
                                   for tag, shown in HPARAMS_METRICS])
        hp.hparams(values, trial_id=trial_id)


def write_final_metrics(run_dir, metrics):
    """The declared HParams metrics (`HPARAMS_METRICS`) and dev F1 as scalars at step 0."""
    import tensorflow as tf
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tb"))
    test, dev = metrics["test"], metrics["dev"]
    with writer.as_default():
        for tag, value in (("hparams/test_f1", test["f1"]), ("hparams/dev_f1", dev["f1"]),
                           ("hparams/test_macro_f1", test.get("macro_f1", test["f1"])),
                           ("hparams/dev_macro_f1", dev.get("macro_f1", dev["f1"]))):
            tf.summary.scalar(tag, float(value), step=0)
    writer.close()
