"""How far TensorFlow's bfloat16 bias gradients are from float32-summed ones, on real batches.

Builds the KD student of `benchmarks/throughput.py` at `mixed_bfloat16`, takes `--batches` batches of
its training mix, and computes the gradients twice on each, with the same weights and no dropout:
with TensorFlow's BiasAddGrad (`--bias_grad_impl=keras`) and with `empathy_tf.bias` (float32 sums,
one rounding). Only bias gradients can differ; the script checks that the others are identical and
prints, per bias, the largest difference relative to the largest entry of the float32-summed gradient.

    python -m benchmarks.bias_gradients --data_dir=../shared/data   # ~1 min
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks.student import build_student

flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"), "Data folder.")
flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder.")
flags.DEFINE_string("encoder", "minilm", "Encoder spec.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("batches", 4, "Batches to compare on.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from empathy_tf import bias, runner, training
    from empathy_tf.config import ExperimentConfig
    from empathy_tf.data import pipeline
    from empathy_tf.distillation.loss import DistillationLoss

    config = ExperimentConfig(name="bias", method="kd", aux_tasks=("sst2", "emotion"),
                              encoder=FLAGS.encoder, aux_cap=2000, precision="mixed_bfloat16")
    ctx = runner.RunContext(FLAGS.data_dir, "/tmp/empathy_tf_bench", FLAGS.tfds_dir)
    _, _, heads, table, model = build_student(config, ctx, np.random.default_rng(0))
    plan = pipeline.plan_epochs(table, FLAGS.batch_size, 0, 1)[0][: FLAGS.batches]
    batches = list(training.distributed_dataset(tf.distribute.get_strategy(), table, plan))
    loss_fn = DistillationLoss(heads, tf.Variable(0.5))

    def all_gradients():
        @tf.function(reduce_retracing=True)  # traced afresh per kernel: the layers' calls differ
        def gradients(features, targets):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(loss_fn(targets, model(features, training=False)) * targets["weight"])
            return tape.gradient(loss, model.trainable_variables)
        return [[None if g is None else tf.convert_to_tensor(g).numpy().astype(np.float64)
                 for g in gradients(*batch)] for batch in batches]

    bias.use_keras_bias_grad(model)
    theirs = all_gradients()
    bias.use_float32_bias_grad(model)
    ours = all_gradients()
    worst = {}
    for variable_index, variable in enumerate(model.trainable_variables):
        for a, b in zip(theirs, ours):
            a, b = a[variable_index], b[variable_index]
            if a is None or not np.abs(b).max():
                continue  # no example of that head in the batch
            difference = np.abs(a - b).max()
            if "bias" in variable.path:
                worst[variable.path] = max(worst.get(variable.path, 0.0), difference / np.abs(b).max())
            elif difference:
                raise AssertionError(f"{variable.path}: a non-bias gradient changed by {difference}")
    print(f"largest |keras - float32| / largest |float32| over {len(batches)} batches of {FLAGS.batch_size}:")
    for path, relative in worst.items():
        print(f"  {path:80s} {relative:8.2%}")


if __name__ == "__main__":
    app.run(main)
