"""Dataset characteristics (Tables 2-3, Figure 2) on synthetic data, and the analyze CLI."""

import json
import os

import numpy as np

from empathy_tf.eval import analysis


def test_words_sentences_and_4grams():
    assert analysis.words("It's 3 o'clock, don't panic!! <URL>") == [
        "It's", "3", "o'clock", "don't", "panic", "URL"]
    assert len(analysis.sentences("Hi there. How are you?Fine! ... \nNew line\n\n")) == 3
    assert analysis.sentences("") == [] and analysis.sentences("?!") == []
    texts = ["a b c d e", "A b c d", "x y", "a b c d"]
    stats = analysis.compute_stats(texts, np.array([0, 1, 1, 0]), ("neg", "pos"))
    assert stats["classes"] == {"neg": {"examples": 2, "share": 0.5},
                                "pos": {"examples": 2, "share": 0.5}}
    assert stats["length"]["all"]["words"] == {"mean": 3.75, "median": 4.0, "max": 5, "min": 2}
    assert stats["length"]["pos"]["words"]["max"] == 4
    assert stats["top_4grams"]["all"][:2] == [{"ngram": "a b c d", "count": 3},
                                              {"ngram": "b c d e", "count": 1}]
    assert stats["top_4grams"]["pos"] == [{"ngram": "a b c d", "count": 1}]


def test_multi_label_counts_each_label():
    labels = np.array([[1, 0], [1, 1], [0, 0]])
    stats = analysis.compute_stats(["a", "b c", "d e f"], labels, ("joy", "fear"), multi_label=True)
    assert {k: v["examples"] for k, v in stats["classes"].items()} == {
        "joy": 2, "fear": 1, analysis.NO_LABEL: 1}
    assert stats["length"][analysis.NO_LABEL]["words"]["mean"] == 3.0


def test_analyze_writes_report_json_and_plots(synthetic_data_dir, tfds_dir, tmp_path, capsys):
    assert analysis.run_cli("newsemp", synthetic_data_dir, str(tmp_path), tfds_dir) == 0
    out_dir = tmp_path / "analysis" / "newsemp"
    assert sorted(os.listdir(out_dir)) == ["length_sentences.png", "length_words.png",
                                           "report.md", "stats.json"]
    stats = json.load(open(out_dir / "stats.json"))
    assert stats["examples"] == 120 and stats["splits"] == {"all": 120}
    assert stats["classes"]["empathy"]["examples"] == 60
    assert len(stats["top_4grams"]["all"]) == analysis.TOP_NGRAMS
    assert set(stats["length"]) == {"all", "no_empathy", "empathy"}
    for png in ("length_words.png", "length_sentences.png"):
        assert open(out_dir / png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    report = (out_dir / "report.md").read_text()
    assert "| empathy | 60 | 50.0% |" in report
    assert "![length in words](length_words.png)" in report
    assert "## Size per class" in capsys.readouterr().out


def test_task_names_resolve_to_their_dataset(synthetic_data_dir, tfds_dir, tmp_path):
    stats = analysis.analyze("twittemp_seek", synthetic_data_dir, str(tmp_path), tfds_dir)
    assert stats["dataset"] == "twittemp" and len(stats["classes"]) == 3
    assert os.path.isfile(tmp_path / "analysis" / "twittemp" / "report.md")
    # TwittEmp texts are read preprocessed, so the placeholders show up as words.
    assert any("user url" in g["ngram"] for g in stats["top_4grams"]["all"])
    stats = analysis.analyze("semeval2018_ec", synthetic_data_dir, str(tmp_path), tfds_dir)
    assert stats["multi_label"] and stats["splits"].keys() == {"train", "validation", "test"}


def test_missing_data_is_a_short_error(tmp_path, tfds_dir, capsys):
    assert analysis.run_cli("newsemp", str(tmp_path / "empty"), str(tmp_path), tfds_dir) == 2
    assert "messages.csv" in capsys.readouterr().err
    assert analysis.run_cli("nope", str(tmp_path), str(tmp_path), tfds_dir) == 2


def test_cli_reports_user_errors_with_exit_code_2(tmp_path):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-m", "experiments.analyze", "--dataset=nope",
                           f"--data_dir={tmp_path}", f"--output_dir={tmp_path}"], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown dataset 'nope'")
    assert "Traceback" not in done.stderr
