"""Masked-LM pre-training of the BERT encoder on an unlabeled corpus (paper §6).

The encoder is this suite's `BertEncoder` (models/bert.py) with the run's kernels, so fine-tuning
and pre-training share one gradient path; the masked-LM head (`MaskedLMHead`: dense + GELU +
LayerNorm, then logits tied to the token embeddings) sits on its `sequence_output`. Training is
bounded by steps.

Batches and masks are a pure function of the seed and the step, so a resumed run continues the
very sequence an uninterrupted one has. The texts are tokenized and packed ([CLS] text [SEP])
once; step k's batch is rows k*B..(k+1)*B of passes over the corpus, each pass in its own seeded
order (`row_order`). Each batch is masked by `mask_batch` with stateless random ops keyed by
(seed, step) and drawn over the whole global batch at the full sequence length, so a mask depends
only on (seed, step, row, position): not on the padding, the tf.data parallelism or how a strategy
splits the batch among replicas. As keras-hub's `BertMaskedLMPreprocessor` did before (Table 7's
numbers up to this change came from it, with other random draws; the fingerprint's code version
tells the two apart): ceil(`mask_rate` * n) of a text's n non-special wordpieces are selected, of
which `mask_token_rate` become [MASK], `random_token_rate` a random wordpiece, the rest stay;
a text gets a new mask every time it is seen (dynamic masking); batches are padded to their own
longest text.

Training runs through the suite's loop and callbacks (training/loop.py: `run_epochs`,
`StopRequest`; training/callbacks.py: `Checkpoints` + `ResumableCheckpoint`, `TensorBoardScalars`
with prefix `mlm`, `ProgressLog`, and Keras' `TerminateOnNaN`), each step `strategy.run` under
`--strategy` (its variables built under `strategy.scope()`). It works in
`<output_dir>/adapted/.partial-<corpus>-<fingerprint>/`: SIGINT/SIGTERM checkpoint at the next
step and raise `RunInterrupted`, and the same call again resumes at that step (the loss curve,
weights and TensorBoard steps as if never interrupted; after a hard kill, the steps since the
last checkpoint are trained, and logged, again). Finished, the folder is renamed to
`<output_dir>/adapted/<corpus>-<fingerprint>/`, a keras-hub preset folder (backbone + tokenizer,
plus `mlm.json` with its identity, loss curve and wall time, and TensorBoard scalars under `tb/`),
loadable as `--encoder=<folder>`; it exists only complete, and later runs with the same
fingerprint reuse it. The fingerprint covers the corpus texts, the base encoder's files, the MLM
options, the resolved precision, the kernels and the code version (not the strategy: any strategy
gives the same adaptation).

Example:

    adapted = adapt_encoder(config, ctx, texts)       # config: a resolved uda config
    adapted.folder                                     # runs/adapted/semeval_tweets-1a2b...
"""

import dataclasses
import glob
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from empathy_tf import io_utils
from empathy_tf.errors import ConfigError, TrainingDivergedError
from empathy_tf.kernels import Projection
from empathy_tf.methods.domain_adaptation import corpora
from empathy_tf.methods.neural import with_policy
from empathy_tf.models import encoders
from empathy_tf.training import callbacks, loop
from empathy_tf.training.optimizer import WarmupLinearDecay
from empathy_tf.training.strategy import make_strategy, strategy_is_chief

ADAPTED_DIR = "adapted"


