"""Exporting a finished run: a Keras `.keras` model and a self-contained TensorFlow SavedModel.

`export(run_dir, out_dir)` writes into `out_dir` (built in a temporary sibling folder, then renamed
into place, so a half-written export never looks complete):

- `model.keras`: the `MultiTaskClassifier` (token ids in, per-head logits out). Loading it needs
  this suite's classes registered: use `load_keras_model`, which imports them.
- `saved_model/`: a `tf.Module` whose `serving_default` signature takes a 1-D `tf.string` batch
  named `texts` of RAW texts and returns `{head name: float32 [B, C] probabilities}`. Everything
  happens inside the graph: TwittEmp's `<URL>`/`<USER>` replacement (target twittemp*), the
  MAX_TEXT_CHARS cut, tokenization (keras-hub `BertTokenizer` for BERT, `TextVectorization` for
  GloVe) and padding. A `labels` signature returns `{head name: tf.string [C]}` class names. It
  loads with plain TensorFlow, without this suite, keras or keras-hub; a BERT export uses
  tensorflow-text ops, so `import tensorflow_text` first (TF Serving has them built in).
- `vocab.txt` and `export.json` (heads, label names, positive classes, preprocessing, the run's
  config) for anyone rebuilding the featurizer by hand.

The exported model computes in float32 by default (see `inference`), and gives the same
probabilities as `inference.Predictor.predict` on the same texts.

Example:

    export("runs/bert/newsemp/seed0", "exports/bert-newsemp")

    import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the tokenizer ops)
    serve = tf.saved_model.load("exports/bert-newsemp/saved_model").signatures["serving_default"]
    serve(texts=tf.constant(["I feel so sorry for them."]))["newsemp"]  # [[p(no_emp.), p(emp.)]]
"""

import dataclasses
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from empathy_tf import config as config_lib
from empathy_tf import inference, io_utils
from empathy_tf.errors import ConfigError

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"


def build_serving_module(predictor):
    """A `tf.Module` with the `serve` (raw texts -> probabilities) and `labels` functions."""
    module = tf.Module()
    # Attributes make the variables and lookup tables part of the SavedModel.
    module.model = predictor.model
    featurizer = predictor.featurizer
    module.text_layer = getattr(featurizer, "tokenizer", None) or featurizer.vectorizer
    heads = predictor.heads
    pad_id = predictor.pad_id
    model = predictor.model

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(texts):
        def classify():
            ids = predictor.encode_graph(texts)
            token_ids = ids.to_tensor(default_value=pad_id)
            mask = tf.sequence_mask(ids.row_lengths(), maxlen=tf.shape(token_ids)[1])
            probs = model.probabilities(model({"token_ids": token_ids, "padding_mask": mask},
                                              training=False))
            return tuple(tf.cast(p, tf.float32) for p in probs)

        def nothing():  # the encoders cannot run on a batch of zero texts
            return tuple(tf.zeros([0, len(h.label_names)], tf.float32) for h in heads)

        probs = tf.cond(tf.size(texts) > 0, classify, nothing)
        return {h.output_name: p for h, p in zip(heads, probs)}

    @tf.function(input_signature=[])
    def labels():
        return {h.output_name: tf.constant(list(h.label_names), tf.string) for h in heads}

    module.serve = serve
    module.labels = labels
    return module


def save_keras(predictor, path):
    predictor.model.save(path)


def load_keras_model(path):
    """Loads a `model.keras` written by `export` (registers this suite's layer classes first).

    The model is rebuilt under the dtype policy it was saved with, then the global policy is
    restored: MultiTaskClassifier's dropout takes the global policy when it is created, so loading
    a float32 model in a process set to mixed_bfloat16 would otherwise round its pooled vector.
    """
    import json
    import zipfile
    from empathy_tf import encoders, models  # noqa: F401 pylint: disable=unused-import
    from baselines import encoders as glove_encoders  # noqa: F401 pylint: disable=unused-import
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))["config"].get("dtype")
    policy = keras.mixed_precision.global_policy()
    try:
        if isinstance(saved, dict):
            keras.mixed_precision.set_global_policy(saved.get("config", {}).get("name", "float32"))
        return keras.saving.load_model(path)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _metadata(predictor):
    return {
        "run_dir": predictor.run_dir,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "task": predictor.target.name,
        "heads": [{**dataclasses.asdict(h), "output": h.output_name} for h in predictor.heads],
        "tweet_preprocessing": predictor.preprocess_tweets,
        "precision": predictor.config.precision,
        "featurizer": ("wordpiece" if predictor.config.method != "glove" else "words"),
        "max_seq_length": getattr(predictor.featurizer, "max_seq_length", None),
        "max_words": getattr(predictor.featurizer, "max_words", None),
        "config": config_lib.to_dict(predictor.config),
        "signatures": {"serving_default": "texts: tf.string [B] -> {head: float32 [B, C]}",
                       "labels": "-> {head: tf.string [C]}"},
    }


def export(run_dir, out_dir, overwrite=False, precision="float32"):
    """Exports a finished neural run; see the module docstring.

    Args:
        run_dir: the run folder (`<output_dir>/<experiment>/<dataset>/seed<N>`).
        out_dir: where to write; must not exist, or be empty, unless `overwrite`.
        overwrite: replace an existing export in `out_dir`.
        precision: compute precision of the exported model (None: the run's own).

    Returns:
        {"keras": path, "saved_model": path, "metadata": path}.

    Raises:
        ConfigError: not a finished neural run, or `out_dir` holds something and not `overwrite`.
    """
    out_dir = os.path.abspath(os.path.expanduser(out_dir))
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ConfigError(f"{out_dir} already exists and is not empty; pass --overwrite to "
                          "replace it or choose another --out")
    predictor = inference.load_predictor(run_dir, precision=precision)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(out_dir)}-", dir=parent)
    try:
        save_keras(predictor, os.path.join(tmp, KERAS_FILE))
        module = build_serving_module(predictor)
        tf.saved_model.save(module, os.path.join(tmp, SAVED_MODEL_DIR),
                            signatures={"serving_default": module.serve, "labels": module.labels})
        vocabulary = predictor.featurizer.vocabulary if hasattr(
            predictor.featurizer, "vocabulary") else predictor.featurizer.tokenizer.get_vocabulary()
        io_utils.atomic_write_text(os.path.join(tmp, "vocab.txt"), "\n".join(vocabulary))
        io_utils.atomic_write_json(os.path.join(tmp, "export.json"), _metadata(predictor))
        aside = None
        if os.path.exists(out_dir):  # keep the old export until the new one is in place
            aside = f"{tmp}-replaced"
            os.replace(out_dir, aside)
        os.replace(tmp, out_dir)
        if aside:
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"keras": os.path.join(out_dir, KERAS_FILE),
            "saved_model": os.path.join(out_dir, SAVED_MODEL_DIR),
            "metadata": os.path.join(out_dir, "export.json")}


def run_cli(run_dir, out_dir, overwrite=False, precision="float32"):
    """What `python -m experiments.export` does; returns the exit code (2 for user errors)."""
    import sys
    from empathy_tf.errors import EmpathyTFError
    if not run_dir or not out_dir:
        print("error: --run and --out are required", file=sys.stderr)
        return 2
    try:
        paths = export(run_dir, out_dir, overwrite=overwrite, precision=precision)
    except EmpathyTFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
