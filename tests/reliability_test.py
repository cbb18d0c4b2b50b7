"""Interrupted runs resume to the same result; concurrent runs don't corrupt each other;
multi-worker training works across two processes on localhost."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ["--exp=bert", "--dataset=newsemp", "--smoke", "--epochs=2", "--checkpoint_every=4"]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _start(args, **env):
    return subprocess.Popen([sys.executable, "-m", "experiments.run", *args], cwd=ROOT,
                            env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(path, proc, timeout=240):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"process ended before {path} appeared:\n{proc.stderr.read()[-3000:]}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {path}")
        time.sleep(0.1)


def _args(data_dir, tfds_dir, out):
    return [*RUN, f"--data_dir={data_dir}", f"--tfds_dir={tfds_dir}", f"--output_dir={out}"]


def _metrics(out):
    with open(os.path.join(out, "bert-smoke", "newsemp", "seed0-by_response_id", "metrics.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def uninterrupted(synthetic_data_dir, tfds_dir, tmp_path_factory):
    """The same cell run straight through, in this process (the CLI runs the same run_cell)."""
    from empathy_tf import runs
    from experiments import registry
    out = str(tmp_path_factory.mktemp("uninterrupted"))
    config = registry.get_config("bert").smoked().replace(epochs=2, checkpoint_every=4)
    runs.run_cell(config, runs.RunContext(synthetic_data_dir, out, tfds_dir))
    return _metrics(out)


def test_killed_then_stopped_run_resumes_to_the_same_metrics(uninterrupted, synthetic_data_dir,
                                                             tfds_dir, tmp_path):
    out = str(tmp_path)
    run_dir = os.path.join(out, "bert-smoke", "newsemp", "seed0-by_response_id")
    state_path = os.path.join(run_dir, "checkpoints", "state.json")
    # Hold the run at step 10 (mid-epoch 2; checkpoints exist at steps 4, 6 (epoch end) and 8).
    # SIGKILL leaves the last periodic checkpoint; SIGTERM checkpoints the step it stopped at.
    for sig, saved_step in ((signal.SIGKILL, 8), (signal.SIGTERM, 10)):
        proc = _start(_args(synthetic_data_dir, tfds_dir, out), EMPATHY_TF_PAUSE_AT_STEP="10")
        _wait_for(os.path.join(run_dir, ".paused"), proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode != 0
        assert not os.path.exists(os.path.join(run_dir, "metrics.json"))
        assert json.load(open(state_path))["step"] == saved_step
        if sig == signal.SIGTERM:
            assert "rerun the same command to resume" in err and proc.returncode == 130
        else:
            assert "Resuming" not in err   # the first process started from scratch
        os.remove(os.path.join(run_dir, ".paused"))
    again = _start(_args(synthetic_data_dir, tfds_dir, out))
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    assert f"Resuming {run_dir} at step 10" in err
    resumed = _metrics(out)
    assert resumed["test"] == uninterrupted["test"]
    assert resumed["history"] == uninterrupted["history"]


def test_a_folder_in_use_is_refused(synthetic_data_dir, tfds_dir, tmp_path):
    from empathy_tf import io_utils
    out = str(tmp_path)
    run_dir = os.path.join(out, "bert-smoke", "newsemp", "seed0-by_response_id")
    with io_utils.folder_lock(run_dir):   # another process holds the cell
        second = _start(_args(synthetic_data_dir, tfds_dir, out))
        _, err = second.communicate(timeout=300)
    assert second.returncode == 2 and "in use by another empathy_tf process" in err
    assert not os.path.exists(os.path.join(run_dir, "metrics.json"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_training_on_localhost(synthetic_data_dir, tfds_dir, tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = str(tmp_path)
    args = [*_args(synthetic_data_dir, tfds_dir, out), "--strategy=multi_worker"]
    procs = [_start(args, TF_CONFIG=json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": i}}))
             for i in range(2)]
    errs = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
        errs.append(err)
    assert all(p.returncode == 0 for p in procs), "\n".join(e[-2000:] for e in errs)
    chief = _metrics(out)
    worker = _metrics(os.path.join(out, ".worker-worker-1"))
    # Both workers took identical synchronous steps, so they end with identical models.
    assert chief["test"] == worker["test"] and chief["history"] == worker["history"]
