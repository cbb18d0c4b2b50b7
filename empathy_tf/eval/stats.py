"""Statistics over cells and predictions: mean ± std, paired t intervals, a paired bootstrap.

Two questions a result table answers besides "how high":

- Is row A better than row B across runs? `paired_difference` pairs the per-cell scores of two
  rows by cell (same seed and fold), and gives the mean difference with its 95% t interval and a
  paired t-test p-value.
- Is A better than B on these examples? `paired_bootstrap` resamples the test examples (the same
  resample for both systems) and recomputes the metric of each, so its interval reflects how much
  the difference depends on which examples happened to be tested.

Everything is vectorised: the bootstrap draws, for every resample at once, how often each kind of
example (true label, prediction of A, prediction of B) is drawn, and computes every metric from
those counts (`metrics_from_confusion`).

Example:

    paired_difference({0: 0.70, 1: 0.72, 2: 0.69}, {0: 0.66, 1: 0.69, 2: 0.67})
    # PairedDifference(mean=0.03, ci_low=..., ci_high=..., p_value=..., n=3, note='')
    paired_bootstrap(labels, probs_kd, probs_bert, positive_class=1).observed   # F1(kd) - F1(bert)
"""

import dataclasses

import numpy as np
from scipy import stats as scipy_stats

from empathy_tf.eval import metrics as metrics_lib

CONFIDENCE = 0.95
BOOTSTRAP_METRICS = ("precision", "recall", "f1", "accuracy", "macro_f1")


def mean_std(values):
    """(mean, sample std with ddof=1) as floats; std is 0 for one value, (None, None) for none.

        mean_std([0.6, 0.7])   # (0.65, 0.0707...)
    """
    values = np.asarray([float(v) for v in values], dtype=np.float64)
    if values.size == 0:
        return None, None
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return float(values.mean()), std


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """Mean of a − b over paired cells, its t interval and the paired t-test p-value.

    `ci_low`, `ci_high` and `p_value` are None when undefined (`note` says why); `mean` is None
    only when no cell pairs up.
    """
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n: int
    note: str = ""


def paired_difference(a, b, confidence=CONFIDENCE):
    """Compares per-cell scores paired by key ({key: score}, e.g. key = (seed, fold)).

    Only keys present in both are paired. With n pairs and differences d: mean(d) ± t_{n-1} ·
    sd(d)/√n, and the two-sided paired t-test (the same as `scipy.stats.ttest_rel`).

        paired_difference({0: 3.0, 1: 5.0}, {0: 1.0, 1: 2.0})
        # d = (2, 3): mean 2.5, se 0.5, t_{0.975, 1} = 12.71: CI 2.5 ± 6.35, p = 0.126
    """
    keys = sorted(set(a) & set(b))
    n = len(keys)
    if n == 0:
        return PairedDifference(None, None, None, None, 0, "no cell pairs up")
    d = np.asarray([float(a[k]) - float(b[k]) for k in keys], dtype=np.float64)
    mean = float(d.mean())
    if n < 2:
        return PairedDifference(mean, None, None, None, n, "one pair: no interval")
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        # Every pair differs by the same amount (e.g. both rows predict the same labels): the t
        # statistic is 0/0 or ±inf from rounding noise, which is no evidence either way.
        return PairedDifference(mean, None, None, None, n, "every pair differs equally")
    se = float(d.std(ddof=1) / np.sqrt(n))
    t_quantile = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    p = float(2 * scipy_stats.t.sf(abs(mean / se), df=n - 1))
    return PairedDifference(mean, mean - t_quantile * se, mean + t_quantile * se, p, n)


def pooled_metrics(labels, probs, positive_class, multi_label=None):
    """The metrics of predictions pooled over cells (e.g. every fold's test split), as
    `metrics.classification_metrics`; multi-label when `labels` is a matrix (unless told).

        pooled_metrics(np.concatenate(fold_labels), np.concatenate(fold_probs), 1)["f1"]
    """
    labels = np.asarray(labels)
    if multi_label is None:
        multi_label = labels.ndim == 2
    return metrics_lib.classification_metrics(labels, probs, positive_class, multi_label)


