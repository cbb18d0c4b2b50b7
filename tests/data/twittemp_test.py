"""TwittEmp: the reader, the repair of the released file's defects, and the three task views."""

import collections
import hashlib
import random

import numpy as np
import pytest

from empathy_tf.data import sources, tasks, tfds_source
from empathy_tf.data.sources import twittemp
from empathy_tf.data.sources.base import preprocess_tweet
from empathy_tf.errors import DataError
from tests.conftest import twittemp_permalink, write_twittemp
from tests.data import files
from tests.data.files import twittemp_csv, write

SOURCE = sources.get_source("twittemp")
LINK = "https://twitter.com/{}/status/{}"


def read(root):
    return SOURCE.read_split(str(root), "all")


@pytest.fixture
def warnings(monkeypatch):
    found = []
    monkeypatch.setattr(twittemp.logging, "warning", lambda msg, *a: found.append(msg % a))
    return found


def expected_text_id(text):
    normalized = " ".join(preprocess_tweet(text.strip()).split())
    return "tweet-" + hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------- reader


def test_well_formed_file_preprocessing_ids_and_no_warning(tmp_path, warnings):
    write(tmp_path, "twittemp/TwittEmp.csv", twittemp_csv(
        ("1", "@bob pls help\nme: https://t.co/x?a=1 www.site.org/p", "",
         LINK.format("bob", "1301234567890123456")),
        ("2", "mail me@host.com @Ann_2 HTTP://A.B", "42", LINK.format("x", "42")),
        ("0", "plain", "1287654321098765432", "")))
    ex = read(tmp_path)
    assert ex.ids == ["1301234567890123456", "42", "1287654321098765432"]
    assert ex.texts == ["<USER> pls help\nme: <URL> <URL>", "mail me@host.com <USER> <URL>",
                        "plain"]
    assert ex.labels.tolist() == [1, 2, 0]
    assert ex.extras["permalink"].tolist() == [LINK.format("bob", "1301234567890123456"),
                                               LINK.format("x", "42"), ""]
    assert SOURCE.label_names == ("none", "seeking_empathy", "providing_empathy")
    assert SOURCE.tweets and SOURCE.extras == {"permalink": ("str", ())}
    assert warnings == []


@pytest.mark.parametrize("link", [
    "https://twitter.com/a_b/status/1",
    "http://www.twitter.com/User/status/1234567890123456789/",
    "https://mobile.twitter.com/u/statuses/99",
    "https://twitter.com/i/web/status/12?s=20",
    "https://x.com/u/status/7",
])
def test_permalink_forms_accepted(tmp_path, warnings, link):
    write(tmp_path, "twittemp/TwittEmp.csv", twittemp_csv(("0", "t", "", link)))
    assert read(tmp_path).ids == [link.split("/status")[1].split("/")[1].split("?")[0]]
    assert warnings == []


@pytest.mark.parametrize("link", [
    "twitter.com/u/status/1", "https://twitter.com/u/status/1.30E+18",
    "https://twitter.com/u/status/", "https://facebook.com/u/status/1",
    "https://twitter.com/u/status/1 trailing", "https://twitter.com/u",
])
def test_malformed_permalink_names_line_and_field(tmp_path, link):
    path = write(tmp_path, "twittemp/TwittEmp.csv",
                 twittemp_csv(("0", "ok", "", ""), ("1", "multi\nline", "", ""),
                              ("2", "bad link", "", link)))
    with pytest.raises(DataError) as e:
        read(tmp_path)
    assert str(e.value).startswith(f"{path}, line 5: field 'permalink' has value ")
    assert "expected a tweet link https://twitter.com/<user>/status/<digits>" in str(e.value)


@pytest.mark.parametrize("label", ["3", "", "1.0", "seeking"])
def test_bad_label(tmp_path, label):
    write(tmp_path, "twittemp/TwittEmp.csv",
          twittemp_csv(("0", "ok", "", ""), (label, "x", "", "")))
    with pytest.raises(DataError, match=r"line 3: field 'label' has value .*; expected one of "
                       r"\['0', '1', '2'\]"):
        read(tmp_path)


