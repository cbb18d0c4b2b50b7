"""Teacher annealing (Clark et al. 2019): λ, the weight of gold labels, rises 0 → 1 over training.

`TeacherAnnealing` is a `keras.callbacks.Callback`, and the only place λ is computed: before every
training batch it sets the loss's λ variable from the global step, which it derives from the epoch
and the batch index within it (`params["steps_per_epoch"]`, set by the training loop), so a resumed
run continues the schedule where the interrupted one was.

Example:

    lam = tf.Variable(0.0, trainable=False)
    annealing = TeacherAnnealing(lam)                      # λ: 0 at step 0 → 1 at the last step
    loss = MultiTaskLoss(heads, lam)
    loop.fit(..., loss_fn=loss, callbacks=[annealing])     # or any loop driving a CallbackList
"""

import keras

from empathy_tf.config import ANNEALING
from empathy_tf.errors import ConfigError


def lambda_at(step, total_steps, annealing="linear", constant=0.5):
    """λ for a global step: linear 0 → 1 over training, 0 (pure distillation) or a constant."""
    if annealing == "linear":
        return min(1.0, step / max(total_steps - 1, 1))
    if annealing == "none":
        return 0.0
    if annealing == "constant":
        return float(constant)
    raise ConfigError(f"annealing={annealing!r}; expected one of {ANNEALING}")


class TeacherAnnealing(keras.callbacks.Callback):
    """Sets `lam` (a scalar variable the loss reads) before every training batch.

    Args:
        lam: the `tf.Variable` holding λ.
        annealing: one of `config.ANNEALING`.
        constant: λ of `annealing="constant"`.
    Reads `params["steps_per_epoch"]` (a list: steps of each epoch); without it (a plain Keras
    `fit`) `params["steps"]` per epoch.
    """

    def __init__(self, lam, annealing="linear", constant=0.5):
        super().__init__()
        self.lam = lam
        self.annealing = annealing
        self.constant = constant
        self._epoch_start = 0
        lambda_at(0, 1, annealing, constant)  # validate eagerly

    def _steps_per_epoch(self):
        per_epoch = self.params.get("steps_per_epoch")
        if per_epoch is None:
            per_epoch = [self.params["steps"]] * self.params["epochs"]
        return list(per_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = sum(self._steps_per_epoch()[:epoch])

    def on_train_batch_begin(self, batch, logs=None):
        total = sum(self._steps_per_epoch())
        self.lam.assign(lambda_at(self._epoch_start + batch, total, self.annealing, self.constant))
