"""The one training loop, for every neural method and every tf.distribute strategy.

Each step is `strategy.run` of a custom step inside a `tf.function` over a distributed dataset
(batching.py plans the steps). Each example carries the weight 1/B (B = global batch), so the
per-replica sums of `weight * loss` add up to the batch mean however the batch is split.

The loop checkpoints every `checkpoint_every` steps (or, when it is 0, at the first step boundary
after `checkpoint_seconds`) and at each epoch end (model, optimizer, step, best dev score),
evaluates every task's dev set after each epoch, keeps the weights of the epoch with the best dev
score of the target task, and writes TensorBoard scalars. A rerun of the same command resumes from
the last checkpoint: batch plans are a pure function of (seed, epoch), so the resumed run sees the
batches the interrupted one would have. SIGTERM/SIGINT checkpoint at the next step boundary and stop
(`tf.distribute.experimental.PreemptionCheckpointHandler` does this only under multi-worker and TPU
strategies, so the suite keeps its own handler, the same for all of them).

Example:

    with strategy.scope():
        model = build_model()
    result = fit(model, table, dev_sets, config, strategy, run_dir, loss_fn=MultiTaskLoss(heads))
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

from empathy_tf import io_utils
from empathy_tf.data import batching
from empathy_tf.errors import ConfigError, RunInterrupted, TrainingDivergedError
from empathy_tf.eval import metrics as metrics_lib
from empathy_tf.training import predict as predict_lib
from empathy_tf.training.optimizer import build_optimizer
from empathy_tf.training.strategy import strategy_is_chief

XLA_MODES = ("off", "optimizer", "full")
# Under xla=full, rows are padded to a multiple of this length so that XLA compiles one program
# per length bucket rather than one per distinct batch length.
XLA_LENGTH_MULTIPLE = 16
LOG_EVERY = 20
WARMUP_STEPS = 20   # first steps of a fit trace and compile; not in the steady rate


@dataclasses.dataclass
class EvalSet:
    task_index: int
    name: str
    tokens: object    # preprocessor.Tokens
    labels: np.ndarray
    positive_class: int | None
    multi_label: bool


@dataclasses.dataclass
class FitResult:
    best_epoch: int
    best_score: float
    history: list          # per epoch: {task: dev metrics}
    total_steps: int
    wall_time_s: float
    steps_per_second: float
    tokens_per_second: float   # real (unpadded) training tokens per second, the whole fit
    steady_tokens_per_second: float  # the same over training steps only, after the first 20
    warmup_steps_s: float      # seconds of the first 20 steps (tracing, first compilations)
    dev_eval_s: float          # seconds of the end-of-epoch dev evaluations
    padding_efficiency: float


def make_train_step(model, loss_fn, optimizer, strategy, xla="off"):
    """One optimizer step on the next global batch of a distributed iterator; returns the loss.

    `xla`: "off" runs every op as a TensorFlow kernel; "optimizer" compiles only the AdamW update
    (its ~15 element-wise ops per variable fuse into one loop each; the variables' shapes never
    change, so it compiles once); "full" compiles the whole step (one compilation per shape).
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
                lambda grads: optimizer.apply_gradients(zip(grads, used_vars)), jit_compile=True,
                autograph=False)
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
        # [CLS], [SEP] and frequent words). Dense gradients give the textbook AdamW update.
        grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]
        if xla == "optimizer":
            apply_fused(grads)
        else:
            optimizer.apply_gradients(zip(grads, variables))
        return loss

    if xla == "full":
        step_fn = tf.function(step_fn, jit_compile=True, autograph=False)

    # No autograph: nothing here branches on tensors, and converting Keras' code costs seconds
    # of start-up per model.
    @tf.function(autograph=False)
    def train_step(iterator):
        features, targets = next(iterator)
        per_replica = strategy.run(step_fn, args=(features, targets))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return train_step


