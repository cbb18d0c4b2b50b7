"""The Python API: `empathy_tf.run` runs cells in this process, `empathy_tf.load_predictor`."""

import json
import os
import re
import subprocess
import sys

import keras
import pytest

import empathy_tf
from empathy_tf import io_utils
from empathy_tf.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["I am so sorry, this is heartbreaking.", "whatever, boring story"]


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("api_runs"))


def test_run_returns_each_cells_metrics_and_the_predictor_classifies(
        synthetic_data_dir, tfds_dir, output_dir):
    metrics = empathy_tf.run("bert", dataset="newsemp", seeds=[0, 1], data_dir=synthetic_data_dir,
                             output_dir=output_dir, tfds_dir=tfds_dir, smoke=True, epochs=2)
    # NewsEmp's splits keep each writer's essays together (its declared grouping).
    assert list(metrics) == [os.path.join(output_dir, "bert-smoke", "newsemp",
                                          f"seed{s}-by_response_id") for s in (0, 1)]
    for run_dir, cell in metrics.items():
        assert cell == io_utils.read_json(os.path.join(run_dir, "metrics.json"))
        assert cell["seed"] == int(run_dir.split("seed")[-1][0]) and cell["experiment"] == "bert"
        assert 0.0 <= cell["test"]["f1"] <= 1.0 and len(cell["history"]) == 2  # epochs=2 won
    # A second call reuses the finished cells: the same metrics, nothing retrained.
    again = empathy_tf.run("bert", dataset="newsemp", seeds=[0, 1], data_dir=synthetic_data_dir,
                           output_dir=output_dir, tfds_dir=tfds_dir, smoke=True, epochs=2)
    assert again == metrics
    results = empathy_tf.load_predictor(next(iter(metrics))).predict(TEXTS)
    assert [r["text"] for r in results] == TEXTS
    assert all(r["label"] in ("no_empathy", "empathy") for r in results)


def test_unknown_options_and_experiments_are_config_errors(synthetic_data_dir, output_dir):
    with pytest.raises(ConfigError, match="unknown config option 'epoch'"):
        empathy_tf.run("bert", data_dir=synthetic_data_dir, output_dir=output_dir, epoch=2)
    with pytest.raises(ConfigError, match="unknown experiment 'bertt'"):
        empathy_tf.run("bertt", data_dir=synthetic_data_dir, output_dir=output_dir)


def test_outside_app_run_logs_and_wires_in_the_baselines(synthetic_data_dir, tfds_dir,
                                                         output_dir):
    # A fresh interpreter: no app.run, no registry imported by anyone but the API.
    code = f"""
import json, empathy_tf
metrics = empathy_tf.run("cnn", dataset="newsemp", seeds=[0], data_dir={synthetic_data_dir!r},
                         output_dir={output_dir!r}, tfds_dir={tfds_dir!r}, smoke=True)
[run_dir] = metrics
print(json.dumps(empathy_tf.load_predictor(run_dir).predict(["so sorry for you"])))
"""
    # A user's shell: none of the suite's settings that this test process may have exported.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("EMPATHY_TF_", "TF_"))}
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", EMPATHY_TF_XLA_CACHE="off")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    # Everything a failure needs to be explained from its report alone.
    explained = f"rc={done.returncode}\nstdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, explained
    [result] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["label"] in ("no_empathy", "empathy")
    # The suite's console lines on stderr ("HH:MM:SS message"), e.g. the epoch's dev metrics,
    # and none of TensorFlow's start-up banners.
    lines = done.stderr.splitlines()
    assert any(re.match(r"\d\d:\d\d:\d\d epoch 1 dev newsemp", line) for line in lines), explained
    assert not any("InitializeLog" in line for line in lines), explained


class Recorder(keras.callbacks.Callback):
    """Records which hooks the training loop calls, with their logs."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", logs))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", dict(logs or {})))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", dict(logs or {})))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", logs))


def test_a_users_keras_callback_sees_the_documented_hooks_and_logs(
        synthetic_data_dir, tfds_dir, output_dir):
    # Needs the loop that drives a keras.callbacks.CallbackList (issue 22, training/loop.py).
    recorder = Recorder()
    empathy_tf.run("bert", dataset="newsemp", seeds=[2], data_dir=synthetic_data_dir,
                   output_dir=output_dir, tfds_dir=tfds_dir, smoke=True, epochs=2,
                   callbacks=[recorder])
    kinds = [kind for kind, _ in recorder.calls]
    assert kinds[0] == "train_begin" and kinds[-1] == "train_end"
    epochs = [logs for kind, logs in recorder.calls if kind == "epoch_end"]
    assert len(epochs) == 2 and all("val_newsemp_macro_f1" in logs for logs in epochs)
    batches = [logs for kind, logs in recorder.calls if kind == "batch_end"]
    assert batches and all("loss" in logs for logs in batches)
