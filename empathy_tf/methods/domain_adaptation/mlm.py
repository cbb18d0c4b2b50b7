"""Masked-LM pre-training of the BERT encoder on an unlabeled corpus (paper §6).

The encoder is this suite's `BertEncoder` (models/bert.py) with the run's kernels, so fine-tuning
and pre-training share one gradient path; the masked-LM head (`MaskedLMHead`: dense + GELU +
LayerNorm, then logits tied to the token embeddings) sits on its `sequence_output`. Masks come
from keras-hub's `BertMaskedLMPreprocessor` inside the tf.data map, so a text gets a new mask every
time it is seen (dynamic masking); `mask_rate` of the non-special wordpieces are selected, of which
`mask_token_rate` become [MASK] and `random_token_rate` a random wordpiece. Training is bounded by
steps.

The adapted encoder is a keras-hub preset folder `<output_dir>/adapted/<corpus>-<fingerprint>/`
(backbone + tokenizer, plus `mlm.json` with its identity, loss curve and wall time, and TensorBoard
scalars under `tb/`), loadable as `--encoder=<folder>`. The fingerprint covers the corpus texts,
the base encoder's files, the MLM options, the resolved precision, the kernels and the code
version; the folder is built in a temporary folder and renamed into place, so it exists only
complete, and later runs with the same fingerprint reuse it.

Example:

    adapted = adapt_encoder("semeval_tweets", config, ctx)     # config: a resolved uda config
    adapted.folder                                             # runs/adapted/semeval_tweets-1a2b...
"""

import dataclasses
import glob
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from empathy_tf import io_utils
from empathy_tf.kernels import Projection
from empathy_tf.methods.domain_adaptation import corpora
from empathy_tf.methods.neural import with_policy
from empathy_tf.models import encoders
from empathy_tf.training import callbacks, loop
from empathy_tf.training.optimizer import WarmupLinearDecay

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


def make_preprocessor(tokenizer, adaptation):
    """keras-hub's MLM preprocessor: pack [CLS] text [SEP], select and replace wordpieces."""
    import keras_hub
    # keras-hub selects ceil(rate * selectable) positions per sequence, capped at this length.
    selection_length = max(1, math.ceil(adaptation.mask_rate * adaptation.mlm_max_seq_length) + 1)
    return keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer, sequence_length=adaptation.mlm_max_seq_length,
        mask_selection_rate=adaptation.mask_rate, mask_selection_length=selection_length,
        mask_token_rate=adaptation.mask_token_rate, random_token_rate=adaptation.random_token_rate)


