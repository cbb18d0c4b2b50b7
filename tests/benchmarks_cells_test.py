"""benchmarks/cells.py's reading, splitting, projection and printing, on fake cell folders."""

import json
import os
import time

import pytest

from benchmarks import cells

ROWS = [("cnn", "cnn"), ("lstm", "lstm"), ("bert", "bert"), ("mt_sst", "mt_sst"),
        ("kd_sst_emonet", "kd_sst_emonet"), ("tfidf_lr", "tfidf_lr"),
        ("all_positive", "all_positive")]
TIMING = {"teachers_s": 0.0, "test_s": 3.0, "tokenize_s": 2.0, "build_s": 1.5,
          "first_20_steps_s": 12.0, "dev_eval_s": 5.0, "student_train_s": 100.0}


def _parts(total, **parts):
    """A breakdown whose `other` makes it sum to `total`."""
    values = {p: 0.0 for p in cells.PARTS}
    values.update(parts)
    values["other"] = total - sum(values.values())
    return values


def _cells(scale=1.0):
    return {"bert": _parts(120 * scale, steps=80 * scale),
            "mt_sst_emonet": _parts(300 * scale), "kd_sst_emonet": _parts(700 * scale),
            "kd_sst_emonet_cached": _parts(400 * scale), "cnn": _parts(6 * scale),
            "tfidf_lr": _parts(5 * scale)}


def _write_cell(folder, experiment, dataset, timing, config_at, metrics_at):
    os.makedirs(folder)
    for name, when, record in (("config.json", config_at, {}),
                               ("metrics.json", metrics_at,
                                {"experiment": experiment, "dataset": dataset,
                                 "timing": timing, "wall_time_s": 130.0})):
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            json.dump(record, f)
        os.utime(path, (when, when))


def test_cell_breakdown_splits_the_wall_time_from_the_records():
    parts = cells.cell_breakdown(150.0, 9.0, {"timing": TIMING, "wall_time_s": 130.0})
    assert list(parts) == list(cells.PARTS)
    assert parts["startup"] == 9.0 and parts["data"] == 2.0 and parts["build"] == 1.5
    assert parts["compile"] == 12.0 and parts["steps"] == 83.0 and parts["eval"] == 8.0
    assert parts["other"] == pytest.approx(150.0 - 9.0 - 2.0 - 1.5 - 12.0 - 83.0 - 8.0)
    assert sum(parts.values()) == pytest.approx(150.0)
    # A kind without a training loop (tfidf_lr): everything after start-up is `other`.
    plain = cells.cell_breakdown(20.0, 8.0, {"timing": {"test_s": 1.0}})
    assert plain["steps"] == plain["compile"] == 0.0 and plain["eval"] == 1.0
    assert plain["other"] == pytest.approx(11.0)


def test_read_cell_finds_the_cell_the_process_ran(tmp_path):
    start = time.time() - 200
    out = tmp_path / "runs"
    # An older cell of the same kind and a teacher cell written during the run: not this one.
    _write_cell(str(out / "old"), "bert", "newsemp", {}, start - 500, start - 400)
    _write_cell(str(out / "teacher"), "sst2_teacher", "sst2", {}, start + 5, start + 50)
    _write_cell(str(out / "cell"), "bert", "newsemp", TIMING, start + 9, start + 140)
    parts = cells.read_cell(str(out), "bert", "newsemp", start, start + 150)
    assert parts["startup"] == pytest.approx(9.0, abs=0.01)
    assert parts["steps"] == 83.0
    assert sum(parts.values()) == pytest.approx(150.0)
    with pytest.raises(RuntimeError, match="no metrics.json of cnn on newsemp"):
        cells.read_cell(str(out), "cnn", "newsemp", start, start + 150)


