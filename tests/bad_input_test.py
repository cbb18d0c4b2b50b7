"""Bad input at the experiment level: a clear error, and earlier results are left untouched."""

import dataclasses
import hashlib
import os
import shutil

import numpy as np
import pytest

from empathy_tf import runner
from empathy_tf.errors import CacheMismatchError, ConfigError, DataError
from experiments import registry


def _digest(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            if name == ".lock":
                continue
            with open(os.path.join(root, name), "rb") as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


@pytest.fixture
def finished(synthetic_data_dir, tfds_dir, tmp_path):
    ctx = runner.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)
    config = runner.smoke_config(registry.get_config("bert"))
    runner.run_experiment(config, ctx)
    return ctx, config


def _data_copy(src, tmp_path, name="bad"):
    dst = str(tmp_path / name)
    shutil.copytree(src, dst)
    return dst


def test_bad_inputs_get_clear_errors_and_lose_nothing(finished, synthetic_data_dir, tmp_path):
    ctx, config = finished
    earlier = runner.run_dir_for(config, ctx)
    before = _digest(earlier)

    with pytest.raises(ConfigError, match="unknown dataset 'newsemp2'.*newsemp"):
        runner.run_experiment(dataclasses.replace(config, dataset="newsemp2"), ctx)
    with pytest.raises(ConfigError, match="unknown experiment"):
        registry.get_config("bret")

    bad = _data_copy(synthetic_data_dir, tmp_path)
    path = os.path.join(bad, "newsemp", "messages.csv")
    with open(path, "a") as f:
        f.write('"X1","R","1","5.0","3.0","2","0","an essay with label two"\n')
    # Even with --overwrite, the earlier run is only moved aside once the new input is valid.
    with pytest.raises(DataError, match=r"messages\.csv.*line 122.*empathy_bin"):
        runner.run_experiment(config, dataclasses.replace(ctx, data_dir=bad, overwrite=True))

    glove = tmp_path / "vectors.txt"
    glove.write_text("the 0.1 0.2 0.3\nof 0.1 0.2\n")
    with pytest.raises(DataError, match=r"vectors\.txt.*line 2"):
        runner.run_experiment(runner.smoke_config(dataclasses.replace(
            registry.get_config("cnn"), glove_path=str(glove))), ctx)

    assert _digest(earlier) == before
    # The failed cnn cell left no metrics that could pass for a finished result.
    failed = runner.run_dir_for(runner.smoke_config(registry.get_config("cnn")), ctx)
    assert not os.path.exists(os.path.join(failed, "metrics.json"))


def test_very_long_text_is_truncated_not_a_crash(synthetic_data_dir, tfds_dir, tmp_path):
    data = _data_copy(synthetic_data_dir, tmp_path, "long")
    with open(os.path.join(data, "newsemp", "messages.csv"), "a") as f:
        f.write('"LONG","R","1","5.0","3.0","1","0","' + "sorry " * 20000 + '"\n')
    ctx = runner.RunContext(data, str(tmp_path / "runs"), tfds_dir)
    metrics = runner.run_experiment(runner.smoke_config(registry.get_config("bert")), ctx)
    assert 0.0 <= metrics["test"]["f1"] <= 1.0


def test_teacher_cache_from_another_dataset_is_refused(finished, tmp_path):
    from empathy_tf.distillation import teachers
    path = str(tmp_path / "predictions.npz")
    np.savez(path, ids=np.array(["sst-1", "sst-2"]), probs=np.ones([2, 2], np.float32) / 2,
             fingerprint=np.asarray("abc"))
    with pytest.raises(CacheMismatchError, match="other data or settings"):
        teachers.load_cached(path, ["R1_1_1", "R2_1_1"], "def")
