"""From a table's cells to its numbers: one `RowResult` per (dataset, row).

`group_cells` reads the requested cells' folders (`tables.collect`); `summarize` fills in, per
row: test metrics (mean ± std over finished cells), the metrics of all folds' test predictions
pooled (k-fold kinds), the comparison with the row's baseline in macro-F1 and F1 (corrected t
interval, p, Holm-adjusted p over the table's comparisons, the Bayesian probabilities with a ROPE,
the minimum detectable difference), a paired bootstrap over pooled predictions, the paper's
numbers and domain adaptation extras. Every number comes from the cell files.

Example:

    results = summarize(spec, group_cells(spec, cells), rope=1.0)
    kd = next(r for r in results if r.row.name == "kd_sst_emonet")
    kd.comparisons["f1"].difference.ci_low, kd.comparisons["f1"].bayes.p_better
"""

import dataclasses
import zipfile

import numpy as np

from empathy_tf.errors import EmpathyTFError
from empathy_tf import protocols
from empathy_tf.eval import format as fmt
from empathy_tf.eval import paper as paper_lib
from empathy_tf.eval import stats, tables

METRICS = tables.METRICS
POOLED_METRICS = ("precision", "recall", "f1", "macro_f1")
COMPARED_METRICS = ("macro_f1", "f1")   # macro-F1 first: a floor cannot hide in it
BOOTSTRAP_SAMPLES = 10000
ROPE = 1.0   # points


@dataclasses.dataclass
class Pooled:
    """A row's test predictions pooled over all folds, for each seed whose folds all finished.

    `metrics` maps a metric to (mean, std) over those seeds; `probs` is [seeds, n, C] and
    `labels` [n], both in the order of `ids` (sorted).
    """
    seeds: list
    ids: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    metrics: dict
    positive_class: int | None


@dataclasses.dataclass
class Comparison:
    """A row against its baseline in one metric (points): the paired difference (corrected for
    the cells' overlapping training sets, with the larger of the two rows' ratios), its
    Holm-adjusted p over the table's comparisons in that metric, and the Bayesian correlated
    t-test (k-fold kinds with whole repetitions of the folds)."""
    baseline: str
    metric: str
    difference: stats.PairedDifference
    bayes: stats.BayesianComparison | None = None
    p_holm: float | None = None


@dataclasses.dataclass
class RowResult:
    """Everything the table shows for one (dataset, row)."""
    dataset: str
    row: tables.Row
    cells: list                 # tables.Cell, as requested
    configs: list               # the requested ExperimentConfig of each cell
    test: dict = dataclasses.field(default_factory=dict)   # metric -> (mean, std), fractions
    pooled: Pooled | None = None
    comparisons: dict = dataclasses.field(default_factory=dict)   # metric -> Comparison
    bootstrap: stats.BootstrapResult | None = None          # F1 fraction
    paper: paper_lib.PaperCell | None = None
    source_f1: tuple = (None, None)
    mlm: dict | None = None
    train_examples: float | None = None     # mean size of the training split used
    test_positive_rate: float | None = None  # mean share of positives in the cells' test splits
    notes: list = dataclasses.field(default_factory=list)

    @property
    def finished(self):
        return [c for c in self.cells if c.status == "finished"]

    @property
    def complete(self):
        return len(self.finished) == len(self.cells)

    @property
    def in_paper(self):
        """The paper has this row: its transcription holds the cell (or the spec says so and the
        transcription lacks it, shown as missing)."""
        return self.paper is not None or self.row.in_paper

    @property
    def protocol(self):
        return protocols.protocol_spec(self.configs[0].data.protocol)

    @property
    def delta_paper(self):
        """Our mean test F1 − the paper's, in points."""
        mean = self.test.get("f1", (None, None))[0]
        return None if mean is None or self.paper is None else 100.0 * mean - self.paper.f1

    def points(self, metric):
        """{(seed, fold): metric in points} of the finished cells."""
        return {(c.seed, c.fold): 100.0 * c.metrics["test"][metric] for c in self.finished
                if metric in c.metrics["test"]}

    def interval(self, metric):
        """(mean, low, high) in points of the metric over cells, corrected 95% t interval."""
        return stats.mean_interval(list(self.points(metric).values()), self.test_train_ratio)

    @property
    def test_train_ratio(self):
        """n_test/n_train of the Nadeau & Bengio correction for this row's cells.

        Under k-fold, the protocol's 1/(K−1). Seeded splits (`split`, `repeated:N`) draw their
        training sets from the same examples too, so their cells are no more independent than
        folds: the evaluated split's test size over the rest (dev, and train at its full size),
        as k-fold counts it, from the finished cells' split.json (0, the plain t-test, where no
        cell recorded its split).
        """
        if self.protocol.cross_validation:
            return self.protocol.test_train_ratio
        ratios = [r for r in map(_split_test_train_ratio, self.finished) if r is not None]
        return float(np.mean(ratios)) if ratios else 0.0


