"""The one loss of every neural method: multi-task, with distillation targets (paper Eq. 2-3).

Each example's target is `λ·gold + (1−λ)·teacher`, and its loss comes from its own task's head
only; the step sums (weighted means of) these losses over the mixed-task minibatch. λ = 1 is plain
multi-task learning, so single-task, multi-task and distillation runs share this one loss and
differ only in λ (set at each batch by `methods/distill/annealing.py: TeacherAnnealing`).

Example:

    lam = tf.Variable(0.0, trainable=False)
    loss = MultiTaskLoss(heads, lam)
    per_example = loss(targets, model(features, training=True))   # [n]
"""

import keras
import tensorflow as tf


class MultiTaskLoss(keras.losses.Loss):
    """Per-example loss over mixed-task batches.

    Args:
        heads: the model's HeadSpecs, in task-id order.
        lam: a scalar variable holding λ (weight of the gold labels); None means λ = 1.
    `y_true` is a dict with "task_id" [n], "gold" [n, C_max] and "teacher" [n, C_max];
    `y_pred` is the list of per-head logits. Returns per-example losses [n] (reduction none).
    """

    def __init__(self, heads, lam=None, name="multi_task_loss"):
        super().__init__(name=name, reduction=None)
        self.heads = heads
        self.lam = lam

    def call(self, y_true, y_pred):
        task_id = tf.cast(y_true["task_id"], tf.int32)
        if self.lam is None:
            target = y_true["gold"]
        else:
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
