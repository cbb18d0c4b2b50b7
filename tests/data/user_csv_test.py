"""`csv:PATH`: a user's own CSV/TSV file as a source and a task."""

import os

import pytest

from empathy_tf.data import tasks
from empathy_tf.data.sources import user_csv
from empathy_tf.errors import ConfigError, DataError
from tests.data.files import write


def read_all(source):
    return source.read_split("/unused", "all")  # the source carries its own folder


def test_label_names_ids_and_reading(tmp_path):
    path = write(tmp_path, "u/mine.tsv",
                 "label\ttext\tuid\nb\thello\tu1\na\t\"multi\nline\"\tu2\nb\tbye\tu3\n")
    source = user_csv.source_for(f"csv:{path}", id_column="uid")
    assert source.name == f"csv:{path}" and source.label_names == ("a", "b")
    assert source.splits == ("all",) and not source.official_split and not source.multi_label
    assert source.files == {"all": ("mine.tsv",)} and source.data_dir == str(tmp_path / "u")
    assert source.builder_name == "csv" and not source.tweets
    ex = read_all(source)
    assert ex.ids == ["u1", "u2", "u3"] and ex.texts == ["hello", "multi\nline", "bye"]
    assert ex.labels.tolist() == [1, 0, 1]
    # The same through the registry's csv:PATH names.
    assert tasks.get_task(f"csv:{path}").get_source().label_names == ("a", "b")
    task = tasks.get_task(f"csv:{path}")
    assert task.name == f"csv:{path}" and task.label_names == ("a", "b")
    assert task.positive_class is None and task.role == "target" and not task.multi_label


def test_integer_labels_sort_numerically_and_line_ids(tmp_path):
    path = write(tmp_path, "u/n.csv", "text,label\na,10\nb,2\nc,1\n")
    source = user_csv.source_for(f"csv:{path}")
    assert source.label_names == ("1", "2", "10")
    ex = read_all(source)
    assert ex.ids == ["line-2", "line-3", "line-4"] and ex.labels.tolist() == [2, 1, 0]


@pytest.mark.parametrize("labels,positive", [
    (("0", "1"), 1), (("True", "False"), 1), (("yes", "no"), 1), (("neg", "pos"), 1),
    (("negative", "positive"), 1), (("a", "b"), None), (("1", "2"), None),
    (("0", "1", "2"), None),
])
def test_positive_class_only_for_clear_pairs(tmp_path, labels, positive):
    path = write(tmp_path, "u/b.csv", "text,label\n" + "".join(
        f"t{i},{label}\n" for i, label in enumerate(labels)))
    assert user_csv.task_for(f"csv:{path}").positive_class == positive


def test_relative_path_and_options_travel_with_the_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "mine/posts.txt", "tweet|emotion|k\nfine day|pos|a\nugh|neg|b\n")
    task = user_csv.task_for(
        "csv:mine/posts.txt", text_column="tweet", label_column="emotion", id_column="k",
        delimiter="|")
    assert task.name == "csv:mine/posts.txt"
    assert task.source == "csv:" + str(tmp_path / "mine" / "posts.txt")
    assert task.label_names == ("neg", "pos") and task.positive_class == 1
    source = task.get_source()
    assert source.csv_options == {"text_column": "tweet", "label_column": "emotion",
                                  "id_column": "k", "delimiter": "|"}
    ex = read_all(source)
    assert ex.ids == ["a", "b"] and ex.texts == ["fine day", "ugh"] and ex.labels.tolist() == [1, 0]


def test_identity_holds_the_options_and_labels_not_the_path(tmp_path):
    a = write(tmp_path, "a/x.csv", "text,label\nt,0\nu,1\n")
    b = write(tmp_path, "b/x.csv", "text,label\nt,0\nu,1\n")
    ia = user_csv.source_for(f"csv:{a}").identity()
    assert ia == {"name": "csv", "labels": ["0", "1"],
                  "csv": {"text_column": "text", "label_column": "label", "id_column": None,
                          "delimiter": ","}}
    assert user_csv.source_for(f"csv:{b}").identity() == ia
    assert user_csv.source_for(f"csv:{a}", delimiter=",").identity() == ia
    write(tmp_path, "a/x.csv", "text,label,id\nt,0,1\nu,2,2\n")
    assert user_csv.source_for(f"csv:{a}", id_column="id").identity() != ia


def test_file_changed_after_label_names_were_read(tmp_path):
    path = write(tmp_path, "u/c.csv", "text,label\na,x\nb,y\n")
    source = user_csv.source_for(f"csv:{path}")
    write(tmp_path, "u/c.csv", "text,label\na,x\nb,z\n")
    with pytest.raises(DataError, match=r"c.csv, line 3: field 'label' has value 'z'; expected "
                       r"one of \['x', 'y'\] \(the file changed"):
        read_all(source)


