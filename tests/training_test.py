"""training.loop (fit, steps, checkpoints, resumption), training.optimizer and the strategies."""

import dataclasses
import json
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from empathy_tf.config import ExperimentConfig
from empathy_tf.data import batching
from empathy_tf.errors import ConfigError, RunInterrupted, TrainingDivergedError
from empathy_tf.training.losses import MultiTaskLoss
from empathy_tf.models.classifier import HeadSpec
from empathy_tf.training import callbacks, loop
from empathy_tf.training.optimizer import WarmupLinearDecay, build_optimizer
from tests import helpers


def _config(**changes):
    # float32 explicitly: `auto` would be mixed_bfloat16 on some CI CPUs and float32 on others.
    options = dict(epochs=1, batch_size=8, learning_rate=1e-3, xla="off", precision="float32")
    return ExperimentConfig().replace(**{**options, **changes}).resolved()


def _eval_sets(table, heads):
    sets = []
    for t, head in enumerate(heads):
        rows = np.flatnonzero(table.task_ids == t)
        labels = table.gold[rows, : head.num_classes].argmax(-1)
        sets.append(loop.EvalSet(t, head.name, table.tokens.take(rows), labels,
                                 1 if head.num_classes == 2 else None, False))
    return sets


def _fit(model, table, heads, run_dir, config=None, callbacks=(), strategy=None, loss_fn=None):
    config = config or _config()
    return loop.fit(model, table, _eval_sets(table, heads), strategy or tf.distribute.get_strategy(),
                    str(run_dir), loss_fn or MultiTaskLoss(heads), trainer=config.trainer,
                    numerics=config.numerics, execution=config.execution, data=config.data,
                    seed=config.seed, callbacks=callbacks)


