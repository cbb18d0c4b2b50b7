"""Predicting with finished smoke runs (tiny encoder, synthetic data): results, edge cases, CLI."""

import json
import os
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import inference, io_utils, runner
from empathy_tf.data import readers, tasks
from empathy_tf.errors import ConfigError
from experiments import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["I am so sorry, this is heartbreaking.", "whatever, boring story", "people read the news"]

_RUNS = {}


def trained_run(name, data_dir, tfds_dir, tmp_path_factory):
    """A finished smoke run of experiment `name`, trained once per test session (shared with
    export_test.py)."""
    key = (name, data_dir)
    if key not in _RUNS:
        if "root" not in _RUNS:
            _RUNS["root"] = str(tmp_path_factory.mktemp("predict_runs"))
        config = runner.smoke_config(registry.get_config(name))
        ctx = runner.RunContext(data_dir, _RUNS["root"], tfds_dir)
        runner.run_experiment(config, ctx)
        _RUNS[key] = runner.run_dir_for(config, ctx)
    return _RUNS[key]


@pytest.fixture(scope="module")
def bert_run(synthetic_data_dir, tfds_dir, tmp_path_factory):
    return trained_run("bert", synthetic_data_dir, tfds_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def mt_run(synthetic_data_dir, tfds_dir, tmp_path_factory):
    return trained_run("mt_sst_emonet", synthetic_data_dir, tfds_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def bert(bert_run):
    return inference.load_predictor(bert_run)


def test_results_and_determinism(bert):
    results = bert.predict(TEXTS)
    assert [r["text"] for r in results] == TEXTS
    for r in results:
        assert r["task"] == "newsemp" and r["positive_label"] == "empathy"
        assert r["label"] in ("no_empathy", "empathy") and not r["empty"]
        head = r["heads"]["newsemp"]
        assert sum(head["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["probability"] == pytest.approx(head["probabilities"]["empathy"])
        assert head["label"] == max(head["probabilities"], key=head["probabilities"].get)
    # Inference mode: the same texts give the same numbers, alone, reordered or repeated.
    again = bert.predict_probs(TEXTS)[0]
    np.testing.assert_array_equal(again, bert.predict_probs(TEXTS)[0])
    np.testing.assert_allclose(bert.predict_probs(TEXTS[::-1])[0][::-1], again, atol=1e-6)
    np.testing.assert_allclose(bert.predict_probs([TEXTS[1]])[0][0], again[1], atol=1e-6)
    assert bert.predict([]) == []


def test_empty_and_very_long_texts(bert):
    long_text = "sorry " * 20000 + "x" * 100000
    results = bert.predict(["", "   \n", long_text, TEXTS[0]])
    assert [r["empty"] for r in results] == [True, True, False, False]
    # An empty text is classified as the empty string ([CLS] [SEP]).
    assert results[0]["heads"] == results[1]["heads"]
    tokens = bert.featurizer.encode([bert.prepare(long_text)])
    assert tokens.lengths[0] == bert.config.max_seq_length
    assert 0.0 <= results[2]["probability"] <= 1.0


@pytest.mark.parametrize("name", ["bert", "cnn"])
def test_reproduces_the_runs_own_test_predictions(name, synthetic_data_dir, tfds_dir,
                                                  tmp_path_factory):
    # In the run's own precision, the rebuilt featurizer + weights give training's test predictions.
    run_dir = trained_run(name, synthetic_data_dir, tfds_dir, tmp_path_factory)
    predictor = inference.load_predictor(run_dir, precision=None)
    saved = np.load(os.path.join(run_dir, "predictions.npz"))
    data = tasks.load_task_data(tasks.get_task("newsemp"), synthetic_data_dir, 0, tfds_dir)
    text_of = dict(zip(data.test.ids, data.test.texts))
    probs = predictor.predict_probs([text_of[i] for i in saved["ids"]])[0]
    np.testing.assert_allclose(probs, saved["probs"], atol=1e-6)


def test_multi_task_model_reports_every_head(mt_run):
    predictor = inference.load_predictor(mt_run)
    results = predictor.predict(TEXTS)
    for r in results:
        assert set(r["heads"]) == {"newsemp", "sst2", "carer"}
        assert r["heads"]["sst2"]["label"] in ("negative", "positive")
        assert r["heads"]["carer"]["label"] in tasks.get_task("carer").label_names
        for head in r["heads"].values():
            assert sum(head["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    table = inference.format_table(results)
    assert table.splitlines()[0].split() == ["text", "newsemp", "p(empathy)", "sst2", "carer"]
    assert len(table.splitlines()) == 2 + len(TEXTS)


def test_multi_label_heads_list_every_label_above_one_half():
    head = inference.HeadInfo("semeval2018_ec", ("anger", "joy", "fear"), multi_label=True)
    read = inference._read_head(head, np.array([0.7, 0.2, 0.9]))
    assert read["labels"] == ["anger", "fear"] and read["label"] == "fear"
    result = {"text": "t", "empty": False, "task": "newsemp", "positive_label": "empathy",
              "label": "empathy", "probability": 0.8,
              "heads": {"newsemp": {}, "semeval2018_ec": read,
                        "other": inference._read_head(head, np.zeros(3))}}
    assert inference.format_table([result]).splitlines()[2].split() == [
        "t", "empathy", "0.800", "anger,fear", "(0.90)", "-", "(0.00)"]


def test_tweet_preprocessing_python_and_graph_agree(bert):
    twitter = inference.Predictor(bert.model, bert.featurizer, bert.heads,
                                  bert.config.__class__(dataset="twittemp_seek"))
    assert twitter.preprocess_tweets and not bert.preprocess_tweets
    texts = ["@bob see http://t.co/x now", "mail a@b.com @a@b @a,@b", "WWW.x.org/y?z=1 end",
             "(@ann) @josé\u00a0https://a.b\u3000c", "@_x @1 @ @",
             "x" * (readers.MAX_TEXT_CHARS + 5)]
    # Every assigned BMP character next to a mention and inside a link.
    for c in map(chr, range(1, 0x10000)):
        if unicodedata.category(c) not in ("Cn", "Cs"):
            texts += [f"a{c}@b{c}c", f"http://x{c}y z"]
    graph = [t.decode() for t in twitter.prepare_graph(tf.constant(texts)).numpy()]
    assert graph == [twitter.prepare(t) for t in texts]
    assert twitter.prepare(texts[0]) == "<USER> see <URL> now"
    assert len(twitter.prepare(texts[5])) == readers.MAX_TEXT_CHARS


def test_refuses_what_it_cannot_predict_with(tmp_path, bert_run):
    with pytest.raises(ConfigError, match="not a run folder"):
        inference.load_predictor(str(tmp_path / "nope"))
    recorded = io_utils.read_json(os.path.join(bert_run, "config.json"))
    tfidf = tmp_path / "tfidf"
    io_utils.atomic_write_json(str(tfidf / "config.json"),
                               {"config": {**recorded["config"], "method": "tfidf"}})
    with pytest.raises(ConfigError, match="no Keras model"):
        inference.load_predictor(str(tfidf))
    unfinished = tmp_path / "unfinished"
    io_utils.atomic_write_json(str(unfinished / "config.json"), recorded)
    with pytest.raises(ConfigError, match="not finished"):
        inference.load_predictor(str(unfinished))


def _predict_cli(*args, stdin=""):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "experiments.predict", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=300)


def test_cli_stdin_jsonl_and_table(mt_run, capsys):
    # One real subprocess (standard input, jsonl); the table through the same function in-process.
    stdin = "\n".join(TEXTS[:2]) + "\n\n" + TEXTS[2] + "\n"
    out = _predict_cli(f"--run={mt_run}", "--format=jsonl", stdin=stdin)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == TEXTS[:2] + [""] + TEXTS[2:]
    assert [r["empty"] for r in rows] == [False, False, True, False]
    expected = inference.load_predictor(mt_run).predict(TEXTS)
    for got, want in zip(rows[:2] + rows[3:], expected):
        assert set(got["heads"]) == {"newsemp", "sst2", "carer"}
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-6)
    code = inference.run_cli(mt_run, TEXTS[:2], None, "table", sys.stdin, sys.stdout, sys.stderr)
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 4
    assert lines[0].split() == ["text", "newsemp", "p(empathy)", "sst2", "carer"]
    assert lines[2].startswith(TEXTS[0])


def test_cli_errors_are_short(tmp_path, capsys):
    code = inference.run_cli(str(tmp_path), ["x"], None, "table", sys.stdin, sys.stdout, sys.stderr)
    assert code == 2 and "not a run folder" in capsys.readouterr().err
    code = inference.run_cli(str(tmp_path), ["x"], "also.txt", "table", sys.stdin, sys.stdout,
                             sys.stderr)
    assert code == 2 and "not both" in capsys.readouterr().err
