"""classification_metrics and the selection rule, on hand-checked examples."""

import numpy as np
import pytest

from empathy_tf.eval.metrics import classification_metrics, selection_score


def test_binary_positive_class_and_macro_scores():
    labels = [0, 1, 1, 1, 0, 0]
    probs = [[.9, .1], [.2, .8], [.6, .4], [.3, .7], [.4, .6], [.8, .2]]
    # Predictions 0 1 0 1 1 0: positive class tp=2, fp=1, fn=1.
    m = classification_metrics(labels, probs, positive_class=1)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx(2 / 3) and m["n"] == 6


def test_the_trivial_predictor_scores_high_positive_f1_and_low_macro_f1():
    labels = np.array([1] * 49 + [0] * 51)
    always = np.tile([0.0, 1.0], (100, 1))
    m = classification_metrics(labels, always, positive_class=1)
    assert m["f1"] == pytest.approx(2 * 0.49 / 1.49) and m["recall"] == 1.0
    assert m["macro_f1"] == pytest.approx(0.5 * 2 * 0.49 / 1.49)
    assert selection_score(m) == m["macro_f1"] and selection_score(m, "f1") == m["f1"]
    with pytest.raises(ValueError, match="selection='loss'"):
        selection_score(m, "loss")


def test_multiclass_and_multilabel():
    m = classification_metrics([0, 1, 2, 2], np.eye(3)[[0, 1, 1, 2]], positive_class=None)
    assert m["accuracy"] == 0.75 and m["f1"] == m["macro_f1"]
    assert "precision" not in m
    labels = np.array([[1, 0, 1], [0, 1, 0]])
    probs = np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.7]])   # predicted [1,0,0], [0,1,1]
    m = classification_metrics(labels, probs, multi_label=True)
    assert m["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1)) and m["accuracy"] == 0.0
