"""The training loop's own `keras.callbacks.Callback`s, and which of Keras' it uses instead.

`loop.fit` drives one `keras.callbacks.CallbackList`: the suite's callbacks below, Keras'
`TerminateOnNaN` and `EarlyStopping`, the method's (`TeacherAnnealing` for distillation) and any
the caller passes. Keras' own are used where they keep the suite's guarantees; where they do not,
the suite has its own:

| job | callback | why not Keras' own |
|---|---|---|
| stop on a NaN/inf loss | `keras.callbacks.TerminateOnNaN` | (Keras') |
| early stopping | `keras.callbacks.EarlyStopping` on `val_<target>_<selection>` | (Keras'; its counters are replayed from the recorded history on resume) |
| checkpoint + exact mid-epoch resume | `ResumableCheckpoint` | `BackupAndRestore` resumes at an epoch boundary (the epoch is redone), needs a compiled model's `optimizer`, and does not keep the dropout seed states |
| best-epoch weights | `BestEpochWeights` | `ModelCheckpoint(save_best_only=True)` forgets its best score on resume and does not restore the weights; `EarlyStopping(restore_best_weights=True)` keeps them in memory only |
| TensorBoard scalars | `TensorBoardScalars` | `keras.callbacks.TensorBoard` numbers batches from 0 in every `fit` call (a resumed run would restart its steps), logs epoch metrics at the epoch index and reads the learning rate from `model.optimizer` (None: the suite's model is not compiled) |
| progress with ETA | `ProgressLog` | `ProgbarLogger` draws a per-epoch bar, not log lines with the whole run's ETA |

The callbacks see the loop's `params`: `epochs`, `steps_per_epoch` (a list: epochs differ in
length), `total_steps`; a callback finds the global step of batch `b` of epoch `e` as
`sum(steps_per_epoch[:e]) + b` (`global_step`). Log keys (what any callback receives):

- `on_train_batch_end`: `loss` (the batch mean), `learning_rate`, `tokens` (real, unpadded tokens
  in the batch), `lambda` (distillation only), `loss_<task>` (multi-task runs: the mean loss of
  that task's examples in the batch, when it has some).
- `on_epoch_end`: `val_<task>_<metric>` for every evaluated task (the target always, auxiliary
  tasks with `--eval_aux`) and metric (`f1`, `macro_f1`, `accuracy`, `precision`, `recall`, ...).
"""

import json
import math
import os
import time

import keras
import tensorflow as tf
from absl import logging

from empathy_tf import console, io_utils
from empathy_tf.errors import ConfigError, RunInterrupted

LOG_EVERY = 20
DEV_SCALARS = ("f1", "macro_f1", "accuracy", "precision", "recall")
METRICS = (*DEV_SCALARS, "micro_f1")   # what eval/metrics.py computes, but the count `n`


def epoch_logs(epoch_metrics):
    """{task: metrics} -> the flat `val_<task>_<metric>` logs of `on_epoch_end`."""
    return {f"val_{task}_{key}": value for task, metrics in epoch_metrics.items()
            for key, value in metrics.items() if key in METRICS}


def global_step(params, epoch, batch):
    return sum(params["steps_per_epoch"][:epoch]) + batch


class TrainingState:
    """What the loop's callbacks share and `state.json` records: dev history, best epoch, step."""

    def __init__(self, history=(), best_epoch=-1, best_score=-math.inf, step=0, stopped=False,
                 curve=()):
        self.history = list(history)
        self.best_epoch = best_epoch
        self.best_score = best_score
        self.step = step
        self.stopped = stopped   # stopped before its last epoch (early stopping): nothing to resume
        # Per-step records a loop keeps for its result across a resume (masked-LM pre-training:
        # loss, accuracy, selected and selectable wordpieces); `fit` keeps none.
        self.curve = list(curve)

    def to_dict(self):
        return {"history": self.history, "best_epoch": self.best_epoch,
                "best_score": self.best_score, "step": self.step, "stopped": self.stopped,
                "curve": self.curve}


