"""Batching, training throughput, kernels, utilisation and inference of the KD student, as ratios.

Everything is measured in one process on real data (`kd_sst_emonet` on NewsEmp, SST-2 and CARER
capped at `--aux_cap`), so the figures that matter are ratios between timings taken back to back:

- mixing (seconds, no training): for the student's mix, the share of target (NewsEmp) examples in
  single-task minibatches under our batching and under a random shuffle of the same examples,
  tasks per minibatch and padding efficiency; also for the pooled batching the suite used before.
- train: real tokens/s of the student under packed batching (the default for mixed tasks) against
  pooled batching (the suite's batching before packing);
- kernels: each kernel against its alternative (hash vs Keras dropout, fused vs op-by-op GELU,
  float32 vs TensorFlow bias sums) and all three against all-Keras, at float32 and, where the CPU
  computes it natively, bfloat16: the rule `hardware.resolve_kernel` states comes from these;
- mfu: model FLOPs utilisation against a bf16/fp32 matmul ceiling measured just before, and of the
  same student with dropout, LayerNorm and GELU taken out (what no fusion of them can beat);
- inference: sequences/s of our length-sorted, token-budgeted batches against batches of 64.

    python -m benchmarks.throughput --data_dir=../shared/data --only=mixing    # seconds
    python -m benchmarks.throughput --data_dir=../shared/data                  # everything, ~15 min
    python -m benchmarks.throughput --data_dir=../shared/data --only=kernels --precision=float32

Lines are `<section>: key=value ...` so a script can read them; --output also writes JSON.
"""

import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags

flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"), "Data folder.")
flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder.")
flags.DEFINE_string("encoder", "minilm", "Encoder spec.")
flags.DEFINE_string("precision", "auto", "auto, float32 or mixed_bfloat16 (train, mfu, inference).")
flags.DEFINE_integer("batch_size", 16, "Batch size (kd_sst_emonet's).")
flags.DEFINE_integer("steps", 30, "Timed training steps per measurement (after warm-up).")
flags.DEFINE_integer("aux_cap", 2000, "Examples per auxiliary task in the student's mix.")
flags.DEFINE_list("only", None, "Sections: mixing, train, kernels, mfu, inference (default all).")
flags.DEFINE_string("output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS
SECTIONS = ("mixing", "train", "kernels", "mfu", "inference")
RESULTS = {}


def report(section, **values):
    """Prints `section: k=v ...` and keeps the values for --output."""
    RESULTS.setdefault(section, []).append(values)
    print(f"{section}: " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in values.items()), flush=True)


def mixing(student):
    from empathy_tf.data import batching
    table = student.table
    for layout in ("packed", "pooled"):
        shares, randoms, tasks, padding = [], [], [], []
        for seed in range(3):
            plan = batching.plan_epoch(table, layout, FLAGS.batch_size, seed, 0)
            stats = batching.mixing_stats(plan, table.task_ids)
            rng = np.random.default_rng([seed, 1])
            shuffle = [[batching.Share(b, None, None, 0, 0)] for b in
                       batching.random_batches(np.arange(len(table)), FLAGS.batch_size, rng)]
            shares.append(stats["target_single_task_share"])
            randoms.append(batching.mixing_stats(shuffle, table.task_ids)["target_single_task_share"])
            tasks.append(stats["tasks_per_batch"])
            padding.append(batching.padding_efficiency(plan, table.tokens.lengths))
        name = "mixing" if layout == "packed" else "mixing_pooled_before"
        report(name, target_single_task_share=float(np.mean(shares)), random=float(np.mean(randoms)),
               tasks_per_batch=float(np.mean(tasks)), padding_efficiency=float(np.mean(padding)),
               aux_cap=FLAGS.aux_cap, batch_size=FLAGS.batch_size)


