"""Exports of smoke runs: the .keras file and the SavedModel reproduce Predictor's probabilities."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from empathy_tf import export, inference
from empathy_tf.errors import ConfigError
from tests.inference_test import trained_run

TEXTS = ["I am so sorry, this is heartbreaking.", "whatever, boring story", "",
         "people read the news " * 3000, "Ünïcödé wörds, 😀 and @someone http://t.co/x"]
RUNS = ("bert", "mt_sst_emonet", "cnn")

# Runs in a fresh interpreter outside the repository: plain TensorFlow (+ the tokenizer ops of
# tensorflow-text), no empathy_tf or keras-hub (keras itself is imported by TensorFlow 2.21).
LOADER = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the WordPiece ops
texts = json.loads(sys.stdin.read())
out = {}
for path in sys.argv[1:]:
    loaded = tf.saved_model.load(path)
    probs = loaded.signatures["serving_default"](texts=tf.constant(texts, tf.string))
    empty = loaded.signatures["serving_default"](texts=tf.constant([], tf.string))
    labels = loaded.signatures["labels"]()
    out[path] = {"probs": {k: v.numpy().tolist() for k, v in probs.items()},
                 "empty": {k: list(v.shape) for k, v in empty.items()},
                 "labels": {k: [x.decode() for x in v.numpy()] for k, v in labels.items()}}
suite = ("empathy_tf", "keras_hub", "baselines")
leaked = sorted(m for m in sys.modules if m.split(".")[0] in suite)
assert not leaked, leaked
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def exported(synthetic_data_dir, tfds_dir, tmp_path_factory):
    """{experiment: (Predictor, export paths)} for a single-task, a multi-task and a GloVe run."""
    out = tmp_path_factory.mktemp("exports")
    result = {}
    for name in RUNS:
        run_dir = trained_run(name, synthetic_data_dir, tfds_dir, tmp_path_factory)
        paths = export.export(run_dir, str(out / name))
        result[name] = (inference.load_predictor(run_dir), paths)
    return result


def test_keras_file_reloads_to_the_same_predictions(exported):
    for name, (predictor, paths) in exported.items():
        reloaded = export.load_keras_model(paths["keras"])
        want = predictor.predict_probs(TEXTS)
        got = predictor.with_model(reloaded).predict_probs(TEXTS)
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, atol=1e-6, err_msg=name)


def test_saved_model_runs_without_this_suite(exported, tmp_path):
    paths = [exported[name][1]["saved_model"] for name in RUNS]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", LOADER, *paths], cwd=str(tmp_path), env=env,
                         input=json.dumps(TEXTS), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.splitlines()[-1])
    for name in RUNS:
        predictor, paths = exported[name]
        got = loaded[paths["saved_model"]]
        names = [h.output_name for h in predictor.heads]
        assert sorted(got["probs"]) == sorted(names)
        for head, want in zip(predictor.heads, predictor.predict_probs(TEXTS)):
            np.testing.assert_allclose(got["probs"][head.output_name], want, atol=1e-5,
                                       err_msg=f"{name}/{head.name}")
            assert got["empty"][head.output_name] == [0, len(head.label_names)]
            assert got["labels"][head.output_name] == list(head.label_names)


def test_export_folder_contents_and_refusals(exported, bert_run_dir, tmp_path, capsys):
    predictor, paths = exported["mt_sst_emonet"]
    meta = json.load(open(paths["metadata"]))
    assert [h["name"] for h in meta["heads"]] == ["newsemp", "sst2", "carer"]
    assert meta["heads"][0]["positive_class"] == 1 and meta["precision"] == "float32"
    assert os.path.isfile(os.path.join(os.path.dirname(paths["keras"]), "vocab.txt"))
    out = os.path.dirname(exported["bert"][1]["keras"])
    with pytest.raises(ConfigError, match="not empty"):
        export.export(bert_run_dir, out)
    # --overwrite replaces an export in place; nothing temporary is left next to it.
    assert export.run_cli(bert_run_dir, out, overwrite=True) == 0
    assert "saved_model:" in capsys.readouterr().out
    assert not [f for f in os.listdir(os.path.dirname(out)) if f.startswith(".tmp-")]
    assert export.run_cli(str(tmp_path / "nope"), str(tmp_path / "x")) == 2
    assert "not a run folder" in capsys.readouterr().err


@pytest.fixture
def bert_run_dir(synthetic_data_dir, tfds_dir, tmp_path_factory):
    return trained_run("bert", synthetic_data_dir, tfds_dir, tmp_path_factory)


def test_serving_function_applies_tweet_preprocessing_in_graph(exported):
    bert, _ = exported["bert"]
    config = bert.config.__class__(**{**bert.config.__dict__, "dataset": "twittemp"})
    twitter = inference.Predictor(bert.model, bert.featurizer, bert.heads, config)
    texts = ["@someone sorry http://t.co/x", "sorry @other www.example.org/a", "@a@b c"]
    served = export.build_serving_module(twitter).serve(texts)["newsemp"].numpy()
    np.testing.assert_allclose(served, twitter.predict_probs(texts)[0], atol=1e-5)
    # The placeholders matter: the raw texts give other numbers.
    assert not np.allclose(served, bert.predict_probs(texts)[0], atol=1e-7)
