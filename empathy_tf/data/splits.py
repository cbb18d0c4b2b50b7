"""Seeded, stratified splits of a dataset that has no official one, under four protocols.

- `split`: one train/dev/test split per seed (NewsEmp 80/10/10, TwittEmp seek/provide 60/20/20).
- `kfold:K`: stratified K folds; fold f is the test set of cell f, and the dev set is carved from
  the other K-1 folds with the same seed (dev : train as in the split fractions). Every example is
  tested exactly once over the K cells.
- `repeated:N`: N cells of `split`, seeds 0..N-1 (the same folders as `--seeds=0,...,N-1`).
- `repeated_kfold:R:K`: R x K cells of `kfold:K`, seeds 0..R-1 (the same cells as
  `--protocol=kfold:K --seeds=0,...,R-1`).

With `groups` (say, each essay's writer) every protocol keeps a group inside one of train, dev
and test: folds come from scikit-learn's `StratifiedGroupKFold`, and a two-way carving (train |
rest, dev | test) takes whole folds of a `StratifiedGroupKFold` whose fold count fits the
fractions (0.2 = 1 of 5 folds, 0.4 = 2 of 5). Stratification holds as far as the groups allow.
Without groups the splits are exactly those of the ungrouped code (StratifiedKFold,
train_test_split), so `--group_by=none` reproduces earlier runs.

Splits depend only on (labels, groups, fractions, protocol, seed, fold): the same on every machine.

Example:

    train, dev, test = split_indices(labels, len(labels), (0.8, 0.1, 0.1), "kfold:10", seed=0, fold=3)
    train, dev, test = split_indices(labels, len(labels), (0.8, 0.1, 0.1), "split", seed=0,
                                     groups=writers)   # no writer in two of them
"""

import numpy as np
from sklearn.model_selection import KFold, StratifiedGroupKFold, StratifiedKFold, train_test_split

from empathy_tf.protocols import protocol_spec
from empathy_tf.errors import ConfigError, DataError

MAX_CARVING_FOLDS = 20   # a grouped two-way split takes m of at most this many folds


def _check(fractions):
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions {fractions} do not sum to 1")


def _two_way(index, strata, train_size, seed):
    """Stratified (where possible) split of `index` into two sorted parts."""
    try:
        first, second = train_test_split(index, train_size=train_size, random_state=seed,
                                         shuffle=True,
                                         stratify=None if strata is None else strata[index])
    except ValueError as e:  # e.g. a class with a single example cannot be stratified
        raise DataError(f"cannot make a stratified split of {len(index)} examples: {e}") from None
    return np.sort(first), np.sort(second)


def carving_folds(share):
    """(m, n): `share` of the data is m of n equal folds (the closest, fewest folds first).

    Example:

        carving_folds(0.2), carving_folds(0.4), carving_folds(1 / 9)   # (1, 5), (2, 5), (1, 9)
    """
    share = min(share, 1.0 - share)
    best = None
    for n in range(2, MAX_CARVING_FOLDS + 1):
        m = max(1, round(share * n))
        error = abs(share - m / n)
        if best is None or error < best[0] - 1e-9:
            best = (error, m, n)
    return best[1], best[2]


def _group_folds(index, strata, groups, k, seed):
    """Test-fold index arrays of StratifiedGroupKFold(k) over `index` (strata None: one class)."""
    y = np.zeros(len(index), np.int64) if strata is None else strata[index]
    n_groups = len(np.unique(groups[index]))
    if n_groups < k:
        raise DataError(f"cannot make {k} group folds of {len(index)} examples: they belong to "
                        f"only {n_groups} groups (at least {k} needed)")
    folds = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
    try:
        return [index[test] for _, test in folds.split(index, y, groups[index])]
    except ValueError as e:
        raise DataError(f"cannot make {k} stratified group folds of {len(index)} examples: "
                        f"{e}") from None


def _group_two_way(index, strata, groups, train_size, seed):
    """Like `_two_way`, keeping each group on one side: whole folds of a StratifiedGroupKFold."""
    m, n = carving_folds(train_size)
    try:
        folds = _group_folds(index, strata, groups, n, seed)
    except DataError as e:
        raise DataError(f"cannot split {len(index)} examples {train_size:.3g} : "
                        f"{1 - train_size:.3g} by whole groups (as {m} of {n} group folds): "
                        f"{e}") from None
    taken = np.sort(np.concatenate(folds[:m]))
    rest = np.setdiff1d(index, taken)
    # `taken` is the smaller side.
    return (rest, taken) if train_size >= 0.5 else (taken, rest)


def _check_folds(strata, groups, k, n):
    """DataError when `k` folds cannot each hold every class (and a group of their own)."""
    if strata is None and k > n:
        raise DataError(f"cannot make {k} folds of {n} examples (at most {n})")
    if strata is not None:
        values, counts = np.unique(strata, return_counts=True)
        if counts.min() < k:
            raise DataError(f"cannot make {k} stratified folds of {n} examples: class "
                            f"{values[counts.argmin()]} has only {counts.min()} (every fold's "
                            f"test set needs one of each class; use at most "
                            f"{max(counts.min(), 2)} folds)")
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < k:
            raise DataError(f"cannot make {k} group folds of {n} examples: they belong to only "
                            f"{n_groups} groups (at most {n_groups} folds)")


