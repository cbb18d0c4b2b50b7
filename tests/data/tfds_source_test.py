"""`tfds_source.load` on tiny synthetic files: round trips, reuse, rebuilds and errors.

Preparing a source costs about half a second, so only a few tests go through TFDS.
"""

import os

import numpy as np
import pytest

from empathy_tf.data import sources, tfds_source
from empathy_tf.data.sources import user_csv
from empathy_tf.errors import ConfigError, DataError
from tests.data.files import (SEMEVAL_HEADER, goemotions_row, newsemp_row, semeval_row, write,
                              write_goemotions, write_newsemp, write_sst2)


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
    if not os.path.isdir(root):
        return []
    return sorted(d for d in os.listdir(root) if d.startswith("src-"))


def dirs(tmp_path):
    return str(tmp_path / "data"), str(tmp_path / "tfds")


def test_newsemp_roundtrip_reuse_and_rebuild_on_change(tmp_path, monkeypatch):
    data, tfds_dir = dirs(tmp_path)
    source = sources.get_source("newsemp")
    # Ids out of order and floats that float32 would round: the prepared copy must keep both.
    write_newsemp(data, newsemp_row("z9", "last id first", empathy="5.667"),
                  newsemp_row("a1", "multi\nline essay", empathy_bin="0", empathy="1.1"),
                  newsemp_row("m5", "third", distress="6.875", distress_bin="1"))
    splits = tfds_source.load(source, data, tfds_dir)
    assert list(splits) == ["all"]
    assert_same(splits["all"], source.read_split(data, "all"))
    assert splits["all"].extras["empathy"].tolist() == [5.667, 1.1, 4.5]
    (first,) = config_dirs(tfds_dir, "empathy_tf_newsemp")
    assert first.startswith("src-") and len(first) == len("src-") + 12

    # Unchanged file: the prepared copy is reused, so the reader is never called.
    def fail(*args, **kwargs):
        raise AssertionError("the source file was read again")
    monkeypatch.setattr(source, "read_split", fail)
    assert_same(tfds_source.load(source, data, tfds_dir)["all"], splits["all"])
    monkeypatch.undo()

    # Changed file: a fresh copy with the new content, next to the old one.
    write_newsemp(data, newsemp_row("z9", "edited text"), newsemp_row("b2", "new row"))
    changed = tfds_source.load(source, data, tfds_dir)["all"]
    assert changed.ids == ["z9", "b2"] and changed.texts == ["edited text", "new row"]
    assert len(config_dirs(tfds_dir, "empathy_tf_newsemp")) == 2


def test_sst2_three_splits_in_file_order(tmp_path):
    data, tfds_dir = dirs(tmp_path)
    source = sources.get_source("sst2")
    write_sst2(data, "".join(f"{i % 2} sentence {i} .\n" for i in range(30)))
    splits = tfds_source.load(source, data, tfds_dir)
    assert list(splits) == ["train", "validation", "test"]
    for split in source.splits:
        assert_same(splits[split], source.read_split(data, split))
    assert splits["test"].ids == [f"test-{i + 1}" for i in range(30)]


def test_multi_label_sources_semeval_and_goemotions(tmp_path):
    data, tfds_dir = dirs(tmp_path)
    for split, fname in (("train", "train"), ("validation", "dev"), ("test", "test-gold")):
        write(data, f"semeval2018_ec/2018-E-c-En-{fname}.txt", SEMEVAL_HEADER
              + semeval_row(f"{split}-1", "@a so happy", on=("joy", "optimism"))
              + semeval_row(f"{split}-2", "meh"))
    semeval = sources.get_source("semeval2018_ec")
    splits = tfds_source.load(semeval, data, tfds_dir)
    for split in semeval.splits:
        assert_same(splits[split], semeval.read_split(data, split))
    assert splits["train"].labels.shape == (2, 8)
    assert splits["train"].extras["all_emotions"].shape == (2, 11)
    assert splits["train"].texts[0] == "<USER> so happy"

    write_goemotions(data, train=goemotions_row("so [NAME] happy", "17,20", "c1")
                     + goemotions_row("ok", "27", "c2"),
                     dev=goemotions_row("hm", "6", "d1"), test=goemotions_row("ha", "1", "t1"))
    goemotions = sources.get_source("goemotions")
    splits = tfds_source.load(goemotions, data, tfds_dir)
    for split in goemotions.splits:
        assert_same(splits[split], goemotions.read_split(data, split))
    assert splits["train"].labels.shape == (2, 28)
    assert np.flatnonzero(splits["train"].labels[0]).tolist() == [17, 20]
    # Comment ids repeated across files are refused after preparation.
    write_goemotions(data, train=goemotions_row("a", "1", "x1"), dev=goemotions_row("b", "2", "x2"),
                     test=goemotions_row("c", "3", "x1"))
    with pytest.raises(DataError, match=r"duplicate example id 'x1' in split 'train'.*'test'"):
        tfds_source.load(goemotions, data, tfds_dir)


