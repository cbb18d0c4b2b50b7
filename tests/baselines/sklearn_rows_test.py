"""TF-IDF + logistic regression (baselines/sklearn_rows.py): C selection on dev, separable data."""

import random

import numpy as np
import pytest

from baselines.sklearn_rows import train_tfidf_lr
from empathy_tf.errors import ConfigError, DataError

FILLER = "the a of news story people today read about this article think world they we".split()
SIGNAL = (["whatever", "boring"], ["sorry", "heartbreaking"], ["sending", "hugs"])


def make_split(n, n_classes, seed):
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        y = i % n_classes
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))] + [rng.choice(SIGNAL[y])]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(y)
    return texts, labels


def test_picks_c_and_beats_chance():
    train, dev, test = make_split(60, 2, 0), make_split(30, 2, 1), make_split(40, 2, 2)
    grid = (0.01, 1, 100)
    model, info = train_tfidf_lr(*train, *dev, seed=0, c_grid=grid)
    assert info["C"] in grid and set(info["dev_f1_by_C"]) == set(grid)
    assert info["dev_f1_by_C"][info["C"]] == max(info["dev_f1_by_C"].values())
    assert np.mean(model.predict(test[0]) == np.asarray(test[1])) > 0.9

    model2, info2 = train_tfidf_lr(*train, *dev, seed=0, c_grid=grid)
    assert info2 == info
    np.testing.assert_array_equal(model2.named_steps["lr"].coef_, model.named_steps["lr"].coef_)


def test_macro_f1_for_multiclass():
    train, dev = make_split(60, 3, 0), make_split(30, 3, 1)
    model, info = train_tfidf_lr(*train, *dev, seed=0, positive_label=None, c_grid=(1, 10))
    assert info["metric"] == "macro_f1" and info["dev_f1_by_C"][info["C"]] > 0.9
    assert model.predict_proba(["sending hugs"]).shape == (1, 3)


def test_bad_inputs():
    train, dev = make_split(10, 2, 0), make_split(6, 2, 1)
    with pytest.raises(ConfigError, match="positive_label"):
        train_tfidf_lr(*train, *dev, seed=0, positive_label=7)
    with pytest.raises(DataError, match="two classes"):
        train_tfidf_lr(train[0], [1] * 10, *dev, seed=0)
    with pytest.raises(DataError, match="labels"):
        train_tfidf_lr(train[0], train[1][:5], *dev, seed=0)


def test_selection_rule_chooses_c_by_positive_f1_or_macro_f1():
    train, dev = make_split(60, 2, 0), make_split(30, 2, 1)
    _, by_macro = train_tfidf_lr(*train, *dev, seed=0, c_grid=(0.01, 1))
    _, by_f1 = train_tfidf_lr(*train, *dev, seed=0, c_grid=(0.01, 1), selection="f1")
    assert by_macro["metric"] == "macro_f1" and by_f1["metric"] == "f1_pos"
