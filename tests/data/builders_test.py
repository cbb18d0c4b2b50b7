"""Tests of the TFDS builders and `load_dataset` on tiny synthetic files.

Preparing a dataset costs about a second, so these tests prepare only five tiny datasets.
"""

import os

import numpy as np
import pytest

from empathy_tf.data import builders, readers
from empathy_tf.errors import ConfigError, DataError
from tests.data.readers_test import (NEWSEMP_HEADER, SEMEVAL_HEADER, newsemp_row, semeval_row,
                                     write, write_newsemp, write_sst2)


def assert_same(a, b):
    assert a.ids == b.ids
    assert a.texts == b.texts
    assert a.labels.dtype == b.labels.dtype == np.int64
    np.testing.assert_array_equal(a.labels, b.labels)
    assert sorted(a.extras) == sorted(b.extras)
    for k in a.extras:
        assert a.extras[k].dtype == b.extras[k].dtype, k
        np.testing.assert_array_equal(a.extras[k], b.extras[k])


def config_dirs(tfds_dir, builder_name):
    root = os.path.join(tfds_dir, builder_name)
    return sorted(d for d in os.listdir(root) if d.startswith("src-")) if os.path.isdir(root) else []


def test_newsemp_roundtrip_reuse_and_rebuild_on_change(tmp_path, monkeypatch):
    data, tfds_dir = str(tmp_path / "data"), str(tmp_path / "tfds")
    # Ids out of order and floats that float32 would round: the prepared copy must keep both.
    write_newsemp(data, newsemp_row("z9", "last id first", empathy="5.667"),
                  newsemp_row("a1", "multi\nline essay", empathy_bin="0", empathy="1.1"),
                  newsemp_row("m5", "third", distress="6.875", distress_bin="1"))
    spec, splits = builders.load_dataset("newsemp", data, tfds_dir)
    assert spec is readers.DATASETS["newsemp"] and list(splits) == ["all"]
    assert_same(splits["all"], readers.read_split("newsemp", data, "all"))
    assert splits["all"].extras["empathy"].tolist() == [5.667, 1.1, 4.5]
    (first,) = config_dirs(tfds_dir, "empathy_tf_newsemp")
    assert first.startswith("src-") and len(first) == len("src-") + 12

    # Unchanged file: the prepared copy is reused, so the reader is never called.
    def fail(*args, **kwargs):
        raise AssertionError("the source file was read again")
    monkeypatch.setattr(builders.readers, "read_split", fail)
    _, again = builders.load_dataset("newsemp", data, tfds_dir)
    assert_same(again["all"], splits["all"])
    monkeypatch.undo()

    # Changed file: a fresh copy with the new content, next to the old one.
    write_newsemp(data, newsemp_row("z9", "edited text"), newsemp_row("b2", "new row"))
    _, changed = builders.load_dataset("newsemp", data, tfds_dir)
    assert changed["all"].ids == ["z9", "b2"] and changed["all"].texts == ["edited text", "new row"]
    assert len(config_dirs(tfds_dir, "empathy_tf_newsemp")) == 2


def test_sst2_three_splits_in_file_order(tmp_path):
    data, tfds_dir = str(tmp_path / "data"), str(tmp_path / "tfds")
    write_sst2(data, "".join(f"{i % 2} sentence {i} .\n" for i in range(30)))
    spec, splits = builders.load_dataset("sst2", data, tfds_dir)
    assert list(splits) == ["train", "validation", "test"]
    for split in spec.splits:
        assert_same(splits[split], readers.read_split("sst2", data, split))
    assert splits["test"].ids == [f"test-{i + 1}" for i in range(30)]