def group_cells(table, cells, failed=None):
    """[RowResult] (dataset-major, in table order) of the requested (row, config, run_dir)s.

    A row's cells in a section are those of its name run on `row.dataset_for(section)`: Table 7's
    `newsemp_to_twittemp` section holds `source_only` run on newsemp and `target_only` on
    twittemp. Rows nothing was requested for are left out.
    """
    requested = {}
    for row_name, config, run_dir in cells:
        requested.setdefault((row_name, config.data.dataset), {}).setdefault(run_dir, config)
    results = []
    for dataset in table.datasets:
        for row in table.rows:
            found = requested.get((row.name, row.dataset_for(dataset)), {})
            if not found:
                continue
            group = [tables.Cell(dataset, row.name, config.seed, config.data.fold, run_dir)
                     for run_dir, config in found.items()]
            results.append(RowResult(dataset, row, tables.collect(group, failed),
                                     list(found.values())))
    return results


def summarize(table, results, bootstrap_samples=BOOTSTRAP_SAMPLES, rope=ROPE):
    """Fills in every RowResult's numbers (see the module docstring); returns `results`."""
    for result in results:
        done = result.finished
        result.test = {m: stats.mean_std([c.metrics["test"][m] for c in done
                                          if m in c.metrics["test"]]) for m in METRICS}
        result.paper = paper_lib.paper_cell(table.paper_table, result.dataset, result.row.name)
        result.source_f1 = stats.mean_std([c.metrics["source"]["test"]["f1"] for c in done
                                           if (c.metrics.get("source") or {}).get("test")])
        result.mlm = _mlm_summary(done)
        result.train_examples = _train_examples(result)
        result.pooled = _pool(result)
        if result.paper is not None:   # what the published P and R are checked against
            result.test_positive_rate = _test_positive_rate(result)
    for result in results:
        name = table.baseline_of(result.row)
        baseline = next((r for r in results if r.dataset == result.dataset
                         and r.row.name == name), None)
        if baseline is None:
            continue
        protocol = result.protocol
        ratio = max(result.test_train_ratio, baseline.test_train_ratio)
        for metric in COMPARED_METRICS:
            ours, theirs = result.points(metric), baseline.points(metric)
            result.comparisons[metric] = Comparison(
                name, metric,
                stats.paired_difference(ours, theirs, ratio),
                stats.bayesian_correlated(ours, theirs, rope, protocol.folds)
                if protocol.cross_validation else None)
        if result.pooled is not None and baseline.pooled is not None:
            result.bootstrap = _bootstrap(result, baseline, bootstrap_samples)
    for metric in COMPARED_METRICS:   # one family per metric: the table's comparisons
        family = [r.comparisons[metric] for r in results if metric in r.comparisons]
        for comparison, p in zip(family, stats.holm([c.difference.p_value for c in family])):
            comparison.p_holm = p
    return results


