import keras
import numpy as np
import pytest
import tensorflow as tf

from empathy_tf.data import pipeline
from empathy_tf.distillation.loss import DistillationLoss, LambdaAnnealing, lambda_at
from empathy_tf.models import HeadSpec
from tests import helpers


def test_lambda_is_zero_first_one_last_linear_between():
    total = 11
    lam = tf.Variable(-1.0)
    cb = LambdaAnnealing(lam, total_steps=total)
    seen = []
    for step in range(total):
        cb.on_train_batch_begin(step)
        seen.append(float(lam.numpy()))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert np.allclose(np.diff(seen), 0.1)
    assert lambda_at(5, total, "none") == 0.0
    assert lambda_at(5, total, "constant", 0.3) == 0.3


def _batch(table, index):
    (features, targets), = list(pipeline.training_dataset(table, [np.asarray(index)]))
    return features, targets


def test_kd_loss_at_lambda_one_equals_mt_loss():
    rng = np.random.default_rng(0)
    table, heads = helpers.tiny_table(rng, teacher=True)
    features, targets = _batch(table, np.arange(len(table)))
    model = helpers.tiny_model(heads)
    logits = model(features)
    kd = DistillationLoss(heads, tf.Variable(1.0))(targets, logits)
    mt_targets = dict(targets, teacher=tf.zeros_like(targets["teacher"]))  # teacher ignored at λ=1
    mt = DistillationLoss(heads, tf.Variable(1.0))(mt_targets, logits)
    np.testing.assert_allclose(kd.numpy(), mt.numpy(), rtol=1e-6)
    # Cross-check against Keras' own categorical cross-entropy on each task's head.
    for t, head in enumerate(heads):
        rows = targets["task_id"].numpy() == t
        want = keras.losses.categorical_crossentropy(
            targets["gold"].numpy()[rows, : head.num_classes], logits[t].numpy()[rows], from_logits=True)
        np.testing.assert_allclose(mt.numpy()[rows], want, rtol=1e-5)
    # At λ=0 the target is the teacher's distribution, which differs from gold.
    kd0 = DistillationLoss(heads, tf.Variable(0.0))(targets, logits)
    assert not np.allclose(kd0.numpy(), mt.numpy())


def test_multi_label_head_uses_sigmoid_cross_entropy():
    heads = [HeadSpec("emo", 3, multi_label=True)]
    targets = {"task_id": tf.constant([0]), "gold": tf.constant([[1.0, 0.0, 1.0]]),
               "teacher": tf.constant([[1.0, 0.0, 1.0]])}
    logits = [tf.constant([[2.0, -1.0, 0.5]])]
    got = DistillationLoss(heads, tf.Variable(1.0))(targets, logits).numpy()
    want = keras.losses.binary_crossentropy(targets["gold"], logits[0], from_logits=True).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_example_of_task_a_changes_no_weight_of_task_b_head():
    from empathy_tf import training
    rng = np.random.default_rng(1)
    table, heads = helpers.tiny_table(rng, sizes=(16, 16))
    model = helpers.tiny_model(heads, dropout=0.1)
    spec = training.TrainSpec(learning_rate=1e-2, weight_decay=0.01)
    optimizer = training.build_optimizer(model, spec, total_steps=10)
    only_a = np.flatnonzero(table.task_ids == 0)
    features, targets = _batch(table, only_a)
    head_a = [v.numpy().copy() for v in model.heads[0].weights]
    head_b = [v.numpy().copy() for v in model.heads[1].weights]
    loss_fn = DistillationLoss(heads, tf.Variable(1.0))
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(targets, model(features, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    for before, v in zip(head_b, model.heads[1].weights):
        np.testing.assert_array_equal(before, v.numpy())
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(head_a, model.heads[0].weights))
