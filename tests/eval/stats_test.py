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


# ---------------------------------------------------------------------------------------------
# Corrected resampled t-test, MDD, Holm, Bayesian correlated t-test: hand-computed examples.

FIVE = {i: v for i, v in enumerate([1.0, 2.0, 3.0, 4.0, 5.0])}
ZEROS = {i: 0.0 for i in range(5)}


def test_corrected_resampled_t_hand_computed():
    # d = 1..5: mean 3, var 2.5. kfold:5 → n_test/n_train = 1/4, se² = 2.5·(1/5 + 1/4) = 1.125.
    # t = 3/√1.125 = 2.8284 (df 4): p = 0.047421; t_{0.975,4} = 2.776445: CI 3 ± 2.944865;
    # MDD = (2.776445 + t_{0.8,4} = 0.940965)·1.060660 = 3.942908.
    diff = stats.paired_difference(FIVE, ZEROS, test_train_ratio=0.25)
    assert diff.se == pytest.approx(1.0606602, abs=1e-7)
    assert diff.p_value == pytest.approx(0.0474207, abs=1e-6)
    assert (diff.ci_low, diff.ci_high) == pytest.approx((0.055135, 5.944865), abs=1e-6)
    assert diff.mdd == pytest.approx(3.942908, abs=1e-6)
    assert diff.test_train_ratio == 0.25
    # Ratio 0 is the plain paired t-test, narrower: se = √(2.5/5).
    plain = stats.paired_difference(FIVE, ZEROS)
    assert plain.se == pytest.approx(np.sqrt(0.5))
    assert plain.p_value == pytest.approx(scipy_stats.ttest_rel(list(FIVE.values()),
                                                                list(ZEROS.values())).pvalue)
    assert plain.ci_high - plain.ci_low < diff.ci_high - diff.ci_low


def test_mean_interval_and_corrected_se():
    # 60, 62, 64: mean 62, sd 2; ratio 1/2: se = 2·√(1/3 + 1/2); t_{0.975,2} = 4.302653.
    mean, low, high = stats.mean_interval([60.0, 62.0, 64.0], 0.5)
    half = 4.302653 * 2 * np.sqrt(1 / 3 + 1 / 2)
    assert mean == 62.0 and (low, high) == pytest.approx((62 - half, 62 + half), abs=1e-5)
    assert stats.mean_interval([70.0]) == (70.0, None, None)
    assert stats.mean_interval([]) == (None, None, None)
    assert stats.corrected_se([1.0]) is None


def test_minimum_detectable_difference_has_the_stated_power():
    # A true difference of MDD is detected with about 80% probability: the exact power of the
    # two-sided t-test (noncentral t with noncentrality MDD/se) at n = 10.
    se, n = 0.7, 10
    mdd = stats.minimum_detectable_difference(se, n)
    critical = scipy_stats.t.ppf(0.975, n - 1)
    power = scipy_stats.nct.sf(critical, n - 1, mdd / se) + scipy_stats.nct.cdf(-critical, n - 1,
                                                                                mdd / se)
    assert power == pytest.approx(0.8, abs=0.02)
    assert stats.minimum_detectable_difference(None, 10) is None
    assert stats.minimum_detectable_difference(1.0, 1) is None


def test_holm_hand_computed():
    # Sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → monotone.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, None, 0.6]) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert stats.holm([0.02]) == [0.02] and stats.holm([]) == []


def _posterior(d, folds, rope):
    """The correlated t posterior by hand: Student t, df n − 1, location mean(d), scale² =
    (1/n + ρ/(1 − ρ))·var(d), ρ = 1/folds; (P(< −rope), P(within), P(> rope))."""
    d = np.asarray(d, dtype=float)
    n, rho = d.size, 1.0 / folds
    scale = np.sqrt((1 / n + rho / (1 - rho)) * d.var(ddof=1))
    left = scipy_stats.t.cdf(-rope, n - 1, d.mean(), scale)
    right = scipy_stats.t.sf(rope, n - 1, d.mean(), scale)
    return left, 1 - left - right, right


def test_bayesian_correlated_matches_the_posterior_by_hand():
    # d = (2, 0, 1, 3, 1, 2, 0, 1, 2, 3): mean 1.5, var 10.5/9; 10 folds: ρ = 0.1,
    # scale² = (0.1 + 1/9)·1.1667 = 0.246296; P(> 1) = P(T_9 > −1.00749) = 0.829992.
    d = [2, 0, 1, 3, 1, 2, 0, 1, 2, 3]
    bert = {(0, f): 60.0 + f for f in range(10)}
    kd = {key: bert[key] + d[key[1]] for key in bert}
    result = stats.bayesian_correlated(kd, bert, rope=1.0, folds=10)
    assert result.p_better == pytest.approx(0.829992, abs=1e-6)
    assert result.p_worse == pytest.approx(0.000351, abs=1e-6)
    expected = _posterior(d, 10, 1.0)
    assert (result.p_worse, result.p_equivalent, result.p_better) == pytest.approx(expected)
    assert result.n == 10 and result.rope == 1.0
    # baycomp's own entry point agrees, in its orientation (y − x).
    import baycomp
    assert baycomp.two_on_single(np.array(list(bert.values())), np.array(list(kd.values())),
                                 rope=1.0) == pytest.approx(expected)
    # Swapping the rows swaps worse and better.
    swapped = stats.bayesian_correlated(bert, kd, rope=1.0, folds=10)
    assert swapped.p_worse == pytest.approx(result.p_better)


def test_bayesian_correlated_repeated_folds_and_undefined_cases():
    rng = np.random.default_rng(0)
    d = rng.normal(0.3, 1.0, 20)   # 2 repetitions of 5 folds: ρ is still 1/5
    a = {(r, f): float(d[5 * r + f]) for r in range(2) for f in range(5)}
    zeros = {key: 0.0 for key in a}
    result = stats.bayesian_correlated(a, zeros, rope=0.5, folds=5)
    assert (result.p_worse, result.p_equivalent, result.p_better) == pytest.approx(
        _posterior(list(a.values()), 5, 0.5))
    assert stats.bayesian_correlated(dict(list(a.items())[:7]), zeros, 0.5, folds=5) is None
    assert stats.bayesian_correlated({0: 1.0}, {0: 0.0}, 0.5, folds=5) is None
    with pytest.raises(ValueError, match="rope"):
        stats.bayesian_correlated(a, zeros, rope=-1, folds=5)