def _mlm_summary(done):
    runs = [c.metrics["mlm"] for c in done if c.metrics.get("mlm")]
    if not runs:
        return None
    return {"steps": sorted({r.get("steps") for r in runs if r.get("steps") is not None}),
            "loss_first20": stats.mean_std([r["loss_first20"] for r in runs
                                            if r.get("loss_first20") is not None])[0],
            "loss_last20": stats.mean_std([r["loss_last20"] for r in runs
                                           if r.get("loss_last20") is not None])[0]}


def _train_examples(result):
    """Mean number of the target task's training examples over finished cells (split.json)."""
    sizes = [len(c.split[result.row.dataset_for(result.dataset)]["train"])
             for c in result.finished
             if c.split and "train" in (c.split.get(result.row.dataset_for(result.dataset)) or {})]
    return float(np.mean(sizes)) if sizes else None


def tested_split(split, dataset):
    """The record of a cell's split.json ({dataset: {"train", "dev", "test", ...}}) that it was
    tested on: the target's (domain adaptation tests on the target), else its dataset's; None
    when there is none."""
    split = split or {}
    targets = [r for r in split.values() if str(r.get("role", "")).startswith("target")]
    return targets[0] if targets else split.get(dataset)


def _split_test_train_ratio(cell):
    """n_test / (n_dev + n_train at full size) of the split the cell was tested on."""
    record = tested_split(cell.split, cell.record["config"]["data"]["dataset"])
    if not record or not {"train", "test"} <= set(record):
        return None
    rest = len(record["train"]) / (record.get("train_fraction") or 1.0) + \
        len(record.get("dev") or ())
    return len(record["test"]) / rest if rest else None


def _test_positive_rate(result):
    """Share of the positive class among the test labels: of the pooled folds where there are
    some, else the mean over the finished cells' (None for tasks scored by macro metrics, or when
    no cell's predictions can be read)."""
    pooled = result.pooled
    if pooled is not None:
        return None if pooled.positive_class is None else \
            float(np.mean(pooled.labels == pooled.positive_class))
    rates = []
    for cell in result.finished:
        try:
            positive_class = _positive_class(cell, result.configs[0])
            labels = _read_predictions(cell)[1]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EmpathyTFError):
            continue
        if positive_class is None or not len(labels):
            return None
        rates.append(float(np.mean(labels == positive_class)))
    return float(np.mean(rates)) if rates else None


def _positive_class(cell, config):
    """The positive class of the task the cell's predictions are of (None: macro metrics)."""
    from empathy_tf.data import tasks
    # Domain adaptation cells train on one task and predict another; metrics.json names it.
    name = (cell.metrics.get("target") or {}).get("task") or config.data.dataset
    return tasks.get_task(name, **config.data.csv_options()).positive_class


def _read_predictions(cell):
    with np.load(cell.predictions_path, allow_pickle=False) as data:
        return np.asarray(data["ids"]).astype(str), np.asarray(data["labels"]), \
            np.asarray(data["probs"])


def _pool(result):
    """Pooled predictions of a k-fold row (None otherwise, or with a note why not)."""
    folds = result.protocol.folds
    if not result.protocol.cross_validation or not result.finished:
        return None
    by_seed = {}
    for cell in result.finished:
        by_seed.setdefault(cell.seed, {})[cell.fold] = cell
    seeds = [s for s in sorted(by_seed) if set(by_seed[s]) == set(range(folds))]
    if not seeds:
        result.notes.append(f"pooled: needs all {folds} folds of a seed finished")
        return None
    try:
        first = by_seed[seeds[0]][0]
        positive_class = _positive_class(first, result.configs[0])
        per_seed = [_pool_seed(seed, [by_seed[seed][f] for f in range(folds)]) for seed in seeds]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EmpathyTFError) as e:
        result.notes.append(f"pooled: {e}")
        return None
    ids, labels, _ = per_seed[0]
    for seed, (other_ids, other_labels, _) in zip(seeds[1:], per_seed[1:]):
        if not np.array_equal(ids, other_ids) or not np.array_equal(labels, other_labels):
            result.notes.append(f"pooled: seeds {seeds[0]} and {seed} predicted different "
                                "examples or labels; not pooled")
            return None
    by_metric = [stats.pooled_metrics(labels, probs, positive_class) for _, _, probs in per_seed]
    metrics = {m: stats.mean_std([p[m] for p in by_metric]) for m in POOLED_METRICS
               if m in by_metric[0]}
    return Pooled(seeds, ids, labels, np.stack([p for _, _, p in per_seed]), metrics,
                  positive_class)