def distributed_dataset(strategy, table, plan, layout, pad_id=0):
    """The same global batches for any strategy: each input pipeline takes its replicas' shares."""
    def dataset_fn(ctx):
        local = max(ctx.num_replicas_in_sync // ctx.num_input_pipelines, 1)
        return batching.training_dataset(table, plan, layout, pad_id, ctx.input_pipeline_id,
                                         ctx.num_input_pipelines, local)
    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(dataset_fn, options)


class StopRequest:
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


def _test_pause(run_dir, step, stop):
    # Fault-injection hook for the resume tests: hold at a known step so a test can kill us there.
    if os.environ.get("EMPATHY_TF_PAUSE_AT_STEP") != str(step):
        return
    marker = os.path.join(run_dir, ".paused")
    io_utils.atomic_write_text(marker, str(step))
    deadline = time.time() + float(os.environ.get("EMPATHY_TF_PAUSE_SECONDS", "60"))
    while os.path.exists(marker) and stop.requested is None and time.time() < deadline:
        time.sleep(0.05)


def evaluate_dev(model, eval_sets, pad_id=0):
    """Dev metrics of every task: {task name: metrics}."""
    out = {}
    for ev in eval_sets:
        [probs] = predict_lib.predict_probs(model, ev.tokens, [ev.task_index], pad_id=pad_id)
        out[ev.name] = metrics_lib.classification_metrics(ev.labels, probs, ev.positive_class,
                                                          ev.multi_label)
    return out


class _Checkpoints:
    """Model + optimizer + step in `run_dir/checkpoints`, and the loop's state beside them."""

    def __init__(self, run_dir, model, optimizer, step_var):
        # Dropout seed generators are state too: without them a resumed run redraws the masks
        # of its first steps. Keras keeps them among the non-trainable variables, in model order.
        seeds = [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var,
                                              seeds=seeds)
        # Every worker keeps its own checkpoints and state in its own run folder (the runner gives
        # non-chief workers a sub-folder): all of them save at the same steps and resume together.
        self.manager = tf.train.CheckpointManager(self.checkpoint,
                                                  os.path.join(run_dir, "checkpoints"),
                                                  max_to_keep=1)
        self.state_path = os.path.join(run_dir, "checkpoints", "state.json")
        self.step_var = step_var
        self.last_save = time.time()

    @staticmethod
    def fresh_state():
        return {"history": [], "best_epoch": -1, "best_score": -math.inf, "step": 0}

    def restore(self, run_dir, total_steps):
        if not (self.manager.latest_checkpoint and os.path.exists(self.state_path)):
            return self.fresh_state()
        self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        saved = io_utils.read_json(self.state_path)
        if saved.get("step") == int(self.step_var.numpy()):
            logging.info("Resuming %s at step %d of %d", run_dir, saved["step"], total_steps)
            return saved
        # Checkpoint and state disagree (died between the two writes): start clean.
        logging.warning("Checkpoint and state.json disagree in %s; starting over", run_dir)
        self.step_var.assign(0)
        return self.fresh_state()

    def save(self, state):
        self.last_save = time.time()
        self.manager.save(checkpoint_number=int(self.step_var.numpy()))
        state["step"] = int(self.step_var.numpy())
        io_utils.atomic_write_json(self.state_path, state)


def fit(model, table, eval_sets, config, strategy, run_dir, loss_fn, callbacks=(), pad_id=0,
        target_task=0):
    """Trains `model` (built under `strategy.scope()`) and restores its best-dev-epoch weights.

    Args:
        model: a `MultiTaskClassifier`.
        table: the `batching.ExampleTable` of every task's training examples.
        eval_sets: one `EvalSet` per task (dev split).
        config: the run's resolved `ExperimentConfig` (trainer, numerics, execution, data
            sampling and the seed are read).
        strategy: a tf.distribute strategy.
        run_dir: where checkpoints, TensorBoard logs and `best.weights.h5` go.
        loss_fn: per-example loss `(targets, logits) -> [n]` (methods/distill/loss.py).
        callbacks: objects with `on_train_begin(total_steps)` and `on_step(global_step)`, the
            latter called before every step (λ annealing).
    """
    trainer, numerics, execution = config.trainer, config.numerics, config.execution
    layout = trainer.layout(table.num_tasks)
    length_multiple = XLA_LENGTH_MULTIPLE if numerics.xla == "full" else 1
    plans = batching.plan_epochs(table, layout, trainer.batch_size, config.seed, trainer.epochs,
                                 sampling=config.data.sampling, alpha=config.data.sampling_alpha,
                                 replicas=strategy.num_replicas_in_sync,
                                 length_multiple=length_multiple)
    steps_per_epoch = [len(p) for p in plans]
    total_steps = sum(steps_per_epoch)
    lengths = table.tokens.lengths
    pad_eff = batching.padding_efficiency(plans[0], lengths)
    chief = strategy_is_chief(strategy)
    # Workers of a multi-worker run must checkpoint at the same steps: count steps there.
    checkpoint_every = execution.checkpoint_every or (200 if execution.strategy == "multi_worker"
                                                      else 0)

    with strategy.scope():
        step_var = tf.Variable(0, trainable=False, dtype=tf.int64, name="global_step")
        heads = [v for head in model.heads for v in head.trainable_variables]
        optimizer = build_optimizer(model, trainer, numerics.precision, total_steps, heads)
        optimizer.build(model.trainable_variables)
    checkpoints = _Checkpoints(run_dir, model, optimizer, step_var)
    state = checkpoints.restore(run_dir, total_steps)
    for callback in callbacks:
        callback.on_train_begin(total_steps)
    best_path = os.path.join(run_dir, "best.weights.h5")

    train_step = make_train_step(model, loss_fn, optimizer, strategy, numerics.xla)
    writer = (tf.summary.create_file_writer(os.path.join(run_dir, "tb")) if chief
              else tf.summary.create_noop_writer())

    start = time.time()
    first_step = global_step = int(step_var.numpy())
    trained_tokens = steady_tokens = 0
    steady_seconds = warmup_seconds = dev_eval_seconds = 0.0
    epoch_starts = np.concatenate([[0], np.cumsum(steps_per_epoch)])
    recent = []
    with StopRequest() as stop:
        for epoch in range(trainer.epochs):
            if global_step >= epoch_starts[epoch + 1]:
                continue  # finished before an interruption
            offset = global_step - epoch_starts[epoch]
            remaining = plans[epoch][offset:]
            iterator = iter(distributed_dataset(strategy, table, remaining, layout, pad_id))
            for step in remaining:
                _test_pause(run_dir, global_step, stop)
                if stop.requested is not None:
                    checkpoints.save(state)
                    raise RunInterrupted(
                        f"stopped by signal {stop.requested} at step {global_step}; checkpoint "
                        f"saved in {run_dir}; rerun the same command to resume")
                for callback in callbacks:
                    callback.on_step(global_step)
                step_start = time.perf_counter()
                loss = float(train_step(iterator))
                if not math.isfinite(loss):
                    raise TrainingDivergedError(
                        f"loss became {loss} at step {global_step} (epoch {epoch + 1}); try a lower "
                        "--learning_rate. No metrics were written for this run.")
                global_step += 1
                step_tokens = sum(int(lengths[s.index].sum()) for s in step)
                trained_tokens += step_tokens
                if global_step - first_step > WARMUP_STEPS:
                    steady_tokens += step_tokens
                    steady_seconds += time.perf_counter() - step_start
                else:
                    warmup_seconds += time.perf_counter() - step_start
                step_var.assign(global_step)
                recent.append(loss)
                if global_step % LOG_EVERY == 0 or global_step == total_steps:
                    _log_progress(writer, optimizer, callbacks, recent, global_step, total_steps,
                                  epoch, (global_step - first_step) / max(time.time() - start, 1e-9))
                    recent = []
                # A checkpoint (model + AdamW state, ~0.8 s for MiniLM) every 200 short steps
                # cost 4% of a run; by default it is written every couple of minutes instead.
                due = (global_step % checkpoint_every == 0 if checkpoint_every
                       else time.time() - checkpoints.last_save >= execution.checkpoint_seconds)
                if due and global_step < epoch_starts[epoch + 1]:
                    checkpoints.save(state)
            eval_start = time.perf_counter()
            _end_of_epoch(model, eval_sets, config, pad_id, writer, state, epoch, global_step,
                          target_task, best_path)
            dev_eval_seconds += time.perf_counter() - eval_start
            # After the last epoch nothing is left to resume (a run killed before it writes
            # metrics.json redoes the tail of that epoch from the last checkpoint: the same steps).
            if epoch < trainer.epochs - 1:
                checkpoints.save(state)

    if os.path.exists(best_path) and state["best_epoch"] < trainer.epochs - 1:
        model.load_weights(best_path)   # the last epoch's weights are in the model already
    elapsed = time.time() - start
    return FitResult(best_epoch=state["best_epoch"], best_score=state["best_score"],
                     history=state["history"], total_steps=total_steps, wall_time_s=elapsed,
                     steps_per_second=(global_step - first_step) / max(elapsed, 1e-9),
                     tokens_per_second=trained_tokens / max(elapsed, 1e-9),
                     steady_tokens_per_second=steady_tokens / max(steady_seconds, 1e-9),
                     warmup_steps_s=warmup_seconds, dev_eval_s=dev_eval_seconds,
                     padding_efficiency=pad_eff)


def _log_progress(writer, optimizer, callbacks, recent, global_step, total_steps, epoch, rate):
    mean_loss = float(np.mean(recent))
    lr = optimizer.learning_rate
    lr = float(lr(global_step) if callable(lr) else lr)
    lam = next((float(c.lam.numpy()) for c in callbacks if hasattr(c, "lam")), 1.0)
    with writer.as_default(step=global_step):
        tf.summary.scalar("train/loss", mean_loss)
        tf.summary.scalar("train/lambda", lam)
        tf.summary.scalar("train/learning_rate", lr)
    logging.info("step %d/%d  epoch %d  loss %.4f  λ %.3f  %.2f steps/s  ETA %.0fs", global_step,
                 total_steps, epoch + 1, mean_loss, lam, rate,
                 (total_steps - global_step) / max(rate, 1e-9))


def _end_of_epoch(model, eval_sets, config, pad_id, writer, state, epoch, global_step,
                  target_task, best_path):
    """Evaluates every task's dev set; keeps the weights if the target task's score improved."""
    epoch_metrics = evaluate_dev(model, eval_sets, pad_id)
    with writer.as_default(step=global_step):
        for name, m in epoch_metrics.items():
            for key in ("f1", "macro_f1", "accuracy", "precision", "recall"):
                if key in m:
                    tf.summary.scalar(f"dev/{name}/{key}", m[key])
    writer.flush()
    state["history"].append(epoch_metrics)
    target_name = eval_sets[target_task].name
    score = metrics_lib.selection_score(epoch_metrics[target_name], config.trainer.selection)
    logging.info("epoch %d dev %s: %s", epoch + 1, target_name,
                 json.dumps({k: round(v, 4) for k, v in epoch_metrics[target_name].items()}))
    if score > state["best_score"]:
        state["best_score"], state["best_epoch"] = float(score), epoch
        tmp = os.path.join(os.path.dirname(best_path), ".tmp-best.weights.h5")
        model.save_weights(tmp)
        os.replace(tmp, best_path)
