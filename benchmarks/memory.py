"""Peak memory of BERT training steps: this checkout against another version's, fresh processes.

Each measurement is a fresh Python process (PYTHONPATH = the version's source folder) that builds a
MiniLM-size `BertEncoder` (6 layers, hidden 384, 12 heads, feed-forward 1,536, random weights) with
a linear head, trains `--steps` AdamW steps on fixed [batch, length] batches (dropout 0.1, the
kernels `hardware.resolve_kernel` picks for the precision), and reports its own peak RSS
(`resource.getrusage`, the process's high-water mark; TensorFlow's allocations are invisible to
tracemalloc). Peak RSS is not a timing: it moves by a few MB between runs, not by the machine's
load, so it can be measured on a shared machine.

    git worktree add /tmp/empathy_base HEAD~1          # the version to compare against
    python -m benchmarks.memory --baseline_src=/tmp/empathy_base
    python -m benchmarks.memory --precision=mixed_bfloat16 --length=256 --steps=3

One line per version and a ratio (baseline / this checkout: above 1, this one is smaller):

    memory: src=<path> peak_rss_mb=... precision=float32 batch=16 length=256
    memory: ratio=... (baseline peak / this peak)
"""

import os
import subprocess
import sys

from absl import app, flags

flags.DEFINE_string("baseline_src", None, "Source folder of the version to compare against.")
flags.DEFINE_string("precision", "float32", "float32 or mixed_bfloat16.")
flags.DEFINE_integer("batch_size", 16, "Rows per step.")
flags.DEFINE_integer("length", 256, "Tokens per row (every row full).")
flags.DEFINE_integer("steps", 3, "Training steps.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs inside the measured process: only the public encoder API, which both versions share.
_CHILD = r"""
import os, resource, sys
import numpy as np, keras, tensorflow as tf
from empathy_tf import hardware
from empathy_tf.models import bert
precision, batch, length, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
keras.mixed_precision.set_global_policy(precision)
kernels = {k: hardware.resolve_kernel(k, "auto", precision)
           for k in ("dropout_impl", "gelu_impl", "bias_grad_impl")}
encoder = bert.BertEncoder(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384,
                           intermediate_dim=1536, dropout=0.1, seed=0, **kernels)
encoder.build()
head = keras.layers.Dense(2, dtype="float32")
head.build((None, 384))
variables = encoder.trainable_variables + head.trainable_variables
optimizer = keras.optimizers.AdamW(5e-5)
optimizer.build(variables)
rng = np.random.default_rng(0)
inputs = {"token_ids": tf.constant(rng.integers(1000, 30000, [batch, length]), tf.int32),
          "padding_mask": tf.ones([batch, length], tf.bool)}
labels = tf.constant(rng.integers(0, 2, [batch]))

@tf.function
def step():
    with tf.GradientTape() as tape:
        logits = head(encoder(inputs, training=True))
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

for _ in range(steps):
    step().numpy()
print("PEAK_RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC") == "true":    # the allocator's own high-water mark
    print("PEAK_TENSOR_MB", tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20)
"""


def peak_rss_mb(src):
    """Peak RSS (MB) of a fresh process training with the source folder `src`."""
    env = {**os.environ, "PYTHONPATH": src, "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = [FLAGS.precision, FLAGS.batch_size, FLAGS.length, FLAGS.steps]
    out = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], env=env, cwd=src,
                         capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("PEAK_RSS_MB")]
    if out.returncode or not lines:
        raise RuntimeError(f"the measured process ({src}) failed:\n{out.stderr[-3000:]}")
    return float(lines[-1].split()[1])


def main(argv):
    del argv
    peaks = {}
    for src in [ROOT] + ([os.path.abspath(FLAGS.baseline_src)] if FLAGS.baseline_src else []):
        peaks[src] = peak_rss_mb(src)
        print(f"memory: src={src} peak_rss_mb={peaks[src]:.0f} precision={FLAGS.precision} "
              f"batch={FLAGS.batch_size} length={FLAGS.length} steps={FLAGS.steps}", flush=True)
    if FLAGS.baseline_src:
        ratio = peaks[os.path.abspath(FLAGS.baseline_src)] / peaks[ROOT]
        print(f"memory: ratio={ratio:.3f} (baseline peak / this peak)")


if __name__ == "__main__":
    app.run(main)