def _pool_seed(seed, fold_cells):
    """(ids, labels, probs) of one seed's folds concatenated, sorted by id; each id once."""
    parts = [_read_predictions(c) for c in fold_cells]
    ids = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    probs = np.concatenate([p[2] for p in parts])
    order = np.argsort(ids, kind="stable")
    ids, labels, probs = ids[order], labels[order], probs[order]
    repeated = ids[1:][ids[1:] == ids[:-1]]
    if repeated.size:
        raise ValueError(f"seed {seed}: example id {str(repeated[0])!r} is in the test split of "
                         "more than one fold, so the folds do not partition the data; not pooled")
    return ids, labels, probs


def _bootstrap(result, baseline, samples):
    """Paired bootstrap of pooled F1 against the baseline (seeds both pooled, ids aligned)."""
    a, b = result.pooled, baseline.pooled
    seeds = [s for s in a.seeds if s in b.seeds]
    name = f"`{baseline.row.name}`"
    if not seeds:
        result.notes.append(f"bootstrap: no seed pooled in both this row and {name}")
        return None
    if not np.array_equal(a.ids, b.ids):
        only = len(set(a.ids.tolist()) ^ set(b.ids.tolist()))
        result.notes.append(f"bootstrap: this row and {name} were tested on different examples "
                            f"({only} ids in only one of them)")
        return None
    if not np.array_equal(a.labels, b.labels):
        result.notes.append(f"bootstrap: this row and {name} record different labels")
        return None
    if a.labels.ndim != 1:
        result.notes.append("bootstrap: not available for multi-label tasks")
        return None
    return stats.paired_bootstrap(a.labels, a.probs[[a.seeds.index(s) for s in seeds]],
                                  b.probs[[b.seeds.index(s) for s in seeds]], a.positive_class,
                                  "f1", samples=samples, seed=0)


# ---------------------------------------------------------------------------------------------
# Counting cells.

def _statuses(result):
    protocol = result.protocol
    several_seeds = len({c.seed for c in result.cells}) > 1
    out = []
    for status, label in (("failed", "failed"), ("unfinished", "unfinished"),
                          ("not_started", "not run")):
        group = [c for c in result.cells if c.status == status]
        if not group:
            continue
        if protocol.cross_validation and not several_seeds:
            names = f"{'fold' if len(group) == 1 else 'folds'} {fmt.numbers(c.fold for c in group)}"
        elif protocol.cross_validation:
            names = ", ".join(f"seed {c.seed} fold {c.fold}" for c in group)
        else:
            names = f"{'seed' if len(group) == 1 else 'seeds'} {fmt.numbers(c.seed for c in group)}"
        out.append(f"{names} {label}")
    return out


def cells_text(result):
    """'3/3 seeds', '8/10 folds (folds 8, 9 not run)', '5/6 cells (2 seeds × 3 folds; ...)'."""
    protocol = result.protocol
    seeds = len({c.seed for c in result.cells})
    unit = ("seeds" if not protocol.cross_validation else "folds" if seeds == 1 else "cells")
    notes = ([f"{seeds} seeds × {protocol.folds} folds"]
             if protocol.cross_validation and seeds > 1 else [])
    notes += _statuses(result)
    return (f"{len(result.finished)}/{len(result.cells)} {unit}"
            + (f" ({'; '.join(notes)})" if notes else ""))


def cell_name(cell, protocol):
    """'seed 0 fold 3' (k-fold kinds) or 'seed 0'."""
    return f"seed {cell.seed}" + (f" fold {cell.fold}" if protocol.cross_validation else "")