def split_indices(strata, n, fractions, protocol="split", seed=0, fold=0, groups=None):
    """(train, dev, test) index arrays of `n` examples, stratified on `strata` (or None).

    Args:
        strata: [n] labels to stratify on, or None.
        n: Number of examples.
        fractions: (train, dev, test) shares (the dev : train ratio under k-fold).
        protocol: split, kfold:K, repeated:N or repeated_kfold:R:K (`protocols.protocol_spec`).
        seed: Seed of the split (and of the folds).
        fold: The test fold (protocols with folds).
        groups: [n] group of each example (e.g. its writer), or None: no group is in two parts.
    """
    _check(fractions)
    train_f, dev_f, test_f = fractions
    spec = protocol_spec(protocol)
    index = np.arange(n)
    strata = None if strata is None else np.asarray(strata)
    groups = None if groups is None else np.asarray(groups)
    two_way = ((lambda part, size: _two_way(part, strata, size, seed)) if groups is None else
               (lambda part, size: _group_two_way(part, strata, groups, size, seed)))
    if spec.folds == 1:
        train, rest = two_way(index, train_f)
        dev, test = two_way(rest, dev_f / (dev_f + test_f))
        return train, dev, test
    count = spec.folds
    if fold >= count:
        raise ConfigError(f"fold {fold} is out of range for {protocol}")
    _check_folds(strata, groups, count, n)
    if groups is None:
        folds = (KFold(count, shuffle=True, random_state=seed) if strata is None
                 else StratifiedKFold(count, shuffle=True, random_state=seed))
        try:
            rest, test = list(folds.split(index, strata))[fold]
        except ValueError as e:
            raise DataError(f"cannot make {count} stratified folds of {n} examples: {e}") from None
    else:
        test = _group_folds(index, strata, groups, count, seed)[fold]
        rest = np.setdiff1d(index, test)
    train, dev = two_way(rest, train_f / (train_f + dev_f))
    return train, dev, np.sort(test)


def stratified_subset(labels, size, seed):
    """Sorted indices of `size` of the examples, stratified on single-label `labels`."""
    labels = np.asarray(labels)
    strata = labels if labels.ndim == 1 else None
    try:
        keep, _ = train_test_split(np.arange(len(labels)), train_size=size, random_state=seed,
                                   stratify=strata)
    except ValueError:  # a class too small to stratify: a plain seeded sample
        keep = np.random.default_rng(seed).choice(len(labels), size, replace=False)
    return np.sort(keep)


def nested_subset(n, fraction, seed, strata=None, groups=None):
    """Sorted indices of about `fraction` of `n` examples: whole groups, stratified, nested.

    Groups (each example its own without `groups`) are put in one seeded order, and the shortest
    prefix holding round(fraction * n) examples is kept. The order is built greedily: each group
    of a class (a group's majority class) waits in a seeded queue, and the next group is the
    head of the queue that keeps the prefix's class counts closest to the whole's shares. The
    order does not depend on `fraction`, so for one seed a smaller fraction's subset is inside a
    larger one's (the learning curve's 10% inside its 25%); without groups every prefix keeps each
    class within one example of its share.

    Example:

        small = nested_subset(1000, 0.1, seed=0, strata=labels)
        large = nested_subset(1000, 0.25, seed=0, strata=labels)
        set(small) <= set(large)          # True
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"train_fraction must be in (0, 1], got {fraction}")
    if groups is None:
        unit_of = np.arange(n)
    else:
        _, unit_of = np.unique(np.asarray(groups), return_inverse=True)
        unit_of = unit_of.reshape(-1)
    units = unit_of.max() + 1
    if strata is None:
        classes = np.zeros(n, np.int64)
    else:
        _, classes = np.unique(np.asarray(strata), return_inverse=True)
        classes = classes.reshape(-1)
    counts = np.zeros((units, classes.max() + 1), np.int64)   # examples of each class per group
    np.add.at(counts, (unit_of, classes), 1)
    share = counts.sum(axis=0) / n
    rng = np.random.default_rng(seed)
    queues = [rng.permutation(np.flatnonzero(counts.argmax(axis=1) == c))
              for c in range(counts.shape[1])]
    heads = [0] * len(queues)
    order, taken = [], np.zeros(counts.shape[1], np.int64)
    while len(order) < units:
        def deviation(c):
            after = taken + counts[queues[c][heads[c]]]
            return np.abs(after - share * after.sum()).sum()
        best = min((c for c in range(len(queues)) if heads[c] < len(queues[c])),
                   key=deviation)   # ties: the smaller class
        unit = queues[best][heads[best]]
        heads[best] += 1
        order.append(unit)
        taken += counts[unit]
    order = np.asarray(order)
    target = max(1, round(fraction * n))
    chosen = order[:np.searchsorted(np.cumsum(counts.sum(axis=1)[order]), target) + 1]
    return np.flatnonzero(np.isin(unit_of, chosen))


def cells(protocol, seeds):
    """(seed, fold) of every cell a protocol runs for the requested seeds.

    repeated:N and repeated_kfold:R:K fix their seeds (0..N-1, 0..R-1) and ignore `seeds`.
    """
    spec = protocol_spec(protocol)
    cell_seeds = range(spec.repeats) if spec.repeats else seeds
    return [(seed, fold) for seed in cell_seeds for fold in range(spec.folds)]
