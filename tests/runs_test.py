"""Cells end to end on synthetic files with the tiny encoder: folders, identity, reuse, teachers."""

import json
import re
import os
import shutil

import numpy as np
import pytest

from empathy_tf import runs
from empathy_tf.errors import ConfigError
from experiments import registry


def smoke(name, **changes):
    return registry.get_config(name).smoked().replace(**changes)


@pytest.fixture
def ctx(synthetic_data_dir, tfds_dir, tmp_path):
    return runs.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)


def _check_metrics(metrics):
    for split in ("dev", "test"):
        for key in ("precision", "recall", "f1", "accuracy", "macro_f1"):
            assert 0.0 <= metrics[split][key] <= 1.0


def _record(run_dir):
    with open(os.path.join(run_dir, "config.json")) as f:
        return json.load(f)


def test_run_folder_reuse_refusal_and_overwrite(ctx):
    config = smoke("bert")
    metrics = runs.run_cell(config, ctx)
    run_dir = runs.run_dir_for(config, ctx)
    _check_metrics(metrics)
    for name in ("config.json", "split.json", "metrics.json", "predictions.npz", "best.weights.h5",
                 "model.json", "vocab.txt", "preprocessor.json"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert not os.path.exists(os.path.join(run_dir, "checkpoints"))
    split = json.load(open(os.path.join(run_dir, "split.json")))["newsemp"]
    assert not set(split["train"]) & set(split["test"]) and not set(split["dev"]) & set(split["test"])
    recorded = _record(run_dir)
    # The recorded identity holds what `auto` resolved to here, and the code version.
    assert recorded["identity"]["numerics"]["precision"] in ("float32", "mixed_bfloat16")
    assert recorded["identity"]["code_version"] == runs.code_version()
    assert recorded["identity"]["bert"]["dropout_impl"] in ("hash", "keras")
    # A finished cell is reused, not retrained.
    stamp = os.path.getmtime(os.path.join(run_dir, "metrics.json"))
    assert runs.run_cell(config, ctx) == metrics
    assert os.path.getmtime(os.path.join(run_dir, "metrics.json")) == stamp
    # Another config in the same folder is refused, naming the difference; --overwrite keeps
    # the old run aside.
    changed = config.replace(learning_rate=1e-4)
    with pytest.raises(ConfigError, match=r"trainer.learning_rate: 5e-05 -> 0.0001"):
        runs.run_cell(changed, ctx)
    runs.run_cell(changed, runs.RunContext(ctx.data_dir, ctx.output_dir, ctx.tfds_dir,
                                           overwrite=True))
    aside = [d for d in os.listdir(os.path.dirname(run_dir)) if ".replaced-" in d]
    assert len(aside) == 1
    assert os.path.exists(os.path.join(os.path.dirname(run_dir), aside[0], "metrics.json"))


def _tamper(run_dir, **changes):
    recorded = _record(run_dir)
    for key, value in changes.items():
        node = recorded["identity"]
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(recorded, f)


@pytest.fixture(scope="module")
def finished_bert(synthetic_data_dir, tfds_dir, tmp_path_factory):
    """A finished smoke bert cell, trained once; tests work on copies of its output folder."""
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path_factory.mktemp("finished")), tfds_dir)
    config = smoke("bert")
    return ctx, config, runs.run_cell(config, ctx)


def _copy(finished, tmp_path):
    ctx, config, metrics = finished
    out = str(tmp_path / "copy")
    shutil.copytree(ctx.output_dir, out)
    return runs.RunContext(ctx.data_dir, out, ctx.tfds_dir), config, metrics


@pytest.mark.parametrize("key,value", [("code_version", "0.0.1+000000000000"),
                                       ("numerics.precision", "mixed_float16"),
                                       ("numerics.xla", "full"),
                                       ("bert.gelu_impl", "other")])
