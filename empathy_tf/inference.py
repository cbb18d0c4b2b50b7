"""Classifying new texts with a finished run folder (the paper's Table 1, for any input).

`load_predictor(run_dir)` rebuilds what training used, from the run folder alone: the featurizer
from `vocab.txt` (a WordPiece `BertTokenizer` for BERT methods, never a download; a
`TextVectorization` for the GloVe baselines), the model from `config.json` via
`runner.build_model`, then `best.weights.h5` on top (for a pretrained encoder the preset weights
are loaded first and overwritten). TF-IDF and all-positive runs have no Keras model and are refused.

`Predictor.predict(texts)` returns, per text, the target task's label and positive-class
probability and, for a multi-task model, every auxiliary head's prediction too (sentiment label,
emotion label(s)). Texts go through the same steps as training data: TwittEmp's `<URL>`/`<USER>`
replacement when the target is a TwittEmp task, truncation to `readers.MAX_TEXT_CHARS` characters,
then the featurizer (which cuts to `max_seq_length` wordpieces / 400 words). The model runs in
inference mode (no dropout), so a text always gets the same answer.

An empty (or whitespace-only) text is not an error: it is classified as the empty string
(`[CLS] [SEP]` for BERT, a single `[UNK]` for GloVe), and its result carries `"empty": True` so
callers can ignore it.

Predictions run in float32 by default, whatever precision training used: `precision="auto"`
resolves differently on different hardware, float32 gives the same answer everywhere (the
weights are float32 either way). Pass `precision=None` to use the run's own precision.

Example:

    predictor = load_predictor("runs/mt_sst_emonet/newsemp/seed0")
    [result] = predictor.predict(["I am so sorry for the families who lost their homes."])
    result["label"], result["probability"]    # ('empathy', 0.91): target task, positive class
    result["heads"]["sst2"]["label"]          # 'negative'
    result["heads"]["carer"]["label"]         # 'sadness'
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from empathy_tf import config as config_lib
from empathy_tf import io_utils, runner, training
from empathy_tf.data import featurize, pipeline, readers, tasks as tasks_lib
from empathy_tf.errors import ConfigError
from empathy_tf.models import HeadSpec

NEURAL_METHODS = ("single", "mt", "kd", "glove")
BATCH_SIZE = 64

# In-graph (RE2) twins of readers.preprocess_tweet, for the exported SavedModel. RE2 has no
# look-behind and ASCII-only \w and \s, so Python's Unicode classes are spelled out: \w is
# [\pL\pN_] and \s is str.isspace(). tests/inference_test.py checks both give the same text.
_PY_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}" \
            r"\x{202f}\x{205f}\x{3000}"
RE2_URL = r"(?i)(?:https?://|www\.)[^" + _PY_SPACE + r"]+"
RE2_USER = r"(^|[^\pL\pN_])@[\pL\pN_]+"


@dataclasses.dataclass(frozen=True)
class HeadInfo:
    """What a head predicts: its task name, class names and how to read its probabilities."""
    name: str
    label_names: tuple
    multi_label: bool = False
    positive_class: int | None = None

    @property
    def output_name(self):
        """The head's key in the SavedModel signature (task names like csv:PATH sanitised)."""
        return self.name.replace(":", "_").replace("/", "_")


@dataclasses.dataclass
class _Vocabulary:
    """The two attributes of runner.Featurized that runner.build_model reads."""
    vocabulary: list
    pad_id: int


