"""The one training loop, for every neural method and every tf.distribute strategy.

Each step is `strategy.run` of a custom step inside a `tf.function` over a distributed dataset
(batching.py plans the steps). Each example carries the weight 1/B (B = global batch), so the
per-replica sums of `weight * loss` add up to the batch mean however the batch is split. (Keras 3
`Model.fit` fails under `MultiWorkerMirroredStrategy`, keras-team/keras#20585: hence this loop.)

The loop drives a `keras.callbacks.CallbackList`, as Keras' guide "Writing a training loop from
scratch" does: `on_train_begin/end`, `on_epoch_begin/end` (logs: `val_<task>_<metric>` of the
target task's dev set, and of the auxiliary tasks' with `--eval_aux`), `on_train_batch_begin/end`
(logs: `loss`, `learning_rate`, `tokens`, `lambda` for distillation, `loss_<task>` for
multi-task runs), and honours `model.stop_training`. Checkpoints and exact resume, best-epoch
weights, TensorBoard scalars and the progress log are callbacks (training/callbacks.py says which
are Keras' own and why the others are not), as are the NaN stop (`keras.callbacks.TerminateOnNaN`)
and early stopping (`keras.callbacks.EarlyStopping`, `--early_stopping_patience`). A rerun of the
same command resumes from the last checkpoint: batch plans are a pure function of (seed, epoch),
so the resumed run sees the batches the interrupted one would have. SIGTERM/SIGINT checkpoint at
the next step boundary and stop (`tf.distribute.experimental.PreemptionCheckpointHandler` does
this only under multi-worker and TPU strategies, so the suite keeps its own handler, the same for
all of them).

Example:

    with strategy.scope():
        model = build_model()
    result = fit(model, table, dev_sets, strategy, run_dir, MultiTaskLoss(heads),
                 trainer=config.trainer, numerics=config.numerics, execution=config.execution,
                 data=config.data, seed=config.seed,
                 callbacks=[keras.callbacks.CSVLogger("log.csv")])   # any Keras callback
"""

import dataclasses
import math
import os
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from empathy_tf import io_utils
from empathy_tf.config import XLA_MODES
from empathy_tf.data import batching
from empathy_tf.errors import ConfigError, TrainingDivergedError
from empathy_tf.eval import metrics as metrics_lib
from empathy_tf.training import callbacks as callbacks_lib
from empathy_tf.training import predict as predict_lib
from empathy_tf.training.optimizer import build_optimizer
from empathy_tf.training.strategy import strategy_is_chief

# Under xla=full, rows are padded to a multiple of this length so that XLA compiles one program
# per length bucket rather than one per distinct batch length.
XLA_LENGTH_MULTIPLE = 16
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
    history: list          # per epoch: {task: dev metrics} (the evaluated tasks)
    total_steps: int
    wall_time_s: float
    steps_per_second: float
    tokens_per_second: float   # real (unpadded) training tokens per second, the whole fit
    steady_tokens_per_second: float  # the same over training steps only, after the first 20
    warmup_steps_s: float      # seconds of the first 20 steps (tracing, first compilations)
    dev_eval_s: float          # seconds of the end-of-epoch dev evaluations
    padding_efficiency: float
    epochs_trained: int = 0    # fewer than configured when early stopping ended the run
    dev_tasks: tuple = ()      # the tasks whose dev sets were evaluated every epoch


def make_train_step(model, loss_fn, optimizer, strategy, xla="off"):
    """One optimizer step on the next global batch of a distributed iterator.

    Returns `{"loss": the batch mean, "task_loss": [T] each task's share of it, "task_weight": [T]
    each task's share of the batch}` (T = `len(model.heads)`), so `task_loss / task_weight` is a
    task's mean loss in the batch.

    `xla`: "off" runs every op as a TensorFlow kernel; "optimizer" compiles only the AdamW update
    (its ~15 element-wise ops per variable fuse into one loop each; the variables' shapes never
    change, so it compiles once); "full" compiles the whole step (one compilation per shape).
    """
    if xla not in XLA_MODES:
        raise ConfigError(f"xla={xla!r}; expected one of {XLA_MODES}")
    variables = model.trainable_variables
    num_tasks = len(model.heads)
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
            weighted = per_example * targets["weight"]
            loss = tf.reduce_sum(weighted)
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
        # Outside the tape and after the update: logged, never differentiated.
        task_id = tf.cast(targets["task_id"], tf.int32)
        return {"loss": loss,
                "task_loss": tf.math.unsorted_segment_sum(weighted, task_id, num_tasks),
                "task_weight": tf.math.unsorted_segment_sum(targets["weight"], task_id,
                                                            num_tasks)}

    if xla == "full":
        step_fn = tf.function(step_fn, jit_compile=True, autograph=False)

    # No autograph: nothing here branches on tensors, and converting Keras' code costs seconds
    # of start-up per model.
    @tf.function(autograph=False)
    def train_step(iterator):
        features, targets = next(iterator)
        per_replica = strategy.run(step_fn, args=(features, targets))
        return {key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for key, value in per_replica.items()}

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