def mlm_dataset(texts, preprocessor, batch_size, seed, repeat=True):
    """Shuffled batches of (x, y, weights), masked inside the map: a new mask on every pass."""
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string))
    ds = ds.shuffle(min(len(texts), 100_000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=repeat and len(texts) >= batch_size)

    def mask_and_trim(texts_batch):
        x, y, w = preprocessor(texts_batch)
        # Pad to the batch's own longest text, not to max_seq_length: tweets are short.
        longest = tf.reduce_max(tf.reduce_sum(tf.cast(x["padding_mask"], tf.int32), axis=1))
        x = {k: (v if k == "mask_positions" else v[:, :longest]) for k, v in x.items()}
        return x, y, w

    return ds.map(mask_and_trim, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


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


def adapt_encoder(config, ctx, texts, vocab_texts=None):
    """Adapts `config.bert.encoder` by masked-LM pre-training, or reuses an earlier adaptation.

    Args:
        config: the resolved uda config (its adaptation, bert, numerics sections are read).
        ctx: the `runs.RunContext` (output_dir).
        texts: the corpus documents.
        vocab_texts: for `encoder=tiny` only: extra texts for its toy vocabulary (the source
            task's, so that fine-tuning sees its words).
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
        tmp = tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root)
        try:
            info = with_policy(config.numerics.precision,
                               lambda: _train(texts, vocabulary, config, tmp))
            info.update({"corpus": corpus, "identity": identity, "texts": len(texts),
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
            io_utils.atomic_write_json(os.path.join(tmp, "mlm.json"), info)
            os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the encoder from other users
            os.replace(tmp, folder)  # the folder appears complete or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    logging.info("Adapted encoder written to %s (%d steps, %.0fs, MLM loss %.3f -> %.3f)", folder,
                 info["steps"], info["train_time_s"], info["loss_first20"], info["loss_last20"])
    return AdaptedEncoder(folder, info, reused=False)


def _train(texts, vocabulary, config, out_dir):
    """Runs the masked-LM steps; saves the encoder (as a keras-hub preset) + tokenizer."""
    from empathy_tf.models import bert as bert_lib
    adaptation, options = config.adaptation, config.bert
    start = time.time()
    keras.utils.set_random_seed(0)
    tokenizer = encoders.load_tokenizer(options.encoder, vocabulary)
    encoder = encoders.load_encoder(
        options.encoder, vocabulary_size=len(tokenizer.get_vocabulary()), seed=0,
        dtype=config.numerics.precision, pooling=options.pooling, dropout=options.dropout,
        dropout_impl=options.dropout_impl, gelu_impl=options.gelu_impl,
        bias_grad_impl=options.bias_grad_impl)
    encoder.pooler.trainable = False   # the pooler gets no masked-LM gradient: no optimizer slots
    head = MaskedLMHead(encoder)
    preprocessor = make_preprocessor(tokenizer, adaptation)
    dataset = mlm_dataset(texts, preprocessor, adaptation.mlm_batch_size, seed=0)
    x, _, _ = next(iter(dataset))
    head(x)
    variables = head.trainable_variables
    steps = adaptation.mlm_steps
    schedule = WarmupLinearDecay(adaptation.mlm_learning_rate, steps, round(0.1 * steps))
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.01, epsilon=1e-6,
                                       global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])

    # One trace for every batch shape (batches are padded to their own longest text).
    signature = tf.nest.map_structure(lambda s: tf.TensorSpec([None] * s.shape.rank, s.dtype),
                                      dataset.element_spec)

    @tf.function(input_signature=signature, autograph=False)
    def train_step(x, y, w):
        with tf.GradientTape() as tape:
            logits = head(x, training=True)
            per_token = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            w = tf.cast(w, tf.float32)
            n = tf.maximum(tf.reduce_sum(w), 1.0)
            loss = tf.reduce_sum(per_token * w) / n
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
        optimizer.apply_gradients(zip(grads, variables))
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                tf.cast(y, tf.int32)), tf.float32)
        # Selectable wordpieces: all real tokens but each sequence's [CLS] and [SEP].
        real = tf.reduce_sum(tf.cast(x["padding_mask"], tf.float32))
        selectable = real - 2.0 * tf.cast(tf.shape(y)[0], tf.float32)
        return loss, tf.reduce_sum(hits * w) / n, tf.reduce_sum(w), selectable

    # The suite's loop and callbacks: the NaN stop, TensorBoard scalars (mlm/loss, mlm/accuracy,
    # mlm/learning_rate at every step) and the progress log, over one "epoch" of `steps`.
    callback_list = keras.callbacks.CallbackList(
        [keras.callbacks.TerminateOnNaN(),
         callbacks.TensorBoardScalars(os.path.join(out_dir, "tb"), every=1, prefix="mlm"),
         callbacks.ProgressLog(label="MLM ")],
        model=head, epochs=1, steps=steps, steps_per_epoch=[steps], total_steps=steps)
    losses, accuracies = [], []
    counts = {"selected": 0.0, "selectable": 0.0}
    iterator = iter(dataset)

    def train_epoch(epoch, offset):
        for _ in range(offset, steps):
            loss, acc, n_sel, n_real = (float(v) for v in train_step(*next(iterator)))
            losses.append(loss)
            accuracies.append(acc)
            counts["selected"] += n_sel
            counts["selectable"] += n_real
            yield {"loss": loss, "accuracy": acc,
                   "learning_rate": float(optimizer.learning_rate)}

    train_start = time.time()
    head.stop_training = False
    callback_list.on_train_begin()
    loop.run_epochs(head, callback_list, [steps], 0, train_epoch, lambda epoch: {},
                    "try a lower --mlm_learning_rate. Nothing was saved.")
    train_time = time.time() - train_start
    bert_lib.to_backbone(encoder).save_to_preset(out_dir)   # float32 weights, keras-hub format
    tokenizer.save_to_preset(out_dir)
    window = max(1, min(20, len(losses) // 2))  # first and last windows never overlap
    return {
        "steps": steps, "losses": losses, "accuracies": accuracies,
        "loss_first20": float(np.mean(losses[:window])),
        "loss_last20": float(np.mean(losses[-window:])),
        "accuracy_last20": float(np.mean(accuracies[-window:])),
        "selected_fraction": counts["selected"] / max(counts["selectable"], 1.0),
        "train_time_s": round(train_time, 1), "wall_time_s": round(time.time() - start, 1),
        "steps_per_second": round(steps / max(train_time, 1e-9), 3),
    }
