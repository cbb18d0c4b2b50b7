"""Tests of the pure-Python readers on small synthetic files (no TensorFlow, no real data)."""

import os

import numpy as np
import pytest

from empathy_tf.data import readers
from empathy_tf.errors import ConfigError, DataError

NEWSEMP_HEADER = ('"message_id","response_id","article_id","empathy","distress","empathy_bin",'
                  '"distress_bin","essay"\n')


def write(root, rel, content):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def newsemp_row(mid, essay, empathy="4.5", empathy_bin="1", distress="2.0", distress_bin="0"):
    return f'"{mid}","R_{mid}","7","{empathy}","{distress}","{empathy_bin}","{distress_bin}","{essay}"\n'


def write_newsemp(root, *rows, header=NEWSEMP_HEADER):
    return write(root, "newsemp/messages.csv", header + "".join(rows))


def read_newsemp(root):
    return readers.read_split("newsemp", root, "all")


# ---------------------------------------------------------------------------------- newsemp


def test_newsemp_parses_fields_extras_and_multiline_essays(tmp_path):
    write_newsemp(tmp_path,
                  newsemp_row("m2", "first essay", empathy="5.667", distress="1.5"),
                  newsemp_row("m1", "a quoted\nessay over ""two"" lines", empathy_bin="0",
                              empathy="3.833", distress_bin="1"),
                  newsemp_row("m3", "  padded  "))
    ex = read_newsemp(tmp_path)
    assert ex.ids == ["m2", "m1", "m3"]  # file order, not sorted
    assert ex.texts == ["first essay", "a quoted\nessay over two lines", "padded"]
    assert ex.labels.dtype == np.int64 and ex.labels.tolist() == [1, 0, 1]
    assert ex.extras["empathy"].dtype == np.float64
    assert ex.extras["empathy"].tolist() == [5.667, 3.833, 4.5]
    assert ex.extras["distress"].tolist() == [1.5, 2.0, 2.0]
    assert ex.extras["distress_bin"].dtype == np.int64
    assert ex.extras["distress_bin"].tolist() == [0, 1, 0]
    assert ex.extras["article_id"].tolist() == ["7"] * 3
    assert ex.extras["response_id"].tolist() == ["R_m2", "R_m1", "R_m3"]
    assert set(ex.extras) == set(readers.EXTRA_FIELDS["newsemp"])


def test_line_numbers_point_at_row_start_after_multiline_field(tmp_path):
    # Row m2 spans lines 3-5, so the bad row m3 starts on physical line 6.
    path = write_newsemp(tmp_path, newsemp_row("m1", "ok"), newsemp_row("m2", "x\ny\nz"),
                         newsemp_row("m3", "bad label", empathy_bin="2"))
    with pytest.raises(DataError) as e:
        read_newsemp(tmp_path)
    msg = str(e.value)
    assert path in msg and "line 6" in msg and "empathy_bin" in msg and "'2'" in msg


def test_error_inside_multiline_row_reports_its_first_line(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "ok"), newsemp_row("m2", "x\ny", empathy="high"))
    with pytest.raises(DataError, match=r"line 3\b.*'empathy'.*'high'.*finite number"):
        read_newsemp(tmp_path)


def test_missing_file_names_path_and_how_to_obtain(tmp_path):
    with pytest.raises(DataError) as e:
        read_newsemp(tmp_path)
    msg = str(e.value)
    assert os.path.join(str(tmp_path), "newsemp", "messages.csv") in msg
    assert "github.com/wwbp/empathic_reactions" in msg and "data/responses/data/" in msg


@pytest.mark.parametrize("content,expected", [
    ("", "no rows"),
    ("\n\n", "no rows"),
    (NEWSEMP_HEADER, "only a header"),
])
def test_empty_and_header_only_files(tmp_path, content, expected):
    write(tmp_path, "newsemp/messages.csv", content)
    with pytest.raises(DataError, match=expected):
        read_newsemp(tmp_path)


def test_wrong_delimiter_lists_found_and_expected_columns(tmp_path):
    write(tmp_path, "newsemp/messages.csv",
          NEWSEMP_HEADER.replace(",", ";") + newsemp_row("m1", "x").replace(",", ";"))
    with pytest.raises(DataError) as e:
        read_newsemp(tmp_path)
    msg = str(e.value)
    assert "line 1" in msg and "header found" in msg and "expected columns" in msg and "'essay'" in msg
    assert "semicolon as delimiter" in msg
    # Unquoted header: parsed as one column, also reported as a delimiter problem.
    write(tmp_path, "newsemp/messages.csv", NEWSEMP_HEADER.replace(",", "\t").replace('"', ""))
    with pytest.raises(DataError, match=r"missing column.*columns found.*tab as delimiter"):
        read_newsemp(tmp_path)


