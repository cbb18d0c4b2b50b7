"""Finished smoke runs in use: predictions, edge cases, the CLI, and exports (.keras, SavedModel)."""

import json
import os
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import io_utils, runs
from empathy_tf.data import preprocessor as preprocessor_lib
from empathy_tf.data.sources.base import MAX_TEXT_CHARS, preprocess_tweet
from empathy_tf.errors import ConfigError
from empathy_tf.serving import export, predictor as predictor_lib
from experiments import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["I am so sorry, this is heartbreaking.", "whatever, boring story", "people read the news"]
RUNS = ("bert", "mt_sst_emonet", "cnn")


@pytest.fixture(scope="module")
def trained(synthetic_data_dir, tfds_dir, tmp_path_factory):
    """{experiment: run folder} of finished smoke runs, trained once for this module."""
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path_factory.mktemp("serving_runs")),
                          tfds_dir)
    out = {}
    for name in RUNS:
        config = registry.get_config(name).smoked()
        runs.run_cell(config, ctx)
        out[name] = runs.run_dir_for(config, ctx)
    return out


@pytest.fixture(scope="module")
def bert(trained):
    return predictor_lib.load_predictor(trained["bert"])


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
    assert results[0]["heads"] == results[1]["heads"]  # both are the empty string
    tokens = bert.preprocessor.encode([long_text], normalize=True)
    assert tokens.lengths[0] == bert.config.bert.max_seq_length
    assert 0.0 <= results[2]["probability"] <= 1.0


@pytest.mark.parametrize("name", ["bert", "cnn"])
def test_reproduces_the_runs_own_test_predictions(name, trained):
    # In the run's own precision, the saved preprocessor + weights give training's test predictions.
    run_dir = trained[name]
    predictor = predictor_lib.load_predictor(run_dir, precision=None)
    saved = np.load(os.path.join(run_dir, "predictions.npz"))
    record = io_utils.read_json(os.path.join(run_dir, "config.json"))
    from empathy_tf.config import ExperimentConfig
    from empathy_tf.methods import load_tasks
    data = load_tasks(ExperimentConfig.from_dict(record["config"]),
                      runs.RunContext(record["data_dir"], "unused"))[0]
    text_of = dict(zip(data.test.ids, data.test.texts))
    probs = predictor.predict_probs([text_of[i] for i in saved["ids"]])[0]
    np.testing.assert_allclose(probs, saved["probs"], atol=1e-6)


def test_multi_task_model_reports_every_head(trained):
    from empathy_tf.data import tasks
    results = predictor_lib.load_predictor(trained["mt_sst_emonet"]).predict(TEXTS)
    for r in results:
        assert set(r["heads"]) == {"newsemp", "sst2", "carer"}
        assert r["heads"]["carer"]["label"] in tasks.get_task("carer").label_names
    table = predictor_lib.format_table(results)
    assert table.splitlines()[0].split() == ["text", "newsemp", "p(empathy)", "sst2", "carer"]
    assert len(table.splitlines()) == 2 + len(TEXTS)


def test_multi_label_heads_list_every_label_above_one_half():
    from empathy_tf.models.classifier import HeadSpec
    head = HeadSpec("semeval2018_ec", 3, multi_label=True, label_names=("anger", "joy", "fear"))
    read = predictor_lib._read_head(head, np.array([0.7, 0.2, 0.9]))
    assert read["labels"] == ["anger", "fear"] and read["label"] == "fear"


def test_tweet_normalization_python_and_graph_agree(bert):
    tweets = preprocessor_lib.WordPiecePreprocessor(bert.preprocessor.tokenizer, 64, tweets=True)
    texts = ["@bob see http://t.co/x now", "mail a@b.com @a@b @a,@b", "WWW.x.org/y?z=1 end",
             "(@ann) @josé\u00a0https://a.b\u3000c", "@_x @1 @ @", "x" * (MAX_TEXT_CHARS + 5)]
    # Every assigned BMP character next to a mention and inside a link.
    for c in map(chr, range(1, 0x10000)):
        if unicodedata.category(c) not in ("Cn", "Cs"):
            texts += [f"a{c}@b{c}c", f"http://x{c}y z"]
    graph = [t.decode() for t in tweets.normalize_graph(tf.constant(texts)).numpy()]
    assert graph == [preprocess_tweet(t)[:MAX_TEXT_CHARS] for t in texts]
    assert graph[0] == "<USER> see <URL> now" and len(graph[5]) == MAX_TEXT_CHARS
    # A tweet source's run normalizes at prediction time; others do not.
    assert not bert.preprocessor.tweets


