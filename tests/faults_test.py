"""Faults researchers hit (issue 23): each ends in a clear error, a refusal or a correct result,
never in a traceback, a silent wrong result or a lost run.

In-process where the fault is a file or a value; subprocesses for locks held by another process
and for signals (the table runner's parent/child processes).
"""

import errno
import glob
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from empathy_tf import io_utils, runs
from empathy_tf.errors import ConfigError, DataError, EmpathyTFError
from experiments import registry
from tests.conftest import sentence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _cli(*args, start_new_session=False, **env):
    return subprocess.Popen([sys.executable, "-m", "experiments.run", *args], cwd=ROOT,
                            env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=start_new_session)


def _write_csv(path, rows):
    with open(path, "w") as f:
        f.write("text,label\n")
        f.writelines(f"{text},{label}\n" for text, label in rows)
    return path


def _csv_rows(n, labels=("0", "1"), seed=0):
    rng = random.Random(seed)
    return [(sentence(rng, [f"word{labels[i % len(labels)]}"]), labels[i % len(labels)])
            for i in range(n)]


def _warnings(caplog, text):
    return [r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


@pytest.fixture()
def tfidf(synthetic_data_dir, tfds_dir, tmp_path):
    """A finished tfidf_lr cell (fast: no neural network): (config, ctx, run_dir)."""
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)
    config = registry.get_config("tfidf_lr").smoked()
    runs.run_cell(config, ctx)
    return config, ctx, runs.run_dir_for(config, ctx)


@pytest.fixture(scope="module")
def finished_bert(synthetic_data_dir, tfds_dir, tmp_path_factory):
    """A finished smoke `bert` cell (tiny encoder): (config, ctx, run_dir)."""
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path_factory.mktemp("bert")), tfds_dir)
    config = registry.get_config("bert").smoked().replace(epochs=1)
    runs.run_cell(config, ctx)
    return config, ctx, runs.run_dir_for(config, ctx)


# -- the run folder's lifecycle ------------------------------------------------------------------

def test_overwrite_never_moves_a_folder_another_process_holds(tfidf):
    config, ctx, run_dir = tfidf
    before = io_utils.read_json(os.path.join(run_dir, "metrics.json"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from empathy_tf import io_utils\n"
         "with io_utils.folder_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(120)",
         run_dir], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        overwrite = runs.RunContext(ctx.data_dir, ctx.output_dir, ctx.tfds_dir, overwrite=True)
        with pytest.raises(io_utils.FolderLockedError, match="in use by another"):
            runs.run_cell(config, overwrite)
        assert not glob.glob(run_dir + ".replaced-*")   # nothing was moved from under it
        assert io_utils.read_json(os.path.join(run_dir, "metrics.json")) == before
    finally:
        holder.kill()
        holder.wait()
    # Once the other process is gone, --overwrite moves the folder aside and redoes the cell.
    runs.run_cell(config, overwrite)
    [aside] = glob.glob(run_dir + ".replaced-*")
    assert io_utils.read_json(os.path.join(aside, "metrics.json")) == before
    assert os.path.exists(os.path.join(run_dir, "metrics.json"))


@pytest.mark.parametrize("damaged", ["config.json", "metrics.json"])
def test_a_corrupt_run_file_is_named_and_overwrite_recovers(tfidf, damaged):
    config, ctx, run_dir = tfidf
    with open(os.path.join(run_dir, damaged), "w") as f:
        f.write('{"config": {"na')
    with pytest.raises(ConfigError, match=rf"{damaged} is unreadable.*--overwrite"):
        runs.run_cell(config, ctx)
    overwrite = runs.RunContext(ctx.data_dir, ctx.output_dir, ctx.tfds_dir, overwrite=True)
    metrics = runs.run_cell(config, overwrite)
    assert 0.0 <= metrics["test"]["f1"] <= 1.0
    [aside] = glob.glob(run_dir + ".replaced-*")
    with open(os.path.join(aside, damaged)) as f:
        assert f.read() == '{"config": {"na'   # kept, renamed


def test_a_mistyped_encoder_or_glove_path_pins_nothing(synthetic_data_dir, tfds_dir, tmp_path):
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)
    bert = registry.get_config("bert").smoked().replace(encoder=str(tmp_path / "nonexistent"))
    with pytest.raises(ConfigError, match="nonexistent: no such folder"):
        runs.run_cell(bert, ctx)
    cnn = registry.get_config("cnn").smoked().replace(glove=str(tmp_path / "vectors.txt"))
    with pytest.raises(DataError, match=r"vectors\.txt"):
        runs.run_cell(cnn, ctx)
    for config in (bert, cnn):   # the corrected command is not refused for these identities
        assert not os.path.exists(os.path.join(runs.run_dir_for(config, ctx), "config.json"))