def test_missing_column(tmp_path):
    header = NEWSEMP_HEADER.replace('"essay"', '"text"')
    write_newsemp(tmp_path, newsemp_row("m1", "x"), header=header)
    with pytest.raises(DataError, match=r"missing column\(s\) \['essay'\].*'text'"):
        read_newsemp(tmp_path)


def test_wrong_field_count(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "x"), '"m2","R","7","4","4","1","1"\n')
    with pytest.raises(DataError, match=r"line 3: row has 7 fields; expected 8"):
        read_newsemp(tmp_path)


def test_unbalanced_quote_is_reported_at_row_start(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "x"), '"m2","R","7","4","4","1","1","never closed\n')
    with pytest.raises(DataError, match=r"line 3: malformed CSV record"):
        read_newsemp(tmp_path)


def test_empty_text(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "x"), newsemp_row("m2", "   "))
    with pytest.raises(DataError, match=r"line 3: field 'text' is empty"):
        read_newsemp(tmp_path)


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    content = (NEWSEMP_HEADER + newsemp_row("m1", "ok")).encode() + newsemp_row("m2", "caf\xe9").encode("latin-1")
    path = write(tmp_path, "newsemp/messages.csv", content)
    with pytest.raises(DataError) as e:
        read_newsemp(tmp_path)
    assert path in str(e.value) and "line 3" in str(e.value) and "UTF-8" in str(e.value)


def test_duplicate_ids_name_both_lines(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "a"), newsemp_row("m2", "b"), newsemp_row("m1", "c"))
    with pytest.raises(DataError, match=r"duplicate example id 'm1' on line 2 and line 4"):
        read_newsemp(tmp_path)


def test_crlf_and_bom_are_accepted(tmp_path):
    content = "\ufeff" + (NEWSEMP_HEADER + newsemp_row("m1", "a\r\nb") + newsemp_row("m2", "c"))
    write(tmp_path, "newsemp/messages.csv", content.replace('"\n', '"\r\n'))
    ex = read_newsemp(tmp_path)
    assert ex.ids == ["m1", "m2"] and ex.texts == ["a\r\nb", "c"]


