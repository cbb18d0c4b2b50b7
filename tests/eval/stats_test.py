"""Statistics over cells and predictions, checked against known values and scikit-learn/scipy."""

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn import metrics as skm

from empathy_tf.eval import metrics as metrics_lib
from empathy_tf.eval import stats


def test_mean_std():
    assert stats.mean_std([]) == (None, None)
    assert stats.mean_std([0.7]) == (0.7, 0.0)
    mean, std = stats.mean_std([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.1)  # ddof=1


def test_paired_difference_known_t_interval():
    # d = (2, 3): mean 2.5, se = sd/√2 = 0.5; t_{0.975, 1} = 12.7062: CI 2.5 ± 6.3531.
    diff = stats.paired_difference({0: 3.0, 1: 5.0, 9: 1.0}, {0: 1.0, 1: 2.0, 7: 0.0})
    assert diff.n == 2 and diff.mean == pytest.approx(2.5)
    assert diff.ci_low == pytest.approx(2.5 - 6.353102, abs=1e-6)
    assert diff.ci_high == pytest.approx(2.5 + 6.353102, abs=1e-6)
    assert diff.p_value == pytest.approx(scipy_stats.ttest_rel([3, 5], [1, 2]).pvalue)
    assert diff.p_value == pytest.approx(0.125666, abs=1e-6)


def test_paired_difference_undefined_cases():
    assert stats.paired_difference({}, {0: 1.0}).mean is None
    one = stats.paired_difference({0: 2.0}, {0: 1.0})
    assert (one.mean, one.ci_low, one.p_value, one.n) == (1.0, None, None, 1) and one.note
    same = stats.paired_difference({0: 0.7, 1: 0.6, 2: 0.5}, {0: 0.6, 1: 0.5, 2: 0.4})
    assert same.mean == pytest.approx(0.1) and same.ci_low is None and same.p_value is None
    assert "equally" in same.note


def test_metrics_from_counts_equal_sklearn():
    rng = np.random.default_rng(0)
    for num_classes, positive in ((2, 1), (3, 1), (3, None), (2, 0)):
        labels = rng.integers(0, num_classes, 200)
        probs = rng.random((200, num_classes))
        expected = metrics_lib.classification_metrics(labels, probs, positive)
        confusion = skm.confusion_matrix(labels, probs.argmax(1), labels=range(num_classes))
        got = stats.metrics_from_confusion(confusion, positive)
        for key, value in got.items():
            assert float(value) == pytest.approx(expected[key]), (num_classes, positive, key)
    # Zero denominators are 0, as in scikit-learn with zero_division=0.
    got = stats.metrics_from_confusion(np.array([[3, 0], [0, 0]]), 1)
    assert got["precision"] == got["recall"] == got["f1"] == 0.0 and got["accuracy"] == 1.0


def test_pooled_metrics_are_classification_metrics():
    labels, probs = [0, 1, 1, 0], [[.9, .1], [.2, .8], [.6, .4], [.3, .7]]
    assert stats.pooled_metrics(labels, probs, 1) == metrics_lib.classification_metrics(
        labels, probs, 1)


def _systems(n=300, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    good = rng.random((n, 2))
    good[np.arange(n), labels] += 0.4
    return labels, good, rng.random((n, 2))


def test_bootstrap_observed_difference_deterministic_and_significant():
    labels, good, bad = _systems()
    result = stats.paired_bootstrap(labels, good, bad, 1, samples=4000, seed=3)
    expected = skm.f1_score(labels, good.argmax(1)) - skm.f1_score(labels, bad.argmax(1))
    assert result.observed == pytest.approx(expected)
    assert result.ci_low < result.observed < result.ci_high and result.ci_low > 0
    assert result.p_value < 0.01 and (result.samples, result.n) == (4000, 300)
    assert result == stats.paired_bootstrap(labels, good, bad, 1, samples=4000, seed=3)
    assert result != stats.paired_bootstrap(labels, good, bad, 1, samples=4000, seed=4)
    swapped = stats.paired_bootstrap(labels, bad, good, 1, samples=4000, seed=3)
    assert swapped.observed == pytest.approx(-result.observed)


def test_bootstrap_identical_systems_differ_by_zero_with_p_one():
    labels, good, _ = _systems()
    for metric in stats.BOOTSTRAP_METRICS:
        result = stats.paired_bootstrap(labels, good, good.copy(), 1, metric=metric, samples=500)
        assert (result.observed, result.ci_low, result.ci_high, result.p_value) == (0, 0, 0, 1)


def test_bootstrap_matches_a_loop_over_resamples_in_distribution():
    # The multinomial draw of example kinds is the same distribution as drawing indices: compare
    # the spread of the differences with an explicit (slow, small) resampling loop.
    labels, good, bad = _systems(n=200, seed=1)
    fast = stats.paired_bootstrap(labels, good, bad, 1, samples=3000, seed=0)
    def f1(y, pred):
        tp = np.sum((y == 1) & (pred == 1))
        return 2 * tp / (np.sum(y == 1) + np.sum(pred == 1))
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(1000):
        idx = rng.integers(0, 200, 200)
        diffs.append(f1(labels[idx], good[idx].argmax(1)) - f1(labels[idx], bad[idx].argmax(1)))
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert fast.ci_low == pytest.approx(low, abs=0.03) and fast.ci_high == pytest.approx(high,
                                                                                      abs=0.03)


def test_bootstrap_over_repetitions_averages_them():
    labels, good, bad = _systems()
    both = stats.paired_bootstrap(labels, np.stack([good, bad]), np.stack([bad, bad]), 1,
                                  samples=200)
    single = stats.paired_bootstrap(labels, good, bad, 1, samples=200)
    assert both.observed == pytest.approx(single.observed / 2)
    with pytest.raises(ValueError, match="metric"):
        stats.paired_bootstrap(labels, good, bad, 1, metric="auc")
    with pytest.raises(ValueError, match="do not match"):
        stats.paired_bootstrap(labels[:10], good, bad, 1)
