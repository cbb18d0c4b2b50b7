"""Tables on writer-grouped cross-validation: the header names the grouping and every compared
row carries the corrected interval, the Holm-adjusted p, the three Bayesian probabilities and
the MDD; the learning curve compares each row with `bert` at the same training fraction."""

import csv
import os
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.model_selection import GroupKFold

from empathy_tf.config import ExperimentConfig
from empathy_tf.eval import format as fmt
from empathy_tf.eval import markdown as markdown_lib
from empathy_tf.eval import aggregate, chart, provenance, report, stats
from empathy_tf.eval.tables import Row, TableSpec
from empathy_tf.protocols import protocol_spec
from tests.eval.cells import noisy_probs, write_cell

WRITERS, ESSAYS, FOLDS = 24, 3, 3
ACCURACY = {"bert": 0.7, "kd_sst_emonet": 0.8, "tfidf_lr": 0.65, "same_writer": 0.6}
TABLE = TableSpec("grouped", "Table 4: NewsEmp", ("newsemp",),
                  (Row("bert"), Row("kd_sst_emonet"), Row("tfidf_lr", in_paper=False),
                   Row("same_writer", in_paper=False, floor=True)), paper_table="table4")
ARGV = ["experiments/run.py", "--exp=table4", "--protocol=kfold:3"]


def _grouped_folds(ids, writers, seed):
    """Writer-disjoint folds (test ids), shuffled by seed: no writer in two test splits."""
    order = np.random.default_rng(seed).permutation(len(ids))
    return [ids[order][test] for _, test in
            GroupKFold(FOLDS).split(ids, groups=writers[order])]


def _write_table(out, protocol, seeds, table=TABLE, unfinished=()):
    """Cells of every row of `table` under `protocol`, grouped by writer (those of the rows in
    `unfinished` started, not finished); returns write_table's result and {(row, seed, fold):
    test F1 in points}."""
    rng = np.random.default_rng(0)
    ids = np.array([f"e{i:03d}" for i in range(WRITERS * ESSAYS)])
    writers = np.repeat(np.arange(WRITERS), ESSAYS)
    labels = dict(zip(ids, rng.integers(0, 2, len(ids))))
    cells, f1 = [], {}
    for row in table.rows:
        base = ExperimentConfig(name=row.experiment)
        for seed in seeds:
            folds = _grouped_folds(ids, writers, seed)
            for fold, test in enumerate(folds):
                config = base.replace(protocol=protocol, seed=seed, fold=fold, dataset="newsemp")
                run_dir = os.path.join(out, row.name, f"seed{seed}", f"fold{fold}")
                train = np.setdiff1d(ids, test)
                fraction = row.train_fraction
                train = train[:max(1, int(round(fraction * len(train))))]
                y = np.array([labels[i] for i in test])
                probs = noisy_probs(y, ACCURACY[row.experiment] - 0.1 * (1 - fraction), rng)
                write_cell(run_dir, config, y, probs, test, group_by="response_id",
                           protocol=protocol, split={"train": train, "dev": [], "test": test},
                           finished=row.name not in unfinished)
                cells.append((row.name, config, run_dir))
                f1[(row.name, seed, fold)] = 100 * skm.f1_score(y, probs.argmax(1))
    return report.write_table(table, cells, out, argv=ARGV, bootstrap_samples=200, rope=1.0), f1


def _csv_rows(path):
    with open(path) as f:
        return {r["row"]: r for r in csv.DictReader(line for line in f if not line.startswith("#"))}


@pytest.fixture(scope="module")
def kfold3(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("grouped"))
    (paths, md), f1 = _write_table(out, "kfold:3", [0])
    return paths, md, f1


def test_header_names_grouping_and_statistics(kfold3):
    _, md, _ = kfold3
    assert ("- **Grouping (examples sharing this field never straddle train/dev/test):** "
            "response_id") in md
    assert "corrected resampled t-test" in md and "n_test/n_train = kfold:3: 1/2 = 0.500" in md
    assert "ROPE ±1 points" in md
    assert "Holm over the table's 3 comparisons with a p-value per metric" in md