class SavedWordFeaturizer(featurize.WordFeaturizer):
    """`featurize.WordFeaturizer` rebuilt from a saved vocabulary instead of adapted on texts.

    Args:
        vocabulary: `TextVectorization.get_vocabulary()` of training ('' and '[UNK]' first).
        max_words: Words kept per text (the training default).
    """

    def __init__(self, vocabulary, max_words=400):  # pylint: disable=super-init-not-called
        vocabulary = list(vocabulary)
        if vocabulary[:2] != ["", "[UNK]"]:
            raise ConfigError("the GloVe vocabulary must start with '' and '[UNK]' (from "
                              f"TextVectorization.get_vocabulary()), found {vocabulary[:2]}")
        self.max_words = int(max_words)
        self.vectorizer = keras.layers.TextVectorization(
            standardize="lower_and_strip_punctuation", split="whitespace", output_mode="int",
            ragged=True, vocabulary=vocabulary[2:])
        self.vocabulary = self.vectorizer.get_vocabulary()
        if self.vocabulary != vocabulary:
            raise ConfigError("the saved GloVe vocabulary does not rebuild identically "
                              "(duplicate words?)")
        self.pad_id = 0
        self.fingerprint = io_utils.fingerprint("words", self.vocabulary, self.max_words)

    def _encode_graph(self, texts):
        # Same steps as WordFeaturizer.encode, as graph ops so the SavedModel can run them too.
        ids = tf.cast(self.vectorizer(texts), tf.int32)[:, : self.max_words]
        empty = tf.equal(ids.row_lengths(), 0)
        filler = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], self.UNK_ID),
            tf.cast(empty, tf.int64))
        return tf.concat([ids, filler], axis=1)

    def encode(self, texts):
        texts = list(texts)
        if not texts:
            return featurize.Tokens(np.zeros([0], np.int32), np.zeros([0], np.int32))
        from_ragged = featurize._from_ragged  # pylint: disable=protected-access
        chunks = [texts[i:i + 4096] for i in range(0, len(texts), 4096)]
        return featurize.Tokens.concat([from_ragged(self._encode_graph(tf.constant(chunk)))
                                        for chunk in chunks])


def _is_cased(vocabulary):
    # vocab.txt does not record the tokenizer's `lowercase`; an uncased WordPiece vocabulary
    # (MiniLM, bert_*_uncased, the tiny encoder's) holds next to no uppercase token.
    words = [t for t in vocabulary if not (t.startswith("[") and t.endswith("]"))]
    upper = sum(t != t.lower() for t in words)
    return upper > 0.01 * max(len(words), 1)