def test_header_only_empty_text_and_missing_column(tmp_path):
    write(tmp_path, "twittemp/TwittEmp.csv", files.TWITTEMP_HEADER)
    with pytest.raises(DataError, match="only a header"):
        read(tmp_path)
    write(tmp_path, "twittemp/TwittEmp.csv", "")
    with pytest.raises(DataError, match="no rows"):
        read(tmp_path)
    write(tmp_path, "twittemp/TwittEmp.csv", twittemp_csv(("0", "ok", "", ""), ("1", "  ", "", "")))
    with pytest.raises(DataError, match=r"line 3: field 'content' is empty"):
        read(tmp_path)
    write(tmp_path, "twittemp/TwittEmp.csv", "label,content,id\n0,x,1\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['permalink'\]"):
        read(tmp_path)


def test_missing_file_says_how_to_obtain(tmp_path):
    with pytest.raises(DataError) as e:
        read(tmp_path)
    assert "TwittEmp.csv: file not found" in str(e.value)
    assert "github.com/Mahhos/KDempathy" in str(e.value) and "withdrawn" in str(e.value)


def test_ids_from_text_are_stable_and_counted(tmp_path, warnings):
    rows = [("0", "first  tweet @a", "", ""), ("1", "second http://t.co/1", "t42", ""),
            ("2", "third", "1.30E+18", ""), ("0", "fourth", "77", "")]
    write(tmp_path, "twittemp/TwittEmp.csv", twittemp_csv(*rows))
    ex = read(tmp_path)
    # 't42' and '1.30E+18' are no plain integers: never used; '77' is, and has no permalink.
    assert ex.ids == [expected_text_id("first  tweet @a"), expected_text_id("second http://t.co/1"),
                      expected_text_id("third"), "77"]
    assert ex.ids[0] == twittemp.text_id("first tweet @b")  # same after <USER> and spacing
    (message,) = warnings
    assert "read 4 examples from 4 rows" in message
    assert "1 row has an id in scientific notation (1 distinct value, '1.30E+18' alone 1 time:" \
        in message
    assert "1 row has an id that is not a plain integer" in message
    assert "0 ids taken from the permalink's status number" in message
    assert "1 id taken from the id column" in message
    assert "3 ids derived from the text" in message and "0 duplicate texts removed" in message
    # Reordering the rows changes no id.
    write(tmp_path, "twittemp/TwittEmp.csv", twittemp_csv(*rows[::-1]))
    again = read(tmp_path)
    assert dict(zip(again.ids, again.texts)) == dict(zip(ex.ids, ex.texts))


def test_duplicate_texts_are_removed_keeping_the_first(tmp_path, warnings):
    write(tmp_path, "twittemp/TwittEmp.csv", twittemp_csv(
        ("1", "need help @a http://t.co/1", "", ""),
        ("2", "other", "", LINK.format("u", "5")),
        ("1", "  need   help @b\nhttps://t.co/2 ", "", ""),     # same after normalisation
        ("0", "need help @c http://t.co/3", "", LINK.format("u", "6")),  # another label
        ("0", "Need help @c http://t.co/3", "", ""),            # case differs: not a duplicate
        ("2", "other", "", LINK.format("u", "5"))))             # same text and link: no clash
    ex = read(tmp_path)
    assert ex.texts == ["need help <USER> <URL>", "other", "Need help <USER> <URL>"]
    assert ex.labels.tolist() == [1, 2, 0]
    assert ex.ids == [expected_text_id("need help @a http://t.co/1"), "5",
                      expected_text_id("Need help @c http://t.co/3")]
    (message,) = warnings
    assert "read 3 examples from 6 rows" in message
    assert ("3 duplicate texts removed, keeping the first row of each (1 of the removed rows had "
            "a different label than the kept one)") in message


def test_conflicting_id_and_permalink_uses_the_permalink(tmp_path, warnings):
    write(tmp_path, "twittemp/TwittEmp.csv", twittemp_csv(
        ("0", "a", "11", LINK.format("u", "11")), ("1", "b", "12", LINK.format("u", "99"))))
    assert read(tmp_path).ids == ["11", "99"]
    (message,) = warnings
    assert "1 row has a plain-integer id that differs from its permalink's status number" \
        in message