def test_holm_family_counts_only_rows_with_cells(tmp_path):
    """A partly run table: Holm adjusts over the finished comparisons and the header says so."""
    _write_table(str(tmp_path), "kfold:3", [0])
    partial = TableSpec("grouped", "Table 4: NewsEmp", ("newsemp",),
                        TABLE.rows + (Row("kd_sst", in_paper=False),), paper_table="table4")
    cells = []
    for row in partial.rows:   # the cells _write_table wrote, and kd_sst's three, never run
        base = ExperimentConfig(name=row.experiment).replace(protocol="kfold:3", seed=0,
                                                             dataset="newsemp")
        cells += [(row.name, base.replace(fold=fold),
                   os.path.join(str(tmp_path), row.name, "seed0", f"fold{fold}"))
                  for fold in range(FOLDS)]
    _, md = report.write_table(partial, cells, str(tmp_path), argv=ARGV, bootstrap_samples=200,
                               rope=1.0)
    assert ("Holm over the table's 3 comparisons with a p-value (of 4 requested: the others "
            "have no cells yet) per metric") in md


def test_every_row_has_corrected_interval_holm_p_and_bayesian_probabilities(kfold3):
    paths, md, f1 = kfold3
    rows = _csv_rows(paths["csv"])
    bert = {(0, f): f1[("bert", 0, f)] for f in range(FOLDS)}
    ps = []
    for name in ("kd_sst_emonet", "tfidf_lr", "same_writer"):
        ours = {(0, f): f1[(name, 0, f)] for f in range(FOLDS)}
        diff = stats.paired_difference(ours, bert, test_train_ratio=1 / (FOLDS - 1))
        bayes = stats.bayesian_correlated(ours, bert, rope=1.0, folds=FOLDS)
        row = rows[name]
        assert float(row["diff_f1_ci_low"]) == pytest.approx(diff.ci_low, abs=1e-4)
        assert float(row["diff_f1_ci_high"]) == pytest.approx(diff.ci_high, abs=1e-4)
        assert float(row["diff_f1_mdd"]) == pytest.approx(diff.mdd, abs=1e-4)
        for field in ("p_worse", "p_equivalent", "p_better"):
            assert float(row[f"diff_f1_{field}"]) == pytest.approx(getattr(bayes, field),
                                                                   abs=1e-4)
        assert row["grouping"] == "response_id" and row["test_train_ratio"] == "0.5000"
        ps.append(diff.p_value)
        line = next(line for line in md.split("Against `bert` in F1")[1].splitlines()
                    if line.startswith(f"| `{name}`"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1].startswith(f"{fmt.points(diff.mean, signed=True)} "
                                   f"{fmt.interval(diff.ci_low, diff.ci_high)}")
        assert all(c != fmt.NA for c in cells[1:8]), line    # Δ, p, Holm p, 3 P's, MDD
    for name, p in zip(("kd_sst_emonet", "tfidf_lr", "same_writer"), stats.holm(ps)):
        assert float(rows[name]["diff_f1_p_holm"]) == pytest.approx(p, rel=1e-3)
    assert "Against `bert` in Macro-F1 (points):" in md
    assert rows["kd_sst_emonet"]["diff_macro_f1_p_better"] != ""
    assert "| `same_writer` (not in paper; floor) |" in md


def test_charts_are_written(kfold3):
    paths, md, _ = kfold3
    assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(paths["pdf"], "rb").read(5) == b"%PDF-"
    assert f"]({os.path.basename(paths['png'])})" in md


def test_repeated_kfold_pairs_cells_by_seed_and_fold(tmp_path):
    # repeated_kfold:2:3 (the data side's protocol): 6 cells per row, ρ = 1/3 throughout.
    protocol = protocol_spec("repeated_kfold:2:3")
    assert (protocol.repeats, protocol.folds, protocol.test_train_ratio) == (2, 3, 0.5)
    (paths, md), f1 = _write_table(str(tmp_path), "repeated_kfold:2:3", [0, 1])
    assert "| `bert` | 6/6 cells (2 seeds × 3 folds) |" in md
    assert "repeated_kfold:2:3 (2 seeds × stratified 3-fold cross-validation" in md
    keys = [(s, f) for s in (0, 1) for f in range(FOLDS)]
    kd = {k: f1[("kd_sst_emonet", *k)] for k in keys}
    bert = {k: f1[("bert", *k)] for k in keys}
    bayes = stats.bayesian_correlated(kd, bert, rope=1.0, folds=FOLDS)
    row = _csv_rows(paths["csv"])["kd_sst_emonet"]
    assert row["diff_n"] == "6"
    assert float(row["diff_f1_p_better"]) == pytest.approx(bayes.p_better, abs=1e-4)


CURVE = TableSpec("curve", "Learning curve", ("newsemp",), tuple(
    Row(f"{e}_{round(100 * f)}", experiment=e, in_paper=False,
        overrides=(("train_fraction", f),), compare_to=f"bert_{round(100 * f)}")
    for e in ("bert", "kd_sst_emonet") for f in (0.25, 1.0)), baseline="bert_100")


def test_learning_curve_compares_at_the_same_fraction(tmp_path):
    (paths, md), f1 = _write_table(str(tmp_path), "kfold:3", [0], table=CURVE)
    assert CURVE.is_curve
    rows = _csv_rows(paths["csv"])
    assert rows["kd_sst_emonet_25"]["compared_with"] == "bert_25"
    assert rows["bert_25"]["compared_with"] == ""
    # Train examples from split.json: 2/3 of 72 essays, a quarter of them.
    assert float(rows["bert_25"]["train_examples"]) == pytest.approx(12.0)
    assert float(rows["bert_100"]["train_examples"]) == pytest.approx(48.0)
    kd = {(0, f): f1[("kd_sst_emonet_25", 0, f)] for f in range(FOLDS)}
    bert = {(0, f): f1[("bert_25", 0, f)] for f in range(FOLDS)}
    diff = stats.paired_difference(kd, bert, 0.5)
    assert float(rows["kd_sst_emonet_25"]["diff_f1_mean"]) == pytest.approx(diff.mean, abs=1e-4)
    section = md.split("`kd_sst_emonet` − `bert` at the same training fraction (points):")[1]
    line = next(line for line in section.splitlines() if line.startswith("| 0.25 | 12 |"))
    assert f"{fmt.points(diff.mean, signed=True)} {fmt.interval(diff.ci_low, diff.ci_high)}" \
        in line
    assert "- **Training fractions:** 0.25, 1 of each cell's training split" in md
    assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_partly_run_curve_places_only_the_fractions_with_cells(tmp_path):
    (paths, _), _ = _write_table(str(tmp_path), "kfold:3", [0], table=CURVE,
                                 unfinished=("bert_100", "kd_sst_emonet_100"))
    cells = [(row.name, ExperimentConfig(name=row.experiment).replace(
        protocol="kfold:3", seed=0, fold=fold, dataset="newsemp"),
        os.path.join(str(tmp_path), row.name, "seed0", f"fold{fold}"))
        for row in CURVE.rows for fold in range(FOLDS)]
    results = aggregate.summarize(CURVE, aggregate.group_cells(CURVE, cells), 100, 1.0)
    plt = chart._pyplot()
    fig = chart.curve_figure(plt, CURVE, results)
    try:
        # 25% of 48 training essays: the only x with cells (the unfinished 100% has no count,
        # and no stand-in such as its percentage is placed on the examples axis).
        for ax in fig.axes:
            assert ax.get_xlabel() == "training examples"
            assert [t.get_text() for t in ax.get_xticklabels()] == ["12"]
    finally:
        plt.close(fig)


def _chart(tmp_path, table, probs_for):
    """(pyplot, the table's figure) from kfold:3 cells whose test probabilities for [n] labels
    are `probs_for(row name, labels)`, None for a cell requested but never run."""
    cells = []
    for row in table.rows:
        for fold in range(FOLDS):
            config = ExperimentConfig(name=row.name).replace(protocol="kfold:3", fold=fold)
            run_dir = str(tmp_path / row.name / f"fold{fold}")
            labels = np.tile([0, 1], 20)
            probs = probs_for(row.name, labels)
            if probs is not None:
                write_cell(run_dir, config, labels, probs, np.arange(len(labels)))
            cells.append((row.name, config, run_dir))
    results = aggregate.summarize(table, aggregate.group_cells(table, cells), 100, 1.0)
    plt = chart._pyplot()
    return plt, chart.table_figure(plt, table, results)


def test_chart_draws_missing_rows_as_missing_not_zero(tmp_path):
    table = TableSpec("t", "Table 4: NewsEmp", ("newsemp",), (Row("bert"), Row("kd_sst_emonet")),
                      paper_table="table4")
    rng = np.random.default_rng(3)
    # kd_sst_emonet: requested, never run.
    plt, fig = _chart(tmp_path, table, lambda name, labels:
                      noisy_probs(labels, 0.8, rng) if name == "bert" else None)
    try:
        score_ax, diff_ax = fig.axes[:2]
        labels = [t.get_text() for t in score_ax.get_yticklabels()]
        assert labels == ["BERT", "KD_SST+EmoNet (no finished cell)"]
        # Only bert's two metrics are drawn: nothing at the missing row's position, no zero.
        drawn = [line for line in score_ax.lines if len(line.get_xdata())]
        ys = {round(float(y)) for line in drawn for y in line.get_ydata()}
        assert ys == {1}
        xs = [float(x) for line in drawn for x in line.get_xdata()]
        assert min(xs) > 0 and score_ax.get_xlim()[0] > 0   # zoomed to the data, not from 0
    finally:
        plt.close(fig)


def test_chart_zooms_to_trained_rows_and_marks_floors_at_the_edge(tmp_path):
    """`same_writer` under grouped folds predicts no essay positive (F1 0): the score axis stays
    on the trained rows and the floor is a triangle at its left edge, labelled with its value."""
    table = TableSpec("t", "Table 4: NewsEmp", ("newsemp",),
                      (Row("bert"), Row("same_writer", in_paper=False, floor=True)))
    rng = np.random.default_rng(4)
    plt, fig = _chart(tmp_path, table, lambda name, labels:
                      noisy_probs(labels, 0.8, rng) if name == "bert"
                      else np.tile([[0.9, 0.1]], (len(labels), 1)))   # always the negative class
    try:
        score_ax = fig.axes[0]
        low, _ = score_ax.get_xlim()
        # Zoomed to bert's interval, beyond both floor values (F1 0.0, macro-F1 33.3).
        assert low > 33.4
        edge_markers = [line for line in score_ax.lines if line.get_marker() == "<"]
        assert edge_markers and all(float(line.get_xdata()[0]) == low for line in edge_markers)
        labels = {t.get_text() for t in score_ax.texts}
        assert {"0.0", "33.3"} <= labels   # the floor's values, written beside its markers
    finally:
        plt.close(fig)


@pytest.mark.parametrize("split, config_value, shown", [
    ({"newsemp": {"group_by": "response_id"}}, "auto", "response_id"),
    ({"twittemp": {"group_by": None}}, "auto", "none"),   # auto resolved to no grouping
    ({"twittemp": {"train": []}}, "none", "none"),        # split.json from before the record
    (None, "response_id", "response_id"),                 # no split.json at all
])
def test_header_grouping_is_what_the_split_resolved(split, config_value, shown):
    dataset = next(iter(split)) if split else "newsemp"
    cell = SimpleNamespace(split=split, record={"config": {"data": {
        "dataset": dataset, "group_by": config_value}}})
    assert provenance.grouping(cell) == shown


def test_reading_guide_names_only_the_floors_the_table_has():
    """Table 4's guide explains `same_writer`; a TwittEmp table, which has no writers, does not."""
    twittemp = TableSpec("t", "Table 5: TwittEmp", ("twittemp",),
                         (Row("bert"), Row("all_positive", in_paper=False, floor=True)))
    guide = lambda table: markdown_lib.markdown(table, [], [], "t.png").split("## How to read")[1]
    assert "`all_positive`: the positive class" in guide(twittemp)
    assert "same_writer" not in guide(twittemp)
    assert "`same_writer`: each essay's label" in guide(TABLE)
    assert "Floor rows" not in guide(TableSpec("t", "T", ("twittemp",), (Row("bert"),)))


def test_a_setting_that_differs_by_dataset_is_named_per_dataset():
    # The curve runs each row on NewsEmp (writer-grouped) and TwittEmp (no writers): one row,
    # two groupings; the header must not list a row under both.

    def cell(row, dataset, group_by):
        return SimpleNamespace(row=row, split=None, record={
            "config": {"data": {"dataset": dataset, "group_by": group_by}}})
    curve = [cell(row, dataset, group_by) for row in ("bert_10", "bert_100")
             for dataset, group_by in (("newsemp", "response_id"), ("twittemp", None))]
    assert provenance.by_value(curve, provenance.grouping) == \
        "response_id (dataset newsemp); none (dataset twittemp)"
    # Rows that each have one value are still named by row (Table 7: source rows train on
    # NewsEmp, target rows on TwittEmp).
    table7 = [cell("source_only", "newsemp", "response_id"),
              cell("target_only", "twittemp", None), cell("all_positive", "twittemp", None)]
    assert provenance.by_value(table7, provenance.grouping) == \
        "response_id (row source_only); none (rows target_only, all_positive)"


def test_seeded_splits_are_corrected_for_their_overlapping_training_sets(tmp_path):
    # Three seeds of one 80/10/10 split each: the training sets come from the same examples, so
    # the differences are corrected with n_test/n_train = 10/(80 + 10), as k-fold counts it.
    rng = np.random.default_rng(1)
    ids = np.array([f"t{i:03d}" for i in range(100)])
    table = TableSpec("seeded", "Seeded splits", ("newsemp",), (Row("bert"), Row("kd_sst_emonet")))
    cells, f1 = [], {}
    for row in table.rows:
        for seed in range(3):
            order = np.random.default_rng(seed).permutation(ids)
            train, dev, test = order[:80], order[80:90], order[90:]
            config = ExperimentConfig(name=row.name).replace(protocol="split", seed=seed,
                                                             dataset="newsemp")
            y = rng.integers(0, 2, len(test))
            probs = noisy_probs(y, ACCURACY[row.name], rng)
            run_dir = str(tmp_path / row.name / f"seed{seed}")
            write_cell(run_dir, config, y, probs, test, protocol="split",
                       split={"train": train, "dev": dev, "test": test})
            cells.append((row.name, config, run_dir))
            f1.setdefault(row.name, {})[(seed, 0)] = 100 * skm.f1_score(y, probs.argmax(1))
    paths, md = report.write_table(table, cells, str(tmp_path), argv=ARGV, bootstrap_samples=50)
    diff = stats.paired_difference(f1["kd_sst_emonet"], f1["bert"], 10 / 90)
    row = _csv_rows(paths["csv"])["kd_sst_emonet"]
    assert float(row["diff_f1_ci_low"]) == pytest.approx(diff.ci_low, abs=1e-3)
    assert float(row["test_train_ratio"]) == pytest.approx(10 / 90, abs=1e-4)
    assert "n_test/n_train = 0.111" in md and "plain paired" not in md


def test_a_domain_adaptation_cell_is_corrected_by_the_split_it_was_tested_on():
    # Trained on NewsEmp's split, tested on TwittEmp's (the target record): 30 / (240 + 30),
    # with a training split subsampled to half counted at its full size.
    ids = lambda n: [str(i) for i in range(n)]  # noqa: E731
    cell = SimpleNamespace(record={"config": {"data": {"dataset": "newsemp"}}}, split={
        "newsemp": {"train": ids(150), "dev": ids(18), "test": ids(18), "role": "source: train"},
        "twittemp": {"train": ids(120), "dev": ids(30), "test": ids(30), "train_fraction": 0.5,
                     "role": "target: test only"}})
    assert aggregate._split_test_train_ratio(cell) == pytest.approx(30 / 270)