def read_run_config(run_dir):
    """The `ExperimentConfig` recorded in a run folder (unknown keys ignored, with a warning)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir}: not a run folder (no config.json); expected "
                          "<output_dir>/<experiment>/<dataset>/seed<N>")
    recorded = io_utils.read_json(path).get("config", {})
    fields = {f.name: f for f in dataclasses.fields(config_lib.ExperimentConfig)}
    unknown = sorted(set(recorded) - set(fields))
    if unknown:
        logging.warning("%s: ignoring config keys this version does not know: %s", path, unknown)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items() if k in fields}
    return config_lib.ExperimentConfig(**values)


def _task_heads(config, model_info):
    if model_info:
        return [HeadInfo(h["name"], tuple(h["label_names"]), h["multi_label"], h["positive_class"])
                for h in model_info["heads"]]
    infos = []
    for name in (config.dataset, *config.resolved_aux_tasks()):
        task = tasks_lib.get_task(name)  # csv:PATH tasks read their file for the label names
        infos.append(HeadInfo(task.name, tuple(task.label_names), task.multi_label,
                              task.positive_class))
    return infos


def load_predictor(run_dir, precision="float32"):
    """Rebuilds a finished run's featurizer and model; see the module docstring.

    Args:
        run_dir: `<output_dir>/<experiment>/<dataset>/seed<N>` of a finished neural run.
        precision: Compute precision ("float32", "mixed_bfloat16", ...) or None for the run's own.

    Returns:
        A `Predictor`.

    Raises:
        ConfigError: not a run folder, an unfinished run, or a method without a Keras model.
    """
    run_dir = os.path.abspath(os.path.expanduser(run_dir))
    config = read_run_config(run_dir)
    if config.method not in NEURAL_METHODS:
        raise ConfigError(f"{run_dir}: method {config.method!r} has no Keras model to predict "
                          f"with; prediction supports {', '.join(NEURAL_METHODS)} runs")
    for name in ("metrics.json", "best.weights.h5", "vocab.txt"):
        if not os.path.isfile(os.path.join(run_dir, name)):
            raise ConfigError(f"{run_dir}: no {name}; the run has not finished (rerun "
                              "experiments.run on it to resume)")
    with open(os.path.join(run_dir, "vocab.txt"), encoding="utf-8") as f:
        vocabulary = f.read().split("\n")  # not splitlines(): '' (GloVe padding) is a real entry
    info_path = os.path.join(run_dir, "model.json")
    model_info = io_utils.read_json(info_path) if os.path.isfile(info_path) else None
    if model_info is None:
        logging.warning("%s has no model.json (made by an older version): label names come from "
                        "the task registry and the tokenizer's casing is inferred from vocab.txt",
                        run_dir)
    heads = _task_heads(config, model_info)
    if precision is not None:
        config = dataclasses.replace(config, precision=precision)
    if config.method == "glove":
        featurizer = SavedWordFeaturizer(vocabulary)
    else:
        import keras_hub
        lowercase = model_info["lowercase"] if model_info else not _is_cased(vocabulary)
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)
        featurizer = featurize.WordPieceFeaturizer(tokenizer, config.max_seq_length)
    # build_model sets the global dtype policy; restore it so loading has no side effect.
    policy = keras.mixed_precision.global_policy()
    try:
        model = runner.build_model(config, _Vocabulary(vocabulary, featurizer.pad_id),
                                   [HeadSpec(h.name, len(h.label_names), h.multi_label)
                                    for h in heads])
    finally:
        keras.mixed_precision.set_global_policy(policy)
    model.load_weights(os.path.join(run_dir, "best.weights.h5"))
    return Predictor(model, featurizer, heads, config, run_dir)


class Predictor:
    """A model and its featurizer; `predict` classifies raw texts.

    Args:
        model: a built `MultiTaskClassifier` holding the trained weights.
        featurizer: `featurize.WordPieceFeaturizer` or `SavedWordFeaturizer`.
        heads: `HeadInfo` per head, the target task first.
        config: the run's `ExperimentConfig`.
        run_dir: where it came from (for messages and export metadata).
    """

    def __init__(self, model, featurizer, heads, config, run_dir=None):
        self.model = model
        self.featurizer = featurizer
        self.heads = list(heads)
        self.config = config
        self.run_dir = run_dir
        self.pad_id = featurizer.pad_id
        # TwittEmp texts were preprocessed at reading time (readers._read_twittemp); do the same.
        self.preprocess_tweets = tasks_lib.get_task(config.dataset).dataset == "twittemp"
        self._predict_fn = training.make_predict_fn(model)

    @property
    def target(self):
        return self.heads[0]

    def with_model(self, model):
        """The same featurizer and heads around another model (e.g. one reloaded from .keras)."""
        return Predictor(model, self.featurizer, self.heads, self.config, self.run_dir)

    # -- text -> model input ------------------------------------------------------------------

    def prepare(self, text):
        """The text as training saw it: tweet placeholders (TwittEmp), at most MAX_TEXT_CHARS."""
        if self.preprocess_tweets:
            text = readers.preprocess_tweet(text)
        return text[:readers.MAX_TEXT_CHARS]

    def prepare_graph(self, texts):
        """`prepare` as graph ops on a 1-D tf.string batch (used by the SavedModel)."""
        if self.preprocess_tweets:
            texts = tf.strings.regex_replace(texts, RE2_URL, "<URL>")
            texts = tf.strings.regex_replace(texts, RE2_USER, r"\1<USER>")
        return tf.strings.substr(texts, 0, readers.MAX_TEXT_CHARS, unit="UTF8_CHAR")

    def encode_graph(self, texts):
        """Raw 1-D tf.string texts -> ragged int32 token ids, entirely in graph ops."""
        encode = self.featurizer._encode_graph  # pylint: disable=protected-access
        return encode(self.prepare_graph(texts))

    # -- prediction -----------------------------------------------------------------------------

    def predict_probs(self, texts):
        """Probabilities of every head: a list (head order) of float32 arrays [N, C]."""
        texts = [self.prepare(_as_text(t)) for t in texts]
        out = [np.zeros([len(texts), len(h.label_names)], np.float32) for h in self.heads]
        if not texts:
            return out
        tokens = self.featurizer.encode(texts)
        for features, index in pipeline.inference_dataset(tokens, BATCH_SIZE, self.pad_id):
            index = index.numpy()
            for o, probs in zip(out, self._predict_fn(features)):
                o[index] = probs.numpy()
        return out

    def predict(self, texts):
        """Classifies raw texts; returns one dict per text.

        Each dict holds `text`, `empty` (the text was blank, see the module docstring), `task`
        (the target task), `positive_label` (its positive class name, None for a task without
        one), `label` (the predicted class name), `probability` (the positive-class probability,
        or the predicted class's for a task without a positive class) and `heads`:
        per head name, `label`, `probability` (of that label), `probabilities` (class -> prob)
        and, for multi-label heads, `labels` (every class with probability >= 0.5).
        """
        texts = [_as_text(t) for t in texts]
        probs = self.predict_probs(texts)
        results = []
        for i, text in enumerate(texts):
            heads = {h.name: _read_head(h, p[i]) for h, p in zip(self.heads, probs)}
            target = heads[self.target.name]
            positive = self.target.positive_class
            results.append({
                "text": text,
                "empty": not text.strip(),
                "task": self.target.name,
                "positive_label": None if positive is None else self.target.label_names[positive],
                "label": target["label"],
                "probability": (float(probs[0][i][positive]) if positive is not None
                                else target["probability"]),
                "heads": heads,
            })
        return results


def _as_text(text):
    if isinstance(text, bytes):
        return text.decode("utf-8")
    if not isinstance(text, str):
        raise ConfigError(f"expected texts as str, got {type(text).__name__}: {text!r}")
    return text


def _read_head(head, probs):
    probs = [float(p) for p in probs]
    best = int(np.argmax(probs))
    result = {"label": head.label_names[best], "probability": probs[best],
              "probabilities": dict(zip(head.label_names, probs))}
    if head.multi_label:
        result["labels"] = [n for n, p in zip(head.label_names, probs) if p >= 0.5]
    return result


def format_table(results, width=60):
    """A plain-text table: text, target label and probability, then one column per other head."""
    if not results:
        return "(no texts)\n"
    target = results[0]["task"]
    others = [name for name in results[0]["heads"] if name != target]
    positive = results[0]["positive_label"]
    header = ["text", target, f"p({positive})" if positive else "p"] + others
    rows = []
    for r in results:
        text = " ".join(r["text"].split()) or "(empty)"
        if len(text) > width:
            text = text[: width - 3] + "..."
        row = [text, r["label"] + (" (empty text)" if r["empty"] else ""),
               f"{r['probability']:.3f}"]
        for name in others:
            h = r["heads"][name]
            label = (",".join(h["labels"]) or "-") if "labels" in h else h["label"]
            row.append(f"{label} ({h['probability']:.2f})")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
             for row in [header, ["-" * w for w in widths], *rows]]
    return "\n".join(lines) + "\n"


def read_texts(args, input_path=None, stdin=None):
    """The texts to classify: command-line arguments, else one per line of `input_path`, else
    one per line of `stdin` (a line of only whitespace is kept, as an empty text)."""
    if args and input_path:
        raise ConfigError("give texts either as arguments or with --input, not both")
    if args:
        return list(args)
    if input_path:
        if not os.path.isfile(input_path):
            raise ConfigError(f"--input={input_path}: no such file")
        with open(input_path, encoding="utf-8") as f:
            return f.read().splitlines()
    return stdin.read().splitlines() if stdin is not None else []


def format_jsonl(results):
    import json
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)


def run_cli(run_dir, args, input_path, fmt, stdin, stdout, stderr):
    """What `python -m experiments.predict` does; returns the exit code (2 for user errors)."""
    from empathy_tf.errors import EmpathyTFError
    try:
        if fmt not in ("table", "jsonl"):
            raise ConfigError(f"--format={fmt}: expected table or jsonl")
        if not run_dir:
            raise ConfigError("--run is required: a run folder "
                              "<output_dir>/<exp>/<dataset>/seed<N>")
        if not args and not input_path and stdin.isatty():
            print("reading texts from standard input, one per line (Ctrl-D to end)", file=stderr)
        texts = read_texts(args, input_path, stdin)
        results = load_predictor(run_dir).predict(texts)
    except (EmpathyTFError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=stderr)
        return 2
    stdout.write(format_table(results) if fmt == "table" else format_jsonl(results))
    stdout.flush()
    return 0