@pytest.mark.parametrize("second", [("1", "other text", "", LINK.format("v", "5")),
                                    ("1", "other text", "5", ""),
                                    ("1", "other text", "1.30E+18", LINK.format("w", "5"))])
def test_ids_colliding_after_the_rules_name_both_lines(tmp_path, second):
    path = write(tmp_path, "twittemp/TwittEmp.csv", twittemp_csv(
        ("0", "text", "", LINK.format("u", "5")), ("2", "multi\nline", "", ""), second))
    with pytest.raises(DataError) as e:
        read(tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: duplicate example id '5' on line 2 (field 'permalink') and "
                          "line 5 (field ")
    assert "different texts" in msg


def test_conftest_writer_has_the_released_kinds_of_defects(tmp_path, warnings):
    write_twittemp(str(tmp_path))
    ex = read(tmp_path)
    assert len(ex) == 150 and np.bincount(ex.labels).tolist() == [50, 50, 50]
    assert len(set(ex.ids)) == 150 and not any("E+" in i for i in ex.ids)
    by_kind = collections.Counter("text" if i.startswith("tweet-") else "permalink" for i in ex.ids)
    assert by_kind["permalink"] > 20 and by_kind["text"] > 20
    assert all("<URL>" in t and "<USER>" in t for t in ex.texts)
    (message,) = warnings
    assert "in scientific notation" in message and "3 duplicate texts removed" in message
    assert "read 150 examples from 153 rows" in message


# ---------------------------------------------------------------------------------- released


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    rows, info = files.released_like_rows()
    files.write_released_like(str(root), rows=rows)
    return str(root), rows, info


def test_released_file_defects_are_repaired_with_one_warning(released, warnings):
    root, rows, info = released
    # The synthetic file has exactly the released file's defects.
    assert len(rows) == 3000 and collections.Counter(r[0] for r in rows) == {
        "0": 1000, "1": 1000, "2": 1000}
    mangled = collections.Counter(r[2] for r in rows if r[2])
    assert sum(mangled.values()) == 1075 and len(mangled) == 68
    assert mangled.most_common(1) == [("1.30E+18", 510)]
    assert all(bool(r[2]) == bool(r[3]) for r in rows)

    ex = read(root)
    assert len(ex) == 2997 and np.bincount(ex.labels).tolist() == [999, 999, 999]
    (message,) = warnings
    assert message == (
        f"{root}/twittemp/TwittEmp.csv: read 2,997 examples from 3,000 rows, repairing defects "
        "like those of the released TwittEmp file: 1,075 rows have an id in scientific notation "
        "(68 distinct values, '1.30E+18' alone 510 times: rounded by a spreadsheet), never used "
        "as ids; 1,075 ids taken from the permalink's status number; 1,922 ids derived from the "
        "text ('tweet-' + sha256 of the normalised text) for rows with neither a plain-integer id "
        "nor a permalink; 3 duplicate texts removed, keeping the first row of each (1 of the "
        "removed rows had a different label than the kept one).")

    kept = [i for i in range(3000) if i not in info["duplicates"]]
    assert len(set(ex.ids)) == 2997
    for k, i in enumerate(kept):
        if i in info["statuses"]:
            assert ex.ids[k] == info["statuses"][i] and len(ex.ids[k]) == 19
            assert f"{int(ex.ids[k]):.2E}" == rows[i][2]  # the mangled id was its rounding
        else:
            assert ex.ids[k] == expected_text_id(rows[i][1])
    assert ex.extras["permalink"].tolist() == [rows[i][3] for i in kept]


def test_released_file_ids_do_not_depend_on_row_order(released, tmp_path, warnings):
    root, rows, info = released
    first = read(root)
    shuffled = list(rows)
    random.Random(1).shuffle(shuffled)
    # Keep each duplicate after its original, so that the same row of each pair is dropped.
    order = {id(r): k for k, r in enumerate(shuffled)}
    for dup, original in info["duplicates"].items():
        a, b = order[id(rows[original])], order[id(rows[dup])]
        if a > b:
            shuffled[a], shuffled[b] = shuffled[b], shuffled[a]
    files.write_released_like(str(tmp_path), rows=shuffled)
    again = read(tmp_path)
    assert sorted(zip(again.ids, again.texts, again.labels.tolist())) == sorted(
        zip(first.ids, first.texts, first.labels.tolist()))