def fit(model, table, eval_sets, strategy, run_dir, loss_fn, *, trainer, numerics, execution,
        data, seed, callbacks=(), pad_id=0, target_task=0):
    """Trains `model` (built under `strategy.scope()`) and restores its best-dev-epoch weights.

    Args:
        model: a `MultiTaskClassifier` (not compiled: the loop owns the optimizer).
        table: the `batching.ExampleTable` of every task's training examples.
        eval_sets: one `EvalSet` per task (dev split); the target's is evaluated after every
            epoch (it selects the epoch), the others' only with `execution.eval_aux`.
        strategy: a tf.distribute strategy.
        run_dir: where checkpoints, TensorBoard logs and `best.weights.h5` go.
        loss_fn: per-example loss `(targets, logits) -> [n]` (training/losses.py); its `lam`
            variable, if any, is logged as `lambda`.
        trainer, numerics, execution, data: the run's resolved config sections (`data`: the
            task sampling options); seed: the run's seed (batch plans).
        callbacks: `keras.callbacks.Callback`s run after the suite's own, e.g. the method's
            `TeacherAnnealing` and a caller's.
    """
    layout = trainer.layout(table.num_tasks)
    length_multiple = XLA_LENGTH_MULTIPLE if numerics.xla == "full" else 1
    plans = batching.plan_epochs(table, layout, trainer.batch_size, seed, trainer.epochs,
                                 sampling=data.sampling, alpha=data.sampling_alpha,
                                 replicas=strategy.num_replicas_in_sync,
                                 length_multiple=length_multiple)
    steps_per_epoch = [len(p) for p in plans]
    total_steps = sum(steps_per_epoch)
    lengths = table.tokens.lengths
    pad_eff = batching.padding_efficiency(plans[0], lengths)
    # Workers of a multi-worker run must checkpoint at the same steps: count steps there.
    checkpoint_every = execution.checkpoint_every or (200 if execution.strategy == "multi_worker"
                                                      else 0)
    target = eval_sets[target_task]
    evaluated = eval_sets if execution.eval_aux else [target]
    task_names = [ev.name for ev in sorted(eval_sets, key=lambda ev: ev.task_index)]

    with strategy.scope():
        step_var = tf.Variable(0, trainable=False, dtype=tf.int64, name="global_step")
        heads = [v for head in model.heads for v in head.trainable_variables]
        optimizer = build_optimizer(model, trainer, numerics.precision, total_steps, heads)
        optimizer.build(model.trainable_variables)
    train_step = make_train_step(model, loss_fn, optimizer, strategy, numerics.xla)

    state = callbacks_lib.TrainingState()
    monitor = f"val_{target.name}_{trainer.selection}"
    early_stopping = (keras.callbacks.EarlyStopping(monitor=monitor, mode="max",
                                                    patience=trainer.early_stopping_patience)
                      if trainer.early_stopping_patience else None)
    with StopRequest() as stop:
        # Order matters: the NaN stop before the checkpoint (no diverged weights saved); best
        # weights and early stopping before the checkpoint (state.json records both).
        suite = [keras.callbacks.TerminateOnNaN(),
                 callbacks_lib.BestEpochWeights(state, monitor,
                                                os.path.join(run_dir, "best.weights.h5")),
                 *([early_stopping] if early_stopping else []),
                 callbacks_lib.ResumableCheckpoint(
                     callbacks_lib.Checkpoints(run_dir, model, optimizer, step_var), state, stop,
                     checkpoint_every, execution.checkpoint_seconds,
                     pause_hook=lambda step, stop: _test_pause(run_dir, step, stop)),
                 callbacks_lib.TensorBoardScalars(os.path.join(run_dir, "tb"),
                                                  [ev.name for ev in evaluated],
                                                  chief=strategy_is_chief(strategy)),
                 callbacks_lib.ProgressLog(target.name)]
        callback_list = keras.callbacks.CallbackList(
            [*suite, *callbacks], model=model, epochs=trainer.epochs, steps=None,
            steps_per_epoch=steps_per_epoch, total_steps=total_steps)
        model.stop_training = False
        callback_list.on_train_begin()   # restores a checkpoint, if any
        if early_stopping:   # its counters are not checkpointed: replay the recorded epochs
            for epoch, epoch_metrics in enumerate(state.history):
                early_stopping.on_epoch_end(epoch, callbacks_lib.epoch_logs(epoch_metrics))
        model.stop_training = state.stopped

        start = time.time()
        first_step = int(step_var.numpy())
        counts = {"tokens": 0, "steady_tokens": 0, "steady_s": 0.0, "warmup_s": 0.0, "dev_s": 0.0}

        def train_epoch(epoch, offset):
            remaining = plans[epoch][offset:]
            iterator = iter(distributed_dataset(strategy, table, remaining, layout, pad_id))
            for step in remaining:
                step_start = time.perf_counter()
                out = train_step(iterator)
                loss = float(out["loss"])
                step_seconds = time.perf_counter() - step_start
                step_var.assign_add(1)
                step_tokens = sum(int(lengths[s.index].sum()) for s in step)
                counts["tokens"] += step_tokens
                if int(step_var.numpy()) - first_step > WARMUP_STEPS:
                    counts["steady_tokens"] += step_tokens
                    counts["steady_s"] += step_seconds
                else:
                    counts["warmup_s"] += step_seconds
                yield _batch_logs(loss, out, optimizer, loss_fn, task_names, step_tokens)

        def end_epoch(epoch):
            eval_start = time.perf_counter()
            epoch_metrics = evaluate_dev(model, evaluated, pad_id)
            counts["dev_s"] += time.perf_counter() - eval_start
            state.history.append(epoch_metrics)
            return callbacks_lib.epoch_logs(epoch_metrics)

        run_epochs(model, callback_list, steps_per_epoch, first_step, train_epoch, end_epoch,
                   "try a lower --learning_rate. No metrics were written for this run.")

    elapsed = time.time() - start
    return FitResult(best_epoch=state.best_epoch, best_score=state.best_score,
                     history=state.history, total_steps=total_steps, wall_time_s=elapsed,
                     steps_per_second=(int(step_var.numpy()) - first_step) / max(elapsed, 1e-9),
                     tokens_per_second=counts["tokens"] / max(elapsed, 1e-9),
                     steady_tokens_per_second=counts["steady_tokens"] / max(counts["steady_s"],
                                                                            1e-9),
                     warmup_steps_s=counts["warmup_s"], dev_eval_s=counts["dev_s"],
                     padding_efficiency=pad_eff, epochs_trained=len(state.history),
                     dev_tasks=tuple(ev.name for ev in evaluated))


