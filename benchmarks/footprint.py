"""What a fresh training process costs besides its steps: peak memory and XLA compilations.

Each measurement is a fresh Python process (PYTHONPATH = the version's source folder) that builds a
MiniLM-size `BertEncoder` (6 layers, hidden 384, 12 heads, feed-forward 1,536, random weights) with
a linear head and trains AdamW steps (dropout 0.1, the kernels `hardware.resolve_kernel` picks
for the precision; Keras' AdamW, not the suite's XLA-compiled update) on [batch, length] batches,
every row full:

- memory: `--steps` steps at one `--length`; the process's peak RSS (`resource.getrusage`;
  TensorFlow's allocations are invisible to tracemalloc). Not a timing: it moves by a few MB
  between runs, not with the machine's load, so it can be measured on a shared machine.
- compiles: 20 steps at lengths drawn (seed 0) from [`--min_length`, `--max_length`], as a
  cell's first 20 steps see; the XLA compilations (modules XLA dumps, by kernel) and the seconds
  (noisy on a shared machine): without the persistent XLA cache, with an empty one (a table's first
  cell) and with the one that run filled (every later cell; `hardware.enable_persistent_xla_cache`).

    git worktree add /tmp/empathy_base <commit>        # the version to compare against
    python -m benchmarks.footprint --baseline_src=/tmp/empathy_base
    python -m benchmarks.footprint --only=memory --precision=mixed_bfloat16 --length=256

Lines (ratios: baseline over this checkout; above 1, this one is smaller):

    memory: src=<path> peak_rss_mb=... precision=float32 batch=16 length=256 steps=3
    memory: ratio=...
    compiles: src=<path> cache=off|empty|filled compiles=... by_kernel={...} warmup_s=...
"""

import collections
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags

flags.DEFINE_string("baseline_src", None, "Source folder of the version to compare against.")
flags.DEFINE_list("only", None, "Measures: memory, compiles (default both).")
flags.DEFINE_string("precision", "float32", "float32 or mixed_bfloat16.")
flags.DEFINE_integer("batch_size", 16, "Rows per step.")
flags.DEFINE_integer("length", 256, "memory: tokens per row.")
flags.DEFINE_integer("steps", 3, "memory: training steps.")
flags.DEFINE_integer("min_length", 32, "compiles: shortest row.")
flags.DEFINE_integer("max_length", 256, "compiles: longest row (the suite's max_seq_length).")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURES = ("memory", "compiles")
WARMUP_STEPS = 20

