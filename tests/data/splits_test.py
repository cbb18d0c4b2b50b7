"""Seeded, stratified splits (`split`, `kfold:K`, `repeated:N`) of sources without official ones."""

import numpy as np
import pytest

from empathy_tf.data import splits
from empathy_tf.errors import ConfigError, DataError

# 203 examples in three unequal classes, in no particular order.
LABELS = np.random.default_rng(0).permutation(np.repeat([0, 1, 2], [101, 62, 40]))
FRACTIONS = {"paper": (0.8, 0.1, 0.1), "fine": (0.6, 0.2, 0.2)}


def assert_partition(parts, n):
    joined = np.concatenate(parts)
    assert len(joined) == n and len(np.unique(joined)) == n  # disjoint and complete
    for part in parts:
        assert np.all(np.diff(part) > 0)  # sorted


def assert_stratified(part, of=None, labels=LABELS):
    """Each class's count in `part` is within one example of its share of `of` (default: all).

    Parts carved in two steps (dev and test of `split`, train and dev of `kfold`) are checked
    against the set they were carved from.
    """
    whole = labels if of is None else labels[of]
    for c in np.unique(labels):
        expected = np.mean(whole == c) * len(part)
        assert abs(np.sum(labels[part] == c) - expected) <= 1, (c, len(part))


@pytest.mark.parametrize("fractions", FRACTIONS.values())
def test_split_sizes_stratified_and_deterministic(fractions):
    n = len(LABELS)
    train, dev, test = splits.split_indices(LABELS, n, fractions, "split", seed=3)
    assert_partition([train, dev, test], n)
    np.testing.assert_allclose([len(train) / n, len(dev) / n, len(test) / n], fractions,
                               atol=1.5 / n * 3)
    rest = np.concatenate([dev, test])
    assert_stratified(train)
    assert_stratified(dev, of=rest)
    assert_stratified(test, of=rest)
    assert_stratified(rest)
    again = splits.split_indices(LABELS, n, fractions, "split", seed=3)
    for a, b in zip((train, dev, test), again):
        np.testing.assert_array_equal(a, b)
    other = splits.split_indices(LABELS, n, fractions, "split", seed=4)
    assert not np.array_equal(test, other[2])


def test_repeated_is_the_split_protocol_per_seed():
    for seed in (0, 2):
        a = splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), "repeated:5", seed=seed)
        b = splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), "split", seed=seed)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert splits.cells("repeated:3", seeds=(7,)) == [(0, 0), (1, 0), (2, 0)]
    assert splits.cells("split", seeds=(1, 2)) == [(1, 0), (2, 0)]
    assert splits.cells("kfold:2", seeds=(0, 1)) == [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize("k,fractions", [(5, (0.8, 0.1, 0.1)), (10, (0.8, 0.1, 0.1)),
                                         (5, (0.6, 0.2, 0.2))])
def test_kfold_tests_every_example_once_and_carves_dev_by_the_fractions(k, fractions):
    n = len(LABELS)
    tested = []
    for fold in range(k):
        train, dev, test = splits.split_indices(LABELS, n, fractions, f"kfold:{k}", seed=1,
                                                fold=fold)
        assert_partition([train, dev, test], n)
        assert abs(len(test) - n / k) <= 1
        # dev : train as in the split fractions (dev carved from the other K-1 folds).
        rest = n - len(test)
        assert abs(len(dev) - rest * fractions[1] / (fractions[0] + fractions[1])) <= 1
        assert_stratified(test)
        assert_stratified(train, of=np.concatenate([train, dev]))
        assert_stratified(dev, of=np.concatenate([train, dev]))
        again = splits.split_indices(LABELS, n, fractions, f"kfold:{k}", seed=1, fold=fold)
        np.testing.assert_array_equal(again[1], dev)
        tested.extend(test.tolist())
    assert sorted(tested) == list(range(n))


def test_unstratified_kfold_for_multi_label_sources():
    n = 50
    tested = []
    for fold in range(5):
        train, dev, test = splits.split_indices(None, n, (0.8, 0.1, 0.1), "kfold:5", 0, fold)
        assert_partition([train, dev, test], n)
        tested.extend(test.tolist())
    assert sorted(tested) == list(range(n))
    train, dev, test = splits.split_indices(None, n, (0.6, 0.2, 0.2), "split", 0)
    assert (len(train), len(dev), len(test)) == (30, 10, 10)


def test_errors():
    with pytest.raises(ConfigError, match="do not sum to 1"):
        splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.2))
    with pytest.raises(ConfigError, match="fold 5 is out of range for kfold:5"):
        splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), "kfold:5", fold=5)
    with pytest.raises(ConfigError, match="expected split, kfold:K or repeated:N"):
        splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), "folds")
    lonely = np.array([0] * 20 + [1])
    with pytest.raises(DataError, match="cannot make a stratified split of 21 examples"):
        splits.split_indices(lonely, 21, (0.8, 0.1, 0.1))
    with pytest.raises(DataError, match="cannot make 30 stratified folds of 21 examples"):
        splits.split_indices(lonely, 21, (0.8, 0.1, 0.1), "kfold:30")


def test_stratified_subset():
    keep = splits.stratified_subset(LABELS, 50, seed=0)
    assert len(keep) == 50 and np.all(np.diff(keep) > 0)
    assert_stratified(keep)
    np.testing.assert_array_equal(keep, splits.stratified_subset(LABELS, 50, seed=0))
    multi = np.eye(4, dtype=np.int64)[np.arange(40) % 4]
    assert len(splits.stratified_subset(multi, 10, seed=0)) == 10
    lonely = np.array([0] * 20 + [1])
    assert len(splits.stratified_subset(lonely, 5, seed=0)) == 5  # falls back to a plain sample
