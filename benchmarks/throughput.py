"""Training/inference throughput, padding efficiency, FLOP utilisation and memory (issue 6).

Everything is measured in one process, so the figures that matter are ratios:

- the multi-task KD student's training throughput (real tokens/s) against a plain keras-hub
  `BertTextClassifier.fit` on the same examples (fixed padding, its usual set-up);
- model FLOPs utilisation of student training against a matmul ceiling measured just before, at
  the same precision and thread count (2048² matrices), and against the same model's own matmuls
  run alone at its batch shapes (what oneDNN reaches on matrices this small);
- the student with hash dropout against Keras' dropout, fused GELU against keras-hub's op-by-op
  GELU (and against no GELU, the bound on what fusing it can save), float32-summed bias
  gradients against TensorFlow's, and with each `--xla` mode;
- the utilisation of the student with dropout, LayerNorm and GELU taken out: the most that fusing
  those element-wise layers could bring;
- padding efficiency (real tokens / padded tokens) of our batching, per dataset and for the KD
  student's full mix, against padding to 128.

    python -m benchmarks.throughput --data_dir=../shared/data --noxla_full   # ~13 min on 2 cores
    python -m benchmarks.throughput --data_dir=../shared/data            # also times whole-step XLA
    python -m benchmarks.throughput --data_dir=../shared/data --steps=20 # quicker, noisier
"""

import contextlib
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks.student import build_student

flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"), "Data folder.")
flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder.")
flags.DEFINE_string("encoder", "minilm", "Encoder spec.")
flags.DEFINE_string("precision", "auto", "auto, float32 or mixed_bfloat16.")
flags.DEFINE_integer("batch_size", 32, "Batch size for every measurement.")
flags.DEFINE_integer("steps", 40, "Timed training steps per model (after 3 warm-up steps).")
flags.DEFINE_integer("aux_examples", 2000, "Examples per auxiliary task in the student's mix.")
flags.DEFINE_integer("fixed_length", 128, "Sequence length of the plain classifier baseline.")
flags.DEFINE_string("xla", "auto", "XLA mode of the student measurement (also timed with off).")
flags.DEFINE_bool("xla_full", True, "Also time whole-step XLA (second pass, after compilation).")
flags.DEFINE_bool("kd_full_run", False, "Also run kd_sst_emonet on NewsEmp with the full SST-2 "
                  "and emotion training sets and report its wall time split (tens of minutes).")
flags.DEFINE_string("kd_output_dir", "/tmp/empathy_tf_bench/kd_full",
                    "Output folder of --kd_full_run (a fresh folder measures teachers too).")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS


