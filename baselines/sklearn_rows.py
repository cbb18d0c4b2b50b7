"""Rows that need no neural network: TF-IDF + logistic regression, and predicting all-positive.

`all_positive` is the floor readers need to see: on a balanced binary task it scores a
positive-class F1 near 0.67 without looking at the text (and a macro-F1 near 0.33).

TF-IDF: word 1-2 gram TF-IDF (sublinear tf) feeds a ``LogisticRegression``; the vectoriser is fitted
once on the training texts and one classifier is trained per C of the grid. The C with the best dev
score (the run's `selection`: macro-F1 by default) is kept, trained on train only (no refit on
train + dev, so dev stays a clean model-selection set, as for the neural rows).

Example:

    model, info = train_tfidf_lr(train_texts, train_labels, dev_texts, dev_labels, seed=0)
    info["C"], info["dev_f1_by_C"]          # (10, {0.01: 0.41, 0.1: 0.55, 1: 0.63, 10: 0.66, 100: 0.64})
    model.predict(["I am so sorry you are going through this."])     # array([1])
"""

import os
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline

from empathy_tf import io_utils
from empathy_tf.errors import ConfigError, DataError
from empathy_tf.eval import metrics as metrics_lib
from empathy_tf.methods.base import Method, register


class SklearnRow(Method):
    """A row that predicts class probabilities for texts without a neural network."""

    sections = ("data", "trainer.selection")

    def validate(self, config):
        super().validate(config)
        from empathy_tf.data import tasks
        task = tasks.get_task(config.data.dataset, **config.data.csv_options())
        if task.multi_label:
            raise ConfigError(f"{self.name} supports single-label tasks only, not {task.name}")

    def fit_predictor(self, config, data):
        """A function split -> probabilities [n, C], and details for metrics.json."""
        raise NotImplementedError

    def run(self, config, datas, run_dir, ctx, run_cell):
        data = datas[0]
        predict, details = self.fit_predictor(config, data)
        result = {split: metrics_lib.classification_metrics(
            getattr(data, split).labels, predict(getattr(data, split)), data.task.positive_class)
            for split in ("dev", "test")}
        io_utils.atomic_save_npz(os.path.join(run_dir, "predictions.npz"), ids=data.test.ids,
                                 labels=data.test.labels, probs=predict(data.test))
        result["tasks"] = {data.task.name: {"dev": result["dev"], "test": result["test"]}}
        result["details"] = details
        result["selection"] = config.trainer.selection
        return result


@register
class AllPositive(SklearnRow):
    name = "all_positive"
    sections = ("data",)

    def fit_predictor(self, config, data):
        task = data.task
        if task.positive_class is None:
            raise ConfigError(f"all_positive needs a binary task; {task.name} has no positive class")

        def predict(split):
            probs = np.zeros([len(split), task.num_classes], np.float32)
            probs[:, task.positive_class] = 1.0
            return probs
        return predict, {}


@register
class TfidfLR(SklearnRow):
    name = "tfidf"

    def fit_predictor(self, config, data):
        task = data.task
        model, details = train_tfidf_lr(data.train.texts, data.train.labels, data.dev.texts,
                                        data.dev.labels, seed=config.seed,
                                        positive_label=task.positive_class,
                                        selection=config.trainer.selection)

        def predict(split):
            probs = np.zeros([len(split), task.num_classes], np.float32)
            probs[:, model.classes_] = model.predict_proba(split.texts)
            return probs
        return predict, details


def train_tfidf_lr(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    dev_texts: Sequence[str],
    dev_labels: Sequence[int],
    seed: int,
    positive_label: int | None = 1,
    c_grid: Sequence[float] = (0.01, 0.1, 1, 10, 100),
    selection: str = "macro_f1",
) -> tuple[Pipeline, dict]:
    """Trains TF-IDF + logistic regression, choosing C by dev macro-F1 (or positive-class F1).

    Args:
        train_texts: Training texts.
        train_labels: Integer label per training text.
        dev_texts: Dev texts, used only to choose C.
        dev_labels: Integer label per dev text.
        seed: ``random_state`` of the classifier (the lbfgs solver is deterministic anyway).
        positive_label: The positive class; ``None`` for multi-class data (then macro-F1 selects).
        c_grid: Inverse regularisation strengths to try. Ties go to the earliest C in the grid.
        selection: ``"macro_f1"`` or ``"f1"`` (the positive class's), as for the neural rows.

    Returns:
        ``(pipeline, info)``: the fitted ``Pipeline`` (steps ``"tfidf"`` and ``"lr"``; call
        ``predict`` / ``predict_proba`` on raw texts) and ``{"C": best C, "dev_f1_by_C": {C: F1},
        "metric": "f1_pos" | "macro_f1"}``.

    Raises:
        DataError: Texts and labels differ in length, a split is empty, or train has one class.
        ConfigError: ``c_grid`` is empty or ``positive_label`` is not a training label.
    """
    train_texts, dev_texts = list(train_texts), list(dev_texts)
    y_train, y_dev = np.asarray(train_labels), np.asarray(dev_labels)
    for split, texts, labels in (("train", train_texts, y_train), ("dev", dev_texts, y_dev)):
        if len(texts) != len(labels):
            raise DataError(f"{split}: {len(texts)} texts but {len(labels)} labels")
        if not texts:
            raise DataError(f"{split}: no examples")
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise DataError(f"train: every example has label {classes[0]!r}; need at least two classes")
    c_grid = list(c_grid)
    if not c_grid:
        raise ConfigError("c_grid is empty")
    if positive_label is not None and positive_label not in classes:
        raise ConfigError(f"positive_label {positive_label!r} is not a training label (labels: {classes.tolist()})")

    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        # min_df=1: the empathy sets are small, and C (tuned below) already controls rare n-grams.
        min_df=1,
        # Keep one-character tokens ("I", "u"): first-person and informal words matter for empathy.
        token_pattern=r"(?u)\b\w+\b",
        strip_accents="unicode",
        dtype=np.float32,
    )
    x_train = vectorizer.fit_transform(train_texts)
    x_dev = vectorizer.transform(dev_texts)

    def dev_f1(pred):
        if positive_label is None or selection == "macro_f1":
            return float(f1_score(y_dev, pred, average="macro", zero_division=0))
        return float(f1_score(y_dev, pred, labels=[positive_label], average="macro", zero_division=0))

    best_c, best_f1, best_model, f1_by_c = None, -1.0, None, {}
    for c in c_grid:
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        model.fit(x_train, y_train)
        f1_by_c[c] = dev_f1(model.predict(x_dev))
        if f1_by_c[c] > best_f1:  # strict: ties keep the earlier (by default, more regularised) C
            best_c, best_f1, best_model = c, f1_by_c[c], model

    # Both steps are already fitted; the pipeline just bundles them for predict on raw texts.
    pipeline = Pipeline([("tfidf", vectorizer), ("lr", best_model)])
    return pipeline, {
        "C": best_c,
        "dev_f1_by_C": f1_by_c,
        "metric": "macro_f1" if positive_label is None or selection == "macro_f1" else "f1_pos",
    }