class Checkpoints:
    """Model + optimizer + step + dropout seed states in `run_dir/checkpoints`, state.json beside.

    Args:
        run_dir: the run folder (every worker of a multi-worker run has its own).
        model, optimizer: what is saved and restored.
        step_var: the global step, an int64 variable.
    """

    def __init__(self, run_dir, model, optimizer, step_var):
        # Dropout seed generators are state too: without them a resumed run redraws the masks
        # of its first steps. Keras keeps them among the non-trainable variables, in model order.
        seeds = [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var,
                                              seeds=seeds)
        self.directory = os.path.join(run_dir, "checkpoints")
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=1)
        self.state_path = os.path.join(self.directory, "state.json")
        self.step_var = step_var
        self.run_dir = run_dir
        self.last_save = time.time()

    def _corrupt(self, path, error):
        return ConfigError(
            f"{path}: cannot be read ({type(error).__name__}: {error}); the checkpoint of "
            f"{self.run_dir} is damaged. Rerun with --overwrite to move the run aside (it is kept, "
            "renamed) and start it again.")

    def restore(self, total_steps):
        """The saved `TrainingState`, the model and optimizer restored; a fresh one if none.

        The checkpoint's step is read before anything is restored: when it disagrees with
        state.json (a process died between the two writes) nothing is restored, so the run
        starts over from the freshly built weights and a fresh optimizer.
        """
        latest = self.manager.latest_checkpoint
        if not (latest and os.path.exists(self.state_path)):
            return TrainingState()
        try:
            saved = io_utils.read_json(self.state_path)
            saved_step = saved["step"]
        except (ValueError, KeyError, TypeError, OSError) as error:
            raise self._corrupt(self.state_path, error) from error
        try:
            checkpoint_step = int(tf.train.load_variable(latest, "step/.ATTRIBUTES/VARIABLE_VALUE"))
        except Exception as error:  # noqa: BLE001 (TensorFlow raises many kinds on bad files)
            raise self._corrupt(latest, error) from error
        if saved_step != checkpoint_step:
            logging.warning("Checkpoint (step %d) and state.json (step %s) disagree in %s; "
                            "starting over from step 0", checkpoint_step, saved_step, self.run_dir)
            return TrainingState()
        try:
            self.checkpoint.restore(latest).expect_partial()
        except Exception as error:  # noqa: BLE001
            raise self._corrupt(latest, error) from error
        logging.info("Resuming %s at step %d of %d", self.run_dir, saved_step, total_steps)
        return TrainingState(**saved)

    def save(self, state):
        self.last_save = time.time()
        state.step = int(self.step_var.numpy())
        self.manager.save(checkpoint_number=state.step)
        io_utils.atomic_write_json(self.state_path, state.to_dict())


class ResumableCheckpoint(keras.callbacks.Callback):
    """Restores the run at `on_train_begin`; checkpoints every `every` steps (or, when it is 0,
    at the first step boundary after `seconds`), at each epoch end but the last, and when a
    SIGTERM/SIGINT (`stop`, a `loop.StopRequest`) asks, at the next step boundary, then raises
    `RunInterrupted`.

    A rerun resumes at the exact step: batch plans are a pure function of (seed, epoch), and the
    checkpoint holds the model, the optimizer, the step and the dropout seed states.
    """

    def __init__(self, checkpoints, state, stop, every=0, seconds=120, pause_hook=None):
        super().__init__()
        self.checkpoints = checkpoints
        self.state = state
        self.stop = stop
        self.every = every
        self.seconds = seconds
        self.pause_hook = pause_hook
        self._epoch = 0

    def on_train_begin(self, logs=None):
        restored = self.checkpoints.restore(self.params["total_steps"])
        self.state.__dict__.update(restored.__dict__)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = global_step(self.params, self._epoch, batch)
        if self.pause_hook:
            self.pause_hook(step, self.stop)
        if self.stop.requested is not None:
            self.checkpoints.save(self.state)
            raise RunInterrupted(
                f"stopped by signal {self.stop.requested} at step {step}; checkpoint saved in "
                f"{self.checkpoints.run_dir}; rerun the same command to resume")

    def on_train_batch_end(self, batch, logs=None):
        if self.model.stop_training:   # a NaN loss (nothing worth saving) or a user's stop
            return
        # A checkpoint (model + AdamW state, ~0.8 s for MiniLM) every 200 short steps cost 4% of
        # a run; by default it is written every couple of minutes instead.
        step = global_step(self.params, self._epoch, batch + 1)
        due = (step % self.every == 0 if self.every
               else time.time() - self.checkpoints.last_save >= self.seconds)
        if due and batch + 1 < self.params["steps_per_epoch"][self._epoch]:
            self.checkpoints.save(self.state)

    def on_epoch_end(self, epoch, logs=None):
        # After the last epoch nothing is left to resume (a run killed before it writes
        # metrics.json redoes the tail of that epoch from the last checkpoint: the same steps).
        if self.model.stop_training:
            self.state.stopped = True
        if epoch < self.params["epochs"] - 1:
            self.checkpoints.save(self.state)


class BestEpochWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best `monitor` (higher is better) in `path`, and
    puts them back into the model at the end of training. Ties keep the earlier epoch."""

    def __init__(self, state, monitor, path):
        super().__init__()
        self.state = state
        self.monitor = monitor
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        score = logs[self.monitor]
        if score > self.state.best_score:
            self.state.best_score, self.state.best_epoch = float(score), epoch
            tmp = os.path.join(os.path.dirname(self.path), ".tmp-best.weights.h5")
            self.model.save_weights(tmp)
            os.replace(tmp, self.path)

    def on_train_end(self, logs=None):
        # The last trained epoch's weights are in the model already.
        if os.path.exists(self.path) and self.state.best_epoch < len(self.state.history) - 1:
            self.model.load_weights(self.path)


class _Window:
    """Batch logs accumulated between two log points: their means, the last learning rate and λ,
    real tokens per second of batch time (dev evaluations between epochs do not count)."""

    LAST = ("learning_rate", "lambda")

    def __init__(self):
        self.sums, self.counts, self.last, self.tokens, self.seconds = {}, {}, {}, 0, 0.0

    def add(self, logs, seconds=0.0):
        self.seconds += seconds
        for key, value in logs.items():
            if key == "tokens":
                self.tokens += value
            elif key in self.LAST:
                self.last[key] = value
            else:
                self.sums[key] = self.sums.get(key, 0.0) + value
                self.counts[key] = self.counts.get(key, 0) + 1

    def means(self):
        return {key: total / self.counts[key] for key, total in self.sums.items()}

    def tokens_per_second(self):
        return self.tokens / max(self.seconds, 1e-9)


class TensorBoardScalars(keras.callbacks.Callback):
    """Scalars at the global step, every `every` steps: `<prefix>/loss` (mean over the window),
    `<prefix>/learning_rate`, `<prefix>/lambda` (distillation only), `<prefix>/loss/<task>`
    (multi-task), `<prefix>/tokens_per_second` (real tokens), `<prefix>/<key>` for any other
    batch log (say `accuracy`); at each epoch end `dev/<task>/<metric>` of `dev_tasks`."""

    def __init__(self, log_dir, dev_tasks=(), chief=True, every=LOG_EVERY, prefix="train"):
        super().__init__()
        self.log_dir = log_dir
        self.chief = chief
        self.every = every
        self.prefix = prefix
        self.dev_tags = {f"val_{task}_{key}": f"dev/{task}/{key}"
                         for task in dev_tasks for key in DEV_SCALARS}
        self.writer = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.writer = (tf.summary.create_file_writer(self.log_dir) if self.chief
                       else tf.summary.create_noop_writer())
        self._window = _Window()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._window.add(logs, time.perf_counter() - self._batch_start)
        step = global_step(self.params, self._epoch, batch + 1)
        if step % self.every and step != self.params["total_steps"]:
            return
        window, self._window = self._window, _Window()
        with self.writer.as_default(step=step):
            for key, value in {**window.means(), **window.last}.items():
                tag = f"loss/{key[len('loss_'):]}" if key.startswith("loss_") else key
                tf.summary.scalar(f"{self.prefix}/{tag}", value)
            if window.tokens:
                tf.summary.scalar(f"{self.prefix}/tokens_per_second", window.tokens_per_second())

    def on_epoch_end(self, epoch, logs=None):
        step = global_step(self.params, epoch + 1, 0)
        with self.writer.as_default(step=step):
            for key, tag in self.dev_tags.items():
                if key in (logs or {}):
                    tf.summary.scalar(tag, logs[key])
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


class ProgressLog(keras.callbacks.Callback):
    """Progress every `every` steps (loss, λ, other batch metrics, steps/s, ETA of the whole run)
    and, given a `target` task, a log line per epoch with its dev metrics.

    The step progress is a line rewritten in place when stderr is a terminal (`console.status`)
    and a debug log line (`--verbosity=1`): a log file gets one line per epoch, not per 20 steps.

    `label` starts each line (say "MLM ").
    """

    QUIET = ("learning_rate", "lambda", "tokens")

    def __init__(self, target=None, every=LOG_EVERY, label=""):
        super().__init__()
        self.target = target
        self.every = every
        self.label = label
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self._start, self._first_step, self._window = time.time(), None, _Window()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self._first_step is None:
            self._first_step = global_step(self.params, self._epoch, batch)

    def on_train_batch_end(self, batch, logs=None):
        self._window.add({k: v for k, v in logs.items()
                          if k not in self.QUIET and not k.startswith("loss_")})
        step, total = global_step(self.params, self._epoch, batch + 1), self.params["total_steps"]
        if step % self.every and step != total:
            return
        means, self._window = self._window.means(), _Window()
        rate = (step - self._first_step) / max(time.time() - self._start, 1e-9)
        lam = f"  λ {logs['lambda']:.3f}" if "lambda" in logs else ""
        others = "".join(f"  {key} {value:.3f}" for key, value in means.items() if key != "loss")
        line = (f"{self.label}step {step}/{total}  epoch {self._epoch + 1}  loss "
                f"{means['loss']:.4f}{lam}{others}  {rate:.2f} steps/s  ETA "
                f"{(total - step) / max(rate, 1e-9):.0f}s")
        console.status(line)
        logging.debug("%s", line)

    def on_epoch_end(self, epoch, logs=None):
        if self.target is None:
            return
        values = {key: round(logs[f"val_{self.target}_{key}"], 4) for key in METRICS
                  if f"val_{self.target}_{key}" in logs}
        logging.info("epoch %d dev %s: %s", epoch + 1, self.target, json.dumps(values))
