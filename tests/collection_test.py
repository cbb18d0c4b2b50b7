"""The §4.2.1 collection filter, with a synthetic lexicon."""

import pytest

from empathy_tf import collection
from empathy_tf.errors import DataError

LEXICON = ('word,rating\n"heartbreaking",6.4\n"sorrow",6.3\n"cancer",6.2\n"hugs",5.9\n'
           '"user",5.8\n"!""",2.3\n"42",5.0\n"breakfast",1.5\n')


@pytest.fixture
def lexicon_path(tmp_path):
    path = tmp_path / "lexicon.csv"
    path.write_text(LEXICON)
    return str(path)


def test_lexicon_and_top_words(lexicon_path):
    lexicon = collection.load_lexicon(lexicon_path)
    assert lexicon['!"'] == 2.3 and len(lexicon) == 8
    # Entries without a letter are never chosen; ties would go by the word.
    assert collection.top_words(lexicon, 4) == ["heartbreaking", "sorrow", "cancer", "hugs"]
    assert collection.top_words(lexicon, 2, restrict_to=["Hugs", "breakfast", "unknown"]) == [
        "hugs", "breakfast"]


@pytest.mark.parametrize("content, where", [
    ("word,score\n\"a\",1\n", "line 1: header"),
    ('word,rating\n"a",1\n"b"\n', "line 3: row has 1 fields"),
    ('word,rating\n"a",1\n\n"b",high\n', "line 4: field 'rating' has value 'high'"),
    ('word,rating\n"a",1\n"b",nan\n', "line 3: field 'rating'"),
    ('word,rating\n"a",1\n"A",2\n', "line 3: the word 'a' is already on line 2"),
    ('word,rating\n"a,1\n', "line 2: malformed CSV row"),
    ("word,rating\n", "no lexicon rows"),
])
def test_bad_lexicon_names_file_and_line(tmp_path, content, where):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=str(path)) as error:
        collection.load_lexicon(str(path))
    assert where in str(error.value)


def test_missing_lexicon(tmp_path):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        collection.load_lexicon(str(tmp_path / "nope.csv"))


def test_filter_matches_whole_words_and_drops_duplicates():
    posts = [
        "So HEARTBREAKING, my aunt has Cancer @bob http://t.co/abc",  # kept
        "so heartbreaking,   my aunt has cancer @alice https://x.y/z",  # a duplicate
        "heartbreakingly sad cancer news",  # no whole empathy word
        "sorrow about the cancerous cells",  # no whole topic word
        "Sending hugs. #cancer sucks",  # kept ('#' is no word char)
        "sorrow but nothing else",  # no topic
        "see www.sorrow.org about cancer",  # empathy word only in a link
        "@user cancer update",  # 'user' only as <USER>
        "cancer cancer cancer",  # the topic alone is not enough
        "   ",
        "Sorrow for the breast\tcancer patients",  # multi-word topic
    ]
    words = ["heartbreaking", "sorrow", "hugs", "user", "cancer"]
    kept, report = collection.collect(posts, words, topics=("cancer", "breast cancer"))
    assert kept == ["So HEARTBREAKING, my aunt has Cancer <USER> <URL>",
                    "Sending hugs. #cancer sucks", "Sorrow for the breast\tcancer patients"]
    assert (report.read, report.kept, report.duplicates, report.empty) == (11, 3, 1, 1)
    assert (report.no_empathy_word, report.no_topic) == (4, 2)
    assert report.empathy_word_counts == {"heartbreaking": 1, "hugs": 1, "sorrow": 1}


def test_run_reads_lines_or_a_csv_column(tmp_path, lexicon_path, capsys):
    lines = tmp_path / "posts.txt"
    lines.write_text("sorrow and cancer\n\nnothing\nSORROW AND CANCER\n")
    out = tmp_path / "kept.txt"
    assert collection.run_cli(str(lines), str(out), lexicon_path, 3, None, ["cancer"], None) == 0
    assert out.read_text() == "sorrow and cancer\n"
    assert "kept 1" in capsys.readouterr().out
    table = tmp_path / "posts.csv"
    table.write_text('id,text\n1,"hugs for your\ncancer fight"\n2,plain\n')
    words, report = collection.run(str(table), str(out), lexicon_path, top_k=5, column="text")
    assert "hugs" in words and "cancer" in words and report.kept == 1
    assert out.read_text() == "hugs for your cancer fight\n"
    with pytest.raises(DataError, match="no column 'body'"):
        collection.read_posts(str(table), column="body")
    assert collection.run_cli(str(lines), str(out), str(tmp_path / "x.csv"), 3, None, ["cancer"],
                              None) == 2
    assert "x.csv: file not found" in capsys.readouterr().err
