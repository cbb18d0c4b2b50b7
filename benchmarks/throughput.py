"""Training/inference throughput, padding efficiency, FLOP utilisation and memory (issue 6).

Everything is measured in one process, so the figures that matter are ratios:

- the multi-task KD student's training throughput (real tokens/s) against a plain keras-hub
  `BertTextClassifier.fit` on the same examples (fixed padding, its usual set-up);
- model FLOPs utilisation of student training against a matmul ceiling measured just before, at
  the same precision and thread count;
- padding efficiency (real tokens / padded tokens) of our batching against padding to 128.

    python -m benchmarks.throughput --data_dir=../shared/data            # ~10 min on 2 cores
    python -m benchmarks.throughput --data_dir=../shared/data --steps=20 # quicker, noisier
"""

import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from absl import app, flags

flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"), "Data folder.")
flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder.")
flags.DEFINE_string("encoder", "minilm", "Encoder spec.")
flags.DEFINE_string("precision", "auto", "auto, float32 or mixed_bfloat16.")
flags.DEFINE_integer("batch_size", 32, "Batch size for every measurement.")
flags.DEFINE_integer("steps", 40, "Timed training steps per model (after 3 warm-up steps).")
flags.DEFINE_integer("aux_examples", 2000, "Examples per auxiliary task in the student's mix.")
flags.DEFINE_integer("fixed_length", 128, "Sequence length of the plain classifier baseline.")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS


def matmul_ceiling(precision, n=2048, repeats=20):
    """Sustained GFLOP/s of an n×n matmul at the given precision (all threads)."""
    dtype = tf.bfloat16 if "bfloat16" in precision else tf.float32
    a = tf.random.normal([n, n], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    mm = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    mm(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        mm(a, b).numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


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
    results["padding_efficiency"] = padding

    # The KD student: NewsEmp + capped SST-2 + CARER with random teacher targets.
    datas = runner.load_tasks(config, ctx)
    featurized = runner.Featurized(config, datas, ctx)
    heads = runner.head_specs(datas)
    parts = []
    for t, data in enumerate(datas):
        gold = pipeline.one_hot_targets(data.train.labels, heads[t].num_classes, False)
        teacher = rng.dirichlet(np.ones(heads[t].num_classes), len(data.train)).astype(np.float32)
        parts.append((featurized.tokens[t]["train"], gold, teacher))
    table = pipeline.ExampleTable.build(parts, [h.num_classes for h in heads])
    strategy = tf.distribute.get_strategy()
    model = runner.build_model(config, featurized, heads)
    spec = training.TrainSpec(batch_size=FLAGS.batch_size)
    plan = pipeline.plan_epochs(table, FLAGS.batch_size, 0, 1)[0][: FLAGS.steps + 3]
    optimizer = training.build_optimizer(model, spec, total_steps=len(plan))
    lam = tf.Variable(0.5)
    loss_fn = DistillationLoss(heads, lam)

    step = training.make_train_step(model, loss_fn, optimizer, strategy)

    iterator = iter(training.distributed_dataset(strategy, table, plan))
    for _ in range(3):
        step(iterator).numpy()
    timed = plan[3:]
    start = time.perf_counter()
    for _ in timed:
        step(iterator).numpy()
    seconds = time.perf_counter() - start
    lengths = np.concatenate([table.tokens.lengths[b] for b in timed])
    padded = sum(int(table.tokens.lengths[b].max()) * len(b) for b in timed)
    backbone = model.encoder.backbone
    params = sum(int(np.prod(v.shape)) for v in backbone.trainable_variables
                 if "embedding" not in v.path)
    flops = train_flops(lengths, params, backbone.num_layers, backbone.hidden_dim)
    student = {"sequences_per_s": len(lengths) / seconds, "real_tokens_per_s": lengths.sum() / seconds,
               "padded_tokens_per_s": padded / seconds, "tflops": flops / seconds / 1e12}

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

    # Inference: batched, length-sorted, no gradients.
    test_tokens = featurized.tokens[0]["test"]
    predict_fn = training.make_predict_fn(model)
    training.predict_probs(model, test_tokens, 0, 64, predict_fn=predict_fn)
    start = time.perf_counter()
    training.predict_probs(model, test_tokens, 0, 64, predict_fn=predict_fn)
    infer_seconds = time.perf_counter() - start

    ceiling = matmul_ceiling(precision)
    results.update({
        "student_train": {k: round(v, 2) for k, v in student.items()},
        "plain_keras_hub_fit": {k: round(v, 2) for k, v in plain.items()},
        "ratio_real_tokens_per_s_student_over_plain": round(
            student["real_tokens_per_s"] / plain["real_tokens_per_s"], 3),
        "ratio_padded_tokens_per_s_student_over_plain": round(
            student["padded_tokens_per_s"] / plain["padded_tokens_per_s"], 3),
        "matmul_ceiling_gflops": round(ceiling, 1),
        "student_mfu": round(student["tflops"] * 1e3 / ceiling, 3),
        "inference_sequences_per_s": round(len(test_tokens) / infer_seconds, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    })
    text = json.dumps(results, indent=2)
    print(text)
    if FLAGS.output:
        from empathy_tf import io_utils
        io_utils.atomic_write_text(FLAGS.output, text + "\n")


def dataclasses_replace(config, **changes):
    import dataclasses
    return dataclasses.replace(config, **changes)


if __name__ == "__main__":
    app.run(main)
