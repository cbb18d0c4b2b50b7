"""The strict parsing rules every reader shares (base.py), checked on NewsEmp's quoted CSV."""

import os

import numpy as np
import pytest

from empathy_tf.data import sources
from empathy_tf.data.sources import base
from empathy_tf.errors import DataError
from tests.data.files import NEWSEMP_HEADER, newsemp_row, write, write_newsemp


def read_newsemp(root):
    return sources.get_source("newsemp").read_split(str(root), "all")


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
    assert set(ex.extras) == set(sources.get_source("newsemp").extras)


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
    assert "line 1" in msg and "header found" in msg and "expected columns" in msg
    assert "'essay'" in msg and "semicolon as delimiter" in msg
    # Unquoted header: parsed as one column, also reported as a delimiter problem.
    write(tmp_path, "newsemp/messages.csv", NEWSEMP_HEADER.replace(",", "\t").replace('"', ""))
    with pytest.raises(DataError, match=r"missing column.*columns found.*tab as delimiter"):
        read_newsemp(tmp_path)


def test_missing_column(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "x"),
                  header=NEWSEMP_HEADER.replace('"essay"', '"text"'))
    with pytest.raises(DataError, match=r"missing column\(s\) \['essay'\].*'text'"):
        read_newsemp(tmp_path)


def test_wrong_field_count(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "x"), '"m2","R","7","4","4","1","1"\n')
    with pytest.raises(DataError, match=r"line 3: row has 7 fields; expected 8"):
        read_newsemp(tmp_path)


def test_unbalanced_quote_is_reported_at_row_start(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "x"),
                  '"m2","R","7","4","4","1","1","never closed\n')
    with pytest.raises(DataError, match=r"line 3: malformed CSV record"):
        read_newsemp(tmp_path)


def test_empty_text(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "x"), newsemp_row("m2", "   "))
    with pytest.raises(DataError, match=r"line 3: field 'text' is empty"):
        read_newsemp(tmp_path)


def test_non_utf8_bytes_name_file_and_line(tmp_path):
    content = ((NEWSEMP_HEADER + newsemp_row("m1", "ok")).encode()
               + newsemp_row("m2", "caf\xe9").encode("latin-1"))
    path = write(tmp_path, "newsemp/messages.csv", content)
    with pytest.raises(DataError) as e:
        read_newsemp(tmp_path)
    assert path in str(e.value) and "line 3" in str(e.value) and "UTF-8" in str(e.value)


def test_duplicate_ids_name_both_lines(tmp_path):
    write_newsemp(tmp_path, newsemp_row("m1", "a"), newsemp_row("m2", "b"),
                  newsemp_row("m1", "c"))
    with pytest.raises(DataError, match=r"duplicate example id 'm1' on line 2 and line 4"):
        read_newsemp(tmp_path)


def test_crlf_and_bom_are_accepted(tmp_path):
    content = "\ufeff" + (NEWSEMP_HEADER + newsemp_row("m1", "a\r\nb") + newsemp_row("m2", "c"))
    write(tmp_path, "newsemp/messages.csv", content.replace('"\n', '"\r\n'))
    ex = read_newsemp(tmp_path)
    assert ex.ids == ["m1", "m2"] and ex.texts == ["a\r\nb", "c"]


def test_long_text_is_truncated_with_warning(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(base.logging, "warning", lambda msg, *a: warnings.append(msg % a))
    path = write_newsemp(tmp_path, newsemp_row("m1", "ok"),
                         newsemp_row("m2", "w" * (base.MAX_TEXT_CHARS + 5)))
    ex = read_newsemp(tmp_path)
    assert len(ex.texts[1]) == base.MAX_TEXT_CHARS
    assert len(warnings) == 1 and path in warnings[0] and "line 3" in warnings[0]


def test_preprocess_tweet_links_and_mentions():
    assert (base.preprocess_tweet("@bob see https://t.co/x?a=1 www.site.org/p me@host.com")
            == "<USER> see <URL> <URL> me@host.com")