def test_a_cell_that_never_trained_is_replaced_not_refused(tfidf, caplog):
    config, ctx, run_dir = tfidf
    other = config.replace(train_cap=30)
    # A cell that failed after config.json (a crash before its first checkpoint) ...
    for name in ("metrics.json", "predictions.npz"):
        os.remove(os.path.join(run_dir, name))
    ident = runs.identity(other.validate().resolved(), ctx)
    assert runs.check_existing(run_dir, ident, ctx) == runs.REPLACE
    # ... but a cell that trained is refused, with the difference named.
    os.makedirs(os.path.join(run_dir, "checkpoints"))
    with pytest.raises(ConfigError, match=r"data.train_cap: 0 -> 30"):
        runs.check_existing(run_dir, ident, ctx)


def test_a_full_disk_is_a_clear_error_and_loses_nothing(tfidf, monkeypatch):
    config, ctx, run_dir = tfidf
    shutil.rmtree(run_dir)
    real = io_utils.atomic_write_json

    def full_disk(path, obj):
        if path.endswith("metrics.json"):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(path, obj)
    monkeypatch.setattr(io_utils, "atomic_write_json", full_disk)
    with pytest.raises(EmpathyTFError, match=r"cannot write .*metrics\.json: the disk is full.*"
                                             "rerun the same command"):
        runs.run_cell(config, ctx)
    monkeypatch.setattr(io_utils, "atomic_write_json", real)
    assert runs.run_cell(config, ctx)["test"]["f1"] >= 0.0   # space freed: the same command


def test_wall_time_counts_every_segment(tmp_path):
    run_dir = str(tmp_path)
    with runs.WallClock(run_dir):            # interrupted (SIGTERM): its time is recorded
        time.sleep(0.3)
    with runs.WallClock(run_dir):            # killed (SIGKILL): counted up to its last file
        io_utils.atomic_write_text(os.path.join(run_dir, "checkpoint"), "x")
        started = time.time()
        os.utime(os.path.join(run_dir, "checkpoint"), (started + 0.5, started + 0.5))
        killed = io_utils.read_json(os.path.join(run_dir, runs.WallClock.FILE))
    io_utils.atomic_write_json(os.path.join(run_dir, runs.WallClock.FILE), killed)
    with runs.WallClock(run_dir) as clock:   # the segment that finishes
        time.sleep(0.2)
        total = clock.total()
        clock.finished()
    assert 0.95 <= total < 5
    assert not os.path.exists(os.path.join(run_dir, runs.WallClock.FILE))


# -- flags ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, message", [
    ("--seeds=abc", "--seeds: 'abc' is not a seed; expected non-negative integers"),
    ("--seeds=0,-1", "--seeds: '-1' is not a seed"),
    ("--output_dir={file}/runs", "--output_dir={file}/runs: cannot write there"),
])
def test_bad_flags_are_usage_errors(synthetic_data_dir, tmp_path, flag, message):
    file = tmp_path / "a_file"
    file.write_text("")
    proc = _cli("--exp=tfidf_lr", "--dataset=newsemp", f"--data_dir={synthetic_data_dir}",
                f"--output_dir={tmp_path / 'out'}", flag.format(file=file))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and message.format(file=file) in err, err[-2000:]
    assert "Traceback" not in err


