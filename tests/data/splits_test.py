"""Seeded, stratified splits (`split`, `kfold:K`, `repeated:N`) of sources without official ones."""

import hashlib

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
    with pytest.raises(ConfigError, match="expected split, kfold:K, repeated:N or "
                                          "repeated_kfold:R:K"):
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


def test_ungrouped_splits_are_those_of_earlier_versions():
    """`--group_by=none` must find and reproduce earlier runs: the same ids for the same seed
    (digest of the splits made by the code before grouping existed)."""
    digest = hashlib.sha256()
    for protocol, folds in (("split", 1), ("kfold:5", 5)):
        for seed in (0, 3):
            for fold in range(folds):
                for part in splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), protocol,
                                                 seed, fold, groups=None):
                    digest.update(np.asarray(part, np.int64).tobytes())
    assert digest.hexdigest() == ("14214dd39bd2bb1e6c6537293f8d2eaf"
                                  "5bc52b6b5632333306d955188bc7a6d3")


# 120 writers of 1 to 9 essays each; a writer's label is mostly their trait (as on NewsEmp).
_rng = np.random.default_rng(5)
WRITER_SIZES = _rng.integers(1, 10, size=120)
WRITERS = np.repeat(np.array([f"w{i:03d}" for i in range(120)], dtype=object), WRITER_SIZES)
_TRAIT = _rng.random(120) < 0.45
GROUPED_LABELS = np.where(_rng.random(len(WRITERS)) < 0.85, np.repeat(_TRAIT, WRITER_SIZES),
                          ~np.repeat(_TRAIT, WRITER_SIZES)).astype(np.int64)


def assert_group_disjoint(parts, groups=WRITERS):
    names = [set(groups[p]) for p in parts]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert not names[i] & names[j], (i, j, sorted(names[i] & names[j])[:3])


def assert_roughly_stratified(parts, labels=GROUPED_LABELS, tolerance=0.08):
    share = labels.mean()
    for part in parts:
        assert abs(labels[part].mean() - share) <= tolerance, (labels[part].mean(), share)


@pytest.mark.parametrize("protocol", ["split", "repeated:3", "kfold:5", "repeated_kfold:2:4"])
@pytest.mark.parametrize("fractions", FRACTIONS.values())
def test_grouped_splits_keep_every_group_in_one_part(protocol, fractions):
    n = len(WRITERS)
    tested = []
    for seed, fold in splits.cells(protocol, seeds=(0,)):
        parts = splits.split_indices(GROUPED_LABELS, n, fractions, protocol, seed, fold,
                                     groups=WRITERS)
        assert_partition(parts, n)
        assert_group_disjoint(parts)
        assert_roughly_stratified(parts)
        # Sizes follow the fractions as far as whole writers allow (at most 9 essays each).
        expected = (np.array(fractions) if protocol.startswith(("split", "repeated:")) else
                    None)
        if expected is not None:
            np.testing.assert_allclose([len(p) / n for p in parts], expected, atol=0.05)
        again = splits.split_indices(GROUPED_LABELS, n, fractions, protocol, seed, fold,
                                     groups=WRITERS)
        for a, b in zip(parts, again):
            np.testing.assert_array_equal(a, b)
        if seed == 0:
            tested.extend(parts[2].tolist())
    if "kfold" in protocol:   # every example tested exactly once per seed
        assert sorted(tested) == list(range(n))
    other_seed = splits.split_indices(GROUPED_LABELS, n, fractions, protocol, 1, 0, groups=WRITERS)
    first_seed = splits.split_indices(GROUPED_LABELS, n, fractions, protocol, 0, 0, groups=WRITERS)
    assert not np.array_equal(first_seed[2], other_seed[2])


def test_grouping_changes_the_splits_only_when_groups_are_given():
    n = len(WRITERS)
    by_example = splits.split_indices(GROUPED_LABELS, n, (0.8, 0.1, 0.1), "kfold:5", 0, 0)
    grouped = splits.split_indices(GROUPED_LABELS, n, (0.8, 0.1, 0.1), "kfold:5", 0, 0,
                                   groups=WRITERS)
    # By example, almost every test writer with several essays also wrote training essays.
    shared = set(WRITERS[by_example[0]]) & set(WRITERS[by_example[2]])
    assert len(shared) > 10
    assert not set(WRITERS[grouped[0]]) & set(WRITERS[grouped[2]])


