"""Statistics over cells and predictions: means, corrected t intervals, Holm, a Bayesian test
with a region of practical equivalence, the minimum detectable difference, a paired bootstrap.

The questions a result table answers besides "how high":

- Is row A better than row B across cells? `paired_difference` pairs the per-cell scores of two
  rows by cell (same seed and fold): the mean difference, its 95% t interval, the two-sided
  p-value and the minimum detectable difference. Under k-fold the training sets of different folds
  overlap, so the differences are correlated and the plain paired t-test understates the
  variance; the corrected resampled t-test (Nadeau & Bengio 2003) multiplies the variance of the
  differences by (1/n + n_test/n_train) instead of 1/n; seeded random splits of one dataset
  are resampling too (aggregate.RowResult.test_train_ratio). `test_train_ratio=0` is the plain
  test, for cells that are truly independent.
- Several rows against one baseline: `holm` adjusts their p-values (Holm 1979).
- Is A practically equivalent to B? `bayesian_correlated` is the Bayesian correlated t-test
  (Benavoli, Corani, Demšar & Zaffalon 2017, via `baycomp`): the posterior of the mean
  difference is Student t with n−1 degrees of freedom, location mean(d) and scale²
  (1/n + ρ/(1−ρ))·var(d), ρ = n_test/(n_test+n_train); it gives P(A worse by more than the
  ROPE), P(within ±ROPE), P(A better by more than the ROPE).
- Is A better than B on these examples? `paired_bootstrap` resamples the test examples (the same
  resample for both systems) and recomputes the metric of each, so its interval reflects how much
  the difference depends on which examples happened to be tested.

Everything is vectorised: the bootstrap draws, for every resample at once, how often each kind of
example (true label, prediction of A, prediction of B) is drawn, and computes every metric from
those counts (`metrics_from_confusion`).

Example:

    d = paired_difference({0: 70, 1: 72, 2: 69}, {0: 66, 1: 69, 2: 67}, test_train_ratio=0.5)
    d.mean, (d.ci_low, d.ci_high), d.p_value, d.mdd
    holm([0.01, 0.04, 0.03])                           # [0.03, 0.06, 0.06]
    bayesian_correlated(kd_f1, bert_f1, rope=1.0, folds=10).p_better
    paired_bootstrap(labels, probs_kd, probs_bert, positive_class=1).observed   # F1(kd) - F1(bert)
"""

import dataclasses

import baycomp
import numpy as np
from scipy import stats as scipy_stats

from empathy_tf.eval import metrics as metrics_lib

CONFIDENCE = 0.95
POWER = 0.8
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
    """Mean of a − b over paired cells, its (corrected) t interval, p-value and MDD.

    `ci_low`, `ci_high`, `p_value`, `se` and `mdd` are None when undefined (`note` says why);
    `mean` is None only when no cell pairs up. `test_train_ratio` is the correction used (0: the
    plain paired t-test).
    """
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n: int
    note: str = ""
    se: float | None = None
    mdd: float | None = None
    test_train_ratio: float = 0.0


