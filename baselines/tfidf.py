"""TF-IDF + logistic regression baseline, with C tuned on the dev set.

Word 1-2 gram TF-IDF (sublinear tf) feeds a ``LogisticRegression``; the vectoriser is fitted once on
the training texts and one classifier is trained per C of the grid. The C with the best dev F1
(of the positive class, or macro-F1 when there is none) is kept, trained on train only (no refit on
train + dev, so dev stays a clean model-selection set, as for the neural baselines).

Example:
    >>> from baselines.tfidf import train_tfidf_lr
    >>> model, info = train_tfidf_lr(train_texts, train_labels, dev_texts, dev_labels, seed=0)  # doctest: +SKIP
    >>> info["C"], info["dev_f1_by_C"]                                                    # doctest: +SKIP
    (10, {0.01: 0.41, 0.1: 0.55, 1: 0.63, 10: 0.66, 100: 0.64})
    >>> model.predict(["I am so sorry you are going through this."])                      # doctest: +SKIP
    array([1])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline

from empathy_tf.errors import ConfigError, DataError


def train_tfidf_lr(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    dev_texts: Sequence[str],
    dev_labels: Sequence[int],
    seed: int,
    positive_label: int | None = 1,
    c_grid: Sequence[float] = (0.01, 0.1, 1, 10, 100),
) -> tuple[Pipeline, dict]:
    """Trains TF-IDF + logistic regression, choosing C by dev F1.

    Args:
        train_texts: Training texts.
        train_labels: Integer label per training text.
        dev_texts: Dev texts, used only to choose C.
        dev_labels: Integer label per dev text.
        seed: ``random_state`` of the classifier (the lbfgs solver is deterministic anyway).
        positive_label: Class whose F1 selects C; ``None`` selects by macro-F1 (multi-class data).
        c_grid: Inverse regularisation strengths to try. Ties go to the earliest C in the grid.

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
        if positive_label is None:
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
        "metric": "macro_f1" if positive_label is None else "f1_pos",
    }
