"""Exporting a finished run: a Keras `.keras` model and a self-contained TensorFlow SavedModel.

`export(run_dir, out_dir)` writes into `out_dir` (built in a temporary sibling folder, then renamed
into place, so a half-written export never looks complete):

- `model.keras`: the `MultiTaskClassifier` (token ids in, per-head logits out; no text
  preprocessing). Loading it needs this suite's classes registered: `import
  empathy_tf.models.saving` before `keras.saving.load_model` (a GloVe export: `import
  baselines.glove` too), or use `load_keras_model`, which does both.
- `saved_model/`: a `tf.Module` whose `serving_default` signature takes a 1-D `tf.string` batch
  named `texts` of RAW texts and returns, per head, `{head name: float32 [B, C] probabilities,
  "<head name>_label": tf.string [B] the predicted label name}` (multi-label heads: every label
  with probability >= 0.5, comma-joined). Everything
  happens inside the graph, with the run's own preprocessor (data/preprocessor.py, the code that
  tokenized the training data): `<URL>`/`<USER>` replacement for tweet sources, the
  MAX_TEXT_CHARS cut, tokenization (keras-hub `BertTokenizer` for BERT, `TextVectorization` for
  GloVe) and padding. A `labels` signature returns `{head name: tf.string [C]}` class names. It
  loads with plain TensorFlow, without this suite, keras or keras-hub; a BERT export uses
  tensorflow-text ops, so `import tensorflow_text` first (TF Serving has them built in).
- `vocab.txt`, `preprocessor.json` and `export.json` (heads, label names, positive classes,
  preprocessing, the run's config) for anyone rebuilding the preprocessor by hand.

The exported model computes in float32 by default (see `predictor`), and gives the same
probabilities as `predictor.Predictor.predict` on the same texts; `model.keras` reloads to the same
function with the same kernels (its layers are this suite's registered classes).

Example:

    export("runs/bert/newsemp/seed0-by_response_id", "exports/bert-newsemp")

    import tensorflow as tf, tensorflow_text  # noqa: F401 (registers the tokenizer ops)
    serve = tf.saved_model.load("exports/bert-newsemp/saved_model").signatures["serving_default"]
    out = serve(texts=tf.constant(["I feel so sorry for them."]))
    out["newsemp"], out["newsemp_label"]   # [[p(no_empathy), p(empathy)]], [b'empathy']
"""

import dataclasses
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from empathy_tf import io_utils, methods
from empathy_tf.errors import ConfigError, EmpathyTFError
from empathy_tf.serving import predictor as predictor_lib

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"


def build_serving_module(predictor):
    """A `tf.Module` with the `serve` (raw texts -> probabilities) and `labels` functions."""
    module = tf.Module()
    # Attributes make the variables and lookup tables part of the SavedModel.
    module.model = predictor.model
    preprocessor = predictor.preprocessor
    module.text_layer = getattr(preprocessor, "tokenizer", None) or preprocessor.vectorizer
    heads = predictor.heads
    pad_id = predictor.pad_id
    model = predictor.model

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def serve(texts):
        def classify():
            ids = preprocessor.encode_graph(preprocessor.normalize_graph(texts))
            token_ids = ids.to_tensor(default_value=pad_id)
            mask = tf.sequence_mask(ids.row_lengths(), maxlen=tf.shape(token_ids)[1])
            probs = model.probabilities(model({"token_ids": token_ids, "padding_mask": mask},
                                              training=False))
            return tuple(tf.cast(p, tf.float32) for p in probs)

        def nothing():  # the encoders cannot run on a batch of zero texts
            return tuple(tf.zeros([0, len(h.label_names)], tf.float32) for h in heads)

        probs = tf.cond(tf.size(texts) > 0, classify, nothing)
        out = {h.output_name: p for h, p in zip(heads, probs)}
        out.update({label_output(h): predicted_labels(h, p) for h, p in zip(heads, probs)})
        return out

    @tf.function(autograph=False, input_signature=[])
    def labels():
        return {h.output_name: tf.constant(list(h.label_names), tf.string) for h in heads}

    module.serve = serve
    module.labels = labels
    return module


def label_output(head):
    """The signature key of a head's predicted label names: `<head>_label`."""
    return f"{head.output_name}_label"


def predicted_labels(head, probs):
    """tf.string [B]: the most probable class's name; for a multi-label head, the names of every
    class with probability >= 0.5 joined by commas (empty: none), as `Predictor.predict` says."""
    names = tf.constant(list(head.label_names), tf.string)
    if head.multi_label:
        chosen = tf.ragged.boolean_mask(tf.broadcast_to(names, tf.shape(probs)), probs >= 0.5)
        return tf.strings.reduce_join(chosen, axis=1, separator=",")
    return tf.gather(names, tf.argmax(probs, axis=1))


def save_keras(predictor, path):
    predictor.model.save(path)


def load_keras_model(path):
    """Loads a `model.keras` written by `export` (registers this suite's layer classes first).

    A method defined outside the library (the GloVe baselines) registers its classes when its
    module is imported: `export.json` beside the file names the method, which must be known
    (`import experiments.registry` wires the baselines in).

    The model is rebuilt under the dtype policy it was saved with, then the global policy is
    restored: MultiTaskClassifier's dropout takes the global policy when it is created, so loading
    a float32 model in a process set to mixed_bfloat16 would otherwise round its pooled vector.
    """
    import json
    import zipfile
    import empathy_tf.models.saving  # noqa: F401 pylint: disable=unused-import (registers them)
    exported = os.path.join(os.path.dirname(os.path.abspath(path)), "export.json")
    if os.path.isfile(exported):
        # The run's method module registers its own classes (e.g. the baselines' GloVe encoder).
        methods.get(io_utils.read_json(exported)["config"]["method"])
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
        "tweet_preprocessing": predictor.preprocessor.tweets,
        "precision": predictor.model.dtype_policy.name,
        "preprocessor": predictor.preprocessor.kind,
        "max_seq_length": getattr(predictor.preprocessor, "max_seq_length", None),
        "max_words": getattr(predictor.preprocessor, "max_words", None),
        "config": predictor.config.to_dict(),
        "signatures": {"serving_default": "texts: tf.string [B] -> {head: float32 [B, C] "
                                          "probabilities, head_label: tf.string [B] predicted "
                                          "label name}",
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
    predictor = predictor_lib.load_predictor(run_dir, precision=precision)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(out_dir)}-", dir=parent)
    try:
        save_keras(predictor, os.path.join(tmp, KERAS_FILE))
        module = build_serving_module(predictor)
        tf.saved_model.save(module, os.path.join(tmp, SAVED_MODEL_DIR),
                            signatures={"serving_default": module.serve, "labels": module.labels})
        predictor.preprocessor.save(tmp)
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
