"""Two k-fold runs compared fold by fold, with the statistics the tables use.

A table compares its rows with its baseline; this compares any two runs of one k-fold protocol,
e.g. a row against the same experiment with other options written under another `--output_dir`
(a control the table does not make). A run is a seed folder `<exp>/<dataset>/kfold<K>-seed<N>...`
holding `fold<F>/`.

Example:

    result = compare_runs("runs/kd_sst_emonet/twittemp/kfold5-seed0-train0.1",
                          "long/bert/twittemp/kfold5-seed0-train0.1")
    result.rows["macro_f1"].difference   # PairedDifference of A − B over the folds, in points
    print(format_comparison(result))

Folds pair only where both cells were made under the same protocol and tested on the same
examples (their split.json); anything else is a ConfigError naming the fold. Unfinished folds are
left out and named.
"""

import dataclasses
import os
import re
import sys

from empathy_tf import protocols, runs
from empathy_tf.errors import ConfigError, EmpathyTFError
from empathy_tf.eval import aggregate
from empathy_tf.eval import format as fmt
from empathy_tf.eval import stats

FOLD_FOLDER = re.compile(r"fold(\d+)$")


@dataclasses.dataclass(frozen=True)
class MetricComparison:
    """One metric: each run's (mean, std) over the paired folds, in points, and A − B."""
    a: tuple
    b: tuple
    difference: stats.PairedDifference
    bayesian: stats.BayesianComparison | None


@dataclasses.dataclass(frozen=True)
class RunComparison:
    a: str
    b: str
    protocol: protocols.Protocol
    folds: tuple             # the folds finished in both runs, paired
    left_out: tuple          # 'fold 3 (A finished, B unfinished)', ...
    rows: dict               # {metric: MetricComparison}
    rope: float


def read_run(seed_dir):
    """{fold: (config record, metrics, test ids)} of a k-fold seed folder's finished cells, and
    the numbers of its unfinished folds."""
    if not os.path.isdir(seed_dir):
        raise ConfigError(f"{seed_dir}: no such run folder; expected a k-fold seed folder "
                          "<output_dir>/<exp>/<dataset>/kfold<K>-seed<N>... holding fold<F>/")
    folds = sorted((int(m.group(1)), name) for name in os.listdir(seed_dir)
                   if (m := FOLD_FOLDER.match(name)))
    if not folds:
        raise ConfigError(f"{seed_dir}: no fold<F>/ folders; expected a k-fold seed folder "
                          "(e.g. runs/bert/twittemp/kfold5-seed0)")
    cells, unfinished = {}, []
    for fold, name in folds:
        cell_dir = os.path.join(seed_dir, name)
        metrics = runs.read_metrics(cell_dir)
        if metrics is None:
            unfinished.append(fold)
            continue
        record = runs.read_run_file(os.path.join(cell_dir, "config.json"))
        cells[fold] = (record, metrics, _test_ids(cell_dir, record))
    return cells, unfinished


def _test_ids(cell_dir, record):
    """The ids the cell was tested on (None when it recorded no split)."""
    path = os.path.join(cell_dir, "split.json")
    if not os.path.exists(path):
        return None
    entry = aggregate.tested_split(runs.read_run_file(path), record["config"]["data"]["dataset"])
    return tuple(entry["test"]) if entry and "test" in entry else None


