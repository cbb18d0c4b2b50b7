"""Training learns: a learnable synthetic task ends far above the trivial predictor.

NewsEmp-like essays carry class words ("sorry heartbreaking" vs "whatever boring") among filler;
400 of them (dev 40) are enough for the tiny encoder to learn in a few epochs. All-positive scores a
positive-class F1 of 0.67 (macro-F1 0.33) there, so F1 >= 0.9 means the model learned the task.
"""

import numpy as np
import pytest

from empathy_tf import runs
from empathy_tf.methods.distill import teachers
from experiments import registry
from tests import conftest

LEARNABLE = dict(smoke=False, epochs=4, batch_size=16, learning_rate=3e-3)


@pytest.fixture(scope="module")
def learnable_ctx(tmp_path_factory, tfds_dir):
    root = str(tmp_path_factory.mktemp("learnable"))
    conftest.write_all(root)
    conftest.write_newsemp(root, n=400)
    return runs.RunContext(root, str(tmp_path_factory.mktemp("learnable_runs")), tfds_dir)


def learnable(name, **changes):
    # The tiny encoder and small sizes of --smoke, but every example and a few epochs.
    return registry.get_config(name).smoked().replace(**LEARNABLE, **changes)


def test_the_trivial_floor(learnable_ctx):
    floor = runs.run_cell(learnable("all_positive"), learnable_ctx)
    assert floor["dev"]["f1"] == pytest.approx(2 / 3, abs=0.02)
    assert floor["dev"]["macro_f1"] == pytest.approx(1 / 3, abs=0.02)


@pytest.mark.parametrize("name", ["bert", "mt_sst_emonet", "kd_sst"])
def test_single_task_multi_task_and_distillation_learn(learnable_ctx, name):
    metrics = runs.run_cell(learnable(name), learnable_ctx)
    assert metrics["dev"]["f1"] >= 0.9 and metrics["dev"]["macro_f1"] >= 0.9, metrics["dev"]
    assert metrics["test"]["f1"] >= 0.85, metrics["test"]
    # The epoch kept is the one with the best dev macro-F1 (the default selection rule).
    scores = [epoch["newsemp"]["macro_f1"] for epoch in metrics["history"]]
    assert metrics["best_epoch"] == int(np.argmax(scores)) + 1
    assert metrics["dev"]["macro_f1"] == pytest.approx(max(scores))


def test_distillation_follows_its_teachers(learnable_ctx, monkeypatch, tmp_path):
    """Pure distillation (λ = 0) from shuffled teacher targets learns something else entirely."""
    config = learnable("kd_sst", annealing="none").replace(name="kd_sst_pure")   # own folder
    aligned = runs.run_cell(config, learnable_ctx)
    original = teachers.teacher_predictions

    def shuffled(student, datas, ctx, run_cell):
        probs, info = original(student, datas, ctx, run_cell)
        rng = np.random.default_rng(0)
        return [p[rng.permutation(len(p))] for p in probs], info

    monkeypatch.setattr(teachers, "teacher_predictions", shuffled)
    other = runs.RunContext(learnable_ctx.data_dir, learnable_ctx.output_dir,
                            learnable_ctx.tfds_dir, overwrite=True)
    misled = runs.run_cell(config, other)
    assert aligned["dev"]["macro_f1"] >= 0.9
    assert misled["dev"]["macro_f1"] <= aligned["dev"]["macro_f1"] - 0.2, misled["dev"]
