"""One training loop for every model and every tf.distribute strategy.

Keras 3 `Model.fit` fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585), so training
is a custom step: `strategy.run` inside a `tf.function` over a distributed dataset. Each example
carries the weight 1/B (B = global batch), so the per-replica sums of `weight * loss` add up to the
batch mean however the batch is split across replicas.

The loop checkpoints every `checkpoint_every` steps (or, when it is 0, at the first step boundary
after `checkpoint_seconds`) and at each epoch end (model, optimizer, step,
best dev score), evaluates every task's dev set after each epoch, keeps the weights of the epoch
with the best dev score of the target task, and writes TensorBoard scalars. A rerun of the same
command resumes from the last checkpoint: batch plans are a pure function of (seed, epoch), so the
resumed run sees the batches the interrupted one would have.

Example:

    strategy = make_strategy("default")
    with strategy.scope():
        model = build_model()
    result = fit(model, heads, table, dev_sets, TrainSpec(epochs=3), strategy, run_dir)
"""

import dataclasses
import json
import math
import os
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from empathy_tf import evaluation, io_utils
from empathy_tf.data import pipeline
from empathy_tf.distillation.loss import DistillationLoss, LambdaAnnealing
from empathy_tf.config import XLA_MODES
from empathy_tf.errors import ConfigError, TrainingDivergedError

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name="default"):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("--strategy=multi_worker needs TF_CONFIG (see BUILD.md)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"strategy={name!r}; expected one of {STRATEGIES}")


def is_chief_process():
    """True unless TF_CONFIG names this process a non-chief worker."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = tf_config.get("task", {})
    if not task:
        return True
    if task.get("type") == "chief":
        return True
    return (task.get("type") == "worker" and int(task.get("index", 0)) == 0
            and "chief" not in tf_config.get("cluster", {}))


def worker_index():
    task = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("task", {})
    return f"{task.get('type', 'worker')}-{task.get('index', 0)}"


def is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


@dataclasses.dataclass
class TrainSpec:
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    optimizer: str = "adamw"         # adamw (BERT) | adam (GloVe baselines)
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    annealing: str = "gold"          # gold (λ=1: single-task / MT) | linear | none | constant
    annealing_constant: float = 0.5
    sampling: str = "proportional"
    sampling_alpha: float = 0.75
    seed: int = 0
    selection: str = "f1"            # f1 (positive class, paper) | macro_f1
    log_every: int = 20
    checkpoint_every: int = 0        # steps; 0: time-based (every checkpoint_seconds)
    checkpoint_seconds: float = 120.0
    eval_batch_size: int = 256      # sequences; also at most pipeline.INFERENCE_MAX_TOKENS tokens
    pool_batches: int = pipeline.POOL_BATCHES
    xla: str = "off"                 # off | optimizer (fused update) | full (whole step)
    precision: str = "float32"       # mixed_float16 adds dynamic loss scaling


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """BERT's schedule: linear warm-up to `peak`, then linear decay to 0 at `total_steps`."""

    def __init__(self, peak, total_steps, warmup_steps):
        self.peak = peak
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * step / max(self.warmup_steps, 1)
        decay = self.peak * tf.maximum(0.0, (self.total_steps - step) /
                                       max(self.total_steps - self.warmup_steps, 1))
        return tf.where(step < self.warmup_steps, warm, decay)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def build_optimizer(model, spec, total_steps):
    optimizer = _base_optimizer(model, spec, total_steps)
    if spec.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _base_optimizer(model, spec, total_steps):
    if spec.optimizer == "adam":
        return keras.optimizers.Adam(spec.learning_rate)
    if spec.optimizer != "adamw":
        raise ConfigError(f"optimizer={spec.optimizer!r}; expected adamw or adam")
    schedule = WarmupLinearDecay(spec.learning_rate, total_steps,
                                 round(spec.warmup_fraction * total_steps))
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=spec.weight_decay, epsilon=1e-6)
    # No decay on biases and LayerNorm (BERT practice), nor on task heads: a head that sees no
    # example of its task in a step must not move in that step.
    head_vars = [v for head in model.heads for v in head.trainable_variables]
    optimizer.exclude_from_weight_decay(var_list=head_vars, var_names=["bias", "gamma", "beta"])
    return optimizer


@dataclasses.dataclass
class EvalSet:
    task_index: int
    name: str
    tokens: object    # featurize.Tokens
    labels: np.ndarray
    positive_class: int | None
    multi_label: bool


