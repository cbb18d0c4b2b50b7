"""Result tables from hand-made cell folders: counts, means, pooled K-fold metrics, paired
statistics, the paper's numbers, and the header facts (no training)."""

import csv
import os

import numpy as np
import pytest
from sklearn import metrics as skm

from empathy_tf.config import DataConfig, ExperimentConfig
from empathy_tf.eval import format as fmt
from empathy_tf.eval import paper, report, stats
from empathy_tf.eval.tables import Row, TableSpec
from tests.eval.cells import noisy_probs, write_cell

N, FOLDS = 60, 3
ARGV = ["/repo/experiments/run.py", "--exp=toy", "--protocol=kfold:3"]
TOY = TableSpec("toy", "Toy table: NewsEmp", ("newsemp",),
                (Row("bert"), Row("kd_sst"), Row("lstm"), Row("all_positive", in_paper=False)),
                paper_table="table4")
CONFIGS = {
    "bert": ExperimentConfig(name="bert"),
    "kd_sst": ExperimentConfig(name="kd_sst", method="kd", data=DataConfig(aux_tasks=("sst2",),
                                                                            aux_cap=2000)),
    "lstm": ExperimentConfig(name="lstm", method="glove"),
    "all_positive": ExperimentConfig(name="all_positive", method="all_positive"),
}
ACCURACY = {"bert": 0.8, "kd_sst": 0.9, "lstm": 0.6}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A kfold:3 toy table: bert and all_positive complete, kd_sst's fold 2 unfinished, lstm's
    fold 1 failed and fold 2 not run."""
    out = str(tmp_path_factory.mktemp("runs"))
    rng = np.random.default_rng(0)
    ids = np.array([f"ex{i:02d}" for i in rng.permutation(N)])  # folds hold scattered ids
    labels = rng.integers(0, 2, N)
    cells, written, failed = [], {}, {}
    for name, base in CONFIGS.items():
        for fold in range(FOLDS):
            config = base.replace(protocol="kfold:3", seed=0, fold=fold, dataset="newsemp")
            run_dir = os.path.join(out, name, "newsemp", "kfold3-seed0", f"fold{fold}")
            cells.append((name, config, run_dir))
            part = slice(fold * N // FOLDS, (fold + 1) * N // FOLDS)
            if name == "lstm" and fold == 1:
                failed[run_dir] = "DataError: glove.txt line 3: expected 51 fields"
            if name == "lstm" and fold > 0:
                continue
            probs = (np.tile([0.0, 1.0], (N // FOLDS, 1)) if name == "all_positive"
                     else noisy_probs(labels[part], ACCURACY[name], rng))
            write_cell(run_dir, config, labels[part], probs, ids[part],
                       finished=not (name == "kd_sst" and fold == 2),
                       code_version="0.1+new" if name == "kd_sst" else "0.1+old")
            written[(name, fold)] = (ids[part], labels[part], probs)
    paths, text = report.write_table(TOY, cells, out, failed, argv=ARGV, bootstrap_samples=2000)
    return {"out": out, "paths": paths, "md": text, "written": written, "cells": cells,
            "failed": failed}


def _pooled(toy, name):
    parts = [toy["written"][(name, f)] for f in range(FOLDS)]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


def _csv_rows(path):
    with open(path) as f:
        return {r["row"]: r for r in csv.DictReader(line for line in f if not line.startswith("#"))}


def test_files_are_written(toy):
    # Named by protocol: a kfold table and a split table of the same rows do not overwrite each other.
    assert toy["paths"] == {k: os.path.join(toy["out"], "tables", f"toy-kfold3.{k}")
                            for k in ("md", "csv", "png", "pdf")}
    assert open(toy["paths"]["md"]).read() == toy["md"]
    assert open(toy["paths"]["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(toy["paths"]["pdf"], "rb").read(5) == b"%PDF-"
    assert not [f for f in os.listdir(os.path.dirname(toy["paths"]["md"])) if f.startswith(".tmp")]


def test_counts_name_unfinished_failed_and_missing_cells(toy):
    md = toy["md"]
    assert "| `bert` | 3/3 folds |" in md
    assert "| `kd_sst` | 2/3 folds (fold 2 unfinished) |" in md
    assert "| `lstm` | 1/3 folds (fold 1 failed; fold 2 not run) |" in md
    assert "## Failed cells" in md
    assert "- `lstm` newsemp seed 0 fold 1: DataError: glove.txt line 3" in md
    rows = _csv_rows(toy["paths"]["csv"])
    assert (rows["kd_sst"]["cells_finished"], rows["kd_sst"]["cells_unfinished"]) == ("2", "s0f2")
    assert rows["lstm"]["cells_failed"] == "s0f1" and rows["lstm"]["cells_not_run"] == "s0f2"


def test_means_over_finished_cells_only(toy):
    f1 = [skm.f1_score(toy["written"][("kd_sst", f)][1],
                       toy["written"][("kd_sst", f)][2].argmax(1)) for f in range(2)]
    mean, std = stats.mean_std(f1)
    assert fmt.percent_pm(mean, std) in toy["md"]
    rows = _csv_rows(toy["paths"]["csv"])
    assert float(rows["kd_sst"]["test_f1_mean"]) == pytest.approx(100 * mean, abs=1e-4)
    assert float(rows["lstm"]["test_f1_std"]) == 0.0


def test_pooled_metrics_equal_sklearn_on_concatenated_predictions(toy):
    ids, labels, probs = _pooled(toy, "bert")
    assert sorted(ids) == [f"ex{i:02d}" for i in range(N)]  # every example exactly once
    expected = skm.f1_score(labels, probs.argmax(1))
    rows = _csv_rows(toy["paths"]["csv"])
    assert float(rows["bert"]["pooled_f1"]) == pytest.approx(100 * expected, abs=1e-4)
    assert rows["bert"]["pooled_examples"] == str(N)
    macro = skm.f1_score(labels, probs.argmax(1), average="macro")
    assert float(rows["bert"]["pooled_macro_f1"]) == pytest.approx(100 * macro, abs=1e-4)
    assert rows["kd_sst"]["pooled_f1"] == ""  # a fold is missing: nothing to pool
    assert "`kd_sst`: pooled: needs all 3 folds of a seed finished" in toy["md"]


def test_paired_difference_and_bootstrap_against_the_baseline(toy):
    by_fold = {name: {(0, f): 100 * skm.f1_score(toy["written"][(name, f)][1],
                                                 toy["written"][(name, f)][2].argmax(1))
                      for f in range(FOLDS)} for name in ("bert", "all_positive")}
    # kfold:3: the corrected resampled t-test, n_test/n_train = 1/(3 − 1).
    diff = stats.paired_difference(by_fold["all_positive"], by_fold["bert"], 0.5)
    rows = _csv_rows(toy["paths"]["csv"])
    assert float(rows["all_positive"]["diff_f1_mean"]) == pytest.approx(diff.mean, abs=1e-4)
    assert float(rows["all_positive"]["diff_f1_ci_low"]) == pytest.approx(diff.ci_low, abs=1e-4)
    assert rows["all_positive"]["diff_n"] == "3"
    assert f"{fmt.points(diff.mean, signed=True)} {fmt.interval(diff.ci_low, diff.ci_high)} " \
           "(n=3)" in toy["md"]
    assert rows["bert"]["diff_f1_mean"] == ""  # the baseline itself
    assert "| `lstm` | +" in toy["md"] and "(n=1; one pair: no interval) | — |" in toy["md"]
    assert float(rows["all_positive"]["diff_f1_p"]) == pytest.approx(diff.p_value, rel=1e-3)

    # The bootstrap pairs examples by id, whatever order the folds listed them in.
    _, labels, bert = _pooled(toy, "bert")
    ids, _, positive = _pooled(toy, "all_positive")
    order = np.argsort(ids)
    boot = stats.paired_bootstrap(labels[order], positive[order], bert[order], 1, samples=2000)
    observed = skm.f1_score(labels, positive.argmax(1)) - skm.f1_score(labels, bert.argmax(1))
    assert boot.observed == pytest.approx(observed)
    assert float(rows["all_positive"]["bootstrap_f1_diff"]) == pytest.approx(100 * observed,
                                                                              abs=1e-4)
    assert float(rows["all_positive"]["bootstrap_p"]) == pytest.approx(boot.p_value, rel=1e-3)
    assert fmt.interval(100 * boot.ci_low, 100 * boot.ci_high) in toy["md"]


def test_paper_numbers_inconsistent_rows_and_rows_not_in_paper(toy):
    md = toy["md"]
    lstm = paper.paper_cell("table4", "newsemp", "lstm")
    assert lstm.inconsistent
    assert f"| {lstm.precision:.2f} | {lstm.recall:.2f} | {lstm.f1:.2f}†" in md
    assert (f"- newsemp `lstm`: P {lstm.precision:.2f}, R {lstm.recall:.2f} imply F1 "
            f"{lstm.implied_f1:.2f}; published {lstm.f1:.2f}") in md
    assert "| `all_positive` (not in paper) |" in md and "| not in paper |" in md
    rows = _csv_rows(toy["paths"]["csv"])
    assert rows["lstm"]["paper_inconsistent"] == "1"
    ours = float(rows["bert"]["test_f1_mean"])
    assert float(rows["bert"]["delta_f1_vs_paper"]) == pytest.approx(
        ours - paper.paper_cell("table4", "newsemp", "bert").f1, abs=1e-3)


def test_header_facts_list_differing_values_with_their_rows(toy):
    md = toy["md"]
    assert "- **Command:** `python -m experiments.run --exp=toy --protocol=kfold:3`" in md
    assert "- **Protocol:** kfold:3 (stratified 3-fold cross-validation" in md
    assert "- **Folds:** 0-2" in md
    assert "- **Code version(s):** 0.1+old (rows bert, lstm, all_positive); 0.1+new (row kd_sst)" \
        in md
    assert "- **Encoder(s):** minilm (rows bert, kd_sst); GloVe 6B.50d (embedded) (row lstm)" in md
    assert "- **Aux cap (training examples per auxiliary task, 0 = all):** 2000" in md
    assert "- **Numeric precision:** float32" in md
    assert "- **Compute:** 9m00s summed over 9 finished of 12 requested cells" in md
    assert f"`tensorboard --logdir {toy['out']}`" in md and "## How to read it" in md
    with open(toy["paths"]["csv"]) as f:
        assert f.readline().startswith("# Command: `python -m experiments.run")


def test_repeated_ids_are_not_pooled(tmp_path):
    table = TableSpec("dup", "Dup", ("newsemp",), (Row("bert"),))
    labels, probs = np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]])
    cells = []
    for fold in range(2):
        config = CONFIGS["bert"].replace(protocol="kfold:2", fold=fold)
        run_dir = str(tmp_path / f"fold{fold}")
        write_cell(run_dir, config, labels, probs, ["a", "b"])
        cells.append(("bert", config, run_dir))
    _, md = report.write_table(table, cells, str(tmp_path), argv=ARGV)
    assert "example id 'a' is in the test split of more than one fold" in md


def test_domain_adaptation_rows_show_source_f1_and_mlm(tmp_path):
    table = TableSpec("da", "DA: NewsEmp → TwittEmp", ("newsemp_to_twittemp",),
                      (Row("source_only", dataset="newsemp"),
                       Row("pretrain_isear", dataset="newsemp"),
                       Row("target_only", experiment="bert", dataset="twittemp")),
                      paper_table="table7")
    assert table.baseline == "source_only"
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 40)
    cells = []
    for name, dataset in (("source_only", "newsemp"), ("pretrain_isear", "newsemp"),
                          ("target_only", "twittemp")):
        for seed in (0, 1):
            config = ExperimentConfig(name=name).replace(dataset=dataset, seed=seed)
            run_dir = str(tmp_path / name / f"seed{seed}")
            extra = ({"source": {"task": "newsemp", "test": {"f1": 0.6 + 0.1 * seed}},
                      "mlm": ({"steps": 300, "loss_first20": 7.0 + seed, "loss_last20": 5.0}
                              if name == "pretrain_isear" else None),
                      "target": {"task": "twittemp"}} if dataset == "newsemp" else {})
            write_cell(run_dir, config, labels, noisy_probs(labels, 0.7, rng), np.arange(40),
                       extra_metrics=extra)
            cells.append((name, config, run_dir))
    _, md = report.write_table(table, cells, str(tmp_path), argv=ARGV)
    assert "Source test F1" in md and "| 65.00 ± 7.07 |" in md
    assert "| 300 (7.50→5.00) |" in md
    assert "| `target_only` | 2/2 seeds |" in md
    paper_f1 = paper.paper_cell("table7", "newsemp_to_twittemp", "target_only").f1
    assert f"{paper_f1:.2f}" in md
    assert "Pooled" not in md.split("## newsemp_to_twittemp")[1]  # split protocol: no pooling


@pytest.mark.parametrize("period, marked", [(3, True), (2, False)])   # 2/3, 1/2 positive
def test_a_published_precision_its_recall_rules_out_is_marked(tmp_path, period, marked):
    # The paper's Table 7 source_only: R 94.71 with P 51.12. On a test split with two positives
    # to one negative, that recall forces P >= 2R/(2R + 1) = 65.45; on a balanced one, 48.64.
    table = TableSpec("da", "DA", ("newsemp_to_twittemp",),
                      (Row("source_only", dataset="newsemp"),
                       Row("target_only", experiment="bert", dataset="twittemp")),
                      paper_table="table7")
    labels = (np.arange(60) % period != period - 1).astype(int)
    rng = np.random.default_rng(3)
    cells = []
    for name, dataset in (("source_only", "newsemp"), ("target_only", "twittemp")):
        config = ExperimentConfig(name=name).replace(dataset=dataset, seed=0)
        run_dir = str(tmp_path / name)
        extra = {"target": {"task": "twittemp"}} if dataset == "newsemp" else {}
        write_cell(run_dir, config, labels, noisy_probs(labels, 0.8, rng), np.arange(60),
                   extra_metrics=extra)
        cells.append((name, config, run_dir))
    paths, md = report.write_table(table, cells, str(tmp_path), argv=ARGV)
    rows = _csv_rows(paths["csv"])
    assert float(rows["source_only"]["test_positive_rate"]) == \
        pytest.approx(labels.mean(), abs=1e-4)
    assert rows["source_only"]["paper_precision_impossible"] == str(int(marked))
    assert rows["target_only"]["paper_precision_impossible"] == "0"   # R 84.55 allows P 85.60
    assert ("| `source_only` | 51.12‡ | 94.71 |" in md) == marked
    if marked:
        assert ("- newsemp_to_twittemp `source_only`: R 94.71 at π = 66.67% needs P ≥ 65.45; "
                "published 51.12") in md
    else:
        assert "‡" not in md


def test_kfold_under_several_seeds_pools_each_seed_and_pairs_them(tmp_path):
    table = TableSpec("two", "Two seeds", ("newsemp",), (Row("bert"), Row("all_positive")))
    rng = np.random.default_rng(2)
    ids, labels = np.array([f"t{i}" for i in range(40)]), rng.integers(0, 2, 40)
    cells, pooled_f1 = [], {}
    for name in ("bert", "all_positive"):
        for seed in (0, 1):
            order = rng.permutation(40)  # each seed splits the examples differently
            predictions = []
            for fold in range(2):
                config = CONFIGS[name].replace(protocol="kfold:2", seed=seed, fold=fold)
                run_dir = str(tmp_path / name / f"seed{seed}" / f"fold{fold}")
                part = order[fold * 20:(fold + 1) * 20]
                probs = (np.tile([0.0, 1.0], (20, 1)) if name == "all_positive"
                         else noisy_probs(labels[part], 0.8, rng))
                write_cell(run_dir, config, labels[part], probs, ids[part])
                cells.append((name, config, run_dir))
                predictions.append((labels[part], probs.argmax(1)))
            pooled_f1.setdefault(name, []).append(skm.f1_score(
                np.concatenate([p[0] for p in predictions]),
                np.concatenate([p[1] for p in predictions])))
    paths, md = report.write_table(table, cells, str(tmp_path), argv=ARGV, bootstrap_samples=500)
    assert "| `bert` | 4/4 cells (2 seeds × 2 folds) |" in md
    assert fmt.percent_pm(*stats.mean_std(pooled_f1["bert"])) in md
    rows = _csv_rows(paths["csv"])
    assert rows["bert"]["pooled_seeds"] == "0 1"
    expected = np.mean(pooled_f1["all_positive"]) - np.mean(pooled_f1["bert"])
    assert float(rows["all_positive"]["bootstrap_f1_diff"]) == pytest.approx(100 * expected,
                                                                              abs=1e-4)


def test_nothing_finished_and_the_transcription_decides_what_is_in_the_paper(tmp_path):
    # The spec calls both rows extra, but the paper's Table 7 has a GoEmotions row.
    table = TableSpec("t7", "T7", ("newsemp_to_twittemp",),
                      (Row("source_only", dataset="newsemp"),
                       Row("pretrain_goemotions", dataset="newsemp", in_paper=False),
                       Row("pretrain_semeval_tweets", dataset="newsemp", in_paper=False)),
                      paper_table="table7")
    cells = [(row.name, ExperimentConfig(name=row.name).replace(seed=seed),
              str(tmp_path / row.name / f"seed{seed}")) for row in table.rows for seed in (0, 1)]
    paths, md = report.write_table(table, cells, str(tmp_path), argv=ARGV)
    assert "| `pretrain_goemotions` | 0/2 seeds (seeds 0, 1 not run) |" in md
    assert "| `pretrain_semeval_tweets` (not in paper) |" in md
    assert "- **Compute:** 0s summed over 0 finished of 6 requested cells" in md
    assert "- **Encoder(s):** n/a (no recorded cell uses it)" in md
    assert _csv_rows(paths["csv"])["pretrain_goemotions"]["in_paper"] == "1"


def test_table_files_are_named_by_protocol_and_grouping():
    """A grouped k-fold table, an ungrouped one and a split one never overwrite each other."""
    names = {(protocol, group_by): os.path.basename(
        report.table_paths("runs", "table4", False, protocol, group_by)["md"])
        for protocol in ("split", "kfold:10") for group_by in ("auto", "none", "writer")}
    assert names[("kfold:10", "auto")] == "table4-kfold10.md"
    assert names[("kfold:10", "none")] == "table4-kfold10-ungrouped.md"
    assert names[("split", "writer")] == "table4-by_writer.md"
    assert len(set(names.values())) == len(names)