def test_cells_from_other_code_or_numerics_are_refused_unless_allowed(finished_bert, tmp_path,
                                                                      key, value):
    ctx, config, metrics = _copy(finished_bert, tmp_path)
    _tamper(runs.run_dir_for(config, ctx), **{key: value})
    with pytest.raises(ConfigError, match=re.escape(f"{key}: '{value}'") + ".*--allow_stale"):
        runs.run_cell(config, ctx)
    stale_ok = runs.RunContext(ctx.data_dir, ctx.output_dir, ctx.tfds_dir, allow_stale=True)
    assert runs.run_cell(config, stale_ok) == metrics


def test_other_data_or_an_old_format_is_refused(finished_bert, tmp_path):
    ctx, config, _ = _copy(finished_bert, tmp_path)
    run_dir = runs.run_dir_for(config, ctx)
    # A changed data file changes the data fingerprint: refused even with --allow_stale.
    changed = str(tmp_path / "changed")
    shutil.copytree(ctx.data_dir, changed)
    with open(os.path.join(changed, "newsemp", "messages.csv"), "a") as f:
        f.write('"x9","R9","1","5.0","3.0","1","0","one more sorry heartbreaking essay"\n')
    other = runs.RunContext(changed, ctx.output_dir, ctx.tfds_dir, allow_stale=True)
    with pytest.raises(ConfigError, match="data_files.newsemp"):
        runs.run_cell(config, other)
    # A folder written by the flat-config version of the suite names what to do.
    recorded = _record(run_dir)
    del recorded["identity"]
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(recorded, f)
    with pytest.raises(ConfigError, match="older empathy_tf"):
        runs.run_cell(config, ctx)


def test_same_seed_same_split_and_metrics(finished_bert, tmp_path):
    ctx, config, first = finished_bert
    other = runs.RunContext(ctx.data_dir, str(tmp_path / "again"), ctx.tfds_dir)
    second = runs.run_cell(config, other)
    assert first["test"] == second["test"] and first["history"] == second["history"]
    assert (json.load(open(os.path.join(runs.run_dir_for(config, ctx), "split.json"))) ==
            json.load(open(os.path.join(runs.run_dir_for(config, other), "split.json"))))


@pytest.mark.parametrize("name", ["mt_sst_emonet", "cnn", "tfidf_lr", "all_positive"])
def test_other_methods_run(ctx, name):
    metrics = runs.run_cell(smoke(name), ctx)
    _check_metrics(metrics)
    if name == "mt_sst_emonet":
        # The auxiliary tasks' test sets are predicted only with --eval_aux (next test).
        assert set(metrics["tasks"]) == {"newsemp"}
        assert metrics["train"]["batching"] == "packed"
    if name == "all_positive":
        assert metrics["test"]["recall"] == 1.0


@pytest.mark.parametrize("emotion", ["semeval2018_ec", "goemotions"])
def test_multi_label_emotion_slot(ctx, emotion):
    metrics = runs.run_cell(smoke("mt_emonet", emotion_dataset=emotion, eval_aux=True), ctx)
    assert set(metrics["tasks"]) == {"newsemp", emotion}
    assert "micro_f1" in metrics["tasks"][emotion]["test"]
    assert "micro_f1" in metrics["tasks"][emotion]["dev"]


def test_a_non_emotion_task_cannot_fill_the_emotion_slot(ctx):
    with pytest.raises(ConfigError, match="not an emotion task"):
        runs.run_cell(smoke("mt_emonet", emotion_dataset="sst2"), ctx)


