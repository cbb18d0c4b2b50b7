"""Readers of SST-2, CARER, SemEval E-c, EmoNet and GoEmotions, and the source registry."""

import os

import numpy as np
import pytest

from empathy_tf.data import sources, tasks
from empathy_tf.data.sources import base, carer, goemotions, semeval2018_ec
from empathy_tf.data.sources.base import RawExamples
from empathy_tf.errors import ConfigError, DataError
from tests.data.files import (SEMEVAL_HEADER, goemotions_row, semeval_row, write,
                              write_goemotions, write_sst2)


def read(name, root, split):
    """One split through the source's reader (the other splits' files need not exist)."""
    source = sources.get_source(name)
    (path,) = source.split_paths(str(root), split)
    return source.read(path, split)


# ---------------------------------------------------------------------------------- registry


def test_registry_sources_and_their_declarations():
    assert set(sources.SOURCES) == {"newsemp", "twittemp", "sst2", "carer", "semeval2018_ec",
                                    "goemotions", "emonet"}
    for name, source in sources.SOURCES.items():
        assert source.name == name and sources.get_source(name) is source
        assert source.how_to_obtain and source.files and source.tasks, name
        assert source.splits in (("all",), ("train", "validation", "test")), name
        assert source.official_split == (source.splits != ("all",))
        assert name in source.card() and source.how_to_obtain in source.card()
        assert source.identity() == {"name": name, "labels": list(source.label_names)}
        for task in source.tasks:
            assert task.source == name and task.role in tasks.ROLES
            assert task.multi_label == source.multi_label
            if task.label_map is None:
                assert task.label_names == source.label_names
            else:
                assert len(task.label_map) == len(source.label_names)
                assert set(task.label_map) == set(range(task.num_classes))
            if task.positive_class is not None:
                assert task.num_classes == 2 and not task.multi_label
    tweets = {n for n, s in sources.SOURCES.items() if s.tweets}
    assert tweets == {"twittemp", "semeval2018_ec", "emonet"}