def test_refuses_what_it_cannot_predict_with(tmp_path, trained):
    with pytest.raises(ConfigError, match="not a run folder"):
        predictor_lib.load_predictor(str(tmp_path / "nope"))
    recorded = io_utils.read_json(os.path.join(trained["bert"], "config.json"))
    tfidf = tmp_path / "tfidf"
    io_utils.atomic_write_json(str(tfidf / "config.json"),
                               {**recorded, "config": {**recorded["config"], "method": "tfidf"}})
    with pytest.raises(ConfigError, match="no Keras model"):
        predictor_lib.load_predictor(str(tfidf))
    unfinished = tmp_path / "unfinished"
    io_utils.atomic_write_json(str(unfinished / "config.json"), recorded)
    with pytest.raises(ConfigError, match="not finished"):
        predictor_lib.load_predictor(str(unfinished))


def test_cli_stdin_jsonl_and_errors(trained, capsys, tmp_path):
    run = trained["mt_sst_emonet"]
    stdin = "\n".join(TEXTS[:2]) + "\n\n" + TEXTS[2] + "\n"
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-m", "experiments.predict", f"--run={run}",
                          "--format=jsonl"], cwd=ROOT, env=env, input=stdin, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == TEXTS[:2] + [""] + TEXTS[2:]
    assert [r["empty"] for r in rows] == [False, False, True, False]
    expected = predictor_lib.load_predictor(run).predict(TEXTS)
    for got, want in zip(rows[:2] + rows[3:], expected):
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-6)
    code = predictor_lib.run_cli(str(tmp_path), ["x"], None, "table", sys.stdin, sys.stdout,
                                 sys.stderr)
    assert code == 2 and "not a run folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Exports.

EXPORT_TEXTS = ["I am so sorry, this is heartbreaking.", "whatever, boring story", "",
                "people read the news " * 3000, "Ünïcödé wörds, 😀 and @someone http://t.co/x"]
# Runs in a fresh interpreter outside the repository: plain TensorFlow (+ the tokenizer ops of
# tensorflow-text), no empathy_tf or keras-hub.
LOADER = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the WordPiece ops
texts = json.loads(sys.stdin.read())
out = {}
for path in sys.argv[1:]:
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](texts=tf.constant(texts, tf.string))
    empty = loaded.signatures["serving_default"](texts=tf.constant([], tf.string))
    labels = loaded.signatures["labels"]()
    out[path] = {"probs": {k: v.numpy().tolist() for k, v in served.items() if v.dtype != tf.string},
                 "predicted": {k: [x.decode() for x in v.numpy()] for k, v in served.items()
                               if v.dtype == tf.string},
                 "empty": {k: list(v.shape) for k, v in empty.items()},
                 "labels": {k: [x.decode() for x in v.numpy()] for k, v in labels.items()}}
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("empathy_tf", "keras_hub"))
assert not leaked, leaked
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    return {name: (predictor_lib.load_predictor(run_dir), export.export(run_dir, str(out / name)))
            for name, run_dir in trained.items()}


def test_keras_file_reloads_to_the_same_predictions(exported):
    for name, (predictor, paths) in exported.items():
        reloaded = export.load_keras_model(paths["keras"])
        want = predictor.predict_probs(EXPORT_TEXTS)
        got = predictor.with_model(reloaded).predict_probs(EXPORT_TEXTS)
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, atol=1e-6, err_msg=name)
        # The reloaded encoder carries the same kernels as the trained one.
        if name != "cnn":
            for key in ("dropout_impl", "gelu_impl", "bias_grad_impl"):
                assert (reloaded.encoder.get_config()[key] ==
                        predictor.model.encoder.get_config()[key])


