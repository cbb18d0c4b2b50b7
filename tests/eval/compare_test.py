"""Two k-fold runs compared fold by fold (experiments.compare) from hand-made cell folders."""

import os

import numpy as np
import pytest

from empathy_tf.config import ExperimentConfig
from empathy_tf.errors import ConfigError
from empathy_tf.eval import compare, stats
from tests.eval.cells import noisy_probs, write_cell

N, FOLDS = 60, 3


def _write_run(out, name, accuracy, protocol="kfold:3", folds=FOLDS, unfinished=(),
               shifted_fold=None, seed=0):
    """A seed folder of `folds` cells over N examples; returns (folder, {fold: test metrics})."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"ex{i:02d}" for i in np.random.default_rng(0).permutation(N)])
    labels = np.random.default_rng(1).integers(0, 2, N)
    seed_dir = os.path.join(out, name, "newsemp", f"{protocol.replace(':', '')}-seed0")
    written = {}
    for fold in range(folds):
        part = slice(fold * N // folds, (fold + 1) * N // folds)
        test_ids = ids[part] if fold != shifted_fold else np.roll(ids, 1)[part]
        config = ExperimentConfig(name=name).replace(protocol=protocol, seed=0, fold=fold,
                                                      dataset="newsemp")
        metrics = write_cell(os.path.join(seed_dir, f"fold{fold}"), config, labels[part],
                             noisy_probs(labels[part], accuracy, rng), test_ids,
                             finished=fold not in unfinished,
                             split={"train": [i for i in ids if i not in set(ids[part])],
                                    "dev": [], "test": test_ids})
        if metrics:
            written[fold] = metrics["test"]
    return seed_dir, written


def test_pairs_folds_with_the_tables_statistics(tmp_path):
    a, test_a = _write_run(str(tmp_path), "kd", 0.9, seed=2)
    b, test_b = _write_run(str(tmp_path), "bert", 0.7, seed=3)
    result = compare.compare_runs(a, b, metrics=("macro_f1", "f1"), rope=1.0)
    assert result.folds == (0, 1, 2) and result.left_out == ()
    points_a = {f: 100 * m["f1"] for f, m in test_a.items()}
    points_b = {f: 100 * m["f1"] for f, m in test_b.items()}
    row = result.rows["f1"]
    assert row.a == pytest.approx(stats.mean_std(points_a.values()))
    expected = stats.paired_difference(points_a, points_b, test_train_ratio=0.5)   # 1/(K−1)
    assert row.difference.mean == pytest.approx(expected.mean)
    assert (row.difference.ci_low, row.difference.ci_high) == pytest.approx(
        (expected.ci_low, expected.ci_high))
    bayes = stats.bayesian_correlated(points_a, points_b, rope=1.0, folds=FOLDS)
    assert row.bayesian.p_better == pytest.approx(bayes.p_better)
    assert row.difference.mean > 0   # the better run is A
    text = compare.format_comparison(result)
    assert "3 folds paired (kfold:3)" in text
    assert f"| f1 | {row.a[0]:.2f} ± {row.a[1]:.2f} | {row.b[0]:.2f} ± {row.b[1]:.2f} | " \
           f"{expected.mean:+.2f} [{expected.ci_low:+.2f}, {expected.ci_high:+.2f}] |" in text


def test_unfinished_folds_are_left_out_and_named(tmp_path):
    a, _ = _write_run(str(tmp_path), "kd", 0.9)
    b, test_b = _write_run(str(tmp_path), "bert", 0.7, unfinished=(2,))
    result = compare.compare_runs(a, b)
    assert result.folds == (0, 1)
    assert result.left_out == ("fold 2 (A finished, B unfinished)",)
    assert result.rows["macro_f1"].bayesian is None   # needs whole cross-validations
    assert result.rows["macro_f1"].b[0] == pytest.approx(
        np.mean([100 * test_b[f]["macro_f1"] for f in (0, 1)]))
    text = compare.format_comparison(result)
    assert "Left out: fold 2 (A finished, B unfinished)." in text
    assert "No Bayesian probabilities" in text


def test_runs_tested_on_other_examples_do_not_pair(tmp_path):
    a, _ = _write_run(str(tmp_path), "kd", 0.9)
    b, _ = _write_run(str(tmp_path), "bert", 0.7, shifted_fold=1)
    with pytest.raises(ConfigError, match="fold 1 was tested on other examples"):
        compare.compare_runs(a, b)


@pytest.mark.parametrize("other, expected", [
    ({"protocol": "kfold:2", "folds": 2}, "under 'kfold:2'"),
    ({"protocol": "split", "folds": 1}, "has no folds to pair"),
])
def test_other_protocols_are_refused(tmp_path, other, expected):
    a, _ = _write_run(str(tmp_path), "kd", 0.9)
    b, _ = _write_run(str(tmp_path), "bert", 0.7, **other)
    with pytest.raises(ConfigError, match=expected):
        compare.compare_runs(a, b)


def test_cli_errors_name_the_folder_and_exit_2(tmp_path, capsys):
    a, _ = _write_run(str(tmp_path), "kd", 0.9)
    missing = str(tmp_path / "nope")
    assert compare.run_cli(a, missing, ["f1"], 1.0) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {missing}: no such run folder")
    assert compare.run_cli(a, a, ["f1"], 1.0) == 0   # a run against itself: Δ 0 everywhere
    assert "| f1 |" in capsys.readouterr().out
    assert compare.run_cli(a, a, ["nope"], 1.0) == 2
    assert "no test 'nope'" in capsys.readouterr().err