def test_projection_maps_rows_to_kinds_and_adds_the_teachers_once():
    measured = _cells()
    # cnn 6 + lstm 6·4 + bert 120 + mt 300 + kd cached 400 + tfidf 5 + all_positive 5 = 860
    per_fold = 6 + 6 * cells.GLOVE_SCALE["lstm"] + 120 + 300 + 400 + 5 + 5
    assert cells.project(ROWS, measured, folds=10) == pytest.approx(per_fold * 10 + 300)
    assert cells.project(ROWS, measured, folds=5, datasets=3) == pytest.approx(
        (per_fold * 5 + 300) * 3)
    without_kd = [r for r in ROWS if not r[1].startswith("kd_")]
    assert cells.project(without_kd, measured, folds=10) == pytest.approx((per_fold - 400) * 10)
    with pytest.raises(KeyError, match="source_only"):
        cells.project([("source_only", "source_only")], measured, folds=10)
    with pytest.raises(KeyError, match="row 'cnn' needs the kind 'cnn', not measured"):
        cells.project(ROWS, {k: v for k, v in measured.items() if k != "cnn"}, folds=10)


def test_report_prints_both_versions_with_ratios_and_the_projections():
    ours, theirs = {"newsemp": _cells()}, {"newsemp": _cells(scale=2.0)}
    lines = cells.report(ours, ROWS, theirs)
    bert = next(l for l in lines if " bert " in l)
    # this, baseline, baseline / this
    assert "wall=  120.0   240.0  2.00" in bert and "steps=   80.0   160.0  2.00" in bert
    projection = [l for l in lines if l.startswith("projection:")]
    assert len(projection) == 1 and "table4" in projection[0]     # no TwittEmp cells measured
    hours = cells.project(ROWS, ours["newsemp"], 10) / 3600
    assert f"= {hours:.2f} h (baseline {2 * hours:.2f} h, ratio 2.00)" in projection[0]
    alone = cells.report(ours, ROWS)
    assert any(l.startswith("cells: newsemp bert") and "wall=   120.0" in l for l in alone)


def _write_table_cell(out, experiment, fold, startup, wall, teachers=0.0, dataset="newsemp"):
    folder = out / experiment / dataset / f"kfold10-seed0-by_response_id/fold{fold}"
    folder.mkdir(parents=True)
    timing = {**TIMING, "teachers_s": teachers, "startup_s": startup}
    (folder / "metrics.json").write_text(json.dumps({
        "experiment": experiment, "dataset": dataset, "seed": 0, "fold": fold,
        "protocol": "kfold:10", "timing": timing, "wall_time_s": wall}))


def test_from_runs_projects_each_row_from_its_own_cell_with_teachers_once(tmp_path):
    out = tmp_path / "runs"
    rows = [("bert", "bert"), ("kd_sst", "kd_sst"), ("kd_emonet", "kd_emonet")]
    _write_table_cell(out, "bert", 0, startup=10.0, wall=110.0)
    _write_table_cell(out, "kd_sst", 0, startup=10.0, wall=390.0, teachers=300.0)  # trains them
    _write_table_cell(out, "kd_emonet", 0, startup=10.0, wall=120.0, teachers=20.0)
    _write_table_cell(out, "bert", 1, startup=10.0, wall=999.0)        # another fold: not read
    (out / "teachers" / "sst2" / "abc").mkdir(parents=True)               # teachers: not rows
    (out / "teachers" / "sst2" / "abc" / "metrics.json").write_text(json.dumps(
        {"experiment": "bert", "dataset": "newsemp", "seed": 0, "fold": 0, "protocol": "kfold:10"}))
    measured = cells.read_runs(str(out), "newsemp", fold=0)
    assert sorted(measured) == ["bert", "kd_emonet", "kd_sst"]
    assert sum(measured["bert"].values()) == pytest.approx(120.0)      # start-up + the cell
    assert measured["bert"]["startup"] == 10.0
    # bert 10 x 120; kd_sst 400 once then 9 x (400 - 300 + 20); kd_emonet 10 x 130.
    assert cells.project(rows, measured, folds=10, recorded=True) == pytest.approx(
        1200.0 + 400.0 + 9 * 120.0 + 1300.0)
    with pytest.raises(KeyError, match="mt_sst"):
        cells.project([*rows, ("mt_sst", "mt_sst")], measured, folds=10, recorded=True)
    with pytest.raises(RuntimeError, match="no finished cell"):
        cells.read_runs(str(out), "newsemp", fold=3)