def test_user_csv_relative_path_default_tfds_dir_and_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "env_tfds"))
    write(tmp_path, "mine/posts.tsv",
          "tweet\temotion\nfine day\tpos\n\"two\nlines\"\tneg\nugh\tneg\n")
    source = user_csv.source_for("csv:mine/posts.tsv", text_column="tweet",
                                 label_column="emotion")
    ex = tfds_source.load(source, "/ignored")["all"]
    assert ex.ids == ["line-2", "line-3", "line-5"]
    assert ex.texts == ["fine day", "two\nlines", "ugh"] and ex.labels.tolist() == [1, 0, 0]
    assert len(config_dirs(str(tmp_path / "env_tfds"), "empathy_tf_csv")) == 1
    # Other csv options are another identity: a separate prepared copy.
    write(tmp_path, "mine/posts.tsv", "tweet\temotion\tk\nfine day\tpos\ta\nugh\tneg\tb\n")
    keyed = user_csv.source_for("csv:mine/posts.tsv", text_column="tweet",
                                label_column="emotion", id_column="k")
    assert tfds_source.load(keyed, "/ignored")["all"].ids == ["a", "b"]
    assert len(config_dirs(str(tmp_path / "env_tfds"), "empathy_tf_csv")) == 2


def test_data_error_from_generation_reaches_caller(tmp_path):
    data, tfds_dir = dirs(tmp_path)
    write(data, "carer_emotion/train.txt", "i am fine;joy\n")
    write(data, "carer_emotion/val.txt", "ok;joy\n")
    write(data, "carer_emotion/test.txt", "ok;joy\nbad one;boredom\n")
    with pytest.raises(DataError,
                       match=r"test.txt, line 2: field 'label_name' has value 'boredom'"):
        tfds_source.load(sources.get_source("carer"), data, tfds_dir)
    # Nothing half-prepared is left behind (TFDS writes to an incomplete.* folder first).
    root = os.path.join(tfds_dir, "empathy_tf_carer")
    assert not [f for _, ds, fs in os.walk(root) for f in ds + fs if "src-" not in f]


def test_missing_file_fails_before_tfds(tmp_path):
    data, tfds_dir = dirs(tmp_path)
    write(data, "semeval2018_ec/2018-E-c-En-train.txt", SEMEVAL_HEADER + semeval_row("a", "x"))
    with pytest.raises(DataError) as e:
        tfds_source.load(sources.get_source("semeval2018_ec"), data, tfds_dir)
    assert os.path.join(data, "semeval2018_ec", "2018-E-c-En-dev.txt") in str(e.value)
    assert "SemEval-2018 Task 1" in str(e.value)
    assert not os.path.exists(tfds_dir)
    with pytest.raises(DataError, match="nope.csv: file not found"):
        tfds_source.load(user_csv.source_for(f"csv:{tmp_path}/nope.csv"), data, tfds_dir)
    assert not os.path.exists(tfds_dir)


def test_builder_classes_and_bad_argument():
    with pytest.raises(ConfigError, match="expected a Source"):
        tfds_source.load("newsemp", "/tmp")
    for source in sources.SOURCES.values():
        cls = tfds_source.builder_class(source.name, source.how_to_obtain)
        assert cls is tfds_source.builder_class(source.name, source.how_to_obtain)
        assert cls.name == f"empathy_tf_{source.name}" and str(cls.VERSION) == "1.0.0"
        assert cls.MANUAL_DOWNLOAD_INSTRUCTIONS