def matmul_ceiling(precision, n=2048, repeats=10, rounds=5):
    """Sustained GFLOP/s of an n×n matmul at the given precision (all threads).

    The best of `rounds` timings of `repeats` matmuls each: anything else running only slows a
    round down, and a ceiling measured low would flatter every utilisation figure against it.
    """
    dtype = tf.bfloat16 if "bfloat16" in precision else tf.float32
    a = tf.random.normal([n, n], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    mm = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    mm(a, b).numpy()
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            mm(a, b).numpy()
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def model_shape_matmul_seconds(batch_shapes, layers, hidden, intermediate, heads, precision):
    """Seconds that only the matmuls of forward + backward take, at the model's own shapes.

    For each (sequences, padded length) of `batch_shapes`, runs every GEMM of a BERT training
    step on random data: per layer Q, K, V and output projections, FFN up and down, attention
    scores and context, each forward (X·W) and backward (dY·Wᵀ, Xᵀ·dY). The ratio of these
    seconds to a real step is the share of the step that matmuls could at best take; the GFLOP/s
    is the ceiling at this model's shapes (small matrices run well below the n×n ceiling).
    Returns (seconds, GEMM FLOPs at the padded shapes).
    """
    dtype = tf.bfloat16 if "bfloat16" in precision else tf.float32
    head_dim = hidden // heads
    matrix, batched = tf.TensorSpec([None, None], dtype), tf.TensorSpec([None, None, None], dtype)

    # Every operand distinct (own weights per layer and projection, own queries, keys and values
    # per layer): identical matmuls would be merged by TensorFlow's graph optimiser.
    @tf.function(input_signature=[matrix, matrix, [matrix] * (6 * layers), [batched] * (3 * layers)])
    def step(x, x_up, weights, qkv):
        picks = []
        for layer in range(layers):
            w = weights[6 * layer:6 * layer + 6]
            for inputs, weight in [(x, w[0]), (x, w[1]), (x, w[2]), (x, w[3]), (x, w[4]),
                                   (x_up, w[5])]:
                y = tf.matmul(inputs, weight)
                picks += [y[0, 0], tf.matmul(y, weight, transpose_b=True)[0, 0],   # d inputs
                          tf.matmul(inputs, y, transpose_a=True)[0, 0]]            # d weight
            q, k, v = qkv[3 * layer:3 * layer + 3]
            scores = tf.matmul(q, k, transpose_b=True)          # [B·H, S, S]
            context = tf.matmul(scores, v)                      # [B·H, S, d]
            picks += [context[0, 0, 0],
                      tf.matmul(context, v, transpose_b=True)[0, 0, 0],       # d probabilities
                      tf.matmul(scores, context, transpose_a=True)[0, 0, 0],  # d values
                      tf.matmul(scores, k)[0, 0, 0],                          # d queries
                      tf.matmul(scores, q, transpose_a=True)[0, 0, 0]]        # d keys
        return tf.stack(picks)

    def rand(*shape):
        return tf.cast(tf.random.normal(shape, stddev=0.02), dtype)

    weights = []
    for _ in range(layers):
        weights += [rand(hidden, hidden) for _ in range(4)]
        weights += [rand(hidden, intermediate), rand(intermediate, hidden)]
    seconds, flops = 0.0, 0.0
    for i, (count, length) in enumerate(batch_shapes):
        tokens = count * length
        args = (rand(tokens, hidden), rand(tokens, intermediate), weights,
                [rand(count * heads, length, head_dim) for _ in range(3 * layers)])
        if i == 0:
            step(*args).numpy()  # trace
        start = time.perf_counter()
        step(*args).numpy()
        seconds += time.perf_counter() - start
        flops += layers * 3 * (2 * tokens * hidden * (4 * hidden + 2 * intermediate)
                               + 4 * count * heads * length * length * head_dim)
    return seconds, flops


def train_flops(lengths, params, layers, hidden):
    """6·N·S + 12·L·S²·h per sequence (forward + backward), summed over sequences."""
    s = np.asarray(lengths, np.float64)
    return float(np.sum(6 * params * s + 12 * layers * s**2 * hidden))


def main(argv):
    del argv
    from empathy_tf import config as config_lib, runner, training
    from empathy_tf.config import ExperimentConfig
    from empathy_tf.data import pipeline
    from empathy_tf.distillation.loss import DistillationLoss
    import keras
    import keras_hub

    precision = config_lib.resolve_precision(FLAGS.precision)
    results = {"precision": precision, "batch_size": FLAGS.batch_size, "threads": os.cpu_count()}
    ctx = runner.RunContext(FLAGS.data_dir, "/tmp/empathy_tf_bench", FLAGS.tfds_dir)

    # Padding efficiency of every dataset: ours (shuffled pools, sorted inside) vs fixed 128.
    config = ExperimentConfig(name="bench", method="kd", aux_tasks=("sst2", "emotion"),
                              encoder=FLAGS.encoder, aux_cap=FLAGS.aux_examples,
                              precision=precision)
    padding = {}
    all_datas = {}
    for name in ("newsemp", "sst2", "carer", "semeval2018_ec"):
        data = runner.load_tasks(dataclasses_replace(config, dataset=name, aux_tasks=()), ctx)[0]
        all_datas[name] = data
    featurized = runner.Featurized(config, list(all_datas.values()), ctx)
    rng = np.random.default_rng(0)
    for t, name in enumerate(all_datas):
        lengths = featurized.tokens[t]["train"].lengths
        batches = pipeline.length_batches(np.arange(len(lengths)), lengths, FLAGS.batch_size, rng)
        fixed = np.minimum(lengths, FLAGS.fixed_length).sum() / (len(lengths) * FLAGS.fixed_length)
        padding[name] = {"ours": round(pipeline.padding_efficiency(lengths, batches), 3),
                         f"fixed_{FLAGS.fixed_length}": round(float(fixed), 3),
                         "mean_length": round(float(lengths.mean()), 1),
                         "over_128": round(float(np.mean(lengths > 128)), 3)}
    # The KD student's own mix: kd_sst_emonet on NewsEmp with every SST-2 and CARER example,
    # at that experiment's batch size (rare long essays among short texts).
    from experiments import registry
    kd_batch = registry.get_config("kd_sst_emonet").batch_size
    mix = np.concatenate([featurized.tokens[t]["train"].lengths for t, name in enumerate(all_datas)
                          if name in ("newsemp", "sst2", "carer")])
    batches = pipeline.length_batches(np.arange(len(mix)), mix, kd_batch, rng)
    padding["kd_sst_emonet_student_mix"] = {
        "ours": round(pipeline.padding_efficiency(mix, batches), 3), "batch_size": kd_batch,
        "ours_pools_of_16_batches": round(pipeline.padding_efficiency(
            mix, pipeline.length_batches(np.arange(len(mix)), mix, kd_batch, rng, pool_batches=16,
                                         jitter=0)), 3),
        "mean_length": round(float(mix.mean()), 1)}
    results["padding_efficiency"] = padding

    datas, featurized, heads, table, model = build_student(config, ctx, rng)
    strategy = tf.distribute.get_strategy()
    plan = pipeline.plan_epochs(table, FLAGS.batch_size, 0, 1)[0][: FLAGS.steps + 3]
    timed = plan[3:]
    lengths = np.concatenate([table.tokens.lengths[b] for b in timed])
    backbone = model.encoder.backbone
    params = sum(int(np.prod(v.shape)) for v in backbone.trainable_variables
                 if "embedding" not in v.path)
    flops = train_flops(lengths, params, backbone.num_layers, backbone.hidden_dim)

    def time_student(xla, passes=2):
        """Rates over the timed steps of the last of `passes` passes over the same batches.

        The first pass compiles what XLA compiles per shape (hash-dropout masks per size bucket,
        whole steps under xla=full) and would otherwise be timed in a short window like this one;
        a full run amortises those compilations over thousands of steps.
        """
        spec = training.TrainSpec(batch_size=FLAGS.batch_size, xla=xla, precision=precision)
        optimizer = training.build_optimizer(model, spec, total_steps=len(plan) * passes)
        step = training.make_train_step(model, DistillationLoss(heads, tf.Variable(0.5)),
                                         optimizer, strategy, xla)
        multiple = training.batch_length_multiple(xla)
        iterator = iter(training.distributed_dataset(strategy, table, plan * passes,
                                                     length_multiple=multiple))
        for _ in range(passes):
            for _ in range(3):
                step(iterator).numpy()
            start = time.perf_counter()
            for _ in timed:
                step(iterator).numpy()
            seconds = time.perf_counter() - start
        padded = sum(-(-int(table.tokens.lengths[b].max()) // multiple) * multiple * len(b)
                     for b in timed)
        return {"sequences_per_s": len(lengths) / seconds, "real_tokens_per_s": lengths.sum() / seconds,
                "padded_tokens_per_s": padded / seconds, "tflops": flops / seconds / 1e12}

    def time_parts():
        """Seconds of the forward pass alone and of forward + backward, on the timed batches."""
        loss_fn = DistillationLoss(heads, tf.Variable(0.5))

        def loss_of(features, targets):
            return tf.reduce_sum(loss_fn(targets, model(features, training=True)) * targets["weight"])

        @tf.function
        def forward(iterator):
            return loss_of(*next(iterator))

        @tf.function
        def forward_backward(iterator):
            features, targets = next(iterator)
            with tf.GradientTape() as tape:
                loss = loss_of(features, targets)
            grads = tape.gradient(loss, model.trainable_variables)
            return loss + tf.add_n([tf.reduce_sum(tf.cast(tf.convert_to_tensor(g)[:1], tf.float32))
                                    for g in grads if g is not None])
        seconds = {}
        for name, fn in (("forward", forward), ("forward_backward", forward_backward)):
            iterator = iter(training.distributed_dataset(strategy, table, plan * 2))
            for _ in range(2):  # timed like the student: the second pass over the same batches
                for _ in range(3):
                    fn(iterator).numpy()
                start = time.perf_counter()
                for _ in timed:
                    fn(iterator).numpy()
                seconds[name] = time.perf_counter() - start
        return seconds

    xla = config_lib.resolve_xla(FLAGS.xla)
    student = time_student(xla)
    parts = time_parts()
    student_no_xla = time_student("off") if xla != "off" else student
    # Each A/B below is timed back to back: this machine drifts by more than the effects over the
    # minutes between the first timing and the last.
    student_again = time_student(xla)
    # The same student with Keras' own dropout (Philox float uniforms, unfused) for comparison.
    from empathy_tf import dropout
    dropout.use_keras_dropout(model)
    student_keras_dropout = time_student(xla)
    dropout.use_hash_dropout(model)
    # keras-hub's op-by-op GELU, and no GELU at all: the most that fusing it could ever save.
    from empathy_tf import gelu
    gelu_layers = [layer for layer in model._flatten_layers() if getattr(layer, "activation", None)
                   is gelu.fused_gelu]
    gelu.use_unfused_gelu(model)
    student_keras_gelu = time_student(xla)
    for layer in gelu_layers:
        layer.activation = keras.activations.linear
    student_without_gelu = time_student(xla)
    for layer in gelu_layers:
        layer.activation = gelu.fused_gelu
    student_fused_gelu = time_student(xla)  # again, next to the two above: drift cancels better
    # TensorFlow's BiasAddGrad (bfloat16 sums on CPU) against float32 sums, re-timed next to it.
    from empathy_tf import bias
    bias.use_keras_bias_grad(model)
    student_keras_bias_grad = time_student(xla)
    bias.use_float32_bias_grad(model)
    student_float32_bias_grad = time_student(xla)
    # The step with dropout, LayerNorm and GELU taken out: what no fusion of them can beat.
    with without_elementwise_layers(model):
        student_without_elementwise = time_student(xla)
    student_full_xla = time_student("full") if FLAGS.xla_full else None

    # Plain keras-hub classifier on the same examples, padded to a fixed length as usual.
    texts = []
    for t, data in enumerate(datas):
        texts.extend(data.train.texts)
    order = np.concatenate(timed)
    sample_texts = [texts[i] for i in order]
    labels = table.gold[order].argmax(-1) % 2
    from empathy_tf import encoders
    keras.mixed_precision.set_global_policy(precision)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        featurized.featurizer.tokenizer, sequence_length=FLAGS.fixed_length)
    if FLAGS.encoder == "tiny":
        plain_backbone = encoders.tiny_bert(featurized.vocabulary)[0]
    else:
        plain_backbone = encoders.load_bert(FLAGS.encoder, dtype=precision)[0]
    classifier = keras_hub.models.BertTextClassifier(plain_backbone, 2, preprocessor=None)
    classifier.compile(optimizer=keras.optimizers.AdamW(5e-5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = preprocessor(tf.constant(sample_texts))
    x = {k: v for k, v in x.items()} if isinstance(x, dict) else x
    warm = {k: v[: 3 * FLAGS.batch_size] for k, v in x.items()}
    classifier.fit(warm, labels[: 3 * FLAGS.batch_size], batch_size=FLAGS.batch_size, verbose=0)
    start = time.perf_counter()
    classifier.fit(x, labels, batch_size=FLAGS.batch_size, verbose=0, shuffle=False)
    plain_seconds = time.perf_counter() - start
    plain_real = np.minimum(lengths, FLAGS.fixed_length).sum()
    plain = {"sequences_per_s": len(order) / plain_seconds, "real_tokens_per_s": plain_real / plain_seconds,
             "padded_tokens_per_s": len(order) * FLAGS.fixed_length / plain_seconds}
    # Its utilisation counts the FLOPs it computes, padding included (the student's counts real tokens).
    plain_flops = train_flops([FLAGS.fixed_length] * len(order), params, backbone.num_layers,
                              backbone.hidden_dim)

    # Inference (what teacher predictions and evaluation use): length-sorted batches of up to 256
    # sequences / 4,096 tokens, against plain length-sorted batches of 64, on long (NewsEmp) and
    # short (SST-2) training texts.
    predict_fn = training.make_predict_fn(model)
    inference = {}
    for t, data in enumerate(datas[:2]):
        tokens = featurized.tokens[t]["train"]
        for label, kwargs in (("ours", {}), ("batches_of_64", {"batch_size": 64, "max_tokens": None})):
            training.predict_probs(model, tokens, t, predict_fn=predict_fn, **kwargs)
            start = time.perf_counter()
            training.predict_probs(model, tokens, t, predict_fn=predict_fn, **kwargs)
            inference[f"{data.task.name}_{label}"] = round(len(tokens) / (time.perf_counter() - start), 1)

    ceiling = matmul_ceiling(precision)
    shapes = [(len(b), int(table.tokens.lengths[b].max())) for b in timed]
    gemm_seconds, gemm_flops = model_shape_matmul_seconds(
        shapes, backbone.num_layers, backbone.hidden_dim, backbone.intermediate_dim,
        backbone.num_heads, precision)
    shape_ceiling = gemm_flops / gemm_seconds / 1e9
    step_seconds = flops / (student["tflops"] * 1e12)
    breakdown = {"forward": parts["forward"], "backward": parts["forward_backward"] - parts["forward"],
                 "optimizer_and_rest": step_seconds - parts["forward_backward"]}
    results.update({
        "xla": xla,
        "student_train": {k: round(v, 2) for k, v in student.items()},
        "student_train_xla_off": {k: round(v, 2) for k, v in student_no_xla.items()},
        "ratio_student_xla_over_off": round(
            student_again["real_tokens_per_s"] / student_no_xla["real_tokens_per_s"], 3),
        **({"student_train_xla_full_steady": {k: round(v, 2) for k, v in student_full_xla.items()},
            "ratio_student_xla_full_over_off": round(
                student_full_xla["real_tokens_per_s"] / student_no_xla["real_tokens_per_s"], 3)}
           if student_full_xla else {}),
        "student_train_keras_dropout": {k: round(v, 2) for k, v in student_keras_dropout.items()},
        "ratio_student_hash_over_keras_dropout": round(
            student_again["real_tokens_per_s"] / student_keras_dropout["real_tokens_per_s"], 3),
        "student_train_keras_gelu": {k: round(v, 2) for k, v in student_keras_gelu.items()},
        "ratio_student_fused_over_keras_gelu": round(
            student_fused_gelu["real_tokens_per_s"] / student_keras_gelu["real_tokens_per_s"], 3),
        # Not a model anyone should train: the step without its activation function, timed to
        # show how much of the step GELU (op by op) takes.
        "ratio_student_without_gelu_over_keras_gelu": round(
            student_without_gelu["real_tokens_per_s"] / student_keras_gelu["real_tokens_per_s"], 3),
        "student_train_keras_bias_grad": {k: round(v, 2) for k, v in student_keras_bias_grad.items()},
        "ratio_student_float32_over_keras_bias_grad": round(
            student_float32_bias_grad["real_tokens_per_s"]
            / student_keras_bias_grad["real_tokens_per_s"], 3),
        "plain_keras_hub_fit": {k: round(v, 2) for k, v in plain.items()},
        "ratio_real_tokens_per_s_student_over_plain": round(
            student["real_tokens_per_s"] / plain["real_tokens_per_s"], 3),
        "ratio_padded_tokens_per_s_student_over_plain": round(
            student["padded_tokens_per_s"] / plain["padded_tokens_per_s"], 3),
        "matmul_ceiling_gflops": round(ceiling, 1),
        "student_mfu": round(student["tflops"] * 1e3 / ceiling, 3),
        "plain_keras_hub_fit_mfu_padded": round(plain_flops / plain_seconds / 1e9 / ceiling, 3),
        # Not a model anyone should train: the student without dropout, LayerNorm and GELU, the
        # utilisation that fusing those layers could at best approach.
        "student_mfu_without_dropout_layernorm_gelu": round(
            student_without_elementwise["tflops"] * 1e3 / ceiling, 3),
        "ratio_student_without_dropout_layernorm_gelu_over_student": round(
            student_without_elementwise["real_tokens_per_s"]
            / student_float32_bias_grad["real_tokens_per_s"], 3),  # timed just before it
        # Where a step's time goes (share of the whole step); the forward pass does 1/3 of the
        # FLOPs, the backward pass 2/3, the optimizer ~0.
        "student_step_time_share": {k: round(v / step_seconds, 3) for k, v in breakdown.items()},
        "forward_backward_mfu": round(flops / parts["forward_backward"] / 1e9 / ceiling, 3),
        # The same utilisation against the matmuls this model actually runs (its small shapes),
        # and the share of a step that those matmuls alone take.
        "model_shape_matmul_gflops": round(shape_ceiling, 1),
        "model_shape_matmuls_vs_ceiling": round(shape_ceiling / ceiling, 3),
        "student_mfu_vs_model_shape_matmuls": round(student["tflops"] * 1e3 / shape_ceiling, 3),
        "matmul_only_share_of_step": round(gemm_seconds / step_seconds, 3),
        "inference_sequences_per_s": inference,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    })
    if FLAGS.kd_full_run:
        results["kd_full_run"] = kd_full_run(precision)
    text = json.dumps(results, indent=2)
    print(text)
    if FLAGS.output:
        from empathy_tf import io_utils
        io_utils.atomic_write_text(FLAGS.output, text + "\n")


@contextlib.contextmanager
def without_elementwise_layers(model):
    """Dropout and LayerNorm layers pass their input through, GELU becomes linear; then restored."""
    import keras
    from empathy_tf import gelu
    saved = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, (keras.layers.Dropout, keras.layers.LayerNormalization)):
            saved.append((layer, "call", vars(layer).get("call")))
            layer.call = lambda inputs, *args, **kwargs: inputs
        elif getattr(layer, "activation", None) is gelu.fused_gelu:
            saved.append((layer, "activation", layer.activation))
            layer.activation = keras.activations.linear
    try:
        yield
    finally:
        for layer, attribute, value in saved:
            if value is None:
                delattr(layer, attribute)
            else:
                setattr(layer, attribute, value)


def kd_full_run(precision):
    """Wall time of `kd_sst_emonet` on NewsEmp with all SST-2 and CARER training examples."""
    from empathy_tf import runner
    from experiments import registry
    config = dataclasses_replace(registry.get_config("kd_sst_emonet"), dataset="newsemp", aux_cap=0,
                                 precision=precision, xla=FLAGS.xla)
    ctx = runner.RunContext(FLAGS.data_dir, FLAGS.kd_output_dir, FLAGS.tfds_dir)
    start = time.perf_counter()
    metrics = runner.run_experiment(config, ctx)
    wall = time.perf_counter() - start
    teachers = {}
    for task, info in (metrics.get("teachers") or {}).items():
        m = info.get("metrics") or {}
        teachers[task] = {"trained_now": info.get("trained_now"), "train_examples": m.get("train_examples"),
                          "train_s": m.get("train_time_s"), "inference_s": m.get("predict_time_s")}
    return {"wall_s": round(wall, 1), "run_wall_s": metrics.get("wall_time_s"),
            "teachers_total_s": metrics.get("timing", {}).get("teachers_s"), "teachers": teachers,
            "student_train_s": metrics["train"]["train_time_s"],
            "student_steps": metrics["train"]["steps"], "student_examples": metrics["train"]["examples"],
            "test_f1": metrics["test"]["f1"], "output_dir": FLAGS.kd_output_dir}


def dataclasses_replace(config, **changes):
    import dataclasses
    return dataclasses.replace(config, **changes)


if __name__ == "__main__":
    app.run(main)
