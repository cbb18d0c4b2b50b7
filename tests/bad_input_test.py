"""Bad input at the experiment level: a clear error, and earlier results are left untouched."""

import hashlib
import os
import shutil

import pytest

from empathy_tf import runs
from empathy_tf.errors import ConfigError, DataError
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


def _data_copy(src, tmp_path, name="bad"):
    dst = str(tmp_path / name)
    shutil.copytree(src, dst)
    return dst


def test_bad_inputs_get_clear_errors_and_lose_nothing(synthetic_data_dir, tfds_dir, tmp_path):
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)
    config = registry.get_config("bert").smoked()
    runs.run_cell(config, ctx)
    earlier = runs.run_dir_for(config, ctx)
    before = _digest(earlier)

    with pytest.raises(ConfigError, match="unknown dataset 'newsemp2'.*newsemp"):
        runs.run_cell(config.replace(dataset="newsemp2"), ctx)
    with pytest.raises(ConfigError, match="unknown experiment"):
        registry.get_config("bret")
    with pytest.raises(ConfigError, match="unknown config option 'epoch'"):
        config.replace(epoch=2)
    with pytest.raises(ConfigError, match="protocol='kfold:1'"):
        config.replace(protocol="kfold:1").validate()

    bad = _data_copy(synthetic_data_dir, tmp_path)
    with open(os.path.join(bad, "newsemp", "messages.csv"), "a") as f:
        f.write('"X1","R","1","5.0","3.0","2","0","an essay with label two"\n')
    # Even with --overwrite, the earlier run is only moved aside once the new input is valid.
    with pytest.raises(DataError, match=r"messages\.csv.*line 122.*empathy_bin"):
        runs.run_cell(config, runs.RunContext(bad, ctx.output_dir, ctx.tfds_dir, overwrite=True))

    glove = tmp_path / "vectors.txt"
    glove.write_text("the 0.1 0.2 0.3\nof 0.1 0.2\n")
    cnn = registry.get_config("cnn").smoked().replace(glove=str(glove))
    with pytest.raises(DataError, match=r"vectors\.txt.*line 2"):
        runs.run_cell(cnn, ctx)

    assert _digest(earlier) == before
    # The failed cnn cell left no metrics that could pass for a finished result.
    assert not os.path.exists(os.path.join(runs.run_dir_for(cnn, ctx), "metrics.json"))


def test_very_long_text_is_truncated_not_a_crash(synthetic_data_dir, tfds_dir, tmp_path):
    data = _data_copy(synthetic_data_dir, tmp_path, "long")
    with open(os.path.join(data, "newsemp", "messages.csv"), "a") as f:
        f.write('"LONG","R","1","5.0","3.0","1","0","' + "sorry " * 20000 + '"\n')
    ctx = runs.RunContext(data, str(tmp_path / "runs"), tfds_dir)
    metrics = runs.run_cell(registry.get_config("bert").smoked(), ctx)
    assert 0.0 <= metrics["test"]["f1"] <= 1.0