def test_repeated_kfold_is_kfold_per_seed():
    assert splits.cells("repeated_kfold:2:3", seeds=(7,)) == [(s, f) for s in (0, 1)
                                                              for f in range(3)]
    for groups in (None, WRITERS):
        for seed, fold in ((0, 2), (1, 0)):
            a = splits.split_indices(GROUPED_LABELS, len(WRITERS), (0.8, 0.1, 0.1),
                                     "repeated_kfold:2:3", seed, fold, groups=groups)
            b = splits.split_indices(GROUPED_LABELS, len(WRITERS), (0.8, 0.1, 0.1), "kfold:3",
                                     seed, fold, groups=groups)
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)


def test_carving_folds_fit_the_fractions():
    assert splits.carving_folds(0.8) == (1, 5)
    assert splits.carving_folds(0.4) == (2, 5)
    assert splits.carving_folds(0.5) == (1, 2)
    assert splits.carving_folds(0.8 / 0.9) == (1, 9)
    assert splits.carving_folds(0.75) == (1, 4)


def test_fold_counts_are_checked_against_classes_and_groups():
    few = np.array([0] * 30 + [1] * 3)
    with pytest.raises(DataError, match="cannot make 5 stratified folds of 33 examples: class 1 "
                                        "has only 3"):
        splits.split_indices(few, len(few), (0.8, 0.1, 0.1), "kfold:5")
    with pytest.raises(DataError, match="cannot make 5000 stratified folds of 203 examples"):
        splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), "kfold:5000")
    with pytest.raises(DataError, match="cannot make 80 folds of 60 examples"):
        splits.split_indices(None, 60, (0.8, 0.1, 0.1), "kfold:80")
    groups = np.arange(len(LABELS)) % 4
    with pytest.raises(DataError, match="only 4 groups"):
        splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), "kfold:5", groups=groups)
    with pytest.raises(DataError, match="only 4 groups"):   # train | rest takes 1 of 5 folds
        splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), "split", groups=groups)
    with pytest.raises(ConfigError, match="repeated_kfold:R:K"):
        splits.split_indices(LABELS, len(LABELS), (0.8, 0.1, 0.1), "repeated_kfold:3")


@pytest.mark.parametrize("groups", [None, WRITERS])
def test_nested_subset_is_seeded_stratified_nested_and_keeps_groups_whole(groups):
    n = len(WRITERS)
    subsets = {f: splits.nested_subset(n, f, seed=2, strata=GROUPED_LABELS, groups=groups)
               for f in (0.1, 0.25, 0.5, 1.0)}
    assert len(subsets[1.0]) == n
    previous = np.array([], np.int64)
    for fraction, keep in subsets.items():
        assert np.all(np.diff(keep) > 0)
        slack = 0 if groups is None else WRITER_SIZES.max()
        assert round(fraction * n) <= len(keep) <= round(fraction * n) + slack
        assert set(previous) <= set(keep)          # nested
        previous = keep
        assert_roughly_stratified([keep], tolerance=0.06 if fraction >= 0.25 else 0.1)
        np.testing.assert_array_equal(keep, splits.nested_subset(n, fraction, 2, GROUPED_LABELS,
                                                                 groups))
        if groups is not None:   # whole writers: none is partly in
            inside = set(WRITERS[keep])
            assert np.all(np.isin(WRITERS[np.isin(WRITERS, list(inside))],
                                  WRITERS[keep]))
            assert sum(np.isin(WRITERS, list(inside))) == len(keep)
    other = splits.nested_subset(n, 0.25, seed=3, strata=GROUPED_LABELS, groups=groups)
    assert not np.array_equal(other, subsets[0.25])
    # Ungrouped and stratified: each class within one example of its share.
    if groups is None:
        assert_stratified(subsets[0.25], labels=GROUPED_LABELS)