def compare_runs(a, b, metrics=("macro_f1", "f1"), rope=1.0):
    """A − B over the folds both runs finished (see the module docstring)."""
    cells_a, unfinished_a = read_run(a)
    cells_b, unfinished_b = read_run(b)
    protocol_a = _protocol(a, cells_a)
    protocol_b = _protocol(b, cells_b)
    if protocol_a != protocol_b:
        raise ConfigError(f"{a} was made under protocol {protocol_a.text!r} and {b} under "
                          f"{protocol_b.text!r}; folds pair only under one k-fold protocol")
    folds = tuple(sorted(set(cells_a) & set(cells_b)))
    for fold in folds:
        ids_a, ids_b = cells_a[fold][2], cells_b[fold][2]
        if ids_a is None or ids_b is None:
            missing = a if ids_a is None else b
            raise ConfigError(f"{os.path.join(missing, f'fold{fold}', 'split.json')}: missing; "
                              "folds pair only when both cells recorded their test examples")
        if ids_a != ids_b:
            raise ConfigError(f"fold {fold} was tested on other examples in {a} than in {b} "
                              f"({len(ids_a)} and {len(ids_b)} test ids, "
                              f"{len(set(ids_a) ^ set(ids_b))} in one only); compare runs of "
                              "the same dataset, protocol and seed")
    left_out = tuple(
        f"fold {f} (A {_state(f, cells_a, unfinished_a)}, B {_state(f, cells_b, unfinished_b)})"
        for f in sorted(set(cells_a) | set(cells_b) | set(unfinished_a) | set(unfinished_b))
        if f not in folds)
    rows = {}
    for metric in metrics:
        points_a = _points(a, cells_a, folds, metric)
        points_b = _points(b, cells_b, folds, metric)
        rows[metric] = MetricComparison(
            stats.mean_std(points_a.values()), stats.mean_std(points_b.values()),
            stats.paired_difference(points_a, points_b, protocol_a.test_train_ratio),
            stats.bayesian_correlated(points_a, points_b, rope, protocol_a.folds))
    return RunComparison(a, b, protocol_a, folds, left_out, rows, rope)


def _state(fold, cells, unfinished):
    return "finished" if fold in cells else "unfinished" if fold in unfinished else "absent"


def _protocol(seed_dir, cells):
    texts = {record["config"]["data"]["protocol"] for record, _, _ in cells.values()}
    if not texts:
        raise ConfigError(f"{seed_dir}: no finished fold (no fold<F>/metrics.json)")
    if len(texts) > 1:
        raise ConfigError(f"{seed_dir}: its folds were made under several protocols "
                          f"{sorted(texts)}")
    protocol = protocols.protocol_spec(texts.pop())
    if not protocol.cross_validation:
        raise ConfigError(f"{seed_dir}: protocol {protocol.text!r} has no folds to pair; "
                          "expected kfold:K or repeated_kfold:R:K")
    return protocol


def _points(seed_dir, cells, folds, metric):
    out = {}
    for fold in folds:
        test = cells[fold][1].get("test") or {}
        if metric not in test:
            raise ConfigError(f"{os.path.join(seed_dir, f'fold{fold}', 'metrics.json')}: no "
                              f"test {metric!r}; it has {sorted(test)}")
        out[fold] = 100.0 * test[metric]
    return out


def format_comparison(result):
    """The comparison as a Markdown table and its notes."""
    lines = [f"A: {result.a}", f"B: {result.b}",
             f"{fmt.plural(len(result.folds), 'fold')} paired ({result.protocol.text}); test "
             f"metrics in points, mean ± std over folds; A − B: corrected resampled t interval "
             f"(n_test/n_train = "
             f"{result.protocol.test_train_ratio:.3g}); P(A worse / ≈ / better): Bayesian "
             f"correlated t-test, ROPE ±{result.rope:g}.", "",
             "| Metric | A | B | A − B [95% CI] | p | MDD | P(worse / ≈ / better) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for metric, row in result.rows.items():
        d = row.difference
        delta = (fmt.NA if d.mean is None else
                 f"{fmt.points(d.mean, signed=True)} {fmt.interval(d.ci_low, d.ci_high)}"
                 if d.ci_low is not None else f"{fmt.points(d.mean, signed=True)} ({d.note})")
        bayes = (fmt.NA if row.bayesian is None else " / ".join(
            f"{p:.2f}" for p in (row.bayesian.p_worse, row.bayesian.p_equivalent,
                                 row.bayesian.p_better)))
        lines.append(f"| {metric} | {_mean_std(row.a)} | {_mean_std(row.b)} | {delta} | "
                     f"{fmt.p_value(d.p_value)} | {fmt.points(d.mdd)} | {bayes} |")
    if result.left_out:
        lines += ["", "Left out: " + "; ".join(result.left_out) + "."]
    if any(row.bayesian is None for row in result.rows.values()):
        lines += ["", "No Bayesian probabilities: they need every fold of the protocol paired."]
    return "\n".join(lines) + "\n"


def _mean_std(mean_std):
    mean, std = mean_std
    return fmt.NA if mean is None else f"{mean:.2f} ± {std:.2f}"


def run_cli(a, b, metrics, rope):
    """What `python -m experiments.compare` does; returns the exit code (2 for user errors)."""
    try:
        result = compare_runs(a, b, metrics, rope)
    except EmpathyTFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_comparison(result), end="")
    return 0
