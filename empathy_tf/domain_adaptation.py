"""Unsupervised domain adaptation from news to health tweets (paper §6, Table 7).

Two building blocks:

- `adapt_encoder`: continues masked-LM pre-training of a BERT encoder on an unlabeled corpus with
  keras-hub's `BertMaskedLM` + `BertMaskedLMPreprocessor`. Masks are drawn inside the tf.data map, so
  a text gets a new mask every time it is seen (dynamic masking, RoBERTa-style); 15% of the
  non-special wordpieces are selected, of which 80% become [MASK], 10% a random token, 10% stay.
  Training is bounded by steps. The adapted encoder is a keras-hub preset folder
  `<output_dir>/adapted/<corpus>-<fingerprint>/` (backbone + tokenizer, plus `mlm.json` with the loss
  curve and wall time, and TensorBoard scalars `mlm/loss`, `mlm/accuracy` under `tb/`). The
  fingerprint covers the corpus texts, the encoder's files and the MLM settings; the folder is built
  in a temporary folder and renamed into place, so it exists only complete, and later runs reuse it.
  `encoders.load_bert(<folder>)` loads it like any encoder.
- `run_uda`: one Table-7 cell. Fine-tunes on the labelled SOURCE task (train split), selects the
  epoch on the source dev split, and reports the TARGET task's test split. No target label is seen
  before the final evaluation. With `corpus` set, the encoder is first adapted on that corpus.

Corpora (`corpus=`): `semeval_tweets` (SemEval-2018 E-c train tweets, labels dropped),
`carer_tweets` (CARER train texts), the paper's `empatheticdialogues`, `dailydialog`, `goemotions`,
`isear`, `health_tweets` (files under `<data_dir>/corpora/`, see data/README.md), or `text:PATH`
(one document per line).

Example:

    ctx = runner.RunContext(data_dir="../shared/data", output_dir="runs")
    adapted = adapt_encoder("semeval_tweets", ctx, MlmSpec(steps=200))
    backbone, tokenizer = encoders.load_bert(adapted.folder)
    metrics = run_uda(UdaConfig(name="pretrain_semeval_tweets", corpus="semeval_tweets"), ctx)
    metrics["target"]["test"]["f1"], metrics["source"]["test"]["f1"]
"""

import contextlib
import dataclasses
import glob
import math
import os
import re
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from empathy_tf import config as config_lib
from empathy_tf import bias, encoders, evaluation, io_utils, runner, training
from empathy_tf.config import ExperimentConfig
from empathy_tf.data import featurize, readers, tasks as tasks_lib
from empathy_tf.errors import ConfigError, DataError, TrainingDivergedError

ADAPTED_DIR = "adapted"
SMOKE_MAX_TEXTS = 48

# ---------------------------------------------------------------------------------------------
# Corpora.


@dataclasses.dataclass(frozen=True)
class NamedCorpus:
    """An external corpus expected under `<data_dir>/corpora/<name>/`."""
    name: str
    files: str          # path under <data_dir>/corpora/<name>/ (a glob for multi-file corpora)
    origin: str         # where to get it
    parse: object       # (path, text) -> list of documents


def _parse_empatheticdialogues(path, text):
    # ParlAI's reader: fields never contain commas (they are written as _comma_), so split on ",".
    docs = []
    for number, line in enumerate(text.split("\n"), start=1):
        if number == 1 or not line.strip():
            continue
        parts = line.split(",")
        if len(parts) < 6:
            raise DataError(f"{path}, line {number}: expected at least 6 comma-separated fields "
                            "(conv_id,utterance_idx,context,prompt,speaker_idx,utterance,...)")
        docs.append(parts[5].replace("_comma_", ","))
    return docs


def _parse_dailydialog(path, text):
    return [u for line in text.split("\n") for u in line.split("__eou__")]


def _parse_goemotions(path, text):
    return [line.split("\t", 1)[0] for line in text.split("\n")]


