"""Classifying new texts with a finished run folder (the paper's Table 1, for any input).

`load_predictor(run_dir)` rebuilds what training used, from the run folder alone: the preprocessor
(data/preprocessor.py: the same text -> ids steps as training, never a download) and the model
(`Method.load_model`: architecture from `model.json`, then `best.weights.h5`). TF-IDF and
all-positive runs have no Keras model and are refused.

`Predictor.predict(texts)` returns, per text, the target task's label and positive-class
probability and, for a multi-task model, every auxiliary head's prediction too (sentiment label,
emotion label(s)). Raw texts go through what a reader does to a file's texts (tweet placeholders
for tweet sources, the `MAX_TEXT_CHARS` cut), then the preprocessor. The model runs in inference
mode (no dropout), so a text always gets the same answer.

An empty (or whitespace-only) text is not an error: it is classified as the empty string
(`[CLS] [SEP]` for BERT, a single `[UNK]` for GloVe), and its result carries `"empty": True`.

Predictions run in float32 by default, whatever precision training used: `precision="auto"`
resolves differently on different hardware, float32 gives the same answer everywhere (the weights
are float32 either way). Pass `precision=None` to use the run's own.

Example:

    predictor = load_predictor("runs/mt_sst_emonet/newsemp/seed0-by_response_id")
    [result] = predictor.predict(["I am so sorry for the families who lost their homes."])
    result["label"], result["probability"]    # ('empathy', 0.91): target task, positive class
    result["heads"]["sst2"]["label"]          # 'negative'
"""

import json
import os

import numpy as np

from empathy_tf import io_utils, methods
from empathy_tf.config import ExperimentConfig
from empathy_tf.errors import ConfigError, EmpathyTFError
from empathy_tf.training import predict as predict_lib

BATCH_SIZE = 64


def load_predictor(run_dir, precision="float32"):
    """Rebuilds a finished run's preprocessor and model; see the module docstring.

    Args:
        run_dir: the folder of a finished run of a method with a Keras model.
        precision: Compute precision ("float32", "mixed_bfloat16", ...) or None for the run's own.

    Raises:
        ConfigError: not a run folder, an unfinished run, or a method without a Keras model.
    """
    run_dir = os.path.abspath(os.path.expanduser(run_dir))
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir}: not a run folder (no config.json); expected "
                          "<output_dir>/<experiment>/<dataset>/seed<N>")
    config = ExperimentConfig.from_dict(io_utils.read_json(path)["config"])
    method = methods.get(config.method)
    if not method.has_keras_model:
        keras_methods = sorted(n for n, m in methods.all_methods().items() if m.has_keras_model)
        raise ConfigError(f"{run_dir}: method {config.method!r} has no Keras model to predict "
                          f"with; prediction supports {', '.join(keras_methods)} runs")
    model, preprocessor, heads = method.load_model(run_dir, precision)
    return Predictor(model, preprocessor, heads, config, run_dir)


class Predictor:
    """A model and its preprocessor; `predict` classifies raw texts.

    Args:
        model: a built `MultiTaskClassifier` holding the trained weights.
        preprocessor: the run's `data.preprocessor.Preprocessor`.
        heads: `models.classifier.HeadSpec` per head, the target task first.
        config: the run's `ExperimentConfig`.
        run_dir: where it came from (for messages and export metadata).
    """

    def __init__(self, model, preprocessor, heads, config, run_dir=None):
        self.model = model
        self.preprocessor = preprocessor
        self.heads = list(heads)
        self.config = config
        self.run_dir = run_dir
        self.pad_id = preprocessor.pad_id

    @property
    def target(self):
        return self.heads[0]

    def with_model(self, model):
        """The same preprocessor and heads around another model (e.g. one reloaded from .keras)."""
        return Predictor(model, self.preprocessor, self.heads, self.config, self.run_dir)

    # -- prediction -----------------------------------------------------------------------------

    def predict_probs(self, texts):
        """Probabilities of every head: a list (head order) of float32 arrays [N, C]."""
        texts = [_as_text(t) for t in texts]
        if not texts:
            return [np.zeros([0, len(h.label_names)], np.float32) for h in self.heads]
        tokens = self.preprocessor.encode(texts, normalize=True)
        return predict_lib.predict_probs(self.model, tokens, batch_size=BATCH_SIZE,
                                         pad_id=self.pad_id)

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
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)


def run_cli(run_dir, args, input_path, fmt, stdin, stdout, stderr):
    """What `python -m experiments.predict` does; returns the exit code (2 for user errors)."""
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
