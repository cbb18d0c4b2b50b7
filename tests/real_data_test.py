"""Real-data checks (opt in: `EMPATHY_DATA_DIR=../shared/data python3 -m pytest -q --run-slow`).

They read NewsEmp from $EMPATHY_DATA_DIR and train for real, so they take minutes, not seconds; the
bounds are far from the figures README.md reports, and far above the trivial predictor.
"""

import os

import pytest

from empathy_tf import runs
from experiments import registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_ctx(tmp_path_factory):
    data_dir = os.environ.get("EMPATHY_DATA_DIR")
    if not data_dir or not os.path.isfile(os.path.join(data_dir, "newsemp", "messages.csv")):
        pytest.skip("set EMPATHY_DATA_DIR to a folder holding newsemp/messages.csv")
    return runs.RunContext(data_dir, str(tmp_path_factory.mktemp("real_runs")),
                           str(tmp_path_factory.mktemp("real_tfds")))


def test_newsemp_has_the_released_size_and_balance(real_ctx):
    from empathy_tf.methods import load_tasks
    [data] = load_tasks(registry.get_config("bert").resolved(), real_ctx)
    assert (len(data.train), len(data.dev), len(data.test)) == (1488, 186, 186)
    assert 0.45 < data.train.labels.mean() < 0.53


def test_tfidf_lr_beats_the_trivial_floor_on_newsemp(real_ctx):
    metrics = runs.run_cell(registry.get_config("tfidf_lr"), real_ctx)
    floor = runs.run_cell(registry.get_config("all_positive"), real_ctx)
    assert floor["test"]["macro_f1"] < 0.35
    assert metrics["test"]["macro_f1"] > 0.55 and metrics["test"]["f1"] > 0.5


def test_one_bert_seed_learns_newsemp(real_ctx):
    metrics = runs.run_cell(registry.get_config("bert"), real_ctx)
    assert metrics["test"]["macro_f1"] > 0.55 and metrics["test"]["f1"] > 0.5, metrics["test"]
    assert metrics["dev"]["macro_f1"] > 0.55
