"""`python -m experiments.run`: flags derived from the config, clear errors, tables end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags

from empathy_tf import config as config_lib
from empathy_tf.eval import report
from empathy_tf.eval.tables import Row, TableSpec
from experiments import registry
from experiments import run as run_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=ROOT, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _flags(*args):
    """Parses command-line flags in-process (fresh values each time)."""
    run_module.FLAGS.unparse_flags()
    run_module.FLAGS(["run", *args])
    return run_module.FLAGS


def test_every_option_is_a_flag_and_names_are_unique():
    options = {field.name for _, field in config_lib.leaves()} - set(run_module.NOT_FLAGS)
    assert options == set(run_module.OPTION_FLAGS)
    for name in options:
        assert name in flags.FLAGS
    FLAGS = _flags("--exp=kd_sst_emonet", "--epochs=2", "--aux_cap=100", "--precision=float32",
                   "--seeds=3,4")
    table, cells = run_module.cell_configs(FLAGS)
    assert table is None and [c.seed for _, c in cells] == [3, 4]
    config = cells[0][1]
    assert (config.trainer.epochs, config.data.aux_cap, config.numerics.precision) == (2, 100,
                                                                                      "float32")
    assert config.data.aux_tasks == ("sst2", "emotion")   # unset flags keep the experiment's


def test_protocols_expand_into_cells():
    _, cells = run_module.cell_configs(_flags("--exp=bert", "--protocol=kfold:4", "--seeds=0,1"))
    assert [(c.seed, c.data.fold) for _, c in cells] == [(s, f) for s in (0, 1) for f in range(4)]
    _, cells = run_module.cell_configs(_flags("--exp=bert", "--protocol=repeated:3"))
    assert [(c.seed, c.data.fold) for _, c in cells] == [(0, 0), (1, 0), (2, 0)]
    _, cells = run_module.cell_configs(_flags("--exp=bert", "--protocol=kfold:4", "--fold=2"))
    assert [(c.seed, c.data.fold) for _, c in cells] == [(0, 2)]
    _, cells = run_module.cell_configs(_flags("--exp=bert", "--protocol=repeated_kfold:2:3",
                                              "--seeds=5"))
    assert [(c.seed, c.data.fold) for _, c in cells] == [(s, f) for s in (0, 1) for f in range(3)]
    assert {c.data.protocol for _, c in cells} == {"repeated_kfold:2:3"}
    table, cells = run_module.cell_configs(_flags("--exp=table7", "--seeds=0"))
    datasets = {name: c.data.dataset for name, c in cells}
    assert datasets["target_only"] == "twittemp" and datasets["source_only"] == "newsemp"
    assert {c.method for name, c in cells if name.startswith("pretrain_")} == {"uda"}


def test_dataset_keeps_one_section_of_a_table():
    table, cells = run_module.cell_configs(_flags("--exp=table6", "--protocol=kfold:5",
                                                  "--seeds=0", "--dataset=twittemp_provide"))
    assert {c.data.dataset for _, c in cells} == {"twittemp_provide"}
    assert len(cells) == len(registry.TABLES["table6"].rows) * 5
    # Its report is named after the section (never the whole table's files); the published
    # numbers are still the paper's Table 6.
    assert (table.name, table.paper_table, table.datasets) == ("table6-twittemp_provide",
                                                                "table6", ("twittemp_provide",))
    assert report.table_paths("runs", table.name, False, "kfold:5")["md"] == os.path.join(
        "runs", "tables", "table6-twittemp_provide-kfold5.md")
    # A table's only dataset names the table itself.
    table, _ = run_module.cell_configs(_flags("--exp=table4", "--dataset=newsemp"))
    assert table.name == "table4"
    with pytest.raises(config_lib.ConfigError, match="its datasets: twittemp_seek, twittemp_provide"):
        run_module.cell_configs(_flags("--exp=table6", "--dataset=newsemp"))


def test_missing_data_fails_before_tensorflow_loads(tmp_path):
    code = ("import sys\nfrom experiments import run\nrun.FLAGS(sys.argv)\n"
            "rc = run.main([sys.argv[0]])\n"
            "print('rc', rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, "--exp=kd_sst_emonet",
                          f"--data_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert out.stdout.strip().endswith("rc 2 False False"), out.stdout + out.stderr[-2000:]
    assert "newsemp/messages.csv: file not found" in out.stderr and "Traceback" not in out.stderr


def test_protocol_values_are_checked_before_any_cell(tmp_path):
    """kfold:5000 on a 60-row file, more folds than writers, --fold out of range and malformed
    protocols: one clear error each, exit code 2, before TensorFlow loads and before any cell."""
    rows = "".join(f"text number {i} {'sad' if i % 2 else 'fine'},{i % 2}\n" for i in range(60))
    (tmp_path / "sixty.csv").write_text("text,label\n" + rows)
    newsemp = tmp_path / "data" / "newsemp"
    newsemp.mkdir(parents=True)
    with open(newsemp / "messages.csv", "w") as f:   # 40 essays by 4 writers
        f.write('"message_id","response_id","article_id","empathy","distress","empathy_bin",'
                '"distress_bin","essay"\n')
        f.writelines(f'"m{i}","R{i % 4}","1","4.0","2.0","{i % 2}","0","essay {i}"\n'
                     for i in range(40))
    sixty = f"--dataset=csv:{tmp_path / 'sixty.csv'}"
    cases = [
        ([sixty, "--protocol=kfold:5000"], "cannot make 5000 stratified folds of 60 examples"),
        (["--dataset=newsemp", "--protocol=kfold:5"], "--group_by=response_id cannot split "
                                                      "dataset 'newsemp': cannot make 5 group "
                                                      "folds of 40 examples"),
        ([sixty, "--protocol=kfold:10", "--fold=12"], "fold=12 is out of range for protocol "
                                                     "kfold:10"),
        ([sixty, "--protocol=split", "--fold=1"], "fold=1 needs a protocol with folds"),
        ([sixty, "--protocol=repeated_kfold:3"], "expected repeated_kfold:R:K"),
        ([sixty, "--protocol=repeated_kfold:3:1"], "K (folds) must be an integer >= 2"),
    ]
    code = ("import sys, json\nfrom experiments import run\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    run.FLAGS.unparse_flags(); run.FLAGS(['run', *argv])\n"
            "    print('rc', run.main(['run']), flush=True)\n"
            "print('tensorflow' in sys.modules)\n")
    common = ["--exp=tfidf_lr", f"--data_dir={tmp_path / 'data'}",
              f"--output_dir={tmp_path / 'runs'}"]
    out = subprocess.run([sys.executable, "-c", code,
                          json.dumps([common + argv for argv, _ in cases])], cwd=ROOT,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT),
                         timeout=300)
    assert out.stdout.split() == ["rc", "2"] * len(cases) + ["False"], out.stdout + out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(cases), out.stderr
    for (_, expected), line in zip(cases, errors):
        assert expected in line, (expected, line)
    assert "Traceback" not in out.stderr and not (tmp_path / "runs").exists()


def test_cli_smoke_run_and_clear_errors(synthetic_data_dir, tfds_dir, tmp_path):
    out = _cli("--exp=bert", "--dataset=twittemp_provide", "--smoke",
               f"--data_dir={synthetic_data_dir}", f"--output_dir={tmp_path}",
               f"--tfds_dir={tfds_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bert twittemp_provide seed=0: test precision=" in out.stdout
    metrics = json.load(open(tmp_path / "bert-smoke" / "twittemp_provide" / "seed0" /
                             "metrics.json"))
    assert set(metrics["test"]) >= {"precision", "recall", "f1", "accuracy", "macro_f1"}
    bad = _cli("--exp=nope", f"--data_dir={synthetic_data_dir}")
    assert bad.returncode == 2 and "unknown experiment 'nope'" in bad.stderr
    assert "kd_sst_emonet" in bad.stderr and "Traceback" not in bad.stderr
    bad = _cli("--exp=bert", "--bogus=1")
    assert bad.returncode != 0 and "bogus" in bad.stderr and "Traceback" not in bad.stderr
    listing = _cli("--list")
    assert listing.returncode == 0
    for name in ("kd_sst_emonet", "table7", "goemotions", "--aux_cap", "--protocol"):
        assert name in listing.stdout


def test_table_from_cells_of_defective_twittemp(synthetic_data_dir, tfds_dir, tmp_path):
    """Table 6's shape on the synthetic TwittEmp file with the real file's defects: seek and
    provide share their splits, every cell lands in the table."""
    from empathy_tf import runs
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path), tfds_dir)
    rows = (Row("bert"), Row("tfidf_lr", in_paper=False), Row("all_positive", in_paper=False))
    spec = TableSpec("table6_test", "Table 6 (test)", ("twittemp_seek", "twittemp_provide"), rows,
                     paper_table="table6")
    cells = []
    for dataset in spec.datasets:
        for row in rows:
            for fold in range(2):
                config = registry.get_config(row.experiment).smoked().replace(
                    dataset=dataset, protocol="kfold:2", fold=fold)
                runs.run_cell(config, ctx)
                cells.append((row.name, config, runs.run_dir_for(config, ctx)))
    splits = {c.data.dataset + str(c.data.fold): json.load(open(os.path.join(d, "split.json")))
              for name, c, d in cells if name == "bert"}
    for fold in range(2):
        seek, provide = splits[f"twittemp_seek{fold}"], splits[f"twittemp_provide{fold}"]
        assert seek["twittemp_seek"] == provide["twittemp_provide"]
    paths, text = report.write_table(spec, cells, str(tmp_path), argv=["experiments/run.py"])
    assert os.path.exists(paths["md"]) and os.path.exists(paths["csv"])
    for dataset in spec.datasets:
        assert dataset in text
    assert "2/2 folds" in text and "not in paper" in text
    pooled = np.concatenate([np.load(os.path.join(d, "predictions.npz"))["ids"]
                             for name, c, d in cells if name == "bert"
                             and c.data.dataset == "twittemp_seek"])
    assert len(pooled) == len(set(pooled))


@pytest.mark.slow
@pytest.mark.parametrize("table", ["table5", "table6"])
def test_paper_tables_end_to_end_on_synthetic_twittemp(table, synthetic_data_dir, tfds_dir,
                                                       tmp_path):
    out = _cli(f"--exp={table}", "--smoke", "--seeds=0", f"--data_dir={synthetic_data_dir}",
               f"--output_dir={tmp_path}", f"--tfds_dir={tfds_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    text = open(tmp_path / "tables" / f"{table}-smoke.md").read()
    assert "kd_sst_emonet" in text and "all_positive" in text


@pytest.mark.slow
def test_table7_offline_end_to_end_on_synthetic_files(synthetic_data_dir, tfds_dir, tmp_path):
    """Source-only, both offline masked-LM rows, target-only and the floor, one seed."""
    out = _cli("--exp=table7_offline", "--smoke", "--seeds=0", f"--data_dir={synthetic_data_dir}",
               f"--output_dir={tmp_path}", f"--tfds_dir={tfds_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    text = open(tmp_path / "tables" / "table7_offline-smoke.md").read()
    for row in ("source_only", "pretrain_carer_tweets", "pretrain_semeval_tweets", "target_only",
                "all_positive"):
        assert f"| `{row}`" in text and "1/1 seeds" in text.split(f"| `{row}`")[1].split("\n")[0]
    assert "response_id (rows source_only" in text and "none (rows target_only" in text


def test_own_file_with_other_column_names(tmp_path):
    """A released file whose columns are not `text`/`label`, named on the command line; three
    classes, so the result line reports macro-F1 and no unqualified F1."""
    import random
    rng = random.Random(0)
    words = {"low": "whatever fine", "mid": "i see that", "high": "so sorry for you"}
    lines = ["response_post;level"] + [
        f"{' '.join(rng.sample('a the of day news we'.split(), 3))} {words[level]};{level}"
        for i in range(60) for level in [("low", "mid", "high")[i % 3]]]
    (tmp_path / "released.txt").write_text("\n".join(lines) + "\n")
    options = (f"--dataset=csv:{tmp_path}/released.txt", "--text_column=response_post",
               "--label_column=level", "--delimiter=;", f"--output_dir={tmp_path}/runs",
               f"--tfds_dir={tmp_path}/tfds")
    for exp in ("--exp=tfidf_lr", "--exp=bert"):
        out = _cli(exp, "--smoke", *options)
        assert out.returncode == 0, out.stderr[-3000:]
        result = out.stdout.splitlines()[-1]
        assert "test accuracy=" in result and "macro_f1=" in result and " f1=" not in result, \
            out.stdout
    recorded = json.load(open(tmp_path / "runs" / "bert-smoke" / "csv-released" / "seed0" /
                              "config.json"))["identity"]["data"]
    assert (recorded["text_column"], recorded["label_column"], recorded["delimiter"]) == (
        "response_post", "level", ";")
    metrics = json.load(open(tmp_path / "runs" / "tfidf_lr-smoke" / "csv-released" / "seed0" /
                             "metrics.json"))
    assert metrics["positive_class"] is None and metrics["test"]["macro_f1"] > 0.5


def test_progress_announces_reuse_only_when_the_identity_matches(synthetic_data_dir, tfds_dir,
                                                                 tmp_path, caplog):
    """A finished cell made with other settings is announced as refused, not as reused."""
    import logging
    from empathy_tf import runs
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path), tfds_dir)
    config = registry.get_config("tfidf_lr").smoked()
    runs.run_cell(config, ctx)
    run_dir = runs.run_dir_for(config, ctx)
    other = config.replace(train_cap=30)   # the same folder, another identity
    assert runs.run_dir_for(other, ctx) == run_dir
    progress = run_module.Progress([run_dir, run_dir], ctx)
    with caplog.at_level(logging.INFO, logger="absl"):   # other tests parse absl's -v flag
        progress.begin(0, config)
        progress.end(0, ok=True)
        progress.begin(1, other)
    first, second = [r.getMessage() for r in caplog.records if "cell " in r.getMessage()][-2:]
    assert first.startswith("cell 1/2 tfidf_lr newsemp seed 0: finished earlier, reusing it")
    assert second.startswith("cell 2/2 tfidf_lr newsemp seed 0: refused"), second
    assert "reusing" not in second and progress.reused == 1


def test_finished_cells_are_read_without_a_process_of_their_own(synthetic_data_dir, tfds_dir,
                                                               tmp_path, monkeypatch, capsys):
    """Rerunning a finished table reads its cells here: no process (and TensorFlow import) per
    cell just to find metrics.json."""
    from empathy_tf import hardware, runs
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path), tfds_dir)
    for seed in (0, 1):
        runs.run_cell(registry.get_config("tfidf_lr").smoked().replace(seed=seed), ctx)

    def no_process(config, ctx):
        raise AssertionError(f"a process was started for finished seed {config.seed}")
    monkeypatch.setattr(runs, "run_cell_in_own_process", no_process)
    monkeypatch.setattr(hardware, "enable_persistent_xla_cache", lambda: None)
    _flags("--exp=tfidf_lr", "--smoke", "--seeds=0,1", f"--data_dir={synthetic_data_dir}",
           f"--output_dir={tmp_path}", f"--tfds_dir={tfds_dir}")
    assert run_module.main(["run"]) == 0
    printed = capsys.readouterr().out
    assert "tfidf_lr newsemp seed=0: test" in printed and "seed=1: test" in printed, printed