def test_kfold_cells_test_every_example_once(ctx):
    from empathy_tf.data import splits
    config = registry.get_config("tfidf_lr").replace(protocol="kfold:3")   # no smoke caps
    tested = []
    for seed, fold in splits.cells("kfold:3", [0]):
        cell = config.replace(seed=seed, fold=fold)
        runs.run_cell(cell, ctx)
        run_dir = runs.run_dir_for(cell, ctx)
        # NewsEmp's splits keep writers together by default (a suffix); by example, the folder
        # names are those of cells made before grouping existed.
        assert run_dir.endswith(os.path.join("tfidf_lr", "newsemp", "kfold3-seed0-by_response_id",
                                             f"fold{fold}"))
        assert runs.run_dir_for(cell.replace(group_by="none"), ctx).endswith(
            os.path.join("tfidf_lr", "newsemp", "kfold3-seed0", f"fold{fold}"))
        tested += json.load(open(os.path.join(run_dir, "split.json")))["newsemp"]["test"]
    assert len(tested) == len(set(tested)) == 120
    # repeated_kfold:R:K cells are the kfold:K cells of seeds 0..R-1: the same folders, reused.
    repeated = config.replace(protocol="repeated_kfold:2:3", fold=1)
    assert runs.run_dir_for(repeated, ctx) == runs.run_dir_for(config.replace(fold=1), ctx)
    assert runs.identity(repeated.resolved(), ctx) == runs.identity(
        config.replace(fold=1).resolved(), ctx)


def test_kd_shares_teachers_with_the_bert_cell_and_across_seeds(ctx, tmp_path):
    config = smoke("kd_sst")
    metrics = runs.run_cell(config, ctx)
    _check_metrics(metrics)
    teachers = metrics["teachers"]
    assert set(teachers) == {"newsemp", "sst2"} and all(t["trained_now"] for t in teachers.values())
    # The target's teacher is the bert row's cell of the same seed: that row reuses it.
    bert_dir = runs.run_dir_for(smoke("bert"), ctx)
    assert teachers["newsemp"]["run_dir"] == bert_dir
    stamp = os.path.getmtime(os.path.join(bert_dir, "metrics.json"))
    runs.run_cell(smoke("bert"), ctx)
    assert os.path.getmtime(os.path.join(bert_dir, "metrics.json")) == stamp
    # Another student seed: the SST-2 teacher (same data) is shared, the target's is new.
    other = runs.run_cell(config.replace(seed=1), ctx)
    assert not other["teachers"]["sst2"]["trained_now"]
    assert other["teachers"]["sst2"]["run_dir"] == teachers["sst2"]["run_dir"]
    assert other["teachers"]["newsemp"]["trained_now"]
    # A changed SST-2 training file means a new SST-2 teacher, in a folder of its own.
    changed = str(tmp_path / "changed")
    shutil.copytree(ctx.data_dir, changed)
    with open(os.path.join(changed, "sst2", "glue", "train.tsv"), "a") as f:
        f.write("an extra wonderful sentence \t1\n")
    again = runs.run_cell(config, runs.RunContext(changed, ctx.output_dir, ctx.tfds_dir,
                                                  overwrite=True))
    assert again["teachers"]["sst2"]["trained_now"]
    assert again["teachers"]["sst2"]["run_dir"] != teachers["sst2"]["run_dir"]
    assert not again["teachers"]["newsemp"]["trained_now"]   # --overwrite redoes the student only
    # A bert cell with other settings keeps its folder: the target's teacher goes to its own.
    runs.run_cell(smoke("bert", seed=2, learning_rate=1e-4), ctx)
    moved = runs.run_cell(config.replace(seed=2), ctx)
    assert os.path.join("teachers", "newsemp-smoke") in moved["teachers"]["newsemp"]["run_dir"]


def test_teacher_cache_for_other_examples_is_refused(tmp_path):
    from empathy_tf.errors import CacheMismatchError
    from empathy_tf.methods.distill import teachers
    path = str(tmp_path / "train_predictions.npz")
    np.savez(path, ids=np.array(["a", "b"]), probs=np.zeros([2, 2], np.float32),
             identity=np.asarray("fp"))
    assert teachers.load_cached(path, ["a", "b"], "fp").shape == (2, 2)
    with pytest.raises(CacheMismatchError, match="ids do not match"):
        teachers.load_cached(path, ["a", "c"], "fp")
    with pytest.raises(CacheMismatchError, match="identity fp, not other"):
        teachers.load_cached(path, ["a", "b"], "other")