def predict_probs(model, tokens, task_index, batch_size=256, pad_id=0, predict_fn=None,
                  max_tokens=pipeline.INFERENCE_MAX_TOKENS):
    """Probabilities of one head for every sequence, in the original order; no gradients.

    Batches are length-sorted and hold up to `batch_size` sequences and `max_tokens` padded tokens.
    """
    predict_fn = predict_fn or make_predict_fn(model)
    num = len(tokens)
    out = None
    for features, index in pipeline.inference_dataset(tokens, batch_size, pad_id, max_tokens):
        probs = predict_fn(features)[task_index].numpy()
        if out is None:
            out = np.zeros([num, probs.shape[-1]], np.float32)
        out[index.numpy()] = probs
    return out if out is not None else np.zeros([0, model.head_specs[task_index].num_classes])


def make_predict_fn(model):
    """One traced inference function per model (reused: tracing is the expensive part)."""
    cached = getattr(model, "_empathy_predict_fn", None)
    if cached is not None:
        return cached

    @tf.function(input_signature=[{
        "token_ids": tf.TensorSpec([None, None], tf.int32),
        "padding_mask": tf.TensorSpec([None, None], tf.bool)}])
    def predict(features):
        return [tf.cast(p, tf.float32) for p in model.probabilities(model(features, training=False))]
    object.__setattr__(model, "_empathy_predict_fn", predict)  # not a tracked Keras attribute
    return predict


# Under xla=full, batches are padded to a multiple of this length so that XLA compiles one
# program per length bucket rather than one per distinct batch length.
XLA_LENGTH_MULTIPLE = 16


def batch_length_multiple(xla):
    """What `distributed_dataset` rounds batch lengths up to for a train step of this mode."""
    return XLA_LENGTH_MULTIPLE if xla == "full" else 1


def make_train_step(model, loss_fn, optimizer, strategy, xla="off"):
    """One optimizer step on the next global batch of a distributed iterator; returns the loss.

    Each replica sums `weight * loss` (weight = 1/B_global), so the SUM over replicas is the
    global batch mean whatever the strategy.

    `xla`: "off" runs every op as a TensorFlow kernel; "optimizer" compiles only the AdamW
    update with XLA (its ~15 element-wise ops per variable fuse into one loop each; the
    variables' shapes never change, so it compiles once), measured 1.10x faster on the
    benchmark's student batches and 1.33x on 16 x 16-token ones; "full" compiles the whole step (one
    compilation per batch shape; on this CPU the matmuls lose oneDNN: 0.66x, see BUILD.md).
    """
    if xla not in XLA_MODES:
        raise ConfigError(f"xla={xla!r}; expected one of {XLA_MODES}")
    variables = model.trainable_variables
    scales_loss = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    fused_updates = {}

    def apply_fused(grads):
        # Gradients of fixed shapes (dense, see below), so XLA compiles the update once.
        used = tuple(i for i, g in enumerate(grads) if g is not None)
        if used not in fused_updates:
            used_vars = [variables[i] for i in used]
            fused_updates[used] = tf.function(
                lambda grads: optimizer.apply_gradients(zip(grads, used_vars)), jit_compile=True)
        fused_updates[used]([grads[i] for i in used])

    def step_fn(features, targets):
        with tf.GradientTape() as tape:
            per_example = loss_fn(targets, model(features, training=True))
            loss = tf.reduce_sum(per_example * targets["weight"])
            scaled = optimizer.scale_loss(loss) if scales_loss else loss
        grads = tape.gradient(scaled, variables)
        # Embedding gradients come as IndexedSlices with one row per token occurrence. Keras'
        # Adam squares those rows before summing duplicates, so a token seen k times in a batch
        # gets sum(g_i^2) instead of (sum g_i)^2 as its second moment (a wrong step size for
        # [CLS], [SEP], frequent words and the segment embedding). Dense gradients give the
        # textbook (and original BERT) AdamW update.
        grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]
        if xla == "optimizer":
            apply_fused(grads)
        else:
            optimizer.apply_gradients(zip(grads, variables))
        return loss

    if xla == "full":
        step_fn = tf.function(step_fn, jit_compile=True)

    @tf.function
    def train_step(iterator):
        features, targets = next(iterator)
        per_replica = strategy.run(step_fn, args=(features, targets))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return train_step


@dataclasses.dataclass
class FitResult:
    best_epoch: int
    best_score: float
    history: list          # per epoch: {task: dev metrics}
    total_steps: int
    wall_time_s: float
    steps_per_second: float
    padding_efficiency: float