def test_unknown_source_and_split(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown source 'news'.*newsemp.*csv:PATH"):
        sources.get_source("news")
    write_sst2(tmp_path)
    with pytest.raises(ConfigError, match=r"no split 'dev'.*'validation'"):
        sources.get_source("sst2").read_split(str(tmp_path), "dev")


def test_check_unique_ids_across_splits():
    source = sources.get_source("semeval2018_ec")
    mk = lambda ids: RawExamples(ids=ids, texts=ids, labels=np.zeros((len(ids), 8), np.int64))
    base.check_unique_ids(source, {"train": mk(["a"]), "test": mk(["b"])})
    with pytest.raises(DataError, match=r"'a' in split 'train' .*train.txt.* and split 'test'"):
        base.check_unique_ids(source, {"train": mk(["a"]), "test": mk(["b", "a"])})


# ---------------------------------------------------------------------------------- sst2


def test_sst2_splits(tmp_path):
    write_sst2(tmp_path)
    train = read("sst2", tmp_path, "train")
    assert train.ids == ["train-2", "train-3"]
    assert train.texts == ["hide new secretions", "loves it"] and train.labels.tolist() == [0, 1]
    dev = read("sst2", tmp_path, "validation")
    assert dev.ids == ["validation-2"] and dev.labels.tolist() == [1]
    test = read("sst2", tmp_path, "test")
    assert test.ids == ["test-1", "test-2"] and test.texts == ["bad film .", "good film ."]
    task = tasks.get_task("sst2")
    assert task.positive_class == 1 and task.role == "sentiment"
    assert task.label_names == ("negative", "positive")


def test_sst2_malformed_lines(tmp_path):
    write_sst2(tmp_path, "0 ok\n\n1\n")
    with pytest.raises(DataError,
                       match=r"stsa.binary.test, line 3: .*expected '<label> <sentence>'"):
        read("sst2", tmp_path, "test")
    write(tmp_path, "sst2/glue/train.tsv", "sentence\tlabel\nfine\t1\nbad\t2\n")
    with pytest.raises(DataError, match=r"train.tsv, line 3: field 'label' has value '2'"):
        read("sst2", tmp_path, "train")
    write(tmp_path, "sst2/glue/train.tsv", "sentence\tlabel\nfine\t1\ttoo many\n")
    with pytest.raises(DataError, match=r"train.tsv, line 2: row has 3 fields; expected 2"):
        read("sst2", tmp_path, "train")
    write(tmp_path, "sst2/glue/train.tsv", "sentence\tlabel\n")
    with pytest.raises(DataError, match=r"only a header"):
        read("sst2", tmp_path, "train")


# ---------------------------------------------------------------------------------- carer


@pytest.mark.parametrize("header", ["text;label_name\n", "text;label\n", ""])
def test_carer_with_and_without_header(tmp_path, header):
    write(tmp_path, "carer_emotion/train.txt", header + "i feel; odd;surprise\ni am glad;joy\n")
    ex = read("carer", tmp_path, "train")
    assert ex.texts == ["i feel; odd", "i am glad"]  # split on the last ';'
    assert [carer.LABELS[i] for i in ex.labels] == ["surprise", "joy"]
    offset = 1 if header else 0
    assert ex.ids == [f"train-{1 + offset}", f"train-{2 + offset}"]


def test_carer_bad_label_and_missing_separator(tmp_path):
    write(tmp_path, "carer_emotion/val.txt", "text;label_name\nok;joy\nhmm;disgust\n")
    with pytest.raises(DataError, match=r"val.txt, line 3: field 'label_name' has value "
                       r"'disgust'; expected one of \['sadness', 'joy', 'love', 'anger', 'fear', "
                       r"'surprise'\]"):
        read("carer", tmp_path, "validation")
    write(tmp_path, "carer_emotion/val.txt", "ok;joy\nno separator here\n")
    with pytest.raises(DataError, match=r"line 2: no semicolon separator"):
        read("carer", tmp_path, "validation")


# ---------------------------------------------------------------------------------- semeval


def test_semeval_plutchik_vector_and_all_emotions(tmp_path):
    write(tmp_path, "semeval2018_ec/2018-E-c-En-dev.txt", SEMEVAL_HEADER
          + semeval_row("2018-En-1", '"quoted start @joe http://x.y', on=("trust", "love", "anger"))
          + semeval_row("2018-En-2", "neutral"))
    ex = read("semeval2018_ec", tmp_path, "validation")
    assert ex.ids == ["2018-En-1", "2018-En-2"]
    assert ex.texts == ['"quoted start <USER> <URL>', "neutral"]
    assert ex.labels.shape == (2, 8) and ex.labels.dtype == np.int64
    assert ex.labels[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 1]  # anger ... trust
    assert ex.extras["all_emotions"].shape == (2, 11)
    assert ex.extras["all_emotions"].dtype == np.int64
    assert ex.extras["all_emotions"][0].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    task = tasks.get_task("semeval2018_ec")
    assert task.multi_label and task.role == "emotion" and task.positive_class is None
    assert task.label_names == semeval2018_ec.PLUTCHIK8


def test_semeval_bad_value_and_empty_id(tmp_path):
    write(tmp_path, "semeval2018_ec/2018-E-c-En-train.txt",
          SEMEVAL_HEADER + semeval_row("a", "x").replace("\t0\n", "\t2\n"))
    with pytest.raises(DataError, match=r"line 2: field 'trust' has value '2'"):
        read("semeval2018_ec", tmp_path, "train")
    write(tmp_path, "semeval2018_ec/2018-E-c-En-train.txt",
          SEMEVAL_HEADER + semeval_row("a", "x") + semeval_row(" ", "y"))
    with pytest.raises(DataError, match=r"line 3: field 'ID' is empty"):
        read("semeval2018_ec", tmp_path, "train")


# ---------------------------------------------------------------------------------- emonet


@pytest.mark.parametrize("header", ["text\tlabel\n", "Text\tLabel\n", ""])
def test_emonet_optional_header_and_case(tmp_path, header):
    write(tmp_path, "emonet/emonet.tsv", header + "so scared @x\tFear\nyay\tjoy\n")
    ex = read("emonet", tmp_path, "all")
    assert ex.texts == ["so scared <USER>", "yay"]
    assert [semeval2018_ec.PLUTCHIK8[i] for i in ex.labels] == ["fear", "joy"]
    assert ex.ids == (["line-2", "line-3"] if header else ["line-1", "line-2"])


def test_emonet_bad_label_and_how_to_obtain(tmp_path):
    write(tmp_path, "emonet/emonet.tsv", "yay\tjoy\nhm\tlove\n")
    with pytest.raises(DataError, match=r"line 2: field 'label' has value 'love'"):
        read("emonet", tmp_path, "all")
    os.remove(os.path.join(tmp_path, "emonet", "emonet.tsv"))
    with pytest.raises(DataError, match=r"emonet.tsv: file not found.*never publicly released"):
        sources.get_source("emonet").read_split(str(tmp_path), "all")
    assert tasks.get_task("emonet").role == "emotion"


# ---------------------------------------------------------------------------------- goemotions


def test_goemotions_multi_label_ids_and_label_order(tmp_path):
    write_goemotions(tmp_path, train=(
        goemotions_row("My favourite food is anything I didn't have to cook myself.", "27",
                       "eebbqej")
        + "\n"
        + goemotions_row("WHY THE FUCK IS BAYLESS ISOING", "2", "eezlygj")
        + goemotions_row("[NAME] was nowhere near @them: http://x.y", "6,22", "ed7ypvh")
        + goemotions_row("  padded  ", "0,27", "ee84bjg").replace("\n", "\r\n")))
    ex = read("goemotions", tmp_path, "train")
    assert ex.ids == ["eebbqej", "eezlygj", "ed7ypvh", "ee84bjg"]
    # Reddit texts: not preprocessed as tweets.
    assert ex.texts[2] == "[NAME] was nowhere near @them: http://x.y" and ex.texts[3] == "padded"
    assert ex.labels.shape == (4, 28) and ex.labels.dtype == np.int64
    assert [np.flatnonzero(row).tolist() for row in ex.labels] == [[27], [2], [6, 22], [0, 27]]
    assert goemotions.LABELS[6] == "confusion" and goemotions.LABELS[22] == "realization"
    assert len(goemotions.LABELS) == len(set(goemotions.LABELS)) == 28
    assert goemotions.LABELS[0] == "admiration" and goemotions.LABELS[27] == "neutral"
    task = tasks.get_task("goemotions")
    assert task.multi_label and task.role == "emotion" and task.positive_class is None
    assert "goemotions" in tasks.tasks_with_role("emotion")
    assert not sources.get_source("goemotions").tweets


@pytest.mark.parametrize("line,expected", [
    ("text\t28\tid1\n", r"field 'labels' has value '28'; expected comma-separated label ids, "
                        r"integers 0..27"),
    ("text\t3,x\tid1\n", r"field 'labels' has value '3,x'.*found 'x'"),
    ("text\t3,\tid1\n", r"field 'labels' has value '3,'.*found ''"),
    ("text\t-1\tid1\n", r"field 'labels' has value '-1'"),
    ("text\t1.0\tid1\n", r"field 'labels' has value '1.0'"),
    ("text\t4,4\tid1\n", r"label id 4 appears twice"),
    ("text\t \tid1\n", r"field 'labels' is empty; expected comma-separated label ids"),
    ("text\t3\t \n", r"field 'id' is empty"),
    ("\t3\tid1\n", r"field 'text' is empty"),
    ("a\ttab\t3\tid1\n", r"row has 4 tab-separated fields; expected 3 \(text, labels, id; a text "
                         r"may not contain a tab"),
    ("no tabs at all\n", r"row has 1 tab-separated fields; expected 3"),
])
def test_goemotions_errors_name_file_line_and_field(tmp_path, line, expected):
    (path, _, _) = write_goemotions(tmp_path, train=goemotions_row("fine", "1", "ok1") + line)
    with pytest.raises(DataError, match=expected) as e:
        read("goemotions", tmp_path, "train")
    assert str(e.value).startswith(f"{path}, line 2: ")


def test_goemotions_duplicate_ids(tmp_path):
    write_goemotions(tmp_path, dev=goemotions_row("a", "1", "c1") + goemotions_row("b", "2", "c1"))
    with pytest.raises(DataError, match=r"dev.tsv: duplicate example id 'c1' on line 1 and line 2"):
        read("goemotions", tmp_path, "validation")
    # Comment ids must also be unique across the three files (checked when all are loaded).
    write_goemotions(tmp_path, train=goemotions_row("a", "1", "x1"),
                     test=goemotions_row("b", "1", "x1"))
    source = sources.get_source("goemotions")
    splits = {s: read("goemotions", tmp_path, s) for s in ("train", "test")}
    with pytest.raises(DataError, match=r"duplicate example id 'x1' in split 'train' "
                       r"\(goemotions/train.tsv\) and split 'test'"):
        base.check_unique_ids(source, splits)


def test_goemotions_missing_file_says_where_to_get_it(tmp_path):
    write_goemotions(tmp_path)
    os.remove(os.path.join(tmp_path, "goemotions", "dev.tsv"))
    with pytest.raises(DataError) as e:
        sources.get_source("goemotions").read_split(str(tmp_path), "train")
    assert os.path.join(str(tmp_path), "goemotions", "dev.tsv") in str(e.value)
    assert "google-research/google-research/tree/master/goemotions/data" in str(e.value)


def test_conftest_goemotions_writer(tmp_path):
    from tests.conftest import write_goemotions as conftest_writer
    conftest_writer(str(tmp_path))
    source = sources.get_source("goemotions")
    splits = {s: source.read_split(str(tmp_path), s) for s in source.splits}
    base.check_unique_ids(source, splits)
    assert [len(splits[s]) for s in source.splits] == [84, 28, 28]
    assert splits["train"].labels.sum(axis=0).min() >= 1  # every label occurs