def _parse_isear(path, text):
    import csv
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return []
    delimiter = max("|,;\t", key=lines[0].count)
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip().lower() for h in rows[0]]
    column = next((c for c in ("sit", "text", "situation") if c in header), None)
    if column is None:
        raise DataError(f"{path}, line 1: no SIT (situation text) column in the header "
                        f"{rows[0][:8]}...; expected the ISEAR databank export with a SIT column")
    index = header.index(column)
    return [row[index] for row in rows[1:] if len(row) > index]


def _parse_health_tweets(path, text):
    # UCI "Health News in Twitter": tweet_id|created_at|text (the text may itself contain "|").
    return [readers.preprocess_tweet(line.split("|", 2)[2]) for line in text.split("\n")
            if line.count("|") >= 2]


NAMED_CORPORA = {
    "empatheticdialogues": NamedCorpus(
        "empatheticdialogues", "train.csv",
        "EmpatheticDialogues (Rashkin et al., ACL 2019): train.csv of "
        "https://dl.fbaipublicfiles.com/parlai/empatheticdialogues/empatheticdialogues.tar.gz "
        "(CC BY-NC 4.0)", _parse_empatheticdialogues),
    "dailydialog": NamedCorpus(
        "dailydialog", "dialogues_text.txt",
        "DailyDialog (Li et al., IJCNLP 2017): ijcnlp_dailydialog/dialogues_text.txt of "
        "http://yanran.li/files/ijcnlp_dailydialog.zip (CC BY-NC-SA 4.0)", _parse_dailydialog),
    "goemotions": NamedCorpus(
        "goemotions", "train.tsv",
        "GoEmotions (Demszky et al., ACL 2020): data/train.tsv of "
        "https://github.com/google-research/google-research/tree/master/goemotions (Apache 2.0)",
        _parse_goemotions),
    "isear": NamedCorpus(
        "isear", "isear.csv",
        "ISEAR (Scherer & Wallbott 1994): the databank exported to CSV with its SIT column, from "
        "https://www.unige.ch/cisa/research/materials-and-online-research/research-material/",
        _parse_isear),
    "health_tweets": NamedCorpus(
        "health_tweets", "Health-Tweets/*.txt",
        "Health News in Twitter (Karami et al. 2017), UCI Machine Learning Repository: "
        "https://archive.ics.uci.edu/dataset/438/health+news+in+twitter (unzip Health-Tweets/)",
        _parse_health_tweets),
}
BUILTIN_CORPORA = {"semeval_tweets": ("semeval2018_ec", "train"), "carer_tweets": ("carer", "train")}


def corpus_names():
    return sorted(BUILTIN_CORPORA) + sorted(NAMED_CORPORA) + ["text:PATH"]


def corpus_slug(corpus):
    if corpus.startswith("text:"):
        return "text-" + re.sub(r"[^A-Za-z0-9_.-]", "_",
                                os.path.splitext(os.path.basename(corpus[5:]))[0])
    return corpus


def _read_corpus_file(path, what):
    return readers.read_text(path, what).replace("\r\n", "\n")


def check_corpus_name(corpus):
    if not (corpus in BUILTIN_CORPORA or corpus in NAMED_CORPORA or corpus.startswith("text:")):
        raise ConfigError(f"unknown MLM corpus {corpus!r}; valid: {', '.join(corpus_names())}")


def _clean(docs):
    return [d.strip() for d in docs if d and d.strip()]