@keras.saving.register_keras_serializable(package="empathy_tf")
class MaskedLMHead(keras.layers.Layer):
    """BERT's masked-LM head: dense + GELU + LayerNorm, logits tied to the token embeddings."""

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.transform = Projection(encoder.hidden_dim, activation="gelu",
                                    gelu_impl=encoder.gelu_impl,
                                    bias_grad_impl=encoder.bias_grad_impl,
                                    dtype=self.dtype_policy, name="transform")
        self.norm = keras.layers.LayerNormalization(epsilon=encoder.layer_norm_epsilon,
                                                    dtype=self.dtype_policy, name="norm")

    def build(self, input_shape=None):
        self.transform.build((None, self.encoder.hidden_dim))
        self.norm.build((None, self.encoder.hidden_dim))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.encoder.vocabulary_size,),
                                           initializer="zeros", autocast=False)
        self.built = True

    def call(self, inputs, training=False):
        sequence, _ = self.encoder.sequence_output(
            {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}, training)
        picked = tf.gather(sequence, tf.cast(inputs["mask_positions"], tf.int32), batch_dims=1)
        hidden = self.norm(self.transform(picked))
        table = tf.cast(self.encoder.token_embeddings, hidden.dtype)
        return tf.cast(tf.einsum("bmh,vh->bmv", hidden, table), tf.float32) + self.output_bias


@dataclasses.dataclass
class AdaptedEncoder:
    folder: str         # keras-hub preset folder; pass it as BertConfig.encoder
    info: dict          # the folder's mlm.json
    reused: bool        # True: found complete on disk, no training happened


MLM_SEED = 0   # one adapted encoder serves every seed of the fine-tuning runs


@dataclasses.dataclass(frozen=True)
class Masking:
    """How a batch is masked: `rate` of each text's non-special wordpieces are selected
    (ceil(rate * selectable) per text, as keras-hub's `MaskedLMMaskGenerator` does), of which
    `mask_token_rate` become [MASK], `random_token_rate` a random wordpiece of the whole vocabulary
    (it may draw the original), the rest stay unchanged.

    Example:

        masking = Masking.from_config(config.adaptation, tokenizer)
        masking.selection_length     # mask_positions per text: ceil(0.15 * 64) + 1 = 11
    """

    rate: float
    mask_token_rate: float
    random_token_rate: float
    max_length: int        # packed rows: [CLS] wordpieces [SEP], at most this long
    mask_token_id: int
    vocabulary_size: int

    @classmethod
    def from_config(cls, adaptation, tokenizer):
        return cls(adaptation.mask_rate, adaptation.mask_token_rate, adaptation.random_token_rate,
                   adaptation.mlm_max_seq_length, tokenizer.mask_token_id,
                   tokenizer.vocabulary_size())

    @property
    def selection_length(self):
        return max(1, math.ceil(self.rate * self.max_length) + 1)


def pack_texts(tokenizer, texts, max_length, chunk=4096):
    """Every text as [CLS] wordpieces [SEP], truncated to `max_length`: (ids [N, max_length] int32
    padded with [PAD], lengths [N] int32). Tokenized once, before training."""
    ids = np.full((len(texts), max_length), tokenizer.pad_token_id, np.int32)
    lengths = np.zeros(len(texts), np.int32)
    for start in range(0, len(texts), chunk):
        # keras-hub returns eager batches as lists of wordpiece ids.
        pieces = tokenizer(tf.constant(list(texts[start:start + chunk]), tf.string))
        for i, row in enumerate(pieces):
            row = [tokenizer.cls_token_id, *row[:max_length - 2], tokenizer.sep_token_id]
            ids[start + i, :len(row)] = row
            lengths[start + i] = len(row)
    return ids, lengths


