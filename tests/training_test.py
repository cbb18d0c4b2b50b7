import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import training
from empathy_tf.data import pipeline
from empathy_tf.errors import ConfigError, TrainingDivergedError
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


def _one_step(strategy, table, heads, batch, xla="off", steps=1):
    with strategy.scope():
        # No dropout: replicas draw different masks, which is fine in training but not comparable.
        model = helpers.tiny_model(heads, seed=0, backbone_dropout=0.0)
        spec = training.TrainSpec(learning_rate=1e-3, weight_decay=0.01)
        optimizer = training.build_optimizer(model, spec, total_steps=10)
        optimizer.build(model.trainable_variables)
    from empathy_tf.distillation.loss import DistillationLoss
    loss_fn = DistillationLoss(heads, tf.Variable(1.0))

    train_step = training.make_train_step(model, loss_fn, optimizer, strategy, xla)
    multiple = training.batch_length_multiple(xla)
    iterator = iter(training.distributed_dataset(strategy, table, [batch] * steps,
                                                 length_multiple=multiple))
    losses = [float(train_step(iterator)) for _ in range(steps)]
    return losses[-1], [v.numpy() for v in model.trainable_variables]


@pytest.mark.parametrize("xla", ["optimizer", "full"])
def test_xla_steps_match_unfused_steps(xla):
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng, sizes=(8, 8))
    batch = np.arange(16)
    plain_loss, plain = _one_step(tf.distribute.get_strategy(), table, heads, batch, "off", 3)
    loss, weights = _one_step(tf.distribute.get_strategy(), table, heads, batch, xla, 3)
    assert loss == pytest.approx(plain_loss, rel=1e-4)
    moved = 0
    for a, b in zip(plain, weights):
        np.testing.assert_allclose(a, b, atol=1e-4)
        moved += not np.array_equal(a, b)
    assert moved  # the comparison is between trained weights, not two untouched copies


@pytest.mark.parametrize("xla", ["off", "optimizer"])
def test_adam_first_step_on_repeated_tokens_is_the_textbook_one(xla):
    # Adam's first update of a coordinate with summed gradient G is
    # lr * G / (|G| + eps / sqrt(1 - beta_2)), however often its token occurs in the batch.
    # Keras' sparse (IndexedSlices) path squared each occurrence instead of the sum.
    from empathy_tf.distillation.loss import DistillationLoss
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng, sizes=(8, 8))
    model = helpers.tiny_model(heads, seed=0, backbone_dropout=0.0)
    embeddings = model.encoder.backbone.token_embedding.embeddings
    loss_fn = DistillationLoss(heads, tf.Variable(1.0))
    batch = np.arange(16)
    features, targets = next(iter(pipeline.training_dataset(table, [batch])))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(loss_fn(targets, model(features, training=True)) * targets["weight"])
    dense_grad = tf.convert_to_tensor(tape.gradient(loss, embeddings)).numpy()
    before = embeddings.numpy().copy()

    lr = 1e-3
    spec = training.TrainSpec(learning_rate=lr, weight_decay=0.0, warmup_fraction=0.0)
    optimizer = training.build_optimizer(model, spec, total_steps=10**6)
    step = training.make_train_step(model, loss_fn, optimizer, tf.distribute.get_strategy(), xla)
    step(iter(training.distributed_dataset(tf.distribute.get_strategy(), table, [batch])))

    counts = np.bincount(table.tokens.take(batch).flat, minlength=len(before))
    assert counts.max() > 2  # tokens repeated within the batch
    eps = optimizer.epsilon / np.sqrt(1 - optimizer.beta_2)
    expected = before - lr * dense_grad / (np.abs(dense_grad) + eps)
    np.testing.assert_allclose(embeddings.numpy(), expected, rtol=0, atol=2e-6)


def test_unknown_xla_mode_is_refused():
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng, sizes=(8, 8))
    with pytest.raises(ConfigError, match="xla='jit'"):
        _one_step(tf.distribute.get_strategy(), table, heads, np.arange(16), "jit")


def test_float16_training_scales_the_loss(tmp_path):
    import keras
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = helpers.tiny_model(heads)
        spec = training.TrainSpec(epochs=1, batch_size=8, learning_rate=1e-3,
                                  precision="mixed_float16")
        assert isinstance(training.build_optimizer(model, spec, 10),
                          keras.optimizers.LossScaleOptimizer)
        before = [v.numpy().copy() for v in model.trainable_variables]
        result = training.fit(model, heads, table, _eval_sets(table, heads), spec,
                              tf.distribute.get_strategy(), str(tmp_path))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert result.total_steps > 0
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables))


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


@pytest.mark.parametrize("seconds, expect_mid_epoch", [(0.0, True), (3600.0, False)])
def test_checkpoints_are_time_based_by_default(tmp_path, seconds, expect_mid_epoch):
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng)
    model = helpers.tiny_model(heads)
    state_path = tmp_path / "checkpoints" / "state.json"
    seen = []

    class Probe:
        def on_train_batch_begin(self, step):
            if step > 0:
                seen.append(json.loads(state_path.read_text())["step"] if state_path.exists() else None)

    spec = training.TrainSpec(epochs=1, batch_size=8, checkpoint_every=0, checkpoint_seconds=seconds)
    training.fit(model, heads, table, _eval_sets(table, heads), spec,
                 tf.distribute.get_strategy(), str(tmp_path), callbacks=[Probe()])
    if expect_mid_epoch:  # saved at every step boundary
        assert seen == list(range(1, len(seen) + 1))
    else:  # only the end-of-epoch checkpoint
        assert seen and all(s is None for s in seen)
    assert json.loads(state_path.read_text())["step"] == len(seen) + 1


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
