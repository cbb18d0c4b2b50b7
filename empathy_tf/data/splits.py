"""Seeded, stratified splits of a dataset that has no official one, under three protocols.

- `split`: one train/dev/test split per seed (NewsEmp 80/10/10, TwittEmp seek/provide 60/20/20).
- `kfold:K`: stratified K folds; fold f is the test set of cell f, and the dev set is carved from
  the other K-1 folds with the same seed (dev : train as in the split fractions). Every example is
  tested exactly once over the K cells.
- `repeated:N`: N cells of `split`, seeds 0..N-1 (the same folders as `--seeds=0,...,N-1`).

Splits depend only on (labels, fractions, protocol, seed, fold): the same on every machine.

Example:

    train, dev, test = split_indices(labels, len(labels), (0.8, 0.1, 0.1), "kfold:10", seed=0, fold=3)
"""

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from empathy_tf.config import parse_protocol
from empathy_tf.errors import ConfigError, DataError


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


def split_indices(strata, n, fractions, protocol="split", seed=0, fold=0):
    """(train, dev, test) index arrays of `n` examples, stratified on `strata` (or None)."""
    _check(fractions)
    train_f, dev_f, test_f = fractions
    kind, count = parse_protocol(protocol)
    index = np.arange(n)
    strata = None if strata is None else np.asarray(strata)
    if kind in ("split", "repeated"):
        train, rest = _two_way(index, strata, train_f, seed)
        dev, test = _two_way(rest, strata, dev_f / (dev_f + test_f), seed)
        return train, dev, test
    if fold >= count:
        raise ConfigError(f"fold {fold} is out of range for {protocol}")
    folds = (KFold(count, shuffle=True, random_state=seed) if strata is None
             else StratifiedKFold(count, shuffle=True, random_state=seed))
    try:
        rest, test = list(folds.split(index, strata))[fold]
    except ValueError as e:
        raise DataError(f"cannot make {count} stratified folds of {n} examples: {e}") from None
    train, dev = _two_way(rest, strata, train_f / (train_f + dev_f), seed)
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


def cells(protocol, seeds):
    """(seed, fold) of every cell a protocol runs for the requested seeds."""
    kind, count = parse_protocol(protocol)
    if kind == "kfold":
        return [(seed, fold) for seed in seeds for fold in range(count)]
    if kind == "repeated":
        return [(seed, 0) for seed in range(count)]
    return [(seed, 0) for seed in seeds]