def test_an_unwritable_output_dir_is_named(tmp_path, monkeypatch):
    from experiments import run

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", path)
    monkeypatch.setattr(os, "makedirs", read_only)
    with pytest.raises(ConfigError, match=r"--output_dir=/ro/runs: cannot write there "
                                          r"\(Read-only file system\)"):
        run.check_output_dir("/ro/runs")


# -- labels --------------------------------------------------------------------------------------

def test_one_class_is_refused_for_every_method(synthetic_data_dir, tfds_dir, tmp_path):
    path = _write_csv(tmp_path / "one.csv", _csv_rows(30, labels=("yes",)))
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)
    for experiment in ("bert", "tfidf_lr", "all_positive", "cnn", "kd_sst"):
        config = registry.get_config(experiment).smoked().replace(dataset=f"csv:{path}")
        with pytest.raises(DataError, match=r"one\.csv: every row's 'label' is 'yes'; a "
                                            "classification task needs at least two classes"):
            runs.run_cell(config, ctx)
    assert not os.path.exists(ctx.output_dir)   # refused before any folder was made


def test_labels_differing_only_in_case_are_refused(tmp_path):
    from empathy_tf.data import tasks
    rows = _csv_rows(30, labels=("yes", "no"))
    rows[7] = (rows[7][0], "Yes")
    path = _write_csv(tmp_path / "case.csv", rows)
    with pytest.raises(DataError, match=r"case\.csv: field 'label' has labels that differ only in "
                                        r"case or spacing: 'Yes' \(first on line 9\) vs 'yes' "
                                        r"\(first on line 2\)"):
        tasks.get_task(f"csv:{path}")


def test_a_split_with_one_class_is_refused(tmp_path, tfds_dir):
    from empathy_tf.data import tasks
    rows = _csv_rows(40, labels=("a",)) + _csv_rows(4, labels=("b",), seed=1)
    path = _write_csv(tmp_path / "rare.csv", rows)
    task = tasks.get_task(f"csv:{path}")
    with pytest.raises(DataError, match=r"csv:.*rare\.csv: its (train|dev|test) split holds only "
                                        r"the class\(es\) \['a'\]"):
        for fold in range(4):   # 4 folds: each test fold holds one 'b', no dev split does
            tasks.load_task_data(task, str(tmp_path), "kfold:4", 0, fold, tfds_dir)


def test_a_stray_label_is_named_with_its_row(tmp_path, tfds_dir):
    from empathy_tf.data import tasks
    rows = _csv_rows(40)
    rows[10] = (rows[10][0], "maybe")
    path = _write_csv(tmp_path / "stray.csv", rows)
    with pytest.raises(DataError, match=r"stray\.csv: label 'maybe' has only 1 example\(s\): id "
                                        r"'line-12' \(data row 11\)"):
        tasks.load_task_data(tasks.get_task(f"csv:{path}"), str(tmp_path), "split", 0, 0,
                             tfds_dir)


# -- texts ---------------------------------------------------------------------------------------

def test_nul_byte_with_the_small_test_encoder(tmp_path, tfds_dir):
    from empathy_tf.data import preprocessor, tasks
    from empathy_tf.models import encoders
    rows = _csv_rows(40)
    rows[0] = ("so sorry \x00 for you", "1")
    path = _write_csv(tmp_path / "nul.csv", rows)
    data = tasks.load_task_data(tasks.get_task(f"csv:{path}"), str(tmp_path), "split", 0, 0,
                                tfds_dir)
    texts = data.train.texts + data.dev.texts + data.test.texts
    [read] = [t for t in texts if "sorry" in t]
    tokenizer = encoders.load_tokenizer("tiny", encoders.toy_vocabulary(texts))
    encoder = preprocessor.WordPiecePreprocessor(tokenizer, 64)
    # [CLS] so sorry for you [SEP]: nothing after the NUL is lost, in training or in serving.
    assert list(encoder.encode([read]).lengths) == [6]
    np.testing.assert_array_equal(encoder.encode([rows[0][0]], normalize=True).flat,
                                  encoder.encode([read]).flat)