def test_errors(tmp_path):
    path = write(tmp_path, "u/x.txt", "text|label\na|b\n")
    with pytest.raises(ConfigError, match=r"cannot guess the delimiter from the extension '.txt'"):
        user_csv.source_for(f"csv:{path}")
    with pytest.raises(DataError, match=r"x.txt: every row's 'label' is 'b'; a classification "
                       "task needs at least two classes"):   # read with the right delimiter
        user_csv.source_for(f"csv:{path}", delimiter="|")
    with pytest.raises(ConfigError, match=r"delimiter='\|\|'.*single character"):
        user_csv.source_for(f"csv:{path}", delimiter="||")
    with pytest.raises(DataError, match=r"x.txt, line 1: missing column\(s\) \['tweet'\]; "
                       r"columns found: \['text', 'label'\]"):
        user_csv.source_for(f"csv:{path}", delimiter="|", text_column="tweet")
    with pytest.raises(DataError, match=r"nope.csv: file not found; expected a CSV/TSV file"):
        user_csv.source_for(f"csv:{tmp_path}/nope.csv")
    with pytest.raises(ConfigError, match=r"unknown csv option\(s\) \['sep'\]"):
        user_csv.source_for(f"csv:{path}", sep="|")
    with pytest.raises(ConfigError, match=r"unknown csv option\(s\) \['sep'\]"):
        user_csv.task_for(f"csv:{path}", sep="|")
    with pytest.raises(ConfigError, match="csv: needs a path"):
        tasks.get_task("csv:")
    with pytest.raises(ConfigError, match="same column twice"):
        user_csv.source_for(f"csv:{path}", delimiter="|", id_column="text")
    empty_label = write(tmp_path, "u/e.csv", "text,label\na,1\nb,\n")
    with pytest.raises(DataError, match=r"e.csv, line 3: field 'label' is empty"):
        user_csv.source_for(f"csv:{empty_label}")
    empty_id = write(tmp_path, "u/i.csv", "text,label,k\na,1,x\nb,0, \n")
    with pytest.raises(DataError, match=r"i.csv, line 3: field 'k' is empty; expected an id"):
        user_csv.source_for(f"csv:{empty_id}", id_column="k")
    dup_id = write(tmp_path, "u/d.csv", "text,label,k\na,1,x\n\"b\nc\",0,x\n")
    with pytest.raises(DataError, match=r"duplicate example id 'x' on line 2 and line 3"):
        user_csv.source_for(f"csv:{dup_id}", id_column="k")
    header_only = write(tmp_path, "u/h.csv", "text,label\n")
    with pytest.raises(DataError, match="only a header"):
        user_csv.source_for(f"csv:{header_only}")
    bad_field_count = write(tmp_path, "u/f.csv", "text,label\na,1\n\"b\nc\",0,extra\n")
    with pytest.raises(DataError, match=r"f.csv, line 3: row has 3 fields; expected 2"):
        user_csv.source_for(f"csv:{bad_field_count}")
    assert os.path.isfile(path)


def test_config_options_reach_the_reader_and_the_identity(tmp_path):
    """--text_column, --label_column, --id_column, --delimiter, --positive_label: the config's
    data section says how a csv:PATH file is read, and a cell's identity holds what it set."""
    from empathy_tf.config import DataConfig
    path = write(tmp_path, "u/released.txt",
                 "post_id\tresponse_post\tlevel\np1\tso sorry\thigh\np2\tok then\tlow\n")
    data = DataConfig(dataset=f"csv:{path}", text_column="response_post", label_column="level",
                      id_column="post_id", delimiter="tab", positive_label="high")
    task = tasks.get_task(data.dataset, **data.csv_options())
    assert task.label_names == ("high", "low") and task.positive_class == 0
    ex = read_all(task.get_source())
    assert ex.ids == ["p1", "p2"] and ex.texts == ["so sorry", "ok then"]
    identity = data.identity()
    assert {k: identity[k] for k in ("text_column", "label_column", "id_column", "delimiter",
                                     "positive_label")} == {
        "text_column": "response_post", "label_column": "level", "id_column": "post_id",
        "delimiter": "tab", "positive_label": "high"}
    # Options left at their defaults, and any option on a registered task, change no identity.
    plain = write(tmp_path, "u/plain.csv", "text,label\nso sorry,high\nok then,low\n")
    assert "text_column" not in DataConfig(dataset=f"csv:{plain}").identity()
    assert DataConfig(dataset="newsemp", text_column="x").identity() == \
        DataConfig(dataset="newsemp").identity()
    with pytest.raises(ConfigError, match=r"released.txt: positive_label='medium'; expected one "
                       r"of the labels of a two-class file, got labels \['high', 'low'\]"):
        tasks.get_task(data.dataset, **{**data.csv_options(), "positive_label": "medium"})
    with pytest.raises(DataError, match="'text'"):   # the default column is not in this file
        tasks.get_task(data.dataset, delimiter="tab")
