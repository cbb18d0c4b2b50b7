"""`--protocol`: how a row's cells are made (split, k-fold, and their repetitions), declared once.

Parsed here for everyone: the config validates it, data/splits.py makes the cells' splits from
it, and the report reads which statistics fit it (k-fold cells overlap in their training data).

Example:

    protocol_spec("repeated_kfold:3:10")  # Protocol(text=..., kind='repeated_kfold', repeats=3, folds=10)
    protocol_spec("kfold:10").cell_protocol     # 'kfold:10'
    protocol_spec("kfold:10").test_train_ratio  # 1/9
"""

import typing

from empathy_tf.errors import ConfigError

PROTOCOL_KINDS = ("split", "kfold", "repeated", "repeated_kfold")
PROTOCOL_FORMS = "split, kfold:K, repeated:N or repeated_kfold:R:K"


class Protocol(typing.NamedTuple):
    """A parsed `--protocol`.

    text: the protocol as written.
    kind: split, kfold, repeated or repeated_kfold.
    repeats: the seeds the protocol fixes itself, 0..repeats-1 (N of repeated:N, R of
        repeated_kfold:R:K); 0: the seeds asked for (--seeds).
    folds: K of kfold:K and repeated_kfold:R:K (each cell tests one fold); 1: no folds.
    """
    text: str
    kind: str
    repeats: int
    folds: int

    @property
    def cross_validation(self):
        """Cells whose training sets overlap by construction (the k-fold kinds)."""
        return self.folds > 1

    @property
    def test_train_ratio(self):
        """n_test/n_train of the Nadeau & Bengio correction: 1/(K−1) under K folds, where the
        training side is every example outside the test fold (train and dev); 0 (the plain
        paired t-test) for protocols whose cells are treated as independent."""
        return 1.0 / (self.folds - 1) if self.cross_validation else 0.0

    @property
    def cell_protocol(self):
        """What one cell is, whatever the protocol repeating it: split or kfold:K.

        repeated:N is N cells of `split`, repeated_kfold:R:K is R seeds of `kfold:K`: the same
        cells (identity, folder) as `--seeds=0,...,R-1` under split / kfold:K.
        """
        return "split" if self.folds == 1 else f"kfold:{self.folds}"


def _count(text, value, what, least):
    if not value.isdigit() or int(value) < least:
        raise ConfigError(f"protocol={text!r}: {what} must be an integer >= {least}, got "
                          f"{value!r}; expected {PROTOCOL_FORMS}")
    return int(value)


def protocol_spec(text):
    """`split`, `kfold:K`, `repeated:N` or `repeated_kfold:R:K` -> `Protocol`.

    Example:

        protocol_spec("repeated_kfold:3:10").folds   # 10
        protocol_spec("kfold:10").cell_protocol     # 'kfold:10'
    """
    kind, *counts = str(text).split(":")
    expected = {"split": 0, "kfold": 1, "repeated": 1, "repeated_kfold": 2}
    if kind not in expected or len(counts) != expected[kind]:
        form = {"kfold": "kfold:K", "repeated": "repeated:N",
                "repeated_kfold": "repeated_kfold:R:K (R seeds of K folds)"}.get(kind)
        raise ConfigError(f"protocol={text!r}; expected {form or PROTOCOL_FORMS}")
    if kind == "split":
        return Protocol(str(text), kind, 0, 1)
    if kind == "kfold":
        return Protocol(str(text), kind, 0, _count(text, counts[0], "K (folds)", 2))
    if kind == "repeated":
        return Protocol(str(text), kind, _count(text, counts[0], "N (splits)", 1), 1)
    return Protocol(str(text), kind, _count(text, counts[0], "R (repeats)", 1),
                    _count(text, counts[1], "K (folds)", 2))