def test_long_text_is_truncated_with_warning(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(readers.logging, "warning", lambda msg, *a: warnings.append(msg % a))
    path = write_newsemp(tmp_path, newsemp_row("m1", "ok"),
                         newsemp_row("m2", "w" * (readers.MAX_TEXT_CHARS + 5)))
    ex = read_newsemp(tmp_path)
    assert len(ex.texts[1]) == readers.MAX_TEXT_CHARS
    assert len(warnings) == 1 and path in warnings[0] and "line 3" in warnings[0]


# ---------------------------------------------------------------------------------- twittemp


def test_twittemp_preprocessing_ids_and_labels(tmp_path):
    write(tmp_path, "twittemp/TwittEmp.csv",
          "label,content,id,permalink\n"
          '1,"@bob pls help\nme: https://t.co/x?a=1 www.site.org/p",,\n'
          "2,mail me@host.com @Ann_2 HTTP://A.B,t42,https://twitter.com/x/status/42\n"
          "0,plain,,\n")
    ex = readers.read_split("twittemp", tmp_path, "all")
    assert ex.ids == ["line-2", "t42", "line-5"]  # row 1 spans lines 2-3
    assert ex.texts == ["<USER> pls help\nme: <URL> <URL>", "mail me@host.com <USER> <URL>", "plain"]
    assert ex.labels.tolist() == [1, 2, 0]
    assert ex.extras["permalink"].tolist() == ["", "https://twitter.com/x/status/42", ""]
    assert readers.DATASETS["twittemp"].label_names[1] == "seeking_empathy"


def test_twittemp_bad_label(tmp_path):
    write(tmp_path, "twittemp/TwittEmp.csv", "label,content,id,permalink\n3,x,,\n")
    with pytest.raises(DataError, match=r"line 2: field 'label' has value '3'; expected one of \['0', '1', '2'\]"):
        readers.read_split("twittemp", tmp_path, "all")


# ---------------------------------------------------------------------------------- sst2


def write_sst2(root, test_lines="0 bad film .\n1 good film .\n"):
    write(root, "sst2/glue/train.tsv", "sentence\tlabel\nhide new secretions \t0\nloves it \t1\n")
    write(root, "sst2/glue/dev.tsv", "sentence\tlabel\nit 's charming . \t1\n")
    write(root, "sst2/sentence_level/stsa.binary.test", test_lines)


def test_sst2_splits(tmp_path):
    write_sst2(tmp_path)
    train = readers.read_split("sst2", tmp_path, "train")
    assert train.ids == ["train-2", "train-3"]
    assert train.texts == ["hide new secretions", "loves it"] and train.labels.tolist() == [0, 1]
    dev = readers.read_split("sst2", tmp_path, "validation")
    assert dev.ids == ["validation-2"] and dev.labels.tolist() == [1]
    test = readers.read_split("sst2", tmp_path, "test")
    assert test.ids == ["test-1", "test-2"] and test.texts == ["bad film .", "good film ."]
    assert readers.DATASETS["sst2"].positive_label == 1


def test_sst2_malformed_test_line(tmp_path):
    write_sst2(tmp_path, "0 ok\n\n1\n")
    with pytest.raises(DataError, match=r"stsa.binary.test, line 3: .*expected '<label> <sentence>'"):
        readers.read_split("sst2", tmp_path, "test")


def test_unknown_split_and_name(tmp_path):
    with pytest.raises(ConfigError, match="no split 'dev'"):
        readers.read_split("sst2", tmp_path, "dev")
    with pytest.raises(ConfigError, match=r"unknown dataset 'sst'.*'sst2'.*csv:PATH"):
        readers.read_split("sst", tmp_path, "train")
    with pytest.raises(ConfigError, match="only apply to csv:PATH"):
        readers.read_split("sst2", tmp_path, "train", text_column="x")


# ---------------------------------------------------------------------------------- carer


@pytest.mark.parametrize("header", ["text;label_name\n", ""])
def test_carer_with_and_without_header(tmp_path, header):
    write(tmp_path, "carer_emotion/train.txt", header + "i feel; odd;surprise\ni am glad;joy\n")
    ex = readers.read_split("carer", tmp_path, "train")
    assert ex.texts == ["i feel; odd", "i am glad"]  # split on the last ';'
    assert [readers.CARER_LABELS[i] for i in ex.labels] == ["surprise", "joy"]
    offset = 1 if header else 0
    assert ex.ids == [f"train-{1 + offset}", f"train-{2 + offset}"]


def test_carer_bad_label_and_missing_separator(tmp_path):
    write(tmp_path, "carer_emotion/val.txt", "text;label_name\nok;joy\nhmm;disgust\n")
    with pytest.raises(DataError, match=r"line 3: field 'label_name' has value 'disgust'; expected one of \['sadness', 'joy', 'love', 'anger', 'fear', 'surprise'\]"):
        readers.read_split("carer", tmp_path, "validation")
    write(tmp_path, "carer_emotion/val.txt", "ok;joy\nno separator here\n")
    with pytest.raises(DataError, match=r"line 2: no semicolon separator"):
        readers.read_split("carer", tmp_path, "validation")


# ---------------------------------------------------------------------------------- semeval


SEMEVAL_HEADER = "ID\tTweet\t" + "\t".join(readers.SEMEVAL_EMOTIONS) + "\n"


def semeval_row(tweet_id, tweet, on=()):
    return f"{tweet_id}\t{tweet}\t" + "\t".join(
        "1" if e in on else "0" for e in readers.SEMEVAL_EMOTIONS) + "\n"


def test_semeval_plutchik_vector_and_all_emotions(tmp_path):
    write(tmp_path, "semeval2018_ec/2018-E-c-En-dev.txt", SEMEVAL_HEADER
          + semeval_row("2018-En-1", '"quoted start @joe http://x.y', on=("trust", "love", "anger"))
          + semeval_row("2018-En-2", "neutral"))
    ex = readers.read_split("semeval2018_ec", tmp_path, "validation")
    assert ex.ids == ["2018-En-1", "2018-En-2"]
    assert ex.texts == ['"quoted start <USER> <URL>', "neutral"]
    assert ex.labels.shape == (2, 8) and ex.labels.dtype == np.int64
    assert ex.labels[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 1]  # anger ... trust
    assert ex.extras["all_emotions"].shape == (2, 11)
    assert ex.extras["all_emotions"][0].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert readers.DATASETS["semeval2018_ec"].multi_label


def test_semeval_bad_value(tmp_path):
    write(tmp_path, "semeval2018_ec/2018-E-c-En-train.txt",
          SEMEVAL_HEADER + semeval_row("a", "x").replace("\t0\n", "\t2\n"))
    with pytest.raises(DataError, match=r"line 2: field 'trust' has value '2'"):
        readers.read_split("semeval2018_ec", tmp_path, "train")


def test_check_unique_ids_across_splits():
    spec = readers.DATASETS["semeval2018_ec"]
    mk = lambda ids: readers.RawExamples(ids=ids, texts=ids, labels=np.zeros((len(ids), 8), np.int64))
    readers.check_unique_ids(spec, {"train": mk(["a"]), "test": mk(["b"])})
    with pytest.raises(DataError, match=r"'a' in split 'train' .*train.txt.* and split 'test'"):
        readers.check_unique_ids(spec, {"train": mk(["a"]), "test": mk(["b", "a"])})


# ---------------------------------------------------------------------------------- emonet


@pytest.mark.parametrize("header", ["text\tlabel\n", "Text\tLabel\n", ""])
def test_emonet_optional_header_and_case(tmp_path, header):
    write(tmp_path, "emonet/emonet.tsv", header + "so scared @x\tFear\nyay\tjoy\n")
    ex = readers.read_split("emonet", tmp_path, "all")
    assert ex.texts == ["so scared <USER>", "yay"]
    assert [readers.PLUTCHIK8[i] for i in ex.labels] == ["fear", "joy"]


def test_emonet_bad_label(tmp_path):
    write(tmp_path, "emonet/emonet.tsv", "yay\tjoy\nhm\tlove\n")
    with pytest.raises(DataError, match=r"line 2: field 'label' has value 'love'"):
        readers.read_split("emonet", tmp_path, "all")


# ---------------------------------------------------------------------------------- user csv


def test_csv_spec_label_names_and_reading(tmp_path):
    path = write(tmp_path, "u/mine.tsv", "label\ttext\tuid\nb\thello\tu1\na\t\"multi\nline\"\tu2\nb\tbye\tu3\n")
    spec = readers.csv_spec(path, id_column="uid")
    assert spec.name == f"csv:{path}" and spec.label_names == ("a", "b") and spec.splits == ("all",)
    assert spec.positive_label is None and not spec.multi_label
    ex = readers.read_split(spec, "/unused", "all")
    assert ex.ids == ["u1", "u2", "u3"] and ex.texts == ["hello", "multi\nline", "bye"]
    assert ex.labels.tolist() == [1, 0, 1]
    # The same through the csv:PATH name.
    ex2 = readers.read_split(f"csv:{path}", "/unused", "all", id_column="uid")
    assert ex2.ids == ex.ids and ex2.labels.tolist() == ex.labels.tolist()


def test_csv_integer_labels_sort_numerically_and_line_ids(tmp_path):
    path = write(tmp_path, "u/n.csv", "text,label\na,10\nb,2\nc,1\n")
    spec = readers.csv_spec(path)
    assert spec.label_names == ("1", "2", "10")
    assert readers.read_split(spec, "", "all").ids == ["line-2", "line-3", "line-4"]
    binary = write(tmp_path, "u/b.csv", "text,label\na,1\nb,0\n")
    assert readers.csv_spec(binary).positive_label == 1


def test_csv_errors(tmp_path):
    path = write(tmp_path, "u/x.txt", "text|label\na|b\n")
    with pytest.raises(ConfigError, match="delimiter"):
        readers.csv_spec(path)
    assert readers.csv_spec(path, delimiter="|").label_names == ("b",)
    with pytest.raises(DataError, match=r"missing column\(s\) \['tweet'\]; columns found: \['text', 'label'\]"):
        readers.csv_spec(path, delimiter="|", text_column="tweet")
    with pytest.raises(DataError, match="file not found"):
        readers.csv_spec(os.path.join(tmp_path, "nope.csv"))
    with pytest.raises(ConfigError, match=r"unknown csv option\(s\) \['sep'\]"):
        readers.read_split(f"csv:{path}", "", "all", sep="|")
    empty_label = write(tmp_path, "u/e.csv", "text,label\na,\n")
    with pytest.raises(DataError, match=r"line 2: field 'label' is empty"):
        readers.csv_spec(empty_label)