def load_corpus(corpus, data_dir, tfds_dir=None):
    """The documents of an MLM corpus, in file order, blank ones dropped.

    Raises:
        ConfigError: unknown corpus name.
        DataError: a missing or unreadable file (the message names the expected path and the
            corpus's origin).
    """
    check_corpus_name(corpus)
    if corpus.startswith("text:"):
        path = os.path.abspath(os.path.expanduser(corpus[5:]))
        docs = _clean(_read_corpus_file(path, "MLM corpus text:PATH, one document per line").split("\n"))
    elif corpus in BUILTIN_CORPORA:
        from empathy_tf.data import builders
        dataset, split = BUILTIN_CORPORA[corpus]
        _, splits = builders.load_dataset(dataset, data_dir, tfds_dir=tfds_dir)
        docs = _clean(splits[split].texts)  # labels are ignored: the text is unlabeled data here
    else:
        spec = NAMED_CORPORA[corpus]
        folder = os.path.join(os.path.abspath(os.path.expanduser(data_dir)), "corpora", corpus)
        plain = os.path.join(folder, "corpus.txt")
        if os.path.isfile(plain):  # the format-free alternative, one document per line
            docs = _clean(_read_corpus_file(plain, f"MLM corpus {corpus!r}").split("\n"))
        else:
            pattern = os.path.join(folder, spec.files)
            paths = sorted(glob.glob(pattern))
            if not paths:
                raise DataError(
                    f"{pattern}: file not found (MLM corpus {corpus!r}). To obtain it: "
                    f"{spec.origin}. Alternatively put one document per line in {plain}. "
                    "See data/README.md, section 'Corpora for masked-LM pre-training'.")
            docs = []
            for path in paths:
                docs.extend(spec.parse(path, _read_corpus_file(path, f"MLM corpus {corpus!r}")))
            docs = _clean(docs)
    if not docs:
        raise DataError(f"MLM corpus {corpus!r} has no non-blank document")
    return docs


# ---------------------------------------------------------------------------------------------
# Masked-LM pre-training.


@dataclasses.dataclass(frozen=True)
class MlmSpec:
    """Masked-LM settings; all of them are part of the adapted encoder's fingerprint."""
    steps: int = 300                # bounded by steps, not epochs (CPU budget)
    batch_size: int = 32
    max_seq_length: int = 64        # tweets: 64 wordpieces hold nearly all of them
    learning_rate: float = 1e-4     # higher than fine-tuning: the MLM head starts from scratch
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    mask_rate: float = 0.15
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1
    max_texts: int = 0              # 0: the whole corpus
    seed: int = 0                   # fixed, not the fine-tuning seed: one adaptation per corpus
    precision: str = "auto"
    bias_grad_impl: str = "float32" # float32 (see bias.py) | keras (TensorFlow's bfloat16 sums)

    def validate(self):
        for field in ("steps", "batch_size"):
            if getattr(self, field) < 1:
                raise ConfigError(f"mlm_{field} must be >= 1, got {getattr(self, field)}")
        if self.max_seq_length < 8:
            raise ConfigError(f"mlm_max_seq_length must be >= 8, got {self.max_seq_length}")
        if not 0.0 < self.mask_rate < 1.0:
            raise ConfigError(f"mlm_mask_rate must be in (0, 1), got {self.mask_rate}")
        if self.mask_token_rate + self.random_token_rate > 1.0:
            raise ConfigError("mask_token_rate + random_token_rate must be <= 1")
        if not 0.0 < self.learning_rate < 1.0:
            raise ConfigError(f"mlm_learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.precision not in config_lib.PRECISIONS:
            raise ConfigError(f"precision={self.precision!r}; expected one of {config_lib.PRECISIONS}")
        if self.bias_grad_impl not in config_lib.BIAS_GRAD_IMPLS:
            raise ConfigError(f"mlm_bias_grad_impl={self.bias_grad_impl!r}; expected one of "
                              f"{config_lib.BIAS_GRAD_IMPLS}")
        return self


def smoke_mlm_spec(spec):
    return dataclasses.replace(spec, steps=min(spec.steps, 6), batch_size=8, max_seq_length=32,
                               max_texts=SMOKE_MAX_TEXTS, learning_rate=1e-3)


def make_preprocessor(tokenizer, spec):
    """keras-hub's MLM preprocessor: pack [CLS] text [SEP], select and replace wordpieces."""
    import keras_hub
    # keras-hub selects ceil(rate * selectable) positions per sequence, capped at this length.
    selection_length = max(1, math.ceil(spec.mask_rate * spec.max_seq_length) + 1)
    return keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer, sequence_length=spec.max_seq_length, mask_selection_rate=spec.mask_rate,
        mask_selection_length=selection_length, mask_token_rate=spec.mask_token_rate,
        random_token_rate=spec.random_token_rate)


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