class Timer:
    """Training steps of one model on fixed plans, timed on a second pass (the first compiles)."""

    def __init__(self, student, config):
        import tensorflow as tf
        from empathy_tf.training.losses import MultiTaskLoss
        self.student, self.config = student, config
        self.tf = tf
        self.loss = MultiTaskLoss(student.heads, tf.Variable(0.5))

    def build(self, config=None):
        config = config or self.config
        return self.student.method.build_model(config, self.student.preprocessor,
                                               self.student.heads)

    def build_bound(self):
        """The student with dropout, LayerNorm and GELU taken out (a bound, not a model)."""
        import tensorflow as tf
        from empathy_tf.methods.neural import with_policy
        from empathy_tf.models.classifier import MultiTaskClassifier
        encoder = self.build().encoder
        bound = _bound_encoder_class().from_encoder(encoder)

        def build():
            model = MultiTaskClassifier(bound, self.student.heads, dropout=0.0)
            model({"token_ids": tf.ones([2, 8], tf.int32), "padding_mask": tf.ones([2, 8], tf.bool)})
            return model
        return with_policy(self.config.numerics.precision, build)

    def steps(self, model, layout, config=None, steps=None):
        """(real tokens/s, steps/s, real tokens) over the timed steps of a plan."""
        from empathy_tf.data import batching
        from empathy_tf.training import loop, optimizer as optimizer_lib
        config = config or self.config
        tf = self.tf
        steps = steps or FLAGS.steps
        plan = batching.plan_epoch(self.student.table, layout, FLAGS.batch_size, 0, 0)[: steps + 3]
        strategy = tf.distribute.get_strategy()
        optimizer = optimizer_lib.build_optimizer(model, config.trainer, config.numerics.precision,
                                                  4 * len(plan))
        train_step = loop.make_train_step(model, self.loss, optimizer, strategy,
                                          config.numerics.xla)
        lengths = self.student.table.tokens.lengths
        real = sum(int(lengths[s.index].sum()) for step in plan[3:] for s in step)
        seconds = None
        for _ in range(2):
            iterator = iter(loop.distributed_dataset(strategy, self.student.table, plan, layout))
            for _ in range(3):
                train_step(iterator)["loss"].numpy()
            start = time.perf_counter()
            for _ in plan[3:]:
                train_step(iterator)["loss"].numpy()
            seconds = time.perf_counter() - start
        return real / seconds, (len(plan) - 3) / seconds, real


def train(timer):
    model = timer.build()
    packed, packed_steps, _ = timer.steps(model, "packed")
    pooled, pooled_steps, _ = timer.steps(model, "pooled")
    packed_again, _, _ = timer.steps(model, "packed")
    report("train", precision=timer.config.numerics.precision,
           packed_real_tokens_per_s=(packed + packed_again) / 2, pooled_real_tokens_per_s=pooled,
           ratio_packed_over_pooled=(packed + packed_again) / 2 / pooled,
           packed_steps_per_s=packed_steps, pooled_steps_per_s=pooled_steps)


def kernels(student):
    from empathy_tf import hardware
    precisions = ["float32"] + (["mixed_bfloat16"] if hardware.cpu_has_native_bf16() else [])
    for precision in precisions:
        base = student.raw_config.replace(precision=precision).resolved()
        timer = Timer(student, base)
        defaults = {k: getattr(base.bert, k) for k in ("dropout_impl", "gelu_impl",
                                                       "bias_grad_impl")}
        keras_all = {k: "keras" for k in defaults}
        variants = {"default": defaults, "all_keras": keras_all,
                    "dropout_keras": {**defaults, "dropout_impl": "keras"},
                    "dropout_hash": {**defaults, "dropout_impl": "hash"},
                    "gelu_keras": {**defaults, "gelu_impl": "keras"},
                    "gelu_fused": {**defaults, "gelu_impl": "fused"},
                    "bias_keras": {**defaults, "bias_grad_impl": "keras"},
                    "bias_float32": {**defaults, "bias_grad_impl": "float32"}}
        rates = {}
        for name, options in variants.items():   # every variant twice, interleaved: drift cancels
            config = base.replace(**options)
            rates[name] = [timer.steps(timer.build(config), "packed", config)[0]]
        for name, options in variants.items():
            config = base.replace(**options)
            rates[name].append(timer.steps(timer.build(config), "packed", config)[0])
        mean = {k: float(np.mean(v)) for k, v in rates.items()}
        report("kernels", precision=precision, cpu=hardware.cpu_kind().replace(" ", "_"),
               default="/".join(defaults.values()),
               default_over_all_keras=mean["default"] / mean["all_keras"],
               hash_over_keras_dropout=mean["dropout_hash"] / mean["dropout_keras"],
               fused_over_keras_gelu=mean["gelu_fused"] / mean["gelu_keras"],
               float32_over_keras_bias=mean["bias_float32"] / mean["bias_keras"],
               default_real_tokens_per_s=mean["default"])


def matmul_ceiling(precision, n=2048, repeats=10, rounds=5):
    """Sustained GFLOP/s of an n×n matmul at the precision (best of `rounds`, all threads)."""
    import tensorflow as tf
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


