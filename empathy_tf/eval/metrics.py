"""Metrics, computed with scikit-learn from predicted probabilities.

Binary tasks report the paper's precision/recall/F1 of the positive class plus accuracy and macro-F1;
multi-class tasks report accuracy and macro-F1 (their "f1" is macro-F1); multi-label tasks report
micro and macro F1 at threshold 0.5 ("f1" is micro-F1). All values are fractions in [0, 1].

Example:

    classification_metrics(labels=[0, 1, 1], probs=[[.9, .1], [.2, .8], [.6, .4]], positive_class=1)
    # {'precision': 1.0, 'recall': 0.5, 'f1': 0.667, 'accuracy': 0.667, 'macro_f1': 0.667, ...}
"""

import numpy as np
from sklearn import metrics as skm


def classification_metrics(labels, probs, positive_class=1, multi_label=False):
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if multi_label:
        pred = (probs >= 0.5).astype(int)
        return {
            "f1": float(skm.f1_score(labels, pred, average="micro", zero_division=0)),
            "micro_f1": float(skm.f1_score(labels, pred, average="micro", zero_division=0)),
            "macro_f1": float(skm.f1_score(labels, pred, average="macro", zero_division=0)),
            "accuracy": float(skm.accuracy_score(labels, pred)),  # exact match
            "n": int(len(labels)),
        }
    pred = probs.argmax(axis=-1)
    num_classes = probs.shape[-1]
    result = {
        "accuracy": float(skm.accuracy_score(labels, pred)),
        "macro_f1": float(skm.f1_score(labels, pred, average="macro", labels=range(num_classes),
                                       zero_division=0)),
        "n": int(len(labels)),
    }
    if positive_class is None:
        result["f1"] = result["macro_f1"]
        return result
    p, r, f, _ = skm.precision_recall_fscore_support(
        labels, pred, labels=[positive_class], average=None, zero_division=0)
    result.update({"precision": float(p[0]), "recall": float(r[0]), "f1": float(f[0])})
    return result


def selection_score(metrics, selection="macro_f1"):
    """The dev number that picks the best epoch: macro-F1 (default) or positive-class F1 (paper).

    Macro-F1 is the default because a constant predictor cannot win it: on NewsEmp (49% positive)
    predicting every essay empathic scores a positive-class F1 of 0.66, above most trained
    models' first epochs, but a macro-F1 of 0.33. For tasks without a positive class (and
    multi-label ones) "f1" is already macro-/micro-F1.
    """
    if selection not in ("macro_f1", "f1"):
        raise ValueError(f"selection={selection!r}; expected macro_f1 or f1")
    return metrics[selection]