def test_semeval_multi_label(tmp_path):
    data, tfds_dir = str(tmp_path / "data"), str(tmp_path / "tfds")
    for split, fname in (("train", "train"), ("validation", "dev"), ("test", "test-gold")):
        write(data, f"semeval2018_ec/2018-E-c-En-{fname}.txt", SEMEVAL_HEADER
              + semeval_row(f"{split}-1", "@a so happy", on=("joy", "optimism"))
              + semeval_row(f"{split}-2", "meh"))
    spec, splits = builders.load_dataset("semeval2018_ec", data, tfds_dir)
    assert spec.multi_label
    for split in spec.splits:
        assert_same(splits[split], readers.read_split("semeval2018_ec", data, split))
    assert splits["train"].labels.shape == (2, 8)
    assert splits["train"].extras["all_emotions"].shape == (2, 11)
    assert splits["train"].texts[0] == "<USER> so happy"


def test_user_csv_relative_path_and_default_tfds_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "env_tfds"))
    write(tmp_path, "mine/posts.tsv", "tweet\temotion\nfine day\tpos\n\"two\nlines\"\tneg\nugh\tneg\n")
    spec, splits = builders.load_dataset("csv:mine/posts.tsv", "/ignored", text_column="tweet",
                                         label_column="emotion")
    assert spec.name == "csv:" + str(tmp_path / "mine" / "posts.tsv")
    assert spec.label_names == ("neg", "pos") and spec.splits == ("all",)
    ex = splits["all"]
    assert ex.ids == ["line-2", "line-3", "line-5"]
    assert ex.texts == ["fine day", "two\nlines", "ugh"] and ex.labels.tolist() == [1, 0, 0]
    assert config_dirs(str(tmp_path / "env_tfds"), "empathy_tf_csv")


def test_data_error_from_generation_reaches_caller(tmp_path):
    data, tfds_dir = str(tmp_path / "data"), str(tmp_path / "tfds")
    write(data, "carer_emotion/train.txt", "i am fine;joy\n")
    write(data, "carer_emotion/val.txt", "ok;joy\n")
    write(data, "carer_emotion/test.txt", "ok;joy\nbad one;boredom\n")
    with pytest.raises(DataError, match=r"test.txt, line 2: field 'label_name' has value 'boredom'"):
        builders.load_dataset("carer", data, tfds_dir)
    # Nothing half-prepared is left behind (TFDS writes to an incomplete.* folder first).
    root = os.path.join(tfds_dir, "empathy_tf_carer")
    assert not [f for _, dirs, files in os.walk(root) for f in dirs + files if "src-" not in f]


def test_missing_file_fails_before_tfds(tmp_path):
    data, tfds_dir = str(tmp_path / "data"), str(tmp_path / "tfds")
    write(data, "semeval2018_ec/2018-E-c-En-train.txt", SEMEVAL_HEADER + semeval_row("a", "x"))
    with pytest.raises(DataError) as e:
        builders.load_dataset("semeval2018_ec", data, tfds_dir)
    assert os.path.join(data, "semeval2018_ec", "2018-E-c-En-dev.txt") in str(e.value)
    assert "SemEval-2018 Task 1" in str(e.value)
    assert not os.path.exists(tfds_dir)
    with pytest.raises(DataError, match="nope.csv: file not found"):
        builders.load_dataset(f"csv:{tmp_path}/nope.csv", data, tfds_dir)
    assert not os.path.exists(tfds_dir)


def test_unknown_names_and_options(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown dataset 'news'.*'newsemp'.*csv:PATH"):
        builders.load_dataset("news", str(tmp_path), str(tmp_path / "tfds"))
    with pytest.raises(ConfigError, match="only apply to csv:PATH"):
        builders.load_dataset("newsemp", str(tmp_path), str(tmp_path / "tfds"), text_column="t")
    assert "newsemp" in builders.describe() and "csv:PATH" in builders.describe()
    assert set(builders.BUILDERS) == set(readers.DATASETS) | {"csv"}
    for cls in builders.BUILDERS.values():
        assert cls.MANUAL_DOWNLOAD_INSTRUCTIONS and str(cls.VERSION) == "1.0.0"
