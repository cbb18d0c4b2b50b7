"""End-to-end runs on synthetic files with the tiny encoder (the `--smoke` path)."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from empathy_tf import runner
from empathy_tf.config import ExperimentConfig
from empathy_tf.distillation import teachers
from empathy_tf.errors import CacheMismatchError, ConfigError
from experiments import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smoke(name, **changes):
    return runner.smoke_config(dataclasses.replace(registry.get_config(name), **changes))


@pytest.fixture
def ctx(synthetic_data_dir, tfds_dir, tmp_path):
    return runner.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)


def _check_metrics(metrics):
    for split in ("dev", "test"):
        for key in ("precision", "recall", "f1", "accuracy", "macro_f1"):
            assert 0.0 <= metrics[split][key] <= 1.0


def test_bert_run_folder_and_rerun_semantics(ctx):
    config = smoke("bert")
    metrics = runner.run_experiment(config, ctx)
    run_dir = runner.run_dir_for(config, ctx)
    _check_metrics(metrics)
    for name in ("config.json", "split.json", "metrics.json", "predictions.npz", "best.weights.h5"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert os.path.isdir(os.path.join(run_dir, "tb"))
    split = json.load(open(os.path.join(run_dir, "split.json")))["newsemp"]
    assert not set(split["train"]) & set(split["test"]) and not set(split["dev"]) & set(split["test"])
    # A finished cell is reused, not retrained.
    stamp = os.path.getmtime(os.path.join(run_dir, "metrics.json"))
    assert runner.run_experiment(config, ctx) == metrics
    assert os.path.getmtime(os.path.join(run_dir, "metrics.json")) == stamp
    # Another config in the same folder is refused; --overwrite keeps the old run aside.
    changed = dataclasses.replace(config, learning_rate=1e-4)
    with pytest.raises(ConfigError, match="different config"):
        runner.run_experiment(changed, ctx)
    runner.run_experiment(changed, dataclasses.replace(ctx, overwrite=True))
    aside = [d for d in os.listdir(os.path.dirname(run_dir)) if ".replaced-" in d]
    assert len(aside) == 1
    assert os.path.exists(os.path.join(os.path.dirname(run_dir), aside[0], "metrics.json"))


KERNEL_FIELDS = ("dropout_impl", "gelu_impl", "bias_grad_impl")


@pytest.mark.parametrize("field", KERNEL_FIELDS)
def test_runs_recorded_before_a_kernel_field_count_as_keras(ctx, tmp_path, field):
    config = smoke("bert")
    run_dir = str(tmp_path / "old_run")
    os.makedirs(run_dir)
    # A run made before the kernel fields existed: it has none of them, and used Keras' dropout,
    # GELU and bias gradients.
    recorded = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(config))).items()
                if k not in KERNEL_FIELDS}
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"config": recorded, "data_dir": os.path.abspath(ctx.data_dir)}, f)
    with open(os.path.join(run_dir, "metrics.json"), "w") as f:
        json.dump({"test": {"f1": 0.5}}, f)
    with pytest.raises(ConfigError, match=field):
        runner.check_existing(run_dir, config, ctx)  # defaults: ours, not what it used
    for other in set(KERNEL_FIELDS) - {field}:  # each field counts on its own
        with pytest.raises(ConfigError, match=other):
            runner.check_existing(run_dir, dataclasses.replace(config, **{field: "keras"}), ctx)
    keras_kernels = dataclasses.replace(config, **{f: "keras" for f in KERNEL_FIELDS})
    assert runner.check_existing(run_dir, keras_kernels, ctx) == {"test": {"f1": 0.5}}
    # Methods without layers of ours are unaffected.
    tfidf = smoke("tfidf_lr")
    recorded = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(tfidf))).items()
                if k not in KERNEL_FIELDS}
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"config": recorded, "data_dir": os.path.abspath(ctx.data_dir)}, f)
    assert runner.check_existing(run_dir, tfidf, ctx) == {"test": {"f1": 0.5}}


def test_same_seed_same_split_and_metrics(ctx, tmp_path):
    config = smoke("bert", seed=3)
    first = runner.run_experiment(config, ctx)
    other = dataclasses.replace(ctx, output_dir=str(tmp_path / "again"))
    second = runner.run_experiment(config, other)
    assert first["test"] == second["test"]
    split_a = json.load(open(os.path.join(runner.run_dir_for(config, ctx), "split.json")))
    split_b = json.load(open(os.path.join(runner.run_dir_for(config, other), "split.json")))
    assert split_a == split_b


def test_twittemp_views_and_split_fractions(synthetic_data_dir, tfds_dir):
    from empathy_tf.data import tasks
    empathy = tasks.load_task_data(tasks.get_task("twittemp"), synthetic_data_dir, 0, tfds_dir)
    seek = tasks.load_task_data(tasks.get_task("twittemp_seek"), synthetic_data_dir, 0, tfds_dir)
    assert (len(empathy.train), len(empathy.dev), len(empathy.test)) == (120, 15, 15)
    assert (len(seek.train), len(seek.dev), len(seek.test)) == (90, 30, 30)
    assert set(np.unique(seek.train.labels)) == {0, 1}
    assert np.mean(empathy.train.labels) == pytest.approx(2 / 3, abs=0.02)  # {1,2} vs 0
    assert all("<URL>" in t and "<USER>" in t for t in empathy.train.texts[:5])


def test_twittemp_smoke_run(ctx):
    metrics = runner.run_experiment(smoke("bert", dataset="twittemp_provide"), ctx)
    _check_metrics(metrics)


@pytest.mark.parametrize("name", ["mt_sst_emonet", "cnn", "tfidf_lr", "all_positive"])
def test_other_methods_run(ctx, name):
    metrics = runner.run_experiment(smoke(name), ctx)
    _check_metrics(metrics)
    if name == "mt_sst_emonet":
        assert set(metrics["tasks"]) == {"newsemp", "sst2", "carer"}
        assert metrics["emotion_dataset"] == "carer"
    if name == "all_positive":
        assert metrics["test"]["recall"] == 1.0


def test_multi_label_emotion_slot(ctx):
    metrics = runner.run_experiment(smoke("mt_emonet", emotion_dataset="semeval2018_ec"), ctx)
    assert "micro_f1" in metrics["tasks"]["semeval2018_ec"]["test"]


def _count_teacher_trainings(monkeypatch):
    calls = []
    original = runner.train_and_evaluate

    def counting(config, *args, **kwargs):
        if config.name == "teacher":
            calls.append(config.dataset)
        return original(config, *args, **kwargs)

    monkeypatch.setattr(runner, "train_and_evaluate", counting)
    return calls


def test_kd_reuses_teacher_cache_and_a_changed_dataset_invalidates_it(
        ctx, synthetic_data_dir, tfds_dir, tmp_path, monkeypatch):
    calls = _count_teacher_trainings(monkeypatch)
    config = smoke("kd_sst")
    metrics = runner.run_experiment(config, ctx)
    _check_metrics(metrics)
    assert sorted(calls) == ["newsemp", "sst2"]
    assert set(metrics["teachers"]) == {"newsemp", "sst2"}
    assert all(info["trained_now"] for info in metrics["teachers"].values())
    for info in metrics["teachers"].values():
        assert info["metrics"]["train_time_s"] >= 0 and info["metrics"]["predict_time_s"] >= 0
    assert metrics["timing"]["teachers_s"] >= sum(
        info["metrics"]["train_time_s"] for info in metrics["teachers"].values())
    assert metrics["xla"] == "optimizer"  # auto on one replica
    # Another student seed: the SST-2 teacher is reused, the NewsEmp one (new split) is not.
    runner.run_experiment(dataclasses.replace(config, seed=1), ctx)
    assert sorted(calls) == ["newsemp", "newsemp", "sst2"]
    # The same student again (overwrite): every teacher comes from the cache.
    again = runner.run_experiment(config, dataclasses.replace(ctx, overwrite=True))
    assert len(calls) == 3
    assert not any(info["trained_now"] for info in again["teachers"].values())
    # A changed SST-2 training file means a new SST-2 teacher.
    changed_dir = str(tmp_path / "changed")
    shutil.copytree(synthetic_data_dir, changed_dir)
    with open(os.path.join(changed_dir, "sst2", "glue", "train.tsv"), "a") as f:
        f.write("an extra wonderful sentence \t1\n")
    runner.run_experiment(config, dataclasses.replace(ctx, data_dir=changed_dir, overwrite=True))
    assert sorted(calls) == ["newsemp", "newsemp", "sst2", "sst2"]


def test_xla_mode_is_resolved_validated_and_keys_teachers():
    from empathy_tf import config as config_lib
    assert config_lib.resolve_xla("auto", "default") == "optimizer"
    assert config_lib.resolve_xla("auto", "mirrored") == "off"
    assert config_lib.resolve_xla("full", "mirrored") == "full"
    with pytest.raises(ConfigError, match="xla='fast'"):
        ExperimentConfig(xla="fast").validate()
    data = type("D", (), {})()  # teacher_fingerprint reads only these fields
    data.task = type("T", (), {"name": "sst2"})()
    data.train = type("S", (), {"ids": ["a"], "texts": ["x"], "labels": np.array([0])})()
    data.dev = type("S", (), {"ids": ["b"], "labels": np.array([1])})()
    fingerprints = {teachers.teacher_fingerprint(ExperimentConfig(xla=x), data) for x in ("off", "optimizer")}
    assert len(fingerprints) == 2


def test_teacher_cache_for_other_examples_is_refused(tmp_path):
    path = str(tmp_path / "predictions.npz")
    np.savez(path, ids=np.array(["a", "b"]), probs=np.zeros([2, 2], np.float32),
             fingerprint=np.asarray("fp"))
    assert teachers.load_cached(path, ["a", "b"], "fp").shape == (2, 2)
    with pytest.raises(CacheMismatchError, match="ids do not match"):
        teachers.load_cached(path, ["a", "c"], "fp")
    with pytest.raises(CacheMismatchError, match="other data or settings"):
        teachers.load_cached(path, ["a", "b"], "other")


def _cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=ROOT, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_smoke_run_and_clear_errors(synthetic_data_dir, tfds_dir, tmp_path):
    out = _cli("--exp=bert", "--dataset=newsemp", "--smoke", f"--data_dir={synthetic_data_dir}",
               f"--output_dir={tmp_path}", f"--tfds_dir={tfds_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bert newsemp seed=0: test precision=" in out.stdout
    metrics = json.load(open(tmp_path / "bert-smoke" / "newsemp" / "seed0" / "metrics.json"))
    assert set(metrics["test"]) >= {"precision", "recall", "f1", "accuracy", "macro_f1"}

    bad = _cli("--exp=nope", f"--data_dir={synthetic_data_dir}")
    assert bad.returncode == 2 and "unknown experiment 'nope'" in bad.stderr
    assert "kd_sst_emonet" in bad.stderr and "Traceback" not in bad.stderr
    bad = _cli("--exp=bert", "--override=bogus=1", f"--data_dir={synthetic_data_dir}")
    assert bad.returncode == 2 and "unknown config key 'bogus'" in bad.stderr
    # A finished cell is never reused for another data folder.
    other_data = _cli("--exp=bert", "--smoke", f"--data_dir={tmp_path / 'empty'}",
                      f"--output_dir={tmp_path}", f"--tfds_dir={tfds_dir}")
    assert other_data.returncode == 2 and "different config or --data_dir" in other_data.stderr
    missing = _cli("--exp=bert", "--smoke", f"--data_dir={tmp_path / 'empty'}",
                   f"--output_dir={tmp_path / 'fresh'}", f"--tfds_dir={tfds_dir}")
    assert missing.returncode == 2 and "messages.csv" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize("kernels", ["ours", "keras"])
def test_bert_models_get_the_configured_kernels(ctx, kernels):
    from empathy_tf import bias, dropout, gelu
    config = smoke("bert")
    if kernels == "keras":
        config = dataclasses.replace(config, **{f: "keras" for f in KERNEL_FIELDS})
    datas = runner.load_tasks(config, ctx)
    model = runner.build_model(config, runner.Featurized(config, datas, ctx), runner.head_specs(datas))
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    patched = {
        "dropout_impl": [vars(l).get("call") for l in layers
                         if getattr(vars(l).get("call"), "__func__", None) is dropout._hash_dropout_call],
        "gelu_impl": [l for l in layers if getattr(l, "activation", None) is gelu.fused_gelu],
        "bias_grad_impl": [l for l in layers if getattr(vars(l).get("call"), "__func__", None)
                           in (bias._dense_call, bias._einsum_dense_call)]}
    for field, found in patched.items():
        assert bool(found) == (kernels == "ours"), field
