"""Tables from synthetic run folders: arithmetic, paired test, cell reuse, Markdown/CSV/PNG.

Nothing here trains a network: run folders are written by hand, and where the CLI loop runs, the
training functions are replaced by stubs that record which cells they were asked to train.
"""

import csv
import dataclasses
import os
import types

import numpy as np
import pytest
from scipy import stats

from empathy_tf import cli, config as config_lib, io_utils, reporting, runner, sklearn_runs
from empathy_tf.errors import DataError
from experiments import registry

FIELD_FLAGS = {"encoder": "encoder", "emotion_dataset": "emotion_dataset", "epochs": "epochs",
               "batch_size": "batch_size", "learning_rate": "learning_rate",
               "max_seq_length": "max_seq_length", "aux_cap": "aux_cap", "precision": "precision",
               "strategy": "strategy", "selection": "selection", "glove": "glove_path",
               "pooling": "pooling"}


def _flags(tmp_path, **changes):
    values = dict(exp="table4", dataset="newsemp", data_dir=str(tmp_path / "data"),
                  output_dir=str(tmp_path / "runs"), tfds_dir=None, seed=0, seeds=None,
                  smoke=True, overwrite=False, override=[], **{f: None for f in FIELD_FLAGS})
    values.update(changes)
    return types.SimpleNamespace(**values)


def _split_metrics(f1):
    return {"precision": f1 - 0.05, "recall": f1 + 0.05, "f1": f1, "accuracy": f1 + 0.01,
            "macro_f1": f1 - 0.01, "n": 24}


def _metrics(config, test_f1, dev_f1=0.5):
    return {"dev": _split_metrics(dev_f1), "test": _split_metrics(test_f1),
            "tasks": {}, "experiment": config.name, "dataset": config.dataset,
            "seed": config.seed, "method": config.method, "encoder": config.encoder,
            "selection": config.selection, "precision": "float32", "wall_time_s": 2.0}


def _f1_of(config):
    """A made-up but distinct test F1 per cell."""
    row = registry.TABLE_ROWS.index(config.name)
    return 0.40 + 0.02 * row + 0.01 * config.seed * (row % 3 + 1)


def _write_cell(config, data_dir, output_dir, finished=True):
    ctx = runner.RunContext(data_dir, output_dir)
    run_dir = runner.run_dir_for(config, ctx)
    io_utils.atomic_write_json(os.path.join(run_dir, "config.json"), {
        "config": config_lib.to_dict(config), "data_dir": os.path.abspath(data_dir),
        "started": "2021-11-07T00:00:00"})
    if finished:
        io_utils.atomic_write_json(os.path.join(run_dir, "metrics.json"),
                                   _metrics(config, _f1_of(config)))
    return run_dir


def _stub_training(monkeypatch, fail=()):
    """Replaces both training paths; returns the (name, dataset, seed) they were asked to train."""
    calls = []

    def train(config, *args):
        calls.append((config.name, config.dataset, config.seed))
        if (config.name, config.seed) in fail:
            raise DataError(f"stub failure of {config.name}")
        return _metrics(config, _f1_of(config))

    monkeypatch.setattr(runner, "load_tasks", lambda config, ctx: [None])  # no data is read
    monkeypatch.setattr(runner, "_run_neural", train)
    monkeypatch.setattr(sklearn_runs, "run", train)
    return calls


def _cells(rows_f1, dataset="newsemp"):
    """Cells from {row: {seed: test f1 or None (not run)}}."""
    cells = []
    for row, by_seed in rows_f1.items():
        for seed, f1 in by_seed.items():
            config = dataclasses.replace(registry.get_config(row), dataset=dataset, seed=seed)
            metrics = None if f1 is None else _metrics(config, f1)
            cells.append(reporting.Cell(dataset, row, seed, f"/x/{row}/{seed}",
                                        "not_started" if f1 is None else "finished",
                                        config_lib.to_dict(config), "/data", metrics))
    return cells