def test_one_epoch_changes_every_parameter_and_writes_outputs(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    model = helpers.tiny_model(heads)
    before = [v.numpy().copy() for v in model.trainable_variables]
    result = _fit(model, table, heads, tmp_path, _config(eval_aux=True))
    for b, v in zip(before, model.trainable_variables):
        moved = np.abs(v.numpy() - b)
        if v.path.endswith("qkv/bias"):
            # Attention key biases get zero gradient (softmax is shift-invariant): up to
            # rounding, they stay; the query and value biases move.
            hidden = moved.shape[0] // 3
            assert moved[hidden:2 * hidden].max() < 1e-7, v.path
            moved = np.concatenate([moved[:hidden], moved[2 * hidden:]])
        assert moved.max() > 1e-4, f"{v.path} did not move in one epoch"
    assert result.best_epoch == 0 and len(result.history) == 1
    assert set(result.history[0]) == {"task0", "task1"}
    assert result.total_steps == 5  # 40 examples, batches of 8
    assert 0 < result.padding_efficiency <= 1 and result.tokens_per_second > 0
    assert os.path.exists(tmp_path / "best.weights.h5")
    assert (tmp_path / "tb").is_dir()
    # Nothing is left to resume after the last epoch: no checkpoint is written for it.
    assert not (tmp_path / "checkpoints" / "state.json").exists()


def _steps(strategy, table, heads, xla="off", steps=1, dropout=0.0, weight_decay=0.01):
    """Trains a fresh tiny model `steps` times on the plan's first batch; (last loss, weights)."""
    trainer = _config(weight_decay=weight_decay).trainer
    with strategy.scope():
        model = helpers.tiny_model(heads, seed=0, backbone_dropout=dropout)
        optimizer = build_optimizer(model, trainer, "float32", total_steps=10)
        optimizer.build(model.trainable_variables)
    train_step = loop.make_train_step(model, MultiTaskLoss(heads), optimizer, strategy, xla)
    plan = batching.plan_epoch(table, "packed", len(table), seed=0, epoch=0,
                               replicas=strategy.num_replicas_in_sync)
    iterator = iter(loop.distributed_dataset(strategy, table, plan[:1] * steps, "packed"))
    losses = [float(train_step(iterator)["loss"]) for _ in range(steps)]
    return losses[-1], [v.numpy() for v in model.trainable_variables]


@pytest.fixture(scope="module")
def small_table():
    return helpers.tiny_table(np.random.default_rng(0), sizes=(8, 8))


@pytest.fixture(scope="module")
def unfused_steps(small_table):
    return _steps(tf.distribute.get_strategy(), *small_table, "off", steps=3, dropout=0.1)


@pytest.mark.parametrize("xla", ["optimizer", "full"])
def test_xla_steps_match_unfused_steps(small_table, unfused_steps, xla):
    plain_loss, plain = unfused_steps
    loss, weights = _steps(tf.distribute.get_strategy(), *small_table, xla, steps=3, dropout=0.1)
    assert loss == pytest.approx(plain_loss, rel=1e-4)
    moved = 0
    for a, b in zip(plain, weights):
        np.testing.assert_allclose(a, b, atol=1e-4)
        moved += not np.array_equal(a, b)
    assert moved  # the comparison is between trained weights, not two untouched copies


def test_unknown_xla_mode_is_refused(small_table):
    with pytest.raises(ConfigError, match="xla='jit'"):
        _steps(tf.distribute.get_strategy(), *small_table, "jit")


@pytest.mark.parametrize("xla", ["off", "optimizer"])
def test_adam_first_step_on_repeated_tokens_is_the_textbook_one(small_table, xla):
    # Adam's first update of a coordinate with summed gradient G is
    # lr * G / (|G| + eps / sqrt(1 - beta_2)), however often its token occurs in the batch.
    # Keras' sparse (IndexedSlices) path squares each occurrence instead of the sum.
    table, heads = small_table
    model = helpers.tiny_model(heads, seed=0, backbone_dropout=0.0)
    embeddings = model.encoder.token_embeddings
    loss_fn = MultiTaskLoss(heads)
    plan = batching.plan_epoch(table, "packed", len(table), seed=0, epoch=0)
    features, targets = next(iter(batching.training_dataset(table, plan, "packed")))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(loss_fn(targets, model(features, training=True)) * targets["weight"])
    gradient = tape.gradient(loss, embeddings)
    assert isinstance(gradient, tf.IndexedSlices)  # a gather: one row per token occurrence
    dense_grad = tf.convert_to_tensor(gradient).numpy()
    before = embeddings.numpy().copy()

    lr = 1e-3
    trainer = _config(learning_rate=lr, weight_decay=0.0, warmup_fraction=0.0).trainer
    optimizer = build_optimizer(model, trainer, "float32", total_steps=10**6)
    strategy = tf.distribute.get_strategy()
    step = loop.make_train_step(model, loss_fn, optimizer, strategy, xla)
    step(iter(loop.distributed_dataset(strategy, table, plan, "packed")))

    counts = np.bincount(table.tokens.flat, minlength=len(before))
    assert counts.max() > 2  # tokens repeated within the batch
    eps = optimizer.epsilon / np.sqrt(1 - optimizer.beta_2)
    expected = before - lr * dense_grad / (np.abs(dense_grad) + eps)
    np.testing.assert_allclose(embeddings.numpy(), expected, rtol=0, atol=2e-6)


def test_mirrored_step_on_two_logical_cpus_matches_single_device(small_table):
    assert len(tf.config.list_logical_devices("CPU")) >= 2
    single_loss, single = _steps(tf.distribute.get_strategy(), *small_table)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    mirrored_loss, weights = _steps(mirrored, *small_table)
    assert mirrored_loss == pytest.approx(single_loss, rel=1e-5)
    for a, b in zip(single, weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_float16_training_scales_the_loss(tmp_path, monkeypatch):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    config = _config(precision="mixed_float16")
    assert config.bert.bias_grad_impl == "float32"  # resolved for 16-bit compute
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = helpers.tiny_model(heads, bias_grad_impl=config.bert.bias_grad_impl)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.encoder.compute_dtype == "float16"
    assert isinstance(build_optimizer(model, config.trainer, "mixed_float16", 10),
                      keras.optimizers.LossScaleOptimizer)
    scaled = []
    original = keras.optimizers.LossScaleOptimizer.scale_loss
    monkeypatch.setattr(keras.optimizers.LossScaleOptimizer, "scale_loss",
                        lambda self, loss: scaled.append(loss) or original(self, loss))
    before = [v.numpy().copy() for v in model.trainable_variables]
    result = _fit(model, table, heads, tmp_path, config)
    assert scaled  # the step multiplied the loss by the loss scale before differentiating
    assert result.total_steps == 5 and np.isfinite(result.best_score)
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables))


