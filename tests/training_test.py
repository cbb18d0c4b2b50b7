import math
import os

import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import training
from empathy_tf.errors import TrainingDivergedError
from tests import helpers


def _eval_sets(table, heads):
    sets = []
    for t, head in enumerate(heads):
        rows = np.flatnonzero(table.task_ids == t)
        labels = table.gold[rows, : head.num_classes].argmax(-1)
        sets.append(training.EvalSet(t, head.name, table.tokens.take(rows), labels,
                                     1 if head.num_classes == 2 else None, False))
    return sets


def test_one_epoch_changes_parameters_and_writes_outputs(tmp_path):
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng)
    model = helpers.tiny_model(heads)
    before = [v.numpy().copy() for v in model.trainable_variables]
    spec = training.TrainSpec(epochs=1, batch_size=8, learning_rate=1e-3)
    result = training.fit(model, heads, table, _eval_sets(table, heads), spec,
                          tf.distribute.get_strategy(), str(tmp_path))
    # Attention key biases get exactly zero gradient (softmax is shift-invariant): exempt them.
    unchanged = [v.path for b, v in zip(before, model.trainable_variables)
                 if np.allclose(b, v.numpy()) and not v.path.endswith("key/bias")]
    assert not unchanged, f"variables that did not move in one epoch: {unchanged}"
    assert result.best_epoch == 0 and len(result.history) == 1
    assert os.path.exists(tmp_path / "best.weights.h5")
    assert (tmp_path / "tb").is_dir()


def _one_step(strategy, table, heads, batch):
    with strategy.scope():
        # No dropout: replicas draw different masks, which is fine in training but not comparable.
        model = helpers.tiny_model(heads, seed=0, backbone_dropout=0.0)
        spec = training.TrainSpec(learning_rate=1e-3, weight_decay=0.0)
        optimizer = training.build_optimizer(model, spec, total_steps=10)
        optimizer.build(model.trainable_variables)
    from empathy_tf.distillation.loss import DistillationLoss
    loss_fn = DistillationLoss(heads, tf.Variable(1.0))

    train_step = training.make_train_step(model, loss_fn, optimizer, strategy)
    loss = train_step(iter(training.distributed_dataset(strategy, table, [batch])))
    return float(loss), [v.numpy() for v in model.trainable_variables]


def test_mirrored_step_on_two_logical_cpus_matches_single_device():
    assert len(tf.config.list_logical_devices("CPU")) >= 2
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng, sizes=(8, 8))
    batch = np.arange(16)
    single_loss, single = _one_step(tf.distribute.get_strategy(), table, heads, batch)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    mirrored_loss, weights = _one_step(mirrored, table, heads, batch)
    assert mirrored_loss == pytest.approx(single_loss, rel=1e-5)
    for a, b in zip(single, weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_diverging_loss_stops_with_the_step(tmp_path):
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng)
    table.gold[:] = np.nan  # poisons the loss at the first step
    model = helpers.tiny_model(heads)
    spec = training.TrainSpec(epochs=1, batch_size=8)
    with pytest.raises(TrainingDivergedError, match="step 0"):
        training.fit(model, heads, table, _eval_sets(table, heads), spec,
                     tf.distribute.get_strategy(), str(tmp_path))
    assert not os.path.exists(tmp_path / "metrics.json")


def test_warmup_then_linear_decay():
    schedule = training.WarmupLinearDecay(1.0, total_steps=100, warmup_steps=10)
    assert float(schedule(0)) == 0.0
    assert float(schedule(10)) == pytest.approx(1.0)
    assert float(schedule(55)) == pytest.approx(0.5)
    assert float(schedule(100)) == 0.0