def test_saved_model_runs_without_this_suite(exported, tmp_path):
    paths = [exported[name][1]["saved_model"] for name in RUNS]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", LOADER, *paths], cwd=str(tmp_path), env=env,
                         input=json.dumps(EXPORT_TEXTS), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.splitlines()[-1])
    for name in RUNS:
        predictor, paths = exported[name]
        got = loaded[paths["saved_model"]]
        assert sorted(got["probs"]) == sorted(h.output_name for h in predictor.heads)
        # Per head, the probabilities and the predicted label's name, as Predictor.predict says.
        assert sorted(got["predicted"]) == sorted(export.label_output(h) for h in predictor.heads)
        results = predictor.predict(EXPORT_TEXTS)
        for head, want in zip(predictor.heads, predictor.predict_probs(EXPORT_TEXTS)):
            np.testing.assert_allclose(got["probs"][head.output_name], want, atol=1e-5,
                                       err_msg=f"{name}/{head.name}")
            assert got["predicted"][export.label_output(head)] == [
                r["heads"][head.name]["label"] for r in results]
            assert got["empty"][head.output_name] == [0, len(head.label_names)]
            assert got["empty"][export.label_output(head)] == [0]
            assert got["labels"][head.output_name] == list(head.label_names)


def test_predicted_labels_of_multi_label_heads_join_every_label_above_one_half():
    from empathy_tf.models.classifier import HeadSpec
    head = HeadSpec("emotions", 3, multi_label=True, label_names=("anger", "fear", "joy"))
    probs = tf.constant([[0.6, 0.2, 0.7], [0.1, 0.1, 0.1], [0.1, 0.9, 0.2]])
    assert export.predicted_labels(head, probs).numpy().tolist() == [b"anger,joy", b"", b"fear"]
    single = HeadSpec("sst2", 2, label_names=("negative", "positive"))
    assert export.predicted_labels(single, probs[:, :2]).numpy().tolist() == [
        b"negative", b"negative", b"positive"]


# Runs in a fresh interpreter: Keras and the module that registers this suite's classes, nothing
# else of the suite.
KERAS_LOADER = """
import sys
import keras
try:
    keras.saving.load_model(sys.argv[1])
    print("loaded without registering")
except Exception:  # noqa: BLE001 - unknown classes: expected
    pass
import empathy_tf.models.saving  # noqa: F401
model = keras.saving.load_model(sys.argv[1])
print(type(model).__name__, sorted(model.get_config()["heads"][0]))
"""


def test_keras_file_loads_with_keras_after_one_import(exported, tmp_path):
    _, paths = exported["bert"]
    out = subprocess.run([sys.executable, "-c", KERAS_LOADER, paths["keras"]], cwd=str(tmp_path),
                         env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines()[-1].startswith("MultiTaskClassifier"), out.stdout
    assert "loaded without registering" not in out.stdout


def test_export_folder_contents_and_refusals(exported, trained, tmp_path, capsys):
    predictor, paths = exported["mt_sst_emonet"]
    meta = json.load(open(paths["metadata"]))
    assert [h["name"] for h in meta["heads"]] == ["newsemp", "sst2", "carer"]
    assert meta["heads"][0]["positive_class"] == 1 and meta["precision"] == "float32"
    folder = os.path.dirname(paths["keras"])
    assert os.path.isfile(os.path.join(folder, "vocab.txt"))
    assert preprocessor_lib.load(folder).fingerprint == predictor.preprocessor.fingerprint
    out = os.path.dirname(exported["bert"][1]["keras"])
    with pytest.raises(ConfigError, match="not empty"):
        export.export(trained["bert"], out)
    # --overwrite replaces an export in place; nothing temporary is left next to it.
    assert export.run_cli(trained["bert"], out, overwrite=True) == 0
    assert "saved_model:" in capsys.readouterr().out
    assert not [f for f in os.listdir(os.path.dirname(out)) if f.startswith(".tmp-")]
    assert export.run_cli(str(tmp_path / "nope"), str(tmp_path / "x")) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_serving_function_applies_tweet_preprocessing_in_graph(exported):
    bert, _ = exported["bert"]
    tweets = preprocessor_lib.WordPiecePreprocessor(bert.preprocessor.tokenizer,
                                                    bert.preprocessor.max_seq_length, tweets=True)
    twitter = predictor_lib.Predictor(bert.model, tweets, bert.heads, bert.config)
    texts = ["@someone sorry http://t.co/x", "sorry @other www.example.org/a", "@a@b c"]
    served = export.build_serving_module(twitter).serve(texts)["newsemp"].numpy()
    np.testing.assert_allclose(served, twitter.predict_probs(texts)[0], atol=1e-5)
    # The placeholders matter: the raw texts give other numbers.
    assert not np.allclose(served, bert.predict_probs(texts)[0], atol=1e-7)