# Runs inside the measured process: only the public encoder API, which both versions share.
_CHILD = r"""
import os, resource, sys, time
start = time.time()
import numpy as np, keras, tensorflow as tf
from empathy_tf import hardware
from empathy_tf.models import bert
precision, batch = sys.argv[1], int(sys.argv[2])
lengths = [int(n) for n in sys.argv[3].split(",")]
keras.mixed_precision.set_global_policy(precision)
kernels = {k: hardware.resolve_kernel(k, "auto", precision)
           for k in ("dropout_impl", "gelu_impl", "bias_grad_impl")}
encoder = bert.BertEncoder(vocabulary_size=30522, num_layers=6, num_heads=12, hidden_dim=384,
                           intermediate_dim=1536, max_sequence_length=max(512, max(lengths)),
                           dropout=0.1, seed=0, **kernels)
encoder.build()
head = keras.layers.Dense(2, dtype="float32")
head.build((None, 384))
variables = encoder.trainable_variables + head.trainable_variables
optimizer = keras.optimizers.AdamW(5e-5)          # its update is XLA-compiled (jit_compile)
optimizer.build(variables)
rng = np.random.default_rng(0)

@tf.function(reduce_retracing=True)
def step(inputs, labels):
    with tf.GradientTape() as tape:
        logits = head(encoder(inputs, training=True))
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

built = time.time()
for length in lengths:
    inputs = {"token_ids": tf.constant(rng.integers(1000, 30000, [batch, length]), tf.int32),
              "padding_mask": tf.ones([batch, length], tf.bool)}
    step(inputs, tf.constant(rng.integers(0, 2, [batch]))).numpy()
print("STEPS_S", time.time() - built)
print("PEAK_RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def run_child(src, lengths, env=()):
    """{'STEPS_S': s, 'PEAK_RSS_MB': MB} of a fresh process training with the source folder."""
    base = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}   # the run's own cache
    env = {**base, "PYTHONPATH": src, "TF_CPP_MIN_LOG_LEVEL": "2", **dict(env)}
    args = [FLAGS.precision, str(FLAGS.batch_size), ",".join(map(str, lengths))]
    out = subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, cwd=src,
                         capture_output=True, text=True)
    values = dict(l.split() for l in out.stdout.splitlines() if l.startswith(("STEPS_S", "PEAK")))
    if out.returncode or len(values) < 2:
        raise RuntimeError(f"the measured process ({src}) failed:\n{out.stderr[-3000:]}")
    return {k: float(v) for k, v in values.items()}


def compiled_kernels(dump_dir):
    """{kernel name: count} of the XLA modules dumped in `dump_dir` (one per compilation)."""
    names = collections.Counter()
    for name in os.listdir(dump_dir) if os.path.isdir(dump_dir) else ():
        match = re.match(r"module_\d+\.(.+)\.before_optimizations\.txt$", name)
        if match:
            # a_inference__keep_scale_mask_1841__XlaMustCompile_...: the traced function's name.
            kernel = re.sub(r"^a_inference_+|__XlaMustCompile.*$", "", match.group(1))
            names[re.sub(r"_\d+$", "", kernel) or match.group(1)] += 1
    return dict(names)


def memory(sources):
    peaks = {}
    for src in sources:
        peaks[src] = run_child(src, [FLAGS.length] * FLAGS.steps)["PEAK_RSS_MB"]
        print(f"memory: src={src} peak_rss_mb={peaks[src]:.0f} precision={FLAGS.precision} "
              f"batch={FLAGS.batch_size} length={FLAGS.length} steps={FLAGS.steps}", flush=True)
    if len(sources) > 1:
        print(f"memory: ratio={peaks[sources[1]] / peaks[sources[0]]:.3f}")


def compiles(sources):
    lengths = np.random.default_rng(0).integers(FLAGS.min_length, FLAGS.max_length + 1,
                                                WARMUP_STEPS)
    with tempfile.TemporaryDirectory() as scratch:
        cache = os.path.join(scratch, "cache")
        runs = [(src, "off") for src in sources[1:]] + [
            (sources[0], "off"), (sources[0], "empty"), (sources[0], "filled")]
        for i, (src, state) in enumerate(runs):
            dump = os.path.join(scratch, f"dump{i}")
            env = {"XLA_FLAGS": f"--xla_dump_to={dump}"}
            if state != "off":
                env["TF_XLA_FLAGS"] = f"--tf_xla_persistent_cache_directory={cache}"
            seconds = run_child(src, lengths.tolist(), env)["STEPS_S"]
            kernels = compiled_kernels(dump)
            print(f"compiles: src={src} cache={state} compiles={sum(kernels.values())} "
                  f"by_kernel={kernels} warmup_s={seconds:.1f} precision={FLAGS.precision} "
                  f"lengths={FLAGS.min_length}-{FLAGS.max_length}", flush=True)


def main(argv):
    del argv
    measures = FLAGS.only or MEASURES
    if set(measures) - set(MEASURES):
        raise app.UsageError(f"--only: expected some of {MEASURES}, got {measures}")
    sources = [ROOT] + ([os.path.abspath(FLAGS.baseline_src)] if FLAGS.baseline_src else [])
    if "memory" in measures:
        memory(sources)
    if "compiles" in measures:
        compiles(sources)


if __name__ == "__main__":
    app.run(main)
