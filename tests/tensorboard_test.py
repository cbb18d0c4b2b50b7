"""A smoke multi-task cell's TensorBoard logs: read back with TensorBoard's own reader and served.

(λ is logged for distillation runs only: tests/distillation_test.py reads it back.)
The HParams dashboard's columns are the options that define the cell and three declared metrics.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from empathy_tf import runs
from experiments import registry

SCALARS = ("train/loss", "train/learning_rate", "train/loss/newsemp", "train/loss/sst2",
           "train/tokens_per_second", "dev/newsemp/f1", "hparams/test_f1", "hparams/dev_f1",
           "hparams/test_macro_f1", "hparams/dev_macro_f1")
STARTUP_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def cell(synthetic_data_dir, tfds_dir, tmp_path_factory):
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path_factory.mktemp("tb_runs")), tfds_dir)
    config = registry.get_config("mt_sst").smoked()
    metrics = runs.run_cell(config, ctx)
    return ctx, runs.run_dir_for(config, ctx), metrics


def test_event_files_hold_scalars_and_hparams(cell):
    ctx, run_dir, metrics = cell
    acc = event_accumulator.EventAccumulator(os.path.join(run_dir, "tb"),
                                             size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]  # TF2 summaries are tensor events with scalar metadata
    for tag in SCALARS:
        assert tag in tags, (tag, tags)
    assert [e.step for e in acc.Tensors("hparams/test_f1")] == [0]
    value = float(tensor_util.make_ndarray(acc.Tensors("hparams/test_f1")[0].tensor_proto))
    assert value == pytest.approx(metrics["test"]["f1"], abs=1e-6)
    assert "train/lambda" not in tags   # no distillation, no λ
    rates = [float(tensor_util.make_ndarray(e.tensor_proto))
             for e in acc.Tensors("train/tokens_per_second")]
    assert rates and all(rate > 0 for rate in rates)
    # Steps are global steps: the last train scalar is at the run's last step.
    assert acc.Tensors("train/loss")[-1].step == metrics["train"]["steps"]

    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    # The trial is named by its folder under --output_dir, wherever training was launched.
    assert start.group_name == os.path.relpath(run_dir, ctx.output_dir) == \
        "mt_sst-smoke/newsemp/seed0-by_response_id"
    assert start.hparams["seed"].string_value == "0"          # an integer, not 0.0000
    assert start.hparams["epochs"].string_value == "1"
    assert start.hparams["aux_tasks"].string_value == "sst2"
    assert start.hparams["learning_rate"].number_value == pytest.approx(5e-5)
    assert start.hparams["experiment"].string_value == "mt_sst"
    # Only the options that define a multi-task BERT cell: no GloVe or masked-LM options.
    assert "encoder" in start.hparams and "precision" in start.hparams
    assert not any(name.startswith(("glove", "mlm_")) or name == "hidden_units"
                   for name in start.hparams), sorted(start.hparams)
    # The experiment declares its metrics: the dashboard's columns are these, not every scalar.
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == [
        "hparams/test_f1", "hparams/test_macro_f1", "hparams/dev_macro_f1"]
    assert {h.name for h in experiment.hparam_infos} == set(start.hparams)
    # A reused cell writes nothing new.
    before = sorted(os.listdir(os.path.join(run_dir, "tb")))
    runs.run_cell(registry.get_config("mt_sst").smoked(), ctx)
    assert sorted(os.listdir(os.path.join(run_dir, "tb"))) == before


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url, data=None):
    headers = {"Content-Type": "application/json", "X-XSRF-Protected": "1"} if data else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read().decode())


def test_tensorboard_serves_the_run(cell, tmp_path):
    ctx, run_dir, _ = cell
    port = _free_port()
    log_path = tmp_path / "tensorboard.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", ctx.output_dir,
             "--port", str(port), "--host", "127.0.0.1", "--reload_interval", "1"],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        run_name = os.path.relpath(os.path.join(run_dir, "tb"), ctx.output_dir)
        base = f"http://127.0.0.1:{port}"
        tags, deadline = {}, time.time() + STARTUP_TIMEOUT_S
        # The server answers before its first load of the logdir ends: poll until the run shows.
        while time.time() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                tags = _get_json(base + "/data/plugin/scalars/tags")
                if all(t in tags.get(run_name, {}) for t in SCALARS):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        assert run_name in tags, (run_name, sorted(tags), log_path.read_text()[-3000:])
        for tag in SCALARS:
            assert tag in tags[run_name], (tag, tags[run_name])
        experiment = _get_json(base + "/data/plugin/hparams/experiment",
                               json.dumps({"experimentName": ""}).encode())
        metric_tags = {m["name"]["tag"] for m in experiment.get("metricInfos", [])}
        assert "hparams/test_f1" in metric_tags, experiment
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