def distributed_dataset(strategy, table, batches, pad_id=0, length_multiple=1):
    """The same global batches for any strategy: each input pipeline takes its share."""
    def dataset_fn(ctx):
        local = max(ctx.num_replicas_in_sync // ctx.num_input_pipelines, 1)
        return pipeline.training_dataset(table, batches, pad_id, ctx.input_pipeline_id,
                                         ctx.num_input_pipelines, local, length_multiple)
    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(dataset_fn, options)


class _StopRequest:
    """SIGTERM/SIGINT ask the loop to checkpoint at the next step boundary and stop."""

    def __init__(self):
        self.requested = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.requested = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class RunInterrupted(KeyboardInterrupt):
    """Raised after a requested stop was checkpointed; rerunning the command resumes."""


def _test_pause(run_dir, step, stop):
    # Fault-injection hook for the resume tests: hold at a known step so a test can kill us there.
    if os.environ.get("EMPATHY_TF_PAUSE_AT_STEP") != str(step):
        return
    marker = os.path.join(run_dir, ".paused")
    io_utils.atomic_write_text(marker, str(step))
    deadline = time.time() + float(os.environ.get("EMPATHY_TF_PAUSE_SECONDS", "60"))
    while os.path.exists(marker) and stop.requested is None and time.time() < deadline:
        time.sleep(0.05)


def _log_progress(writer, optimizer, lam, recent, global_step, total_steps, epoch, rate):
    mean_loss = float(np.mean(recent))
    lr = optimizer.learning_rate
    lr = float(lr(global_step) if callable(lr) else lr)
    with writer.as_default(step=global_step):
        tf.summary.scalar("train/loss", mean_loss)
        tf.summary.scalar("train/lambda", float(lam.numpy()))
        tf.summary.scalar("train/learning_rate", lr)
    logging.info("step %d/%d  epoch %d  loss %.4f  λ %.3f  %.2f steps/s  ETA %.0fs", global_step,
                 total_steps, epoch + 1, mean_loss, float(lam.numpy()), rate,
                 (total_steps - global_step) / max(rate, 1e-9))


def _end_of_epoch(model, eval_sets, spec, pad_id, predict_fn, writer, state, epoch, global_step,
                  target_task, chief, best_path):
    """Evaluates every task's dev set; keeps the weights if the target task's score improved."""
    epoch_metrics = {}
    for ev in eval_sets:
        probs = predict_probs(model, ev.tokens, ev.task_index, spec.eval_batch_size, pad_id,
                              predict_fn)
        epoch_metrics[ev.name] = evaluation.classification_metrics(
            ev.labels, probs, ev.positive_class, ev.multi_label)
    with writer.as_default(step=global_step):
        for name, m in epoch_metrics.items():
            for key in ("f1", "macro_f1", "accuracy", "precision", "recall"):
                if key in m:
                    tf.summary.scalar(f"dev/{name}/{key}", m[key])
    writer.flush()
    state["history"].append(epoch_metrics)
    target_name = eval_sets[target_task].name
    score = evaluation.selection_score(epoch_metrics[target_name], spec.selection)
    logging.info("epoch %d dev %s: %s", epoch + 1, target_name,
                 json.dumps({k: round(v, 4) for k, v in epoch_metrics[target_name].items()}))
    if score > state["best_score"]:
        state["best_score"], state["best_epoch"] = float(score), epoch
        tmp = os.path.join(os.path.dirname(best_path), ".tmp-best.weights.h5")
        model.save_weights(tmp)
        os.replace(tmp, best_path)


def fit(model, heads, table, eval_sets, spec, strategy, run_dir, pad_id=0, target_task=0,
        callbacks=()):
    """Trains `model` (built under `strategy.scope()`) and restores its best-dev-epoch weights."""
    plans = pipeline.plan_epochs(table, spec.batch_size, spec.seed, spec.epochs, spec.sampling,
                                 spec.sampling_alpha, spec.pool_batches,
                                 min_batch=strategy.num_replicas_in_sync)
    steps_per_epoch = [len(p) for p in plans]
    total_steps = sum(steps_per_epoch)
    pad_eff = pipeline.padding_efficiency(table.tokens.lengths, plans[0])
    chief = is_chief(strategy)

    with strategy.scope():
        lam = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="distill_lambda")
        step_var = tf.Variable(0, trainable=False, dtype=tf.int64, name="global_step")
        optimizer = build_optimizer(model, spec, total_steps)
        optimizer.build(model.trainable_variables)
    loss_fn = DistillationLoss(heads, lam)
    annealer = LambdaAnnealing(lam, total_steps, spec.annealing, spec.annealing_constant)
    callbacks = [annealer, *callbacks]

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var, lam=lam)
    # Every worker keeps its own checkpoints and state in its own run folder (the runner gives
    # non-chief workers a sub-folder): all of them save at the same steps and resume together.
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(run_dir, "checkpoints"),
                                         max_to_keep=1)
    state_path = os.path.join(run_dir, "checkpoints", "state.json")
    best_path = os.path.join(run_dir, "best.weights.h5")
    state = {"history": [], "best_epoch": -1, "best_score": -math.inf, "step": 0}
    if manager.latest_checkpoint and os.path.exists(state_path):
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
        saved = io_utils.read_json(state_path)
        if saved.get("step") == int(step_var.numpy()):
            state = saved
            logging.info("Resuming %s at step %d of %d", run_dir, state["step"], total_steps)
        else:  # checkpoint and state disagree (died between the two writes): start clean
            logging.warning("Checkpoint and state.json disagree in %s; starting over", run_dir)
            step_var.assign(0)
            state = {"history": [], "best_epoch": -1, "best_score": -math.inf, "step": 0}

    train_step = make_train_step(model, loss_fn, optimizer, strategy, spec.xla)
    length_multiple = batch_length_multiple(spec.xla)
    predict_fn = make_predict_fn(model)
    writer = (tf.summary.create_file_writer(os.path.join(run_dir, "tb")) if chief
              else tf.summary.create_noop_writer())

    last_save = time.time()

    def save_checkpoint():
        nonlocal last_save
        last_save = time.time()
        manager.save(checkpoint_number=int(step_var.numpy()))
        state["step"] = int(step_var.numpy())
        io_utils.atomic_write_json(state_path, state)

    start = time.time()
    first_step = int(step_var.numpy())
    global_step = first_step
    epoch_starts = np.concatenate([[0], np.cumsum(steps_per_epoch)])
    recent = []
    with _StopRequest() as stop:
        for epoch in range(spec.epochs):
            if global_step >= epoch_starts[epoch + 1]:
                continue  # finished before an interruption
            offset = global_step - epoch_starts[epoch]
            iterator = iter(distributed_dataset(strategy, table, plans[epoch][offset:], pad_id,
                                               length_multiple))
            for _ in range(steps_per_epoch[epoch] - offset):
                _test_pause(run_dir, global_step, stop)
                if stop.requested is not None:
                    save_checkpoint()
                    raise RunInterrupted(
                        f"stopped by signal {stop.requested} at step {global_step}; checkpoint "
                        f"saved in {run_dir}; rerun the same command to resume")
                for cb in callbacks:
                    cb.on_train_batch_begin(global_step)
                loss = float(train_step(iterator))
                if not math.isfinite(loss):
                    raise TrainingDivergedError(
                        f"loss became {loss} at step {global_step} (epoch {epoch + 1}); try a lower "
                        "--learning_rate. No metrics were written for this run.")
                global_step += 1
                step_var.assign(global_step)
                recent.append(loss)
                if global_step % spec.log_every == 0 or global_step == total_steps:
                    _log_progress(writer, optimizer, lam, recent, global_step, total_steps, epoch,
                                  (global_step - first_step) / max(time.time() - start, 1e-9))
                    recent = []
                # A checkpoint (model + AdamW state, ~0.8 s for MiniLM here) every 200 short steps
                # cost 4% of the run; by default it is written every couple of minutes instead.
                due = (global_step % spec.checkpoint_every == 0 if spec.checkpoint_every
                       else time.time() - last_save >= spec.checkpoint_seconds)
                if due and global_step < epoch_starts[epoch + 1]:
                    save_checkpoint()
            _end_of_epoch(model, eval_sets, spec, pad_id, predict_fn, writer, state, epoch,
                          global_step, target_task, chief, best_path)
            save_checkpoint()

    if os.path.exists(best_path):
        model.load_weights(best_path)
    elapsed = time.time() - start
    return FitResult(best_epoch=state["best_epoch"], best_score=state["best_score"],
                     history=state["history"], total_steps=total_steps, wall_time_s=elapsed,
                     steps_per_second=(global_step - first_step) / max(elapsed, 1e-9),
                     padding_efficiency=pad_eff)