@pytest.mark.parametrize("seconds, expect_mid_epoch", [(0, True), (3600, False)])
def test_checkpoints_are_time_based_by_default(tmp_path, seconds, expect_mid_epoch):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    model = helpers.tiny_model(heads)
    state_path = tmp_path / "checkpoints" / "state.json"
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            assert self.params["total_steps"] == 5

        def on_train_batch_begin(self, batch, logs=None):
            if batch > 0:
                seen.append(json.loads(state_path.read_text())["step"]
                            if state_path.exists() else None)

    config = _config(checkpoint_seconds=seconds)
    assert config.execution.checkpoint_every == 0  # the default: by time
    _fit(model, table, heads, tmp_path, config, callbacks=[Probe()])
    assert len(seen) == 4
    if expect_mid_epoch:  # saved at every step boundary
        assert seen == [1, 2, 3, 4]
        assert json.loads(state_path.read_text())["step"] == 4
    else:  # only end-of-epoch checkpoints, and none after the last epoch
        assert seen == [None] * 4
        assert not state_path.exists()


def test_diverging_loss_stops_with_the_step(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    table.gold[:] = np.nan  # poisons the loss at the first step
    model = helpers.tiny_model(heads)
    with pytest.raises(TrainingDivergedError, match="step 0"):
        _fit(model, table, heads, tmp_path)
    assert not os.path.exists(tmp_path / "best.weights.h5")


class _Recorder:
    """Records the plan steps each `training_dataset` call is given (what the loop trains on)."""

    def __init__(self, monkeypatch):
        self.steps = []
        original = batching.training_dataset

        def training_dataset(table, plan, *args, **kwargs):
            self.steps += [np.concatenate([s.index for s in step]) for step in plan]
            return original(table, plan, *args, **kwargs)

        monkeypatch.setattr(batching, "training_dataset", training_dataset)


class _Terminate(keras.callbacks.Callback):
    """Sends this process SIGTERM before global step `at` (the loop stops after that step)."""

    def __init__(self, at):
        super().__init__()
        self.at = at
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if sum(self.params["steps_per_epoch"][:self.epoch]) + batch == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_stopped_run_resumes_mid_epoch_with_the_same_batches(tmp_path, monkeypatch):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    config = _config(epochs=2)
    recorder = _Recorder(monkeypatch)
    # With dropout: the checkpoint holds the dropout seed states, so the masks continue too.
    whole = helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1)
    expected = _fit(whole, table, heads, tmp_path / "whole", config)
    uninterrupted, recorder.steps = recorder.steps, []
    assert len(uninterrupted) == 10

    stopped = helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1)
    with pytest.raises(RunInterrupted, match="at step 7"):
        _fit(stopped, table, heads, tmp_path / "run", config, callbacks=[_Terminate(6)])
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["step"] == 7 and len(state["history"]) == 1  # mid-epoch 2
    first, recorder.steps = recorder.steps, []

    resumed_model = helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1)
    resumed = _fit(resumed_model, table, heads, tmp_path / "run", config)
    # Epoch 1 in full, epoch 2 up to the stop, then the rest of epoch 2 from the checkpoint.
    assert len(first) == 10 and len(recorder.steps) == 3
    for a, b in zip(first[:7] + recorder.steps, uninterrupted):
        np.testing.assert_array_equal(a, b)
    assert resumed.history == expected.history
    assert resumed.best_epoch == expected.best_epoch
    for a, b in zip(resumed_model.weights, whole.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


def _checkpointed_model(run_dir, heads, train_calls):
    model = helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1)
    for _ in range(train_calls):
        model(helpers.padded(np.full([2, 6], 7), [6, 4]), training=True)
    optimizer = build_optimizer(model, _config().trainer, "float32", 10)
    optimizer.build(model.trainable_variables)
    return model, callbacks.Checkpoints(str(run_dir), model, optimizer,
                                        tf.Variable(0, dtype=tf.int64))


def _seed_states(model):
    return [v.numpy().tolist() for v in model.non_trainable_variables if "seed_generator" in v.path]


