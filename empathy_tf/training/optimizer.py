"""The optimizer of a run: AdamW with BERT's warm-up + linear decay, or plain Adam (GloVe)."""

import keras
import tensorflow as tf

from empathy_tf.config import OPTIMIZERS
from empathy_tf.errors import ConfigError


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


def build_optimizer(model, trainer, precision, total_steps, exclude_from_decay=()):
    """The optimizer for `trainer` (TrainerConfig) over `total_steps`.

    `exclude_from_decay`: variables never decayed (the task heads: a head that sees no example of
    its task in a step must not move in that step). Biases and LayerNorm are never decayed either.
    """
    if trainer.optimizer == "adam":
        optimizer = keras.optimizers.Adam(trainer.learning_rate)
    elif trainer.optimizer == "adamw":
        schedule = WarmupLinearDecay(trainer.learning_rate, total_steps,
                                     round(trainer.warmup_fraction * total_steps))
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=trainer.weight_decay, epsilon=1e-6)
        optimizer.exclude_from_weight_decay(var_list=list(exclude_from_decay),
                                            var_names=["bias", "gamma", "beta"])
    else:
        raise ConfigError(f"optimizer={trainer.optimizer!r}; expected one of {OPTIMIZERS}")
    if precision == "mixed_float16":  # float16 gradients underflow without loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