def _pure_python_load(monkeypatch):
    """tfds_source.load without TFDS (the round trip is tested in tfds_source_test.py)."""
    cache = {}

    def load(source, data_dir, tfds_dir=None):
        if (source.name, data_dir) not in cache:
            cache[source.name, data_dir] = {s: source.read_split(data_dir, s)
                                            for s in source.splits}
        return cache[source.name, data_dir]
    monkeypatch.setattr(tfds_source, "load", load)


def test_seek_and_provide_share_split_ids(released, monkeypatch):
    root, _, _ = released
    _pure_python_load(monkeypatch)
    seek, provide = tasks.get_task("twittemp_seek"), tasks.get_task("twittemp_provide")
    for protocol, folds in (("split", [0]), ("repeated:3", [0]), ("kfold:5", range(5))):
        for seed in (0, 1):
            for fold in folds:
                a = tasks.load_task_data(seek, root, protocol, seed, fold)
                b = tasks.load_task_data(provide, root, protocol, seed, fold)
                assert a.split_ids() == b.split_ids(), (protocol, seed, fold)
                for split in ("train", "dev", "test"):
                    sa, sb = getattr(a, split), getattr(b, split)
                    assert sa.texts == sb.texts
                    # Stratified on the three classes: a third of each split seeks empathy.
                    assert np.mean(sa.labels) == pytest.approx(1 / 3, abs=0.01)
                    assert not np.any(sa.labels & sb.labels)
    empathy = tasks.load_task_data(tasks.get_task("twittemp"), root, "split", 0)
    kfold = [tasks.load_task_data(seek, root, "kfold:5", 0, f).split_ids()["test"]
             for f in range(5)]
    assert sorted(i for ids in kfold for i in ids) == sorted(empathy.split_ids()["train"]
                                                          + empathy.split_ids()["dev"]
                                                          + empathy.split_ids()["test"])


def test_views_load_through_tfds(released, tmp_path):
    root, _, _ = released
    tfds_dir = str(tmp_path / "tfds")
    loaded = {}
    for name in ("twittemp", "twittemp_seek", "twittemp_provide"):
        task = tasks.get_task(name)
        data = tasks.load_task_data(task, root, "split", 0, tfds_dir=tfds_dir)
        sizes = np.array([len(data.train), len(data.dev), len(data.test)])
        assert sizes.sum() == 2997
        np.testing.assert_allclose(sizes / 2997, task.split_fractions, atol=0.001)
        assert not data.official_split and task.positive_class == 1 and task.role == "target"
        loaded[name] = data
    empathy, seek, provide = loaded["twittemp"], loaded["twittemp_seek"], loaded["twittemp_provide"]
    assert seek.split_ids() == provide.split_ids()
    assert np.mean(empathy.train.labels) == pytest.approx(2 / 3, abs=0.01)
    for data in (seek, provide):
        for split in ("train", "dev", "test"):
            assert np.mean(getattr(data, split).labels) == pytest.approx(1 / 3, abs=0.01)
    assert all("<URL>" in t and "<USER>" in t for t in empathy.train.texts[:20])
    assert not any("E+" in i for i in empathy.train.ids)


def test_task_declarations():
    empathy, seek, provide = (tasks.get_task(n) for n in
                              ("twittemp", "twittemp_seek", "twittemp_provide"))
    assert (empathy.label_map, empathy.label_names, empathy.split_fractions) == (
        (0, 1, 1), ("none", "empathy"), (0.8, 0.1, 0.1))
    assert (seek.label_map, seek.label_names, seek.split_fractions) == (
        (0, 1, 0), ("rest", "seeking"), tasks.FINE_GRAINED_SPLIT)
    assert (provide.label_map, provide.label_names, provide.split_fractions) == (
        (0, 0, 1), ("rest", "providing"), (0.6, 0.2, 0.2))
    assert seek.labels_from_source([0, 1, 2]).tolist() == [0, 1, 0]
    assert twittemp_permalink("u", 5) == LINK.format("u", 5)