def test_mean_std_and_paired_test_match_numpy_and_scipy():
    bert = {0: 0.60, 1: 0.62, 2: 0.67}
    kd = {0: 0.65, 1: 0.70, 2: 0.66}
    cells = _cells({"bert": bert, "kd_sst_emonet": kd, "cnn": {0: 0.5, 1: None, 2: None},
                    "lstm": {0: 0.4, 1: 0.45, 2: None},
                    "mt_sst": {s: f1 + 0.05 for s, f1 in bert.items()}})
    rows = {s["row"]: s for s in reporting.summarize(cells, registry.get_table("table4"))}
    mean, std = rows["kd_sst_emonet"]["test"]["f1"]
    assert mean == pytest.approx(np.mean(list(kd.values())))
    assert std == pytest.approx(np.std(list(kd.values()), ddof=1))
    assert rows["kd_sst_emonet"]["test"]["precision"][0] == pytest.approx(np.mean(
        list(kd.values())) - 0.05)
    expected = stats.ttest_rel([kd[s] for s in (0, 1, 2)], [bert[s] for s in (0, 1, 2)]).pvalue
    assert rows["kd_sst_emonet"]["p_vs_baseline"] == pytest.approx(expected)
    assert rows["kd_sst_emonet"]["n_paired"] == 3
    assert rows["kd_sst_emonet"]["delta_f1"] == pytest.approx(100 * mean - 68.41)
    # Paired only on common seeds; fewer than two: no test. The baseline row is never tested.
    expected = stats.ttest_rel([0.4, 0.45], [0.60, 0.62]).pvalue
    assert rows["lstm"]["p_vs_baseline"] == pytest.approx(expected)
    assert rows["cnn"]["p_vs_baseline"] is None and rows["cnn"]["test"]["f1"] == (0.5, 0.0)
    assert rows["bert"]["p_vs_baseline"] is None
    # Differences identical on every seed: the t statistic would be float noise, so no p-value.
    assert rows["mt_sst"]["p_vs_baseline"] is None and rows["mt_sst"]["n_paired"] == 3
    assert reporting.seeds_text(rows["cnn"]) == "1/3 (seeds 1, 2 not run)"
    assert reporting.seeds_text(rows["bert"]) == "3/3"
    # Settings that differ between rows are all stated, with their rows.
    for cell in cells:
        if cell.row == "bert":
            cell.config["selection"] = "macro_f1"
    facts = dict(reporting.header_facts(cells, [0, 1, 2], smoke=False, argv=["x"]))
    assert facts["Best-epoch selection"] == ("dev macro_f1 (bert); "
                                             "f1 (kd_sst_emonet, cnn, lstm, mt_sst)")
    # Paper numbers: only the transcribed ones; never invented.
    assert rows["bert"]["paper"] == {"precision": None, "recall": None, "f1": 63.79}
    assert rows["kd_sst_emonet"]["paper"]["precision"] is None


def test_table_run_reuses_finished_cells_and_redoes_a_half_finished_one(tmp_path, monkeypatch):
    flags = _flags(tmp_path, seeds=["0", "1"], selection="macro_f1")
    configs = cli.configs_from_flags(flags, FIELD_FLAGS)
    assert len(configs) == len(registry.TABLE_ROWS) * 2
    assert {c.dataset for c in configs} == {"newsemp"} and all(c.smoke for c in configs)
    half = next(c for c in configs if c.name == "kd_sst" and c.seed == 1)
    stamps = {}
    for config in configs:
        run_dir = _write_cell(config, flags.data_dir, flags.output_dir, finished=config != half)
        if config != half:
            stamps[run_dir] = os.path.getmtime(os.path.join(run_dir, "metrics.json"))
    calls = _stub_training(monkeypatch)

    assert cli.run_from_flags(flags, FIELD_FLAGS) == 0
    assert calls == [("kd_sst", "newsemp", 1)]  # only the half-finished cell was redone
    for run_dir, stamp in stamps.items():
        assert os.path.getmtime(os.path.join(run_dir, "metrics.json")) == stamp
    half_dir = runner.run_dir_for(half, runner.RunContext(flags.data_dir, flags.output_dir))
    assert os.path.exists(os.path.join(half_dir, "metrics.json"))
    # Final metrics also went to TensorBoard, sklearn rows included.
    for row in ("bert", "tfidf_lr"):
        tb = os.path.join(flags.output_dir, f"{row}-smoke", "newsemp", "seed0", "tb")
        assert any(n.startswith("events.out.tfevents") for n in os.listdir(tb))
        assert io_utils.read_json(os.path.join(tb, reporting.FINAL_METRICS_MARKER))["test_f1"] > 0

    paths = reporting.table_paths(flags.output_dir, "table4", smoke=True)
    assert paths["md"].endswith(os.path.join("tables", "table4-smoke.md"))
    md = open(paths["md"]).read()
    assert "| Paper F1 |" in md and "| `cnn` | 2/2 |" in md and "| 60.16 |" in md
    assert "`tfidf_lr` (not in paper)" in md and "`all_positive` (not in paper)" in md
    assert md.index("`kd_sst_emonet`") < md.index("`tfidf_lr` (not in paper)")
    for fact in ("**Command:**", "**Seeds:** 0, 1",
                 "**Encoder(s):** GloVe 6B.50d (embedded) (cnn, lstm, bilstm, convlstm); tiny "
                 "(bert, mt_sst, mt_emonet, mt_sst_emonet, kd_sst, kd_emonet, kd_sst_emonet)",
                 "**Emotion dataset (`emonet` rows):** carer", "**Best-epoch selection:** dev "
                 "macro_f1", "**Aux cap (training examples per auxiliary task, 0 = all):** 0",
                 "**Smoke:** yes"):
        assert fact in md, fact
    bert = 100 * np.mean([_f1_of(c) for c in configs if c.name == "bert"])
    std = 100 * np.std([_f1_of(c) for c in configs if c.name == "bert"], ddof=1)
    line = next(line for line in md.splitlines() if line.startswith("| `bert` |"))
    assert f"| {bert:.2f} ± {std:.2f} |" in line  # F1 column
    assert line.endswith(f"| 63.79 | {bert - 63.79:+.2f} | — |")  # paper, Δ, no self-test
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    assert [r["row"] for r in rows] == list(registry.TABLE_ROWS)
    assert rows[0]["paper_f1"] == "60.16" and rows[0]["seeds_done"] == "2"
    assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    # Everything finished now: a second run trains nothing at all.
    assert cli.run_from_flags(flags, FIELD_FLAGS) == 0
    assert len(calls) == 1