@dataclasses.dataclass
class AdaptedEncoder:
    folder: str         # keras-hub preset folder; pass it as ExperimentConfig.encoder
    info: dict          # the folder's mlm.json
    reused: bool        # True: found complete on disk, no training happened
    backbone: object = None  # the trained backbone (only when trained in this call)


def _encoder_identity(encoder, vocabulary):
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


def _fingerprint(texts, encoder, vocabulary, spec, precision):
    return io_utils.fingerprint("mlm-v1", list(texts), _encoder_identity(encoder, vocabulary),
                                dataclasses.asdict(spec), precision)


def _load_base(encoder, vocabulary, seed, precision):
    if encoder == "tiny":
        return encoders.tiny_bert(vocabulary, seed=seed)
    return encoders.load_bert(encoder, dtype=precision)


def adapt_encoder(corpus, ctx, spec=MlmSpec(), encoder=encoders.DEFAULT_ENCODER, texts=None,
                  vocab_texts=None):
    """Adapts `encoder` by masked-LM pre-training on `corpus`, or reuses an earlier adaptation.

    Args:
        corpus: a corpus name (see `corpus_names()`), used for loading and for the folder name.
        ctx: a `runner.RunContext` (data_dir, tfds_dir, output_dir).
        spec: the `MlmSpec`.
        encoder: the base encoder spec (`minilm`, a folder, a preset name, or `tiny`).
        texts: the documents, if already loaded (else `load_corpus`).
        vocab_texts: for `encoder="tiny"` only: extra texts for its toy vocabulary (e.g. the
            source task's, so that fine-tuning sees its words).

    Returns:
        An `AdaptedEncoder`; `.folder` is loadable by `encoders.load_bert`.
    """
    spec = spec.validate()
    texts = list(texts) if texts is not None else load_corpus(corpus, ctx.data_dir, ctx.tfds_dir)
    if spec.max_texts and len(texts) > spec.max_texts:
        keep = np.sort(np.random.default_rng(spec.seed).choice(len(texts), spec.max_texts, False))
        texts = [texts[i] for i in keep]
    precision = config_lib.resolve_precision(spec.precision)
    vocabulary = (encoders.toy_vocabulary(list(texts) + list(vocab_texts or []))
                  if encoder == "tiny" else None)
    key = f"{corpus_slug(corpus)}-{_fingerprint(texts, encoder, vocabulary, spec, precision)}"
    root = os.path.join(ctx.output_dir, ADAPTED_DIR)
    folder = os.path.join(root, key)
    info_path = os.path.join(folder, "mlm.json")
    if os.path.exists(info_path):
        logging.info("Reusing the adapted encoder %s", folder)
        return AdaptedEncoder(folder, io_utils.read_json(info_path), reused=True)
    with io_utils.folder_lock(os.path.join(root, ".locks", key)):
        if os.path.exists(info_path):  # another process finished it while we waited
            return AdaptedEncoder(folder, io_utils.read_json(info_path), reused=True)
        tmp = tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root)
        try:
            backbone, info = _train_mlm(texts, encoder, vocabulary, spec, precision, tmp)
            info.update({"corpus": corpus, "fingerprint": key.rsplit("-", 1)[1],
                         "encoder": encoder, "spec": dataclasses.asdict(spec),
                         "precision": precision, "texts": len(texts),
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
            io_utils.atomic_write_json(os.path.join(tmp, "mlm.json"), info)
            os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the encoder from other users
            os.replace(tmp, folder)  # the folder appears complete or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    logging.info("Adapted encoder written to %s (%d steps, %.0fs, MLM loss %.3f -> %.3f)", folder,
                 info["steps"], info["train_time_s"], info["loss_first20"], info["loss_last20"])
    return AdaptedEncoder(folder, info, reused=False, backbone=backbone)


def _train_mlm(texts, encoder, vocabulary, spec, precision, out_dir):
    """Runs `spec.steps` MLM steps; saves the backbone + tokenizer preset into `out_dir`."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(precision)
    try:
        return _train_mlm_under_policy(texts, encoder, vocabulary, spec, precision, out_dir)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _train_mlm_under_policy(texts, encoder, vocabulary, spec, precision, out_dir):
    import keras_hub
    start = time.time()
    keras.utils.set_random_seed(spec.seed)
    backbone, tokenizer = _load_base(encoder, vocabulary, spec.seed, precision)
    masked_lm = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    if spec.bias_grad_impl == "float32":
        bias.use_float32_bias_grad(masked_lm)
    with contextlib.suppress(ValueError):  # the pooler gets no MLM gradient: no optimizer slots
        backbone.get_layer("pooled_dense").trainable = False
    preprocessor = make_preprocessor(tokenizer, spec)
    dataset = mlm_dataset(texts, preprocessor, spec.batch_size, spec.seed)

    schedule = training.WarmupLinearDecay(spec.learning_rate, spec.steps,
                                          round(spec.warmup_fraction * spec.steps))
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=spec.weight_decay, epsilon=1e-6,
                                       global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])

    # One trace for every batch shape (batches are padded to their own longest text).
    signature = tf.nest.map_structure(lambda s: tf.TensorSpec([None] * s.shape.rank, s.dtype),
                                      dataset.element_spec)

    @tf.function(input_signature=signature)
    def train_step(x, y, w):
        with tf.GradientTape() as tape:
            logits = tf.cast(masked_lm(x, training=True), tf.float32)
            per_token = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            w = tf.cast(w, tf.float32)
            n = tf.maximum(tf.reduce_sum(w), 1.0)
            loss = tf.reduce_sum(per_token * w) / n
        grads = tape.gradient(loss, masked_lm.trainable_variables)
        optimizer.apply_gradients(zip(grads, masked_lm.trainable_variables))
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                tf.cast(y, tf.int32)), tf.float32)
        # Selectable wordpieces: all real tokens but each sequence's [CLS] and [SEP].
        real = tf.reduce_sum(tf.cast(x["padding_mask"], tf.float32))
        selectable = real - 2.0 * tf.cast(tf.shape(y)[0], tf.float32)
        return loss, tf.reduce_sum(hits * w) / n, tf.reduce_sum(w), selectable

    writer = tf.summary.create_file_writer(os.path.join(out_dir, "tb"))
    losses, accuracies = [], []
    selected = selectable = 0.0
    iterator = iter(dataset)
    train_start = time.time()
    for step in range(1, spec.steps + 1):
        x, y, w = next(iterator)
        loss, acc, n_sel, n_real = (float(v) for v in train_step(x, y, w))
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"MLM loss became {loss} at step {step}; try a lower "
                                        "mlm_learning_rate. Nothing was saved.")
        losses.append(loss)
        accuracies.append(acc)
        selected += n_sel
        selectable += n_real
        with writer.as_default(step=step):
            tf.summary.scalar("mlm/loss", loss)
            tf.summary.scalar("mlm/accuracy", acc)
            tf.summary.scalar("mlm/learning_rate", float(schedule(step)))
        if step % 20 == 0 or step == spec.steps:
            rate = step / max(time.time() - train_start, 1e-9)
            logging.info("MLM step %d/%d  loss %.4f  acc %.3f  %.2f steps/s  ETA %.0fs", step,
                         spec.steps, np.mean(losses[-20:]), np.mean(accuracies[-20:]), rate,
                         (spec.steps - step) / max(rate, 1e-9))
    writer.flush()
    writer.close()
    train_time = time.time() - train_start

    # Saved in float32 whatever the training precision, so loading needs no dtype argument.
    if backbone.dtype_policy.name != "float32":
        saved = keras_hub.models.BertBackbone.from_config({**backbone.get_config(),
                                                           "dtype": "float32"})
        saved.set_weights(backbone.get_weights())
    else:
        saved = backbone
    saved.save_to_preset(out_dir)
    tokenizer.save_to_preset(out_dir)
    window = max(1, min(20, len(losses) // 2))  # first and last windows never overlap
    return backbone, {
        "steps": spec.steps, "losses": losses, "accuracies": accuracies,
        "loss_first20": float(np.mean(losses[:window])),
        "loss_last20": float(np.mean(losses[-window:])),
        "accuracy_last20": float(np.mean(accuracies[-window:])),
        "selected_fraction": selected / max(selectable, 1.0),
        "train_time_s": round(train_time, 1), "wall_time_s": round(time.time() - start, 1),
        "steps_per_second": round(spec.steps / max(train_time, 1e-9), 3),
    }


# ---------------------------------------------------------------------------------------------
# Source -> target runs.

FINETUNE = dict(epochs=3, batch_size=16, learning_rate=5e-5, max_seq_length=256, dropout=0.1)


@dataclasses.dataclass(frozen=True)
class UdaConfig:
    """One Table-7 cell: fine-tune on `finetune.dataset` (source), test on `target`.

    `finetune.encoder` is the base encoder; with `corpus` set it is first adapted by MLM.
    """
    name: str = "source_only"
    finetune: ExperimentConfig = ExperimentConfig(name="uda", **FINETUNE)
    target: str = "twittemp"
    corpus: str = ""                # "" = no pre-training (source_only)
    mlm: MlmSpec = MlmSpec()

    @property
    def source(self):
        return self.finetune.dataset

    @property
    def seed(self):
        return self.finetune.seed

    @property
    def smoke(self):
        return self.finetune.smoke

    def validate(self):
        self.finetune.validate()
        self.mlm.validate()
        if self.finetune.method != "single" or self.finetune.aux_tasks:
            raise ConfigError("domain adaptation fine-tunes a single-task BERT model (method single)")
        if self.corpus:
            check_corpus_name(self.corpus)
        source, target = tasks_lib.get_task(self.source), tasks_lib.get_task(self.target)
        if source.name == target.name:
            raise ConfigError(f"source and target are both {source.name!r}; that is target_only")
        if (source.num_classes, source.positive_class, source.multi_label) != (
                target.num_classes, target.positive_class, target.multi_label):
            raise ConfigError(f"source {source.name} ({source.label_names}) and target "
                              f"{target.name} ({target.label_names}) have different label sets")
        return self


def smoke_uda_config(config):
    """The same cell in seconds: tiny encoder, a few dozen examples and texts, a few MLM steps."""
    return dataclasses.replace(config, finetune=runner.smoke_config(config.finetune),
                               mlm=smoke_mlm_spec(config.mlm))


def run_dir_for(config, ctx):
    name = config.name + ("-smoke" if config.smoke else "")
    return os.path.join(ctx.output_dir, name, f"{runner.dataset_slug(config.source)}-to-"
                        f"{runner.dataset_slug(config.target)}", f"seed{config.seed}")


def load_source_target(config, ctx):
    """Source and target TaskData with the runner's seeded splits (and smoke shrinking)."""
    source = runner.load_tasks(dataclasses.replace(config.finetune, aux_tasks=()), ctx)[0]
    # The same split (and smoke shrink) as `target_only`, i.e. the `bert` run on the target.
    target = runner.load_tasks(dataclasses.replace(config.finetune, dataset=config.target,
                                                   aux_tasks=()), ctx)[0]
    return source, target


def run_uda(config, ctx):
    """Runs one source→target cell into its run folder; returns (and writes) its metrics.

    The run folder follows runner's conventions (config.json, split.json, tb/, best.weights.h5,
    predictions.npz of the TARGET test split, metrics.json last); a finished cell is reused.
    """
    config = config.validate()
    run_dir = run_dir_for(config, ctx)
    finished = runner.check_existing(run_dir, config, ctx)
    if finished is not None and finished is not runner.REPLACE:
        return finished
    # Load (and so validate) all input before touching the run folder: bad input loses nothing.
    corpus_texts = load_corpus(config.corpus, ctx.data_dir, ctx.tfds_dir) if config.corpus else None
    source, target = load_source_target(config, ctx)
    if finished is runner.REPLACE:  # --overwrite: the earlier run is kept, renamed
        runner.move_aside(run_dir)
    with io_utils.folder_lock(run_dir):
        start = time.time()
        io_utils.atomic_write_json(os.path.join(run_dir, "config.json"), {
            "config": dataclasses.asdict(config), "data_dir": os.path.abspath(ctx.data_dir),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        io_utils.atomic_write_json(os.path.join(run_dir, "split.json"), {
            source.task.name: {"role": "source: train, epoch selection on dev",
                               "official_split": source.official_split, **source.split_ids()},
            target.task.name: {"role": "target: test only (no label used before testing)",
                               "official_split": target.official_split, **target.split_ids()}})
        finetune = dataclasses.replace(config.finetune, name=config.name)
        mlm_info = None
        if config.corpus:
            adapted = adapt_encoder(config.corpus, ctx, config.mlm, encoder=config.finetune.encoder,
                                    texts=corpus_texts, vocab_texts=source.train.texts)
            finetune = dataclasses.replace(finetune, encoder=adapted.folder)
            mlm_info = {k: v for k, v in adapted.info.items() if k not in ("losses", "accuracies")}
            mlm_info.update({"folder": adapted.folder, "reused": adapted.reused})
        runner.write_hparams(finetune, run_dir)
        # Only the source task goes in: its train split trains, its dev split selects the epoch.
        model, featurized, result, per_task, _ = runner.train_and_evaluate(
            finetune, [source], run_dir, ctx)
        target_tokens = featurize.tokenize_cached(featurized.featurizer, target.test.texts,
                                                  ctx.cache_dir)
        probs = training.predict_probs(model, target_tokens, 0, pad_id=featurized.pad_id)
        target_test = evaluation.classification_metrics(
            target.test.labels, probs, target.task.positive_class, target.task.multi_label)
        io_utils.atomic_save_npz(os.path.join(run_dir, "predictions.npz"), ids=target.test.ids,
                                 labels=target.test.labels, probs=probs)
        metrics = {
            "test": target_test,  # the reported numbers (what tables and the CLI read)
            "target": {"task": target.task.name, "test": target_test},
            "source": {"task": source.task.name, **per_task[source.task.name]},
            "best_epoch": result.best_epoch + 1,
            "history": result.history,
            "train": {"steps": result.total_steps, "train_time_s": round(result.wall_time_s, 1),
                      "examples": {source.task.name: len(source.train)}},
            "mlm": mlm_info,
            "encoder": finetune.encoder,
            "base_encoder": config.finetune.encoder,
            "selection": f"{config.finetune.selection} on {source.task.name} dev",
            "precision": config_lib.resolve_precision(config.finetune.precision),
            "experiment": config.name, "dataset": target.task.name,
            "source_dataset": source.task.name, "seed": config.seed, "method": "uda",
            "wall_time_s": round(time.time() - start, 1),
        }
        io_utils.atomic_write_json(os.path.join(run_dir, "metrics.json"), metrics)
        runner.remove_checkpoints(run_dir)
    logging.info("%s: target test %s", run_dir,
                 {k: round(v, 4) for k, v in target_test.items() if isinstance(v, float)})
    return metrics
