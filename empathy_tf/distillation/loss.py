"""The multi-task distillation loss and the λ annealing callback (paper Eq. 2-3).

Each example's target is `λ·gold + (1−λ)·teacher`, and its loss comes from its own task's head
only. λ = 1 is plain multi-task learning (MT), so MT and KD share this loss and differ only in λ.

Example:

    lam = keras.Variable(0.0, trainable=False)
    loss = DistillationLoss(heads, lam)
    per_example = loss(targets, model(features, training=True))
    callback = LambdaAnnealing(lam, total_steps=1000)  # λ: 0 at step 0 → 1 at the last step
"""

import keras
import tensorflow as tf

from empathy_tf.errors import ConfigError

ANNEALING = ("linear", "none", "constant", "gold")


class DistillationLoss(keras.losses.Loss):
    """Per-example loss over mixed-task batches.

    Args:
        heads: the model's HeadSpecs, in task-id order.
        lam: a scalar variable holding λ (weight of the gold labels).
    `y_true` is a dict with "task_id" [B], "gold" [B, C_max] and "teacher" [B, C_max];
    `y_pred` is the list of per-head logits. Returns per-example losses [B] (reduction none).
    """

    def __init__(self, heads, lam, name="distillation_loss"):
        super().__init__(name=name, reduction=None)
        self.heads = heads
        self.lam = lam

    def call(self, y_true, y_pred):
        task_id = tf.cast(y_true["task_id"], tf.int32)
        lam = tf.cast(tf.convert_to_tensor(self.lam), tf.float32)
        target = lam * y_true["gold"] + (1.0 - lam) * y_true["teacher"]
        total = tf.zeros_like(target[:, 0])
        for t, (head, logits) in enumerate(zip(self.heads, y_pred)):
            logits = tf.cast(logits, tf.float32)
            soft = target[:, : head.num_classes]
            if head.multi_label:
                loss = tf.reduce_mean(
                    tf.nn.sigmoid_cross_entropy_with_logits(labels=soft, logits=logits), axis=-1)
            else:
                loss = -tf.reduce_sum(soft * tf.nn.log_softmax(logits), axis=-1)
            # tf.where, not multiplication: other tasks' heads get exactly zero gradient.
            total += tf.where(tf.equal(task_id, t), loss, tf.zeros_like(loss))
        return total


def lambda_at(step, total_steps, annealing="linear", constant=0.5):
    """λ for a global step: linear 0 → 1 over training, 0 (pure distillation), constant or 1 (gold)."""
    if annealing == "linear":
        return min(1.0, step / max(total_steps - 1, 1))
    if annealing == "none":
        return 0.0
    if annealing == "constant":
        return float(constant)
    if annealing == "gold":
        return 1.0
    raise ConfigError(f"annealing={annealing!r}; expected one of {ANNEALING}")


class LambdaAnnealing(keras.callbacks.Callback):
    """Sets λ before every training step; `batch` is the global step (the trainer passes it so)."""

    def __init__(self, lam, total_steps, annealing="linear", constant=0.5):
        super().__init__()
        self.lam = lam
        self.total_steps = total_steps
        self.annealing = annealing
        self.constant = constant
        lambda_at(0, total_steps, annealing, constant)  # validate eagerly

    def on_train_batch_begin(self, batch, logs=None):
        self.lam.assign(lambda_at(batch, self.total_steps, self.annealing, self.constant))
