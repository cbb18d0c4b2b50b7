"""Teacher annealing (Clark et al. 2019): λ, the weight of gold labels, rises 0 → 1 over training.

Example:

    lam = tf.Variable(0.0, trainable=False)
    schedule = LambdaAnnealing(lam)
    schedule.on_train_begin(total_steps=1000)             # λ: 0 at step 0 → 1 at the last step
    schedule.on_step(500)                                  # the training loop calls this each step
"""

from empathy_tf.errors import ConfigError

ANNEALING = ("linear", "none", "constant")


def lambda_at(step, total_steps, annealing="linear", constant=0.5):
    """λ for a global step: linear 0 → 1 over training, 0 (pure distillation) or a constant."""
    if annealing == "linear":
        return min(1.0, step / max(total_steps - 1, 1))
    if annealing == "none":
        return 0.0
    if annealing == "constant":
        return float(constant)
    raise ConfigError(f"annealing={annealing!r}; expected one of {ANNEALING}")


class LambdaAnnealing:
    """Sets λ before every training step from the global step (so a resumed run continues it)."""

    def __init__(self, lam, annealing="linear", constant=0.5):
        self.lam = lam
        self.total_steps = 1
        self.annealing = annealing
        self.constant = constant
        lambda_at(0, 1, annealing, constant)  # validate eagerly

    def on_train_begin(self, total_steps):
        self.total_steps = total_steps

    def on_step(self, step):
        self.lam.assign(lambda_at(step, self.total_steps, self.annealing, self.constant))