def test_the_truncation_warning_is_printed_once(tmp_path, tfds_dir, caplog):
    from empathy_tf.data import tasks
    rows = _csv_rows(40)
    rows[3] = ("sorry " * 5000, "1")
    path = _write_csv(tmp_path / "long.csv", rows)
    task = tasks.get_task(f"csv:{path}")
    tasks.load_task_data(task, str(tmp_path), "split", 0, 0, tfds_dir)
    tasks.load_task_data(task, str(tmp_path), "split", 1, 0, tfds_dir)
    assert len(_warnings(caplog, "truncated to MAX_TEXT_CHARS")) == 1


# -- caches and saved files ----------------------------------------------------------------------

def _truncate(path, keep=0.5):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))


def test_a_corrupt_token_cache_entry_is_rebuilt(tmp_path, caplog):
    from empathy_tf.data import preprocessor
    from empathy_tf.models import encoders
    texts = [f"text number {i} sorry" for i in range(20)]
    encoder = preprocessor.WordPiecePreprocessor(
        encoders.load_tokenizer("tiny", encoders.toy_vocabulary(texts)), 64)
    first = preprocessor.encode_cached(encoder, texts, str(tmp_path))
    [entry] = glob.glob(str(tmp_path / "tokens" / "*.npz"))
    _truncate(entry)
    again = preprocessor.encode_cached(encoder, texts, str(tmp_path))
    assert [entry in r.getMessage() for r in _warnings(caplog, "rebuilding it")] == [True]
    np.testing.assert_array_equal(again.flat, first.flat)
    with np.load(entry) as rebuilt:   # and the entry on disk is whole again
        np.testing.assert_array_equal(rebuilt["lengths"], first.lengths)


def test_a_corrupt_prepared_tfds_copy_is_rebuilt(synthetic_data_dir, tmp_path, caplog):
    from empathy_tf.data import sources, tfds_source
    source = sources.get_source("newsemp")
    first = tfds_source.load(source, synthetic_data_dir, tfds_dir=str(tmp_path))
    [record] = glob.glob(str(tmp_path / "**" / "*.tfrecord*"), recursive=True)
    _truncate(record)
    again = tfds_source.load(source, synthetic_data_dir, tfds_dir=str(tmp_path))
    assert len(_warnings(caplog, "is damaged")) == 1
    assert again["all"].ids == first["all"].ids and again["all"].texts == first["all"].texts


def test_a_corrupt_teacher_cache_is_recomputed(finished_bert, caplog):
    from empathy_tf.methods.distill import teachers
    config, ctx, run_dir = finished_bert
    resolved = config.validate().resolved()
    [data] = runs.methods.get("single").load_data(resolved, ctx)
    identity_hash = runs.identity_hash(resolved, ctx)
    first, _ = teachers.cached_predictions(resolved, run_dir, data, identity_hash)
    _truncate(os.path.join(run_dir, teachers.PREDICTIONS))
    again, _ = teachers.cached_predictions(resolved, run_dir, data, identity_hash)
    assert len(_warnings(caplog, "teacher cache")) == 1
    np.testing.assert_array_equal(again, first)


def test_truncated_best_weights_are_named_by_predict(finished_bert, tmp_path):
    from empathy_tf.serving import predictor
    _, _, run_dir = finished_bert
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    _truncate(os.path.join(copy, "best.weights.h5"))
    with pytest.raises(ConfigError, match=r"best\.weights\.h5 cannot be read .*--overwrite"):
        predictor.load_predictor(copy)


# -- signals to a table --------------------------------------------------------------------------

def _table(data_dir, tfds_dir, out):
    return ["--exp=table4", "--smoke", "--seeds=0", "--epochs=2", "--checkpoint_every=4",
            f"--data_dir={data_dir}", f"--tfds_dir={tfds_dir}", f"--output_dir={out}"]


def _wait_for(pattern, proc, timeout=300):
    deadline = time.time() + timeout
    while not glob.glob(pattern):
        assert proc.poll() is None, f"ended before {pattern}:\n{proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, f"timed out waiting for {pattern}"
        time.sleep(0.1)
    return glob.glob(pattern)[0]