def train_flops(lengths, params, layers, hidden):
    """6·N·S + 12·L·S²·h per sequence (forward + backward), summed over sequences."""
    s = np.asarray(lengths, np.float64)
    return float(np.sum(6 * params * s + 12 * layers * s**2 * hidden))


def _bound_encoder_class():
    """A BertEncoder whose blocks skip dropout, LayerNorm and GELU (a bound, not a model)."""
    import tensorflow as tf
    from empathy_tf.models import bert

    class BoundBlock(bert.BertBlock):
        def call(self, x, attention_bias, training=False):
            rows, length = tf.shape(x)[0], tf.shape(x)[1]
            heads, head_dim = self.num_heads, self.head_dim
            query, key, value = (tf.transpose(tf.reshape(t, [rows, length, heads, head_dim]),
                                              [0, 2, 1, 3])
                                 for t in tf.split(self.qkv(x), 3, axis=-1))
            probs = tf.nn.softmax(tf.matmul(query, key, transpose_b=True) + attention_bias)
            context = tf.reshape(tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3]),
                                 [rows, length, self.hidden_dim])
            x = x + self.attention_output(context)
            return x + self.output_dense(tf.matmul(x, tf.cast(self.intermediate.kernel, x.dtype)))

    class BoundEncoder(bert.BertEncoder):
        @classmethod
        def from_encoder(cls, encoder):
            config = encoder.get_config()
            bound = cls.from_config(config)
            bound.blocks = [BoundBlock(**{**b.get_config(), "dtype": encoder.dtype_policy})
                            for b in encoder.blocks]
            bound.build()
            return bound
    return BoundEncoder


def mfu(timer, student):
    config = timer.config
    model = timer.build()
    encoder = model.encoder
    params = sum(int(np.prod(v.shape)) for v in encoder.trainable_variables
                 if "embeddings" not in v.path)
    lengths = student.table.tokens.lengths
    ceiling = matmul_ceiling(config.numerics.precision)
    rate, _, real = timer.steps(model, "packed")
    from empathy_tf.data import batching
    plan = batching.plan_epoch(student.table, "packed", FLAGS.batch_size, 0, 0)[3: FLAGS.steps + 3]
    per_text = np.concatenate([lengths[s.index] for step in plan for s in step])
    flops = train_flops(per_text, params, encoder.num_layers, encoder.hidden_dim)
    seconds = real / rate
    bound = timer.build_bound()
    bound_rate, _, _ = timer.steps(bound, "packed")
    report("mfu", precision=config.numerics.precision, matmul_ceiling_gflops=ceiling,
           student_gflops=flops / seconds / 1e9, student_mfu=flops / seconds / 1e9 / ceiling,
           bound_mfu_without_dropout_layernorm_gelu=flops / (real / bound_rate) / 1e9 / ceiling,
           student_over_bound=rate / bound_rate)


def inference(timer, student):
    from empathy_tf.training import predict
    model = timer.build()
    for t, data in enumerate(student.datas[:2]):
        tokens = student.tokens[t]["train"]
        rates = {}
        for label, options in (("ours", {}), ("batches_of_64", {"batch_size": 64,
                                                                 "max_tokens": None})):
            predict.predict_probs(model, tokens, [t], **options)
            start = time.perf_counter()
            predict.predict_probs(model, tokens, [t], **options)
            rates[label] = len(tokens) / (time.perf_counter() - start)
        report("inference", task=data.task.name, ours_sequences_per_s=rates["ours"],
               batches_of_64_sequences_per_s=rates["batches_of_64"],
               ratio=rates["ours"] / rates["batches_of_64"])


def main(argv):
    del argv
    from benchmarks.student import build_student
    from empathy_tf import hardware
    sections = FLAGS.only or SECTIONS
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise app.UsageError(f"unknown sections {sorted(unknown)}; valid: {SECTIONS}")
    print(f"machine: {hardware.describe()}", flush=True)
    student = build_student(FLAGS.data_dir, FLAGS.tfds_dir, aux_cap=FLAGS.aux_cap,
                            precision=FLAGS.precision, encoder=FLAGS.encoder,
                            batch_size=FLAGS.batch_size)
    if "mixing" in sections:
        mixing(student)
    timer = Timer(student, student.config)
    if "train" in sections:
        train(timer)
    if "kernels" in sections:
        kernels(student)
    if "mfu" in sections:
        mfu(timer, student)
    if "inference" in sections:
        inference(timer, student)
    report("memory", peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    if FLAGS.output:
        from empathy_tf import io_utils
        io_utils.atomic_write_json(FLAGS.output, RESULTS)


if __name__ == "__main__":
    app.run(main)