def test_checkpoints_hold_the_dropout_seed_states(tmp_path):
    heads = helpers.tiny_table(np.random.default_rng(0))[1]
    model, checkpoints = _checkpointed_model(tmp_path, heads, train_calls=3)
    for v in model.trainable_variables:
        v.assign_add(tf.ones_like(v))
    checkpoints.step_var.assign(3)
    checkpoints.save(callbacks.TrainingState())
    fresh, again = _checkpointed_model(tmp_path, heads, train_calls=0)
    assert again.restore(10).step == 3
    for a, b in zip(model.trainable_variables, fresh.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert _seed_states(fresh) == _seed_states(model)


def test_fit_restores_the_best_epoch_weights(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    model = helpers.tiny_model(heads)
    result = _fit(model, table, heads, tmp_path, _config(epochs=2, learning_rate=1e-2,
                                                         eval_aux=True))
    scores = [h["task0"]["macro_f1"] for h in result.history]
    assert result.best_epoch == int(np.argmax(scores)) and result.best_score == max(scores)
    # The returned model is the best epoch's: it scores that epoch's dev metrics again (with this
    # seed epoch 2 ties epoch 1 on the target's macro-F1, ties keep the earlier epoch, and the
    # epochs differ on task1: the last epoch's weights would not pass).
    again = loop.evaluate_dev(model, _eval_sets(table, heads))
    assert again == result.history[result.best_epoch]


def test_warmup_then_linear_decay():
    schedule = WarmupLinearDecay(1.0, total_steps=100, warmup_steps=10)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(0.5)
    assert float(schedule(10)) == pytest.approx(1.0)
    assert float(schedule(55)) == pytest.approx(0.5)
    assert float(schedule(100)) == 0.0
    assert float(WarmupLinearDecay(1.0, total_steps=10, warmup_steps=0)(0)) == 1.0


def test_optimizers():
    model = helpers.tiny_model([HeadSpec("a", 2)])
    adamw = build_optimizer(model, _config().trainer, "float32", 100,
                            model.heads[0].trainable_variables)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.epsilon == 1e-6
    assert float(adamw.learning_rate) == 0.0  # warm-up starts from 0
    adam = build_optimizer(model, _config(optimizer="adam").trainer, "mixed_bfloat16", 100)
    assert type(adam) is keras.optimizers.Adam  # no loss scaling outside float16
    with pytest.raises(ConfigError, match="optimizer='sgd'"):
        build_optimizer(model, dataclasses.replace(_config().trainer, optimizer="sgd"),
                        "float32", 100)


class _HookRecorder(keras.callbacks.Callback):
    """A user's own Keras callback: records the hooks it sees and their logs."""

    def __init__(self, stop_at_batch=None):
        super().__init__()
        self.calls, self.stop_at_batch = [], stop_at_batch

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", None))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", dict(logs)))
        if batch == self.stop_at_batch:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", dict(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", None))


