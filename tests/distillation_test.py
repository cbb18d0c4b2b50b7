"""methods.distill: the multi-task loss with teacher targets, and teacher annealing of λ."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from empathy_tf.config import ExperimentConfig
from empathy_tf.data import batching
from empathy_tf.errors import ConfigError
from empathy_tf.methods.distill.annealing import TeacherAnnealing, lambda_at
from empathy_tf.training.losses import MultiTaskLoss
from empathy_tf.models.classifier import HeadSpec
from empathy_tf.training import loop
from empathy_tf.training.optimizer import build_optimizer
from tests import helpers


def _run_annealing(annealing, steps_per_epoch, start=(0, 0)):
    """Drives `annealing` as the loop does from (epoch, batch) `start`; λ before every batch."""
    lam = annealing.lam
    callbacks = keras.callbacks.CallbackList([annealing], epochs=len(steps_per_epoch),
                                             steps_per_epoch=steps_per_epoch,
                                             total_steps=sum(steps_per_epoch))
    callbacks.on_train_begin()
    seen = []
    for epoch in range(start[0], len(steps_per_epoch)):
        callbacks.on_epoch_begin(epoch)
        for batch in range(start[1] if epoch == start[0] else 0, steps_per_epoch[epoch]):
            callbacks.on_train_batch_begin(batch)
            seen.append(float(lam.numpy()))
    return seen


def test_teacher_annealing_is_zero_first_one_last_linear_between():
    lam = tf.Variable(-1.0)
    annealing = TeacherAnnealing(lam)
    assert isinstance(annealing, keras.callbacks.Callback)
    seen = _run_annealing(annealing, [4, 4, 3])   # 11 steps over epochs of unequal length
    assert seen[0] == 0.0 and seen[-1] == 1.0
    np.testing.assert_allclose(np.diff(seen), 0.1, rtol=1e-5)
    # A resumed run (a new callback, mid-epoch 2 at global step 7) sets λ from the global step.
    resumed = _run_annealing(TeacherAnnealing(lam), [4, 4, 3], start=(1, 3))
    assert resumed == seen[7:]
    assert _run_annealing(TeacherAnnealing(lam, "none"), [3]) == [0.0] * 3
    assert _run_annealing(TeacherAnnealing(lam, "constant", 0.25), [3]) == [0.25] * 3
    assert lambda_at(50, 11) == 1.0
    with pytest.raises(ConfigError, match="annealing='cosine'"):
        TeacherAnnealing(lam, "cosine")


def _batch(table, index):
    index = np.asarray(index)
    plan = [[batching.Share(index, np.arange(len(index)), np.zeros(len(index), np.int64),
                            len(index), int(table.tokens.lengths[index].max()))]]
    (features, targets), = list(batching.training_dataset(table, plan, "pooled"))
    return features, targets


@pytest.fixture(scope="module")
def teacher_batch():
    table, heads = helpers.tiny_table(np.random.default_rng(0), teacher=True)
    features, targets = _batch(table, np.arange(len(table)))
    model = helpers.tiny_model(heads)
    return table, heads, targets, model(features)


def test_loss_at_lambda_one_is_the_gold_cross_entropy(teacher_batch):
    table, heads, targets, logits = teacher_batch
    np.testing.assert_allclose(targets["teacher"].numpy(), table.teacher, rtol=0)  # carried along
    kd = MultiTaskLoss(heads, tf.Variable(1.0))(targets, logits)
    assert kd.shape == (len(table),)
    mt_targets = dict(targets, teacher=tf.zeros_like(targets["teacher"]))  # teacher ignored at λ=1
    mt = MultiTaskLoss(heads, tf.Variable(1.0))(mt_targets, logits)
    np.testing.assert_allclose(kd.numpy(), mt.numpy(), rtol=1e-6)
    gold_only = MultiTaskLoss(heads)(targets, logits)  # lam=None: gold labels only
    np.testing.assert_allclose(gold_only.numpy(), mt.numpy(), rtol=1e-6)
    # Cross-check against Keras' own categorical cross-entropy on each task's head.
    for t, head in enumerate(heads):
        rows = targets["task_id"].numpy() == t
        want = keras.losses.categorical_crossentropy(
            targets["gold"].numpy()[rows, : head.num_classes], logits[t].numpy()[rows],
            from_logits=True)
        np.testing.assert_allclose(mt.numpy()[rows], want, rtol=1e-5)


def test_loss_is_linear_in_lambda_between_gold_and_teacher(teacher_batch):
    _, heads, targets, logits = teacher_batch
    gold = MultiTaskLoss(heads, tf.Variable(1.0))(targets, logits).numpy()
    teacher = MultiTaskLoss(heads, tf.Variable(0.0))(targets, logits).numpy()
    assert not np.allclose(gold, teacher)  # at λ=0 the target is the teacher's distribution
    mixed = MultiTaskLoss(heads, tf.Variable(0.3))(targets, logits).numpy()
    # Cross-entropy is linear in its target: CE(λ·g + (1−λ)·t) = λ·CE(g) + (1−λ)·CE(t).
    np.testing.assert_allclose(mixed, 0.3 * gold + 0.7 * teacher, rtol=1e-5)


def test_lambda_is_read_when_the_loss_runs_not_when_it_is_traced(teacher_batch):
    _, heads, targets, logits = teacher_batch
    lam = tf.Variable(0.0)
    loss = MultiTaskLoss(heads, lam)
    total = tf.function(lambda: tf.reduce_sum(loss(targets, logits)))
    at_zero = float(total())
    lam.assign(1.0)
    at_one = float(total())
    assert at_zero != at_one
    assert at_one == pytest.approx(float(tf.reduce_sum(MultiTaskLoss(heads)(targets, logits))),
                                   rel=1e-6)
    assert total.experimental_get_tracing_count() == 1


def test_each_example_is_scored_by_its_own_head_only(teacher_batch):
    _, heads, targets, logits = teacher_batch
    loss = MultiTaskLoss(heads, tf.Variable(0.5))
    base = loss(targets, logits).numpy()
    other = loss(targets, [logits[0], logits[1] + 5.0 * tf.random.normal(logits[1].shape)]).numpy()
    of_task0 = targets["task_id"].numpy() == 0
    np.testing.assert_array_equal(other[of_task0], base[of_task0])
    assert not np.allclose(other[~of_task0], base[~of_task0])


def test_multi_label_head_uses_sigmoid_cross_entropy():
    heads = [HeadSpec("emo", 3, multi_label=True)]
    targets = {"task_id": tf.constant([0]), "gold": tf.constant([[1.0, 0.0, 1.0]]),
               "teacher": tf.constant([[0.9, 0.2, 0.6]])}
    logits = [tf.constant([[2.0, -1.0, 0.5]])]
    got = MultiTaskLoss(heads, tf.Variable(1.0))(targets, logits).numpy()
    want = keras.losses.binary_crossentropy(targets["gold"], logits[0], from_logits=True).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    soft = MultiTaskLoss(heads, tf.Variable(0.0))(targets, logits).numpy()
    want = keras.losses.binary_crossentropy(targets["teacher"], logits[0], from_logits=True).numpy()
    np.testing.assert_allclose(soft, want, rtol=1e-5)


def test_example_of_task_a_changes_no_weight_of_task_b_head():
    table, heads = helpers.tiny_table(np.random.default_rng(1), sizes=(16, 16))
    model = helpers.tiny_model(heads, dropout=0.1)
    trainer = ExperimentConfig().replace(learning_rate=1e-2, weight_decay=0.01,
                                         warmup_fraction=0.0).trainer
    head_variables = [v for head in model.heads for v in head.trainable_variables]
    optimizer = build_optimizer(model, trainer, "float32", 10, head_variables)
    features, targets = _batch(table, np.flatnonzero(table.task_ids == 0))
    head_a = [v.numpy().copy() for v in model.heads[0].weights]
    head_b = [v.numpy().copy() for v in model.heads[1].weights]
    loss_fn = MultiTaskLoss(heads, tf.Variable(1.0))
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(targets, model(features, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    # Exactly unchanged: zero gradient (tf.where) and no weight decay on heads.
    for before, v in zip(head_b, model.heads[1].weights):
        np.testing.assert_array_equal(before, v.numpy())
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(head_a, model.heads[0].weights))


def test_fit_anneals_lambda_to_one_and_logs_it(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(2), sizes=(8, 8), teacher=True)
    model = helpers.tiny_model(heads)
    lam = tf.Variable(-1.0, trainable=False)
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(("total", self.params["total_steps"]))

        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(lam.numpy()))  # set by TeacherAnnealing, which runs first

        def on_train_batch_end(self, batch, logs=None):
            assert logs["lambda"] == seen[-1]   # the λ the step trained with

    config = ExperimentConfig().replace(epochs=2, batch_size=8, learning_rate=1e-3, xla="off",
                                        precision="float32").resolved()
    sets = [loop.EvalSet(t, h.name, table.tokens.take(np.flatnonzero(table.task_ids == t)),
                         table.gold[table.task_ids == t, : h.num_classes].argmax(-1), None, False)
            for t, h in enumerate(heads)]
    loop.fit(model, table, sets, tf.distribute.get_strategy(), str(tmp_path),
             MultiTaskLoss(heads, lam), trainer=config.trainer, numerics=config.numerics,
             execution=config.execution, data=config.data, seed=config.seed,
             callbacks=[TeacherAnnealing(lam), Probe()])
    assert seen == [("total", 4), 0.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    # TensorBoard: λ at the last step (the one log point of this 4-step run), read back.
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util
    events = event_accumulator.EventAccumulator(str(tmp_path / "tb"),
                                                size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    [logged] = events.Tensors("train/lambda")
    assert logged.step == 4 and float(tensor_util.make_ndarray(logged.tensor_proto)) == 1.0
