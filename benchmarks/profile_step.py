"""Where a KD student training step spends its time, by TensorFlow op (TensorFlow profiler).

Builds the same student as `benchmarks/throughput.py` (NewsEmp + capped SST-2 + CARER, random
teacher targets), runs two passes over `--steps` batches (the first compiles what XLA compiles per
shape), times the third, profiles the fourth and prints kernel time per op type and per op (layer
numbers folded together), in ms per step. Kernel times are summed over TensorFlow's two inter-op
threads, so they add up to more than the step's wall time; compare shares, not sums.

    python -m benchmarks.profile_step --data_dir=../shared/data                       # ~1 min
    python -m benchmarks.profile_step --data_dir=../shared/data --gelu_impl=keras     # A/B
"""

import collections
import glob
import json
import os
import re
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks.student import build_student

flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"), "Data folder.")
flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder.")
flags.DEFINE_string("encoder", "minilm", "Encoder spec.")
flags.DEFINE_string("precision", "auto", "auto, float32 or mixed_bfloat16.")
flags.DEFINE_integer("batch_size", 16, "Batch size (kd_sst_emonet's).")
flags.DEFINE_integer("steps", 40, "Steps per pass.")
flags.DEFINE_integer("aux_examples", 2000, "Examples per auxiliary task in the student's mix.")
flags.DEFINE_string("xla", "auto", "XLA mode.")
flags.DEFINE_string("dropout_impl", "hash", "hash or keras.")
flags.DEFINE_string("gelu_impl", "fused", "fused or keras.")
flags.DEFINE_integer("top", 30, "Ops to list.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS

# Executor bookkeeping events, not kernels.
_WRAPPERS = ("ExecutorState", "ThunkExecutor", "CpuExecutable", "BlockUntilReady")


def kernel_times(trace_dir, steps):
    """{(op type, op name without layer numbers): ms per step} from the host CPU plane."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # ships with TensorFlow
    paths = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))
    if not paths:
        raise FileNotFoundError(f"no *.xplane.pb written under {trace_dir}")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if name.startswith(_WRAPPERS):
                    # XLA executables (hash-dropout masks, fused GELU, optimizer update): one row.
                    if name.startswith("CpuExecutable::Execute"):
                        times[("XLA executable", "all")] += event.duration_ps / 1e9 / steps
                    continue
                if ":" not in name:
                    continue
                op_name, op_type = name.rsplit(":", 1)
                op_name = re.sub(r"transformer_layer_\d+", "transformer_layer_*", op_name)
                op_name = re.sub(r"_\d+(?=/|$)", "", op_name)
                op_name = re.sub(r"^(gradient_tape/)?multi_task_classifier/bert_encoder/bert_backbone/",
                                 r"\1", op_name)
                times[(op_type, op_name)] += event.duration_ps / 1e9 / steps
    return times


def main(argv):
    del argv
    from empathy_tf import config as config_lib, runner, training
    from empathy_tf.config import ExperimentConfig
    from empathy_tf.data import pipeline
    from empathy_tf.distillation.loss import DistillationLoss

    precision = config_lib.resolve_precision(FLAGS.precision)
    xla = config_lib.resolve_xla(FLAGS.xla)
    config = ExperimentConfig(name="profile", method="kd", aux_tasks=("sst2", "emotion"),
                              encoder=FLAGS.encoder, aux_cap=FLAGS.aux_examples, precision=precision,
                              dropout_impl=FLAGS.dropout_impl, gelu_impl=FLAGS.gelu_impl)
    config.validate()
    ctx = runner.RunContext(FLAGS.data_dir, "/tmp/empathy_tf_bench", FLAGS.tfds_dir)
    _, _, heads, table, model = build_student(config, ctx, np.random.default_rng(0))
    plan = pipeline.plan_epochs(table, FLAGS.batch_size, 0, 1)[0][: FLAGS.steps]
    spec = training.TrainSpec(batch_size=FLAGS.batch_size, xla=xla, precision=precision)
    optimizer = training.build_optimizer(model, spec, total_steps=4 * len(plan))
    strategy = tf.distribute.get_strategy()
    step = training.make_train_step(model, DistillationLoss(heads, tf.Variable(0.5)), optimizer,
                                    strategy, xla)
    iterator = iter(training.distributed_dataset(strategy, table, plan * 4))
    for _ in range(2 * len(plan)):
        step(iterator).numpy()
    start = time.perf_counter()
    for _ in plan:
        step(iterator).numpy()
    step_ms = (time.perf_counter() - start) / len(plan) * 1e3
    with tempfile.TemporaryDirectory() as trace_dir:
        tf.profiler.experimental.start(trace_dir)
        for _ in plan:
            step(iterator).numpy()
        tf.profiler.experimental.stop()
        times = kernel_times(trace_dir, len(plan))

    total = sum(times.values())
    by_type = collections.Counter()
    for (op_type, _), ms in times.items():
        by_type[op_type] += ms
    print(f"step {step_ms:.1f} ms (wall); kernel time {total:.1f} ms per step over both inter-op threads")
    print("\nby op type (ms per step, share of kernel time):")
    for op_type, ms in by_type.most_common(FLAGS.top):
        print(f"  {op_type:28s} {ms:7.2f}  {ms / total:6.1%}")
    print("\nby op:")
    for (op_type, op_name), ms in times.most_common(FLAGS.top):
        print(f"  {op_type:18s} {op_name[:90]:90s} {ms:7.2f}  {ms / total:6.1%}")
    if FLAGS.output:
        from empathy_tf import io_utils
        io_utils.atomic_write_text(FLAGS.output, json.dumps({
            "step_ms": round(step_ms, 2), "kernel_ms_per_step": round(total, 2),
            "config": {"xla": xla, "precision": precision, "dropout_impl": FLAGS.dropout_impl,
                       "gelu_impl": FLAGS.gelu_impl, "batch_size": FLAGS.batch_size},
            "by_op_type_ms": {k: round(v, 3) for k, v in by_type.most_common()},
            "by_op_ms": {f"{t}:{n}": round(v, 3) for (t, n), v in times.most_common()}}, indent=2) + "\n")


if __name__ == "__main__":
    app.run(main)