def test_a_user_keras_callback_sees_the_hooks_with_the_documented_logs(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    recorder = _HookRecorder()
    result = _fit(helpers.tiny_model(heads), table, heads, tmp_path, _config(epochs=2),
                  callbacks=[recorder])
    kinds = [kind for kind, _ in recorder.calls]
    assert kinds == ["train_begin", *["batch_end"] * 5, "epoch_end", *["batch_end"] * 5,
                     "epoch_end", "train_end"]
    batches = [logs for kind, logs in recorder.calls if kind == "batch_end"]
    for logs in batches:
        assert {"loss", "learning_rate", "tokens"} <= set(logs) and "lambda" not in logs
        tasks = [k for k in logs if k.startswith("loss_")]
        assert tasks and set(tasks) <= {"loss_task0", "loss_task1"}
        assert logs["tokens"] > 0 and np.isfinite(logs["loss"])
    # Packed batches mix tasks: some batch logs both tasks' losses.
    assert any(len([k for k in logs if k.startswith("loss_")]) == 2 for logs in batches)
    # The learning rate after each step: warm-up (1 of 10 steps), then linear decay to 0.
    rates = [logs["learning_rate"] for logs in batches]
    assert rates[-1] == 0.0 and rates[0] > 0 and all(a >= b for a, b in zip(rates, rates[1:]))
    epochs = [logs for kind, logs in recorder.calls if kind == "epoch_end"]
    for logs, history in zip(epochs, result.history):
        for key in ("f1", "macro_f1", "accuracy", "precision", "recall"):
            assert logs[f"val_task0_{key}"] == history["task0"][key]
        # The auxiliary task's dev set is evaluated only with --eval_aux.
        assert not any(k.startswith("val_task1_") for k in logs) and "task1" not in history
    assert result.dev_tasks == ("task0",)


def test_per_task_losses_add_up_to_the_batch_loss(small_table):
    table, heads = small_table
    model = helpers.tiny_model(heads, seed=0, backbone_dropout=0.0)
    optimizer = build_optimizer(model, _config().trainer, "float32", total_steps=10)
    strategy = tf.distribute.get_strategy()
    train_step = loop.make_train_step(model, MultiTaskLoss(heads), optimizer, strategy)
    plan = batching.plan_epoch(table, "packed", len(table), seed=0, epoch=0)
    out = train_step(iter(loop.distributed_dataset(strategy, table, plan[:1], "packed")))
    shares = out["task_weight"].numpy()
    assert shares.sum() == pytest.approx(1.0) and (shares > 0).all()   # both tasks, weights 1/B
    assert out["task_loss"].numpy().sum() == pytest.approx(float(out["loss"]), rel=1e-6)


def test_a_callback_setting_stop_training_ends_the_run_after_that_epoch(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    recorder = _HookRecorder(stop_at_batch=1)
    result = _fit(helpers.tiny_model(heads), table, heads, tmp_path, _config(epochs=3),
                  callbacks=[recorder])
    kinds = [kind for kind, _ in recorder.calls]
    assert kinds == ["train_begin", "batch_end", "batch_end", "epoch_end", "train_end"]
    assert result.epochs_trained == 1 and len(result.history) == 1 and result.best_epoch == 0


def test_early_stopping_ends_a_run_whose_dev_score_stops_improving(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    # A learning rate so small that predictions, hence the dev score, never change.
    config = _config(epochs=5, learning_rate=1e-9, early_stopping_patience=1)
    result = _fit(helpers.tiny_model(heads), table, heads, tmp_path, config)
    scores = [h["task0"]["macro_f1"] for h in result.history]
    assert scores[0] == scores[1]   # no improvement at epoch 2 ...
    assert result.epochs_trained == 2 and result.best_epoch == 0   # ... so it stopped there
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["stopped"] and state["step"] == 10
    # A rerun of the finished-early run resumes nothing: the recorded stop holds.
    recorder = _HookRecorder()
    again = _fit(helpers.tiny_model(heads), table, heads, tmp_path, config, callbacks=[recorder])
    assert [kind for kind, _ in recorder.calls] == ["train_begin", "train_end"]
    assert again.history == result.history and again.best_epoch == 0
    # Off (patience 0), the same run trains every epoch.
    full = _fit(helpers.tiny_model(heads), table, heads, tmp_path / "full",
                _config(epochs=3, learning_rate=1e-9))
    assert full.epochs_trained == 3


def _stopped_run(table, heads, run_dir, config):
    with pytest.raises(RunInterrupted, match="at step 7"):
        _fit(helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1), table, heads, run_dir,
             config, callbacks=[_Terminate(6)])


def test_a_checkpoint_that_disagrees_with_state_json_starts_over_from_fresh_weights(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    config = _config(epochs=2)
    whole = helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1)
    expected = _fit(whole, table, heads, tmp_path / "whole", config)
    _stopped_run(table, heads, tmp_path / "run", config)
    state_path = tmp_path / "run" / "checkpoints" / "state.json"
    state = json.loads(state_path.read_text())
    state["step"] = 3   # as if the process died between the checkpoint and state.json writes
    state_path.write_text(json.dumps(state))
    recorder = _HookRecorder()
    restarted = helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1)
    result = _fit(restarted, table, heads, tmp_path / "run", config, callbacks=[recorder])
    assert len([k for k, _ in recorder.calls if k == "batch_end"]) == 10   # all of it, again
    assert result.history == expected.history
    # Fresh weights and optimizer: the same model as the uninterrupted run's.
    for a, b in zip(restarted.weights, whole.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


def test_a_damaged_checkpoint_is_named_with_what_to_do(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    config = _config(epochs=2)
    _stopped_run(table, heads, tmp_path, config)
    [data] = (tmp_path / "checkpoints").glob("ckpt-7.data-*")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])   # truncated
    model = helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1)
    with pytest.raises(ConfigError, match=r"checkpoints/ckpt-7.*--overwrite"):
        _fit(model, table, heads, tmp_path, config)
    (tmp_path / "checkpoints" / "state.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"state\.json.*--overwrite"):
        _fit(model, table, heads, tmp_path, config)


def test_early_stopping_counts_the_epochs_before_an_interruption(tmp_path):
    table, heads = helpers.tiny_table(np.random.default_rng(0))
    config = _config(epochs=5, learning_rate=1e-9, early_stopping_patience=2)
    straight = _fit(helpers.tiny_model(heads), table, heads, tmp_path / "straight", config)
    assert straight.epochs_trained == 3   # epochs 2 and 3 without improvement
    with pytest.raises(RunInterrupted, match="at step 12"):   # mid-epoch 3
        _fit(helpers.tiny_model(heads), table, heads, tmp_path / "run", config,
             callbacks=[_Terminate(11)])
    # The resumed run's EarlyStopping has seen epochs 1-2: it stops after epoch 3 as well.
    resumed = _fit(helpers.tiny_model(heads), table, heads, tmp_path / "run", config)
    assert resumed.epochs_trained == 3 and resumed.history == straight.history