def metrics_from_confusion(confusion, positive_class):
    """Metrics of confusion matrices [..., true, predicted], vectorised over leading axes.

    The same definitions as `metrics.classification_metrics` (scikit-learn with
    zero_division=0): a ratio with a zero denominator is 0; macro-F1 averages every class.

        metrics_from_confusion(np.array([[5, 1], [2, 4]]), 1)["f1"]   # 2·4 / (2·4 + 1 + 2)
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    predicted = confusion.sum(axis=-2)
    actual = confusion.sum(axis=-1)
    total = actual.sum(axis=-1)
    f1_per_class = _ratio(2 * tp, predicted + actual)
    out = {"accuracy": _ratio(tp.sum(axis=-1), total), "macro_f1": f1_per_class.mean(axis=-1)}
    if positive_class is None:
        out["f1"] = out["macro_f1"]
        return out
    k = positive_class
    out.update({"precision": _ratio(tp[..., k], predicted[..., k]),
                "recall": _ratio(tp[..., k], actual[..., k]), "f1": f1_per_class[..., k]})
    return out


def _ratio(num, den):
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
    """Metric of A − metric of B on the examples, with its bootstrap interval and p-value."""
    metric: str
    observed: float
    ci_low: float
    ci_high: float
    p_value: float
    samples: int
    n: int


def paired_bootstrap(labels, probs_a, probs_b, positive_class, metric="f1", samples=10000,
                     seed=0, confidence=CONFIDENCE):
    """Paired bootstrap of metric(A) − metric(B) over examples; deterministic for a seed.

    Args:
        labels: int [n] true classes (single-label tasks).
        probs_a, probs_b: [n, C] predicted probabilities of the two systems for the same
            examples in the same order; or [R, n, C] for R repetitions of each system on the same
            examples (e.g. K-fold run under R seeds): the statistic is then the mean over
            repetitions, and every repetition sees the same resample.
        positive_class: class of precision/recall/F1; None: "f1" is macro-F1.
        metric: one of BOOTSTRAP_METRICS.
        samples: number of resamples B.

    Each resample draws n examples with replacement. The counts of each kind of example (its
    label and both systems' predictions) in a resample are multinomial, so all B resamples are
    drawn in one call and their metrics computed from counts. The interval is the percentile
    interval of the B differences; the two-sided p-value tests "no difference" by centring them
    on 0 (Efron & Tibshirani 1993, §16.4): p = (1 + #{|d* − d| ≥ |d|}) / (1 + B). Identical
    systems give d = 0 and p = 1.

        result = paired_bootstrap([0, 1, 1, 0], probs_kd, probs_bert, 1, samples=2000)
        result.observed, (result.ci_low, result.ci_high), result.p_value
    """
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"metric={metric!r}; expected one of {BOOTSTRAP_METRICS}")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError("paired_bootstrap needs single-label tasks (labels of shape [n])")
    pred_a, pred_b = _predictions(probs_a, labels), _predictions(probs_b, labels)
    if pred_a.shape != pred_b.shape:
        raise ValueError(f"systems predict different shapes: {pred_a.shape} vs {pred_b.shape}")
    num_classes = int(max(np.shape(probs_a)[-1], labels.max() + 1))
    n = labels.size

    # One row per example: its label, then A's and B's prediction in every repetition.
    kinds, counts = np.unique(np.column_stack([labels, pred_a.T, pred_b.T]), axis=0,
                              return_counts=True)
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=samples)  # [B, kinds]

    def statistic(weights):  # weights [S, kinds] -> metric(A) − metric(B), mean over repetitions
        return (_metric_of(weights, kinds, 0, num_classes, positive_class, metric)
                - _metric_of(weights, kinds, 1, num_classes, positive_class, metric))

    observed = float(statistic(counts[None, :])[0])
    diffs = statistic(draws)
    alpha = 1 - confidence
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    extreme = np.count_nonzero(np.abs(diffs - observed) >= abs(observed) - 1e-12)
    return BootstrapResult(metric, observed, float(low), float(high),
                           float((1 + extreme) / (1 + samples)), samples, n)


def _predictions(probs, labels):
    """Predicted classes [R, n] of probabilities [n, C] or [R, n, C]."""
    probs = np.asarray(probs)
    if probs.ndim == 2:
        probs = probs[None]
    if probs.ndim != 3 or probs.shape[1] != labels.size:
        raise ValueError(f"probabilities of shape {probs.shape} do not match {labels.size} labels")
    return probs.argmax(axis=-1)


def _metric_of(weights, kinds, system, num_classes, positive_class, metric):
    """Metric of one system (0 = A, 1 = B), mean over repetitions, for weighted example kinds."""
    repetitions = (kinds.shape[1] - 1) // 2
    true = kinds[:, 0]
    preds = kinds[:, 1 + system * repetitions:1 + (system + 1) * repetitions]  # [kinds, R]
    # cell[k, r] = flat index of (repetition, true, predicted) of kind k: a one-hot map from
    # kinds to confusion cells turns the counts into confusion matrices with one matmul.
    cell = (np.arange(repetitions) * num_classes + true[:, None]) * num_classes + preds
    onehot = np.zeros((len(kinds), repetitions * num_classes * num_classes))
    np.add.at(onehot, (np.repeat(np.arange(len(kinds)), repetitions), cell.ravel()), 1.0)
    confusion = (weights @ onehot).reshape(len(weights), repetitions, num_classes, num_classes)
    return metrics_from_confusion(confusion, positive_class)[metric].mean(axis=-1)