def corrected_se(values, test_train_ratio=0.0):
    """sd(values)·√(1/n + n_test/n_train): the standard error of the mean of n resampled scores
    (Nadeau & Bengio 2003); with ratio 0 the usual sd/√n. None below 2 values.

        corrected_se([1, 2, 3, 4, 5], 0.25)   # √(2.5 · (1/5 + 1/4)) = 1.0607
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return None
    return float(np.sqrt(values.var(ddof=1) * (1.0 / values.size + test_train_ratio)))


def mean_interval(values, test_train_ratio=0.0, confidence=CONFIDENCE):
    """(mean, low, high) of resampled scores with the corrected t interval; (mean, None, None)
    below 2 values, (None, None, None) for none.

        mean_interval([60.0, 62.0, 64.0], 0.5)    # (62.0, 62 − 4.303·2·√(1/3+1/2), ...)
    """
    values = np.asarray([float(v) for v in values], dtype=np.float64)
    if values.size == 0:
        return None, None, None
    mean, se = float(values.mean()), corrected_se(values, test_train_ratio)
    if se is None:
        return mean, None, None
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=values.size - 1)) * se
    return mean, mean - half, mean + half


def minimum_detectable_difference(se, n, confidence=CONFIDENCE, power=POWER):
    """The smallest true mean difference a two-sided t-test at 1 − confidence detects with
    probability `power`, given the (corrected) standard error of the mean difference and n pairs:
    (t_{1−α/2, n−1} + t_{power, n−1}) · se.

        minimum_detectable_difference(1.0607, 5)   # (2.7764 + 0.9410) · 1.0607 = 3.943
    """
    if se is None or n < 2:
        return None
    df = n - 1
    return float((scipy_stats.t.ppf(0.5 + confidence / 2, df) + scipy_stats.t.ppf(power, df))
                 * se)


def paired_difference(a, b, test_train_ratio=0.0, confidence=CONFIDENCE, power=POWER):
    """Compares per-cell scores paired by key ({key: score}, e.g. key = (seed, fold)).

    Only keys present in both are paired. With n pairs and differences d, se = sd(d)·√(1/n + r)
    with r = n_test/n_train (the corrected resampled t-test; r = 0 is the paired t-test, the same
    as `scipy.stats.ttest_rel`): mean(d) ± t_{n−1}·se, p = 2·P(T_{n−1} > |mean/se|), and the
    minimum detectable difference at `power`.

        paired_difference({0: 3.0, 1: 5.0}, {0: 1.0, 1: 2.0})
        # d = (2, 3): mean 2.5, se 0.5, t_{0.975, 1} = 12.71: CI 2.5 ± 6.35, p = 0.126
    """
    keys = sorted(set(a) & set(b))
    n = len(keys)
    if n == 0:
        return PairedDifference(None, None, None, None, 0, "no cell pairs up",
                                test_train_ratio=test_train_ratio)
    d = np.asarray([float(a[k]) - float(b[k]) for k in keys], dtype=np.float64)
    mean = float(d.mean())
    if n < 2:
        return PairedDifference(mean, None, None, None, n, "one pair: no interval",
                                test_train_ratio=test_train_ratio)
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        # Every pair differs by the same amount (e.g. both rows predict the same labels): the t
        # statistic is 0/0 or ±inf from rounding noise, which is no evidence either way.
        return PairedDifference(mean, None, None, None, n, "every pair differs equally",
                                test_train_ratio=test_train_ratio)
    se = corrected_se(d, test_train_ratio)
    _, low, high = mean_interval(d, test_train_ratio, confidence)
    p = float(2 * scipy_stats.t.sf(abs(mean / se), df=n - 1))
    return PairedDifference(mean, low, high, p, n, se=se,
                            mdd=minimum_detectable_difference(se, n, confidence, power),
                            test_train_ratio=test_train_ratio)


def holm(p_values):
    """Holm–Bonferroni adjusted p-values, in the given order; None entries are left out of the
    family and stay None.

    With m p-values sorted ascending, the i-th (from 1) becomes max over j ≤ i of
    min(1, (m − j + 1)·p_(j)).

        holm([0.01, 0.04, 0.03, 0.005])   # [0.03, 0.06, 0.06, 0.02]
    """
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(present)
    out = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * float(p)))
        out[i] = running
    return out


@dataclasses.dataclass(frozen=True)
class BayesianComparison:
    """The Bayesian correlated t-test of a − b with a region of practical equivalence ±rope:
    P(a worse by more than rope), P(within ±rope), P(a better by more than rope)."""
    p_worse: float
    p_equivalent: float
    p_better: float
    rope: float
    n: int


def bayesian_correlated(a, b, rope, folds):
    """Bayesian correlated t-test (baycomp) of scores paired by key, a − b, from `folds`-fold
    cross-validation repeated n/folds times (ρ = 1/folds, i.e. n_test/n_train = 1/(folds−1)).

    Returns None when fewer than 2 pairs or n is not a whole number of repetitions of the folds
    (the correlation the test assumes is that of complete cross-validations).

        bayesian_correlated({(0, f): kd[f] for f in range(10)},
                            {(0, f): bert[f] for f in range(10)}, rope=1.0, folds=10)
    """
    if rope < 0:
        raise ValueError(f"rope={rope}; expected >= 0 (points)")
    keys = sorted(set(a) & set(b))
    n = len(keys)
    if n < 2 or folds < 2 or n % folds:
        return None
    x = np.asarray([float(b[k]) for k in keys])
    y = np.asarray([float(a[k]) for k in keys])
    # baycomp's difference is y − x: "left" is a worse than b.
    probs = baycomp.CorrelatedTTest(x, y, rope=rope, runs=n // folds).probs()
    if rope == 0:
        (left, right), middle = probs, 0.0
    else:
        left, middle, right = probs
    return BayesianComparison(float(left), float(middle), float(right), float(rope), n)


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