def run_epochs(model, callback_list, steps_per_epoch, first_step, train_epoch, end_epoch,
               diverged_hint):
    """The loop itself, shared by every training in the suite: epochs of batches from global step
    `first_step` (a resumed run starts mid-epoch), the callbacks around each.

    Args:
        model: its `stop_training` is honoured after every batch (the epoch still ends).
        callback_list: a `keras.callbacks.CallbackList`, `on_train_begin` already called.
        steps_per_epoch: list of each epoch's steps.
        train_epoch: `(epoch, offset) -> iterator` whose every `next` trains one step (batches
            `offset`, `offset + 1`, ... of the epoch) and returns its batch logs (with `loss`).
        end_epoch: `epoch -> epoch logs` (dev evaluation).
        diverged_hint: what to do, for the `TrainingDivergedError` after a NaN/inf loss
            (`TerminateOnNaN` in `callback_list` stops the run; its weights are not saved).
    """
    epoch_end = 0
    for epoch, steps in enumerate(steps_per_epoch):
        epoch_start, epoch_end = epoch_end, epoch_end + steps
        if model.stop_training:
            break
        if first_step >= epoch_end:
            continue  # finished before an interruption
        offset = max(first_step - epoch_start, 0)
        batches = train_epoch(epoch, offset)
        callback_list.on_epoch_begin(epoch)
        for batch in range(offset, steps):
            callback_list.on_train_batch_begin(batch)
            logs = next(batches)
            callback_list.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        if not math.isfinite(logs["loss"]):   # TerminateOnNaN stopped the run
            raise TrainingDivergedError(
                f"loss became {logs['loss']} at step {epoch_start + batch} (epoch {epoch + 1}); "
                f"{diverged_hint}")
        callback_list.on_epoch_end(epoch, end_epoch(epoch))
    callback_list.on_train_end()


def _batch_logs(loss, out, optimizer, loss_fn, task_names, tokens):
    """The `on_train_batch_end` logs (training/callbacks.py lists them)."""
    logs = {"loss": loss, "learning_rate": float(optimizer.learning_rate), "tokens": tokens}
    lam = getattr(loss_fn, "lam", None)
    if lam is not None:
        logs["lambda"] = float(lam.numpy())
    if len(task_names) > 1:
        task_loss, task_weight = out["task_loss"].numpy(), out["task_weight"].numpy()
        for name, total, weight in zip(task_names, task_loss, task_weight):
            if weight > 0:
                logs[f"loss_{name}"] = float(total / weight)
    return logs