def row_order(num_texts, batch_size, steps, seed):
    """[steps, batch_size] row indices: passes over the corpus, each in its own order drawn from
    (seed, pass), cut into batches (a batch may span two passes)."""
    passes = math.ceil(steps * batch_size / num_texts)
    order = np.concatenate([np.random.default_rng([seed, p]).permutation(num_texts)
                            for p in range(passes)])
    return order[:steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def mask_batch(ids, lengths, masking, seed, step):
    """Masks one global batch of packed rows: a pure function of (seed, step, row, position).

    Args:
        ids: [B, max_length] packed rows; lengths: [B] their lengths.
        seed, step: the random stream: `tf.random.stateless_uniform` keyed by (seed, step), drawn
            at the full [B, max_length] shape, so a position's draw never depends on the padding.

    Returns:
        (x, labels, weights): x has `token_ids` and `padding_mask` cut to the batch's longest row
        and `mask_positions` [B, selection_length]; `labels` the original wordpieces there;
        `weights` 1/(selected positions in the batch) at selected positions, 0 at fillers, so
        the weighted sum of per-position losses is the batch mean however the batch is split
        among replicas.
    """
    ids = tf.convert_to_tensor(ids, tf.int32)
    lengths = tf.convert_to_tensor(lengths, tf.int32)
    width = masking.max_length
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    draws = tf.random.stateless_uniform([3, tf.shape(ids)[0], width], key)
    position = tf.range(width)[None, :]
    selectable = (position > 0) & (position < lengths[:, None] - 1)  # not [CLS], [SEP], [PAD]
    n_selectable = tf.reduce_sum(tf.cast(selectable, tf.float32), axis=1)
    # ceil(rate * n), but 0.15 * 20 is 3.0000001 in float32: not 4.
    n_selected = tf.cast(tf.math.ceil(masking.rate * n_selectable - 1e-4), tf.int32)
    scores = tf.where(selectable, draws[0], 2.0)
    rank = tf.argsort(tf.argsort(scores, axis=1, stable=True), axis=1, stable=True)
    selected = selectable & (rank < n_selected[:, None])
    random_ids = tf.cast(tf.math.floor(draws[2] * masking.vocabulary_size), tf.int32)
    replacement = tf.where(
        draws[1] < masking.mask_token_rate, masking.mask_token_id,
        tf.where(draws[1] < masking.mask_token_rate + masking.random_token_rate, random_ids, ids))
    token_ids = tf.where(selected, replacement, ids)
    # Selected positions first, in position order; the rest of the row are zero-weight fillers.
    mask_positions = tf.argsort(-tf.cast(selected, tf.int32), axis=1, stable=True)[
        :, :masking.selection_length]
    # Pad to the batch's own longest text, not to max_seq_length: tweets are short.
    longest = tf.reduce_max(lengths)
    # A filler may lie past the longest text (a batch of texts shorter than selection_length):
    # it points at the last position instead, never selected ([SEP] or [PAD]), so its weight
    # stays 0 and the loss and gradients are those of the batch unchanged.
    mask_positions = tf.minimum(mask_positions, longest - 1)
    weights = tf.gather(tf.cast(selected, tf.float32), mask_positions, batch_dims=1)
    weights /= tf.maximum(tf.reduce_sum(weights), 1.0)
    labels = tf.gather(ids, mask_positions, batch_dims=1)
    x = {"token_ids": token_ids[:, :longest],
         "padding_mask": (position < lengths[:, None])[:, :longest],
         "mask_positions": mask_positions}
    return x, labels, weights


def mlm_dataset(ids, lengths, order, masking, seed, first_step=0, replicas=1, pipeline=0,
                pipelines=1):
    """The batches of steps `first_step`, `first_step + 1`, ... (`order`'s rows, masked by
    `mask_batch`), as one input pipeline of `pipelines` feeds them: each global batch is cut into
    `replicas` equal shares and this pipeline yields its replicas' shares, in turn.

    Resuming at step k gives exactly the batches and masks that steps k.. had in an
    uninterrupted run, with any number of replicas.

    Example:

        ids, lengths = pack_texts(tokenizer, texts, 64)
        order = row_order(len(texts), 32, steps=300, seed=0)
        for x, labels, weights in mlm_dataset(ids, lengths, order, masking, seed=0).take(1):
            x["mask_positions"].shape          # (32, 11)
    """
    batch_size = order.shape[1]
    if batch_size % replicas:
        raise ConfigError(f"mlm_batch_size={batch_size} must be a multiple of the strategy's "
                          f"{replicas} replicas")
    all_ids, all_lengths = tf.constant(ids), tf.constant(lengths)
    local = max(replicas // pipelines, 1)
    steps = tf.data.Dataset.range(first_step, len(order))
    rows = tf.data.Dataset.from_tensor_slices(order[first_step:])

    def masked(step, batch_rows):
        return mask_batch(tf.gather(all_ids, batch_rows), tf.gather(all_lengths, batch_rows),
                          masking, seed, step)

    def shares(x, labels, weights):
        cut = lambda t: tf.reshape(t, [replicas, batch_size // replicas, -1])[
            pipeline * local:(pipeline + 1) * local]
        return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(cut, (x, labels, weights)))

    ds = tf.data.Dataset.zip(steps, rows).map(masked, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.flat_map(shares).prefetch(2)


def distributed_mlm_dataset(strategy, ids, lengths, order, masking, seed, first_step):
    """`mlm_dataset` for `strategy`: the same global batches and masks for any strategy."""
    def dataset_fn(ctx):
        return mlm_dataset(ids, lengths, order, masking, seed, first_step,
                           ctx.num_replicas_in_sync, ctx.input_pipeline_id,
                           ctx.num_input_pipelines)
    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(dataset_fn, options)


def _encoder_files(encoder, vocabulary):
    """What the adapted weights depend on: the base encoder's files, not just its name."""
    if encoder == "tiny":
        return {"encoder": "tiny", "vocabulary": io_utils.fingerprint(list(vocabulary))}
    path = encoders.resolve_encoder_path(encoder)
    if not os.path.isdir(path):
        return {"encoder": encoder}  # a keras-hub preset name: its name pins its version
    files = {}
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "tb")
        for name in sorted(names):
            if name == ".lock":
                continue
            full = os.path.join(root, name)
            files[os.path.relpath(full, path)] = io_utils.file_sha256(full)
    return {"encoder": "folder", "files": files}


def adaptation_identity(config, texts, vocabulary):
    from empathy_tf import runs
    bert = config.bert
    return io_utils.json_roundtrip({
        "texts": io_utils.fingerprint(list(texts)),
        "base_encoder": _encoder_files(bert.encoder, vocabulary),
        "mlm": config.adaptation.mlm_identity(),
        "kernels": {k: getattr(bert, k) for k in ("dropout_impl", "gelu_impl", "bias_grad_impl")},
        "dropout": bert.dropout, "precision": config.numerics.precision,
        "code_version": runs.code_version()})


def _name_differences(root, corpus, identity):
    """Logs how earlier adaptations on the same corpus differ (they are not reused)."""
    from empathy_tf.runs import differences
    for info_path in glob.glob(os.path.join(root, f"{corpus}-*", "mlm.json")):
        old = io_utils.read_json(info_path).get("identity", {})
        named = ", ".join(differences(old, identity))
        logging.info("not reusing %s: it differs in %s", os.path.dirname(info_path), named)


def adapt_encoder(config, ctx, texts, vocab_texts=None, strategy=None):
    """Adapts `config.bert.encoder` by masked-LM pre-training, or reuses an earlier adaptation.

    Training happens in `<output_dir>/adapted/.partial-<key>/`, which keeps its checkpoint when
    the run is interrupted (SIGINT/SIGTERM checkpoint and raise `RunInterrupted`); calling again
    with the same identity resumes there at the exact step. The finished folder is renamed into
    place.

    Args:
        config: the resolved uda config (its adaptation, bert, numerics, execution sections are
            read).
        ctx: the `runs.RunContext` (output_dir).
        texts: the corpus documents.
        vocab_texts: for `encoder=tiny` only: extra texts for its toy vocabulary (the source
            task's, so that fine-tuning sees its words).
        strategy: a tf.distribute strategy; default: `config.execution.strategy`'s.
    """
    adaptation = config.adaptation
    corpus = adaptation.corpus
    if adaptation.mlm_max_texts and len(texts) > adaptation.mlm_max_texts:
        keep = np.sort(np.random.default_rng(0).choice(len(texts), adaptation.mlm_max_texts, False))
        texts = [texts[i] for i in keep]
    vocabulary = (encoders.toy_vocabulary(list(texts) + list(vocab_texts or []))
                  if config.bert.encoder == "tiny" else None)
    identity = adaptation_identity(config, texts, vocabulary)
    key = f"{corpora.corpus_slug(corpus)}-{io_utils.fingerprint(identity)}"
    root = os.path.join(ctx.output_dir, ADAPTED_DIR)
    folder = os.path.join(root, key)
    info_path = os.path.join(folder, "mlm.json")
    if os.path.exists(info_path):
        logging.info("Reusing the adapted encoder %s", folder)
        return AdaptedEncoder(folder, io_utils.read_json(info_path), reused=True)
    os.makedirs(root, exist_ok=True)
    _name_differences(root, corpora.corpus_slug(corpus), identity)
    with io_utils.folder_lock(os.path.join(root, ".locks", key)):
        if os.path.exists(info_path):  # another process finished it while we waited
            return AdaptedEncoder(folder, io_utils.read_json(info_path), reused=True)
        # The identity names the work folder: a partial of another identity is never resumed.
        work_dir = os.path.join(root, f".partial-{key}")
        if not os.path.exists(os.path.join(work_dir, "mlm.json")):  # else: only the rename is left
            os.makedirs(work_dir, exist_ok=True)
            strategy = strategy or make_strategy(config.execution.strategy)
            try:
                info = with_policy(config.numerics.precision,
                                   lambda: _train(texts, vocabulary, config, work_dir, strategy))
            except TrainingDivergedError:
                shutil.rmtree(work_dir, ignore_errors=True)   # resuming would diverge again
                raise
            info.update({"corpus": corpus, "identity": identity, "texts": len(texts),
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
            io_utils.atomic_write_json(os.path.join(work_dir, "mlm.json"), info)
        shutil.rmtree(os.path.join(work_dir, "checkpoints"), ignore_errors=True)
        os.replace(work_dir, folder)  # the folder appears complete or not at all
    info = io_utils.read_json(info_path)
    logging.info("Adapted encoder written to %s (%d steps, %.0fs, MLM loss %.3f -> %.3f)", folder,
                 info["steps"], info["train_time_s"], info["loss_first20"], info["loss_last20"])
    return AdaptedEncoder(folder, info, reused=False)


def _train(texts, vocabulary, config, work_dir, strategy):
    """Runs the masked-LM steps in `work_dir` (resuming its checkpoint, if any); saves the
    encoder (as a keras-hub preset) + tokenizer there."""
    from empathy_tf.models import bert as bert_lib
    adaptation, options, execution = config.adaptation, config.bert, config.execution
    start = time.time()
    keras.utils.set_random_seed(MLM_SEED)
    tokenizer = encoders.load_tokenizer(options.encoder, vocabulary)
    masking = Masking.from_config(adaptation, tokenizer)
    ids, lengths = pack_texts(tokenizer, texts, adaptation.mlm_max_seq_length)
    steps = adaptation.mlm_steps
    order = row_order(len(texts), adaptation.mlm_batch_size, steps, MLM_SEED)

    with strategy.scope():
        encoder = encoders.load_encoder(
            options.encoder, vocabulary_size=len(tokenizer.get_vocabulary()), seed=MLM_SEED,
            dtype=config.numerics.precision, pooling=options.pooling, dropout=options.dropout,
            dropout_impl=options.dropout_impl, gelu_impl=options.gelu_impl,
            bias_grad_impl=options.bias_grad_impl)
        encoder.pooler.trainable = False   # the pooler gets no masked-LM gradient: no slots
        head = MaskedLMHead(encoder)
        x, _, _ = mask_batch(ids[:1], lengths[:1], masking, MLM_SEED, 0)
        head(x)
        variables = head.trainable_variables
        step_var = tf.Variable(0, trainable=False, dtype=tf.int64, name="global_step")
        schedule = WarmupLinearDecay(adaptation.mlm_learning_rate, steps, round(0.1 * steps))
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.01, epsilon=1e-6,
                                           global_clipnorm=1.0)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        optimizer.build(variables)

    def step_fn(x, labels, weights):
        with tf.GradientTape() as tape:
            logits = head(x, training=True)
            per_position = keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                        from_logits=True)
            loss = tf.reduce_sum(per_position * weights)   # this replica's share of the mean
        # Dense gradients: the textbook AdamW update for embedding rows (see loop.py).
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
        optimizer.apply_gradients(zip(grads, variables))
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                tf.cast(labels, tf.int32)), tf.float32)
        # Selectable wordpieces: all real tokens but each sequence's [CLS] and [SEP].
        real = tf.reduce_sum(tf.cast(x["padding_mask"], tf.float32))
        return {"loss": loss, "accuracy": tf.reduce_sum(hits * weights),
                "selected": tf.reduce_sum(tf.cast(weights > 0, tf.float32)),
                "selectable": real - 2.0 * tf.cast(tf.shape(labels)[0], tf.float32)}

    @tf.function(autograph=False)   # one trace: batches come padded to their own longest text
    def train_step(iterator):
        per_replica = strategy.run(step_fn, args=next(iterator))
        return {key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for key, value in per_replica.items()}

    # The suite's loop and callbacks over one "epoch" of `steps`: the NaN stop, the checkpoint
    # (exact resume; SIGINT/SIGTERM checkpoint and stop), TensorBoard scalars (mlm/loss,
    # mlm/accuracy, mlm/learning_rate at every step) and the progress log.
    state = callbacks.TrainingState()
    with loop.StopRequest() as stop:
        scalars = callbacks.TensorBoardScalars(os.path.join(work_dir, "tb"), every=1,
                                               prefix="mlm", chief=strategy_is_chief(strategy))
        callback_list = keras.callbacks.CallbackList(
            [keras.callbacks.TerminateOnNaN(),
             callbacks.ResumableCheckpoint(
                 callbacks.Checkpoints(work_dir, head, optimizer, step_var), state, stop,
                 execution.checkpoint_every, execution.checkpoint_seconds,
                 pause_hook=lambda step, stop: loop._test_pause(work_dir, step, stop)),
             scalars, callbacks.ProgressLog(label="MLM ")],
            model=head, epochs=1, steps=steps, steps_per_epoch=[steps], total_steps=steps)
        head.stop_training = False
        callback_list.on_train_begin()   # restores the checkpoint, if any
        first_step = int(step_var.numpy())
        iterator = iter(distributed_mlm_dataset(strategy, ids, lengths, order, masking, MLM_SEED,
                                                first_step))

        def train_epoch(epoch, offset):
            for _ in range(offset, steps):
                out = {key: float(value) for key, value in train_step(iterator).items()}
                step_var.assign_add(1)
                state.curve.append(out)   # before the callbacks: a checkpoint includes this step
                yield {"loss": out["loss"], "accuracy": out["accuracy"],
                       "learning_rate": float(optimizer.learning_rate)}

        train_start = time.time()
        try:
            loop.run_epochs(head, callback_list, [steps], first_step, train_epoch,
                            lambda epoch: {}, "try a lower --mlm_learning_rate. Nothing was saved.")
        finally:
            scalars.writer.flush()   # an interrupted run's scalars reach the disk too
    train_time = time.time() - train_start
    bert_lib.to_backbone(encoder).save_to_preset(work_dir)   # float32 weights, keras-hub format
    tokenizer.save_to_preset(work_dir)
    losses = [record["loss"] for record in state.curve]
    accuracies = [record["accuracy"] for record in state.curve]
    window = max(1, min(20, len(losses) // 2))  # first and last windows never overlap
    return {
        "steps": steps, "losses": losses, "accuracies": accuracies,
        "loss_first20": float(np.mean(losses[:window])),
        "loss_last20": float(np.mean(losses[-window:])),
        "accuracy_last20": float(np.mean(accuracies[-window:])),
        "selected_fraction": (sum(r["selected"] for r in state.curve)
                              / max(sum(r["selectable"] for r in state.curve), 1.0)),
        "resumed_at_step": first_step,
        "train_time_s": round(train_time, 1), "wall_time_s": round(time.time() - start, 1),
        "steps_per_second": round((steps - first_step) / max(train_time, 1e-9), 3),
    }