def _cell_processes(pid):
    """Pids of the cell processes `pid` has started (multiprocessing's spawned children)."""
    found = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(path) as f:
            for child in f.read().split():
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as cmd:
                        if b"spawn_main" in cmd.read():   # not the resource tracker
                            found.append(int(child))
                except FileNotFoundError:
                    pass
    return found


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid, timeout=120):
    deadline = time.time() + timeout
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


def test_ctrl_c_while_a_cell_starts_stops_the_table(synthetic_data_dir, tfds_dir, tmp_path):
    proc = _cli(*_table(synthetic_data_dir, tfds_dir, tmp_path), start_new_session=True)
    deadline = time.time() + 300
    while not _cell_processes(proc.pid):   # the first cell's process is starting, not training
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)   # as Ctrl-C does: to the whole process group
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "rerun the same command to resume" in err and "Traceback" not in err
    assert "cell 2/" not in err   # the table stopped at its first cell, not recorded as failed
    assert not [line for line in err.splitlines() if line.startswith("error:")]
    assert glob.glob(str(tmp_path / "tables" / "table4*.md"))   # the partial table


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_signals_to_several_cells_stop_the_cell(synthetic_data_dir, tfds_dir, tmp_path, sig):
    # Several cells run each in a process of its own, as a table's do (bert: no GloVe to load).
    cells = ["--exp=bert", "--dataset=newsemp", "--seeds=0,1", *_table(synthetic_data_dir,
                                                                       tfds_dir, tmp_path)[1:]]
    proc = _cli(*[a for a in cells if a != "--seeds=0"], EMPATHY_TF_PAUSE_AT_STEP="5")
    run_dir = os.path.dirname(_wait_for(str(tmp_path / "bert-smoke" / "newsemp" / "seed0-by_response_id" /
                                             ".paused"), proc))
    with open(os.path.join(run_dir, ".lock")) as f:
        child = int(f.read())
    proc.send_signal(sig)
    proc.communicate(timeout=300)
    # The cell stops with its parent, checkpointed at the step it held, and its lock is free.
    assert _wait_gone(child), "the cell outlived its parent"
    assert json.load(open(os.path.join(run_dir, "checkpoints", "state.json")))["step"] == 5
    with io_utils.folder_lock(run_dir):
        pass
    assert not os.path.exists(os.path.join(tmp_path, "bert-smoke", "newsemp", "seed1"))
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
        assert io_utils.read_json(os.path.join(run_dir, "wall_time.json"))["before_s"] > 0


def test_a_cell_in_its_own_process_records_what_starting_it_cost(tfidf, tmp_path):
    config, ctx, run_dir = tfidf
    in_process = runs.read_metrics(run_dir).get("timing", {})
    assert "startup_s" not in in_process          # run here: no process was started for it
    own = runs.RunContext(ctx.data_dir, str(tmp_path / "own"), ctx.tfds_dir)
    metrics = runs.run_cell_in_own_process(config, own)
    # A fresh process imports TensorFlow and reads the data before the cell starts.
    assert metrics["timing"]["startup_s"] > 0.5
    assert runs.read_metrics(runs.run_dir_for(config, own))["timing"]["startup_s"] == \
        metrics["timing"]["startup_s"]


def test_a_ctrl_c_pending_while_a_cell_process_imports_is_discarded():
    """A cell's own process starts with SIGINT blocked; a Ctrl-C to the process group meanwhile
    stays pending. Importing experiments.run as that process's main module discards it, so no
    import later unblocking signals can raise KeyboardInterrupt (and print a traceback)."""
    script = ("import os, runpy, signal\n"
              "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n"
              "os.kill(os.getpid(), signal.SIGINT)\n"          # pending, as from a Ctrl-C
              "runpy.run_module('experiments.run', run_name='__mp_main__')\n"
              "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
              "print('still running')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert done.returncode == 0 and "still running" in done.stdout, done.stderr[-3000:]
    assert "KeyboardInterrupt" not in done.stderr