def test_a_failing_cell_is_reported_and_the_table_still_written(tmp_path, monkeypatch, capsys):
    flags = _flags(tmp_path, seeds=["0", "1"], exp="table6")
    configs = cli.configs_from_flags(flags, FIELD_FLAGS)
    assert {c.dataset for c in configs} == {"twittemp_seek", "twittemp_provide"}
    for config in configs:
        if config.name != "bilstm":
            _write_cell(config, flags.data_dir, flags.output_dir)
    calls = _stub_training(monkeypatch, fail={("bilstm", 1)})

    assert cli.run_from_flags(flags, FIELD_FLAGS) == 2  # non-zero: a cell failed
    assert sorted(calls) == [("bilstm", d, s) for d in ("twittemp_provide", "twittemp_seek")
                             for s in (0, 1)]
    err = capsys.readouterr().err
    assert "error: bilstm twittemp_seek seed 1: stub failure of bilstm" in err
    assert "2 of 52 cells failed" in err
    md = open(reporting.table_paths(flags.output_dir, "table6", smoke=True)["md"]).read()
    assert md.count("| `bilstm` | 1/2 (seed 1 failed) |") == 2
    assert "## twittemp_seek (test split, %)" in md and "## twittemp_provide" in md
    assert "## Failed cells" in md and "stub failure of bilstm" in md
    # Table 6 has no transcribed paper numbers: the column shows them as unavailable.
    assert "| 60.16 |" not in md


def test_collect_sees_unfinished_and_missing_cells(tmp_path):
    data_dir, output_dir = str(tmp_path / "data"), str(tmp_path / "runs")
    base = runner.smoke_config(registry.get_config("bert"))
    _write_cell(dataclasses.replace(base, seed=0), data_dir, output_dir)
    _write_cell(dataclasses.replace(base, seed=1), data_dir, output_dir, finished=False)
    cells = reporting.collect(output_dir, "table4", ["newsemp"], ["bert"], [0, 1, 2], smoke=True)
    assert [c.status for c in cells] == ["finished", "unfinished", "not_started"]
    assert cells[0].run_dir == runner.run_dir_for(dataclasses.replace(base, seed=0),
                                                  runner.RunContext(data_dir, output_dir))
    summary = reporting.summarize(cells, registry.get_table("table4"))[0]
    assert reporting.seeds_text(summary) == "1/3 (seed 1 unfinished; seed 2 not run)"
    assert summary["test"]["f1"][1] == 0.0  # one seed: std 0, not NaN
