"""Runs one experiment cell (experiment × dataset × seed) into its own run folder.

A run folder holds `config.json`, `split.json` (example ids of each split), TensorBoard logs under
`tb/`, checkpoints while training, `best.weights.h5`, `predictions.npz` and finally `metrics.json`,
which is written last and atomically: its presence means the cell finished. Rerunning a finished
cell returns its metrics without training; rerunning an unfinished one resumes it; a different
config in the same folder is refused unless `overwrite`, which moves the old folder aside.

Example:

    ctx = RunContext(data_dir="../shared/data", output_dir="runs")
    metrics = run_experiment(ExperimentConfig(name="bert", dataset="newsemp"), ctx)
    metrics["test"]["f1"]
"""

import dataclasses
import os
import re
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from empathy_tf import config as config_lib
from empathy_tf import bias, dropout, encoders, evaluation, gelu, io_utils, training
from empathy_tf.data import featurize, pipeline, tasks as tasks_lib
from empathy_tf.errors import ConfigError, DataError
from empathy_tf.models import HeadSpec, MultiTaskClassifier

SMOKE_SIZES = {"train": 48, "dev": 24, "test": 24}
AUX_CAP_SEED = 0  # auxiliary data does not depend on the run seed, so aux teachers are shared


@dataclasses.dataclass(frozen=True)
class RunContext:
    data_dir: str
    output_dir: str = "runs"
    tfds_dir: str | None = None
    overwrite: bool = False

    @property
    def cache_dir(self):
        return os.path.join(self.output_dir, ".cache")


def dataset_slug(name):
    if name.startswith("csv:"):
        return "csv-" + re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.splitext(os.path.basename(name[4:]))[0])
    return name


def run_dir_for(config, ctx):
    name = config.name + ("-smoke" if config.smoke else "")
    return os.path.join(ctx.output_dir, name, dataset_slug(config.dataset), f"seed{config.seed}")


def smoke_config(config):
    """The same experiment, shrunk to run in seconds (see SMOKE_SIZES for the data)."""
    changes = {"smoke": True, "epochs": 1, "teacher_epochs": 1, "batch_size": 8,
               "max_seq_length": 64}
    if config.method in config_lib.BERT_METHODS:
        changes["encoder"] = "tiny"
    return dataclasses.replace(config, **changes)


def load_tasks(config, ctx):
    """The target task (seeded split) and the auxiliary tasks (fixed data, capped)."""
    names = [config.dataset, *config.resolved_aux_tasks()]
    datas = []
    for i, name in enumerate(names):
        task = tasks_lib.get_task(name)
        data = tasks_lib.load_task_data(task, ctx.data_dir, seed=config.seed if i == 0 else
                                        AUX_CAP_SEED, tfds_dir=ctx.tfds_dir)
        if i > 0 and config.aux_cap:
            data.train = tasks_lib.cap_split(data.train, config.aux_cap, AUX_CAP_SEED)
        if config.smoke:
            for split, n in SMOKE_SIZES.items():
                setattr(data, split, tasks_lib.cap_split(getattr(data, split), n, AUX_CAP_SEED))
        datas.append(data)
    return datas


class Featurized:
    """Tokens of every split of every task, plus what is needed to rebuild the model."""

    def __init__(self, config, datas, ctx):
        self.config = config
        if config.method == "glove":
            self.featurizer = featurize.WordFeaturizer(datas[0].train.texts)
            self.pad_id = 0
            self.vocabulary = self.featurizer.vocabulary
        else:
            vocab_texts = [t for d in datas for t in d.train.texts] if config.encoder == "tiny" else None
            tokenizer = encoders.load_tokenizer(config.encoder, vocab_texts)
            self.featurizer = featurize.WordPieceFeaturizer(tokenizer, config.max_seq_length)
            self.pad_id = self.featurizer.pad_id
            self.vocabulary = tokenizer.get_vocabulary()
        self.tokens = [{split: featurize.tokenize_cached(self.featurizer, getattr(d, split).texts,
                                                         ctx.cache_dir)
                        for split in ("train", "dev", "test")} for d in datas]


def head_specs(datas):
    return [HeadSpec(d.task.name, d.task.num_classes, d.task.multi_label) for d in datas]


def build_model(config, featurized, heads):
    """Encoder + heads, created under the current strategy scope, at the config's precision.

    Layers capture the dtype policy when they are built, so the global policy is set only for
    the duration of the build and restored afterwards (no leaking into later models or tests).
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(config_lib.resolve_precision(config.precision))
    try:
        return _build_model(config, featurized, heads)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _build_model(config, featurized, heads):
    precision = config_lib.resolve_precision(config.precision)
    keras.utils.set_random_seed(config.seed)
    if config.method == "glove":
        from baselines import encoders as glove_encoders, glove
        vectors = glove.load_word_vectors(config.glove_path or None)
        matrix, found = glove.build_embedding_matrix(featurized.vocabulary, vectors, config.seed)
        logging.info("GloVe: %d of %d vocabulary words found", found, len(featurized.vocabulary))
        encoder = glove_encoders.build_glove_encoder(
            config.glove_kind, matrix, config.trainable_embeddings, config.hidden_units,
            dropout=0.5, seed=config.seed)
        max_norm = glove_encoders.MAX_NORM.get(config.glove_kind)
        model = MultiTaskClassifier(encoder, heads, dropout=0.0, head_max_norm=max_norm,
                                    seed=config.seed)
    else:
        if config.encoder == "tiny":
            backbone = encoders.tiny_bert(featurized.vocabulary, seed=config.seed)[0]
        else:
            backbone = encoders.load_bert(config.encoder, dtype=precision)[0]
        encoder = encoders.BertEncoder(backbone, pooling=config.pooling)
        model = MultiTaskClassifier(encoder, heads, dropout=config.dropout, seed=config.seed)
        if config.dropout_impl == "hash":
            dropout.use_hash_dropout(model)
        if config.gelu_impl == "fused":
            gelu.use_fused_gelu(model)
        if config.bias_grad_impl == "float32":
            bias.use_float32_bias_grad(model)
    dummy = {"token_ids": tf.zeros([2, 8], tf.int32), "padding_mask": tf.ones([2, 8], tf.bool)}
    model(dummy)
    return model


def train_spec(config):
    glove = config.method == "glove"
    return training.TrainSpec(
        epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        optimizer="adam" if glove else "adamw", warmup_fraction=config.warmup_fraction,
        weight_decay=config.weight_decay,
        annealing=config.annealing if config.method == "kd" else "gold",
        annealing_constant=config.annealing_constant, sampling=config.sampling,
        sampling_alpha=config.sampling_alpha, seed=config.seed, selection=config.selection,
        # Workers of a multi-worker run must checkpoint at the same steps: count steps there.
        checkpoint_every=config.checkpoint_every or (200 if config.strategy == "multi_worker" else 0),
        checkpoint_seconds=config.checkpoint_seconds,
        xla=config_lib.resolve_xla(config.xla, config.strategy),
        precision=config_lib.resolve_precision(config.precision))


def train_and_evaluate(config, datas, run_dir, ctx, teacher_probs=None):
    """Trains one (multi-task) model; returns (model, featurized, fit result, per-task metrics)."""
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = training.make_strategy(config.strategy)
    featurized = Featurized(config, datas, ctx)
    heads = head_specs(datas)
    parts = []
    for t, data in enumerate(datas):
        gold = pipeline.one_hot_targets(data.train.labels, heads[t].num_classes, heads[t].multi_label)
        teacher = None if teacher_probs is None else teacher_probs[t]
        parts.append((featurized.tokens[t]["train"], gold, teacher))
    table = pipeline.ExampleTable.build(parts, [h.num_classes for h in heads])
    eval_sets = [training.EvalSet(t, d.task.name, featurized.tokens[t]["dev"], d.dev.labels,
                                  d.task.positive_class, d.task.multi_label)
                 for t, d in enumerate(datas)]
    with strategy.scope():
        model = build_model(config, featurized, heads)
    result = training.fit(model, heads, table, eval_sets, train_spec(config), strategy, run_dir,
                          pad_id=featurized.pad_id)
    per_task = {}
    predict_fn = training.make_predict_fn(model)
    test_probs = None
    for t, data in enumerate(datas):
        per_task[data.task.name] = {}
        for split in ("dev", "test"):
            probs = training.predict_probs(model, featurized.tokens[t][split], t,
                                           pad_id=featurized.pad_id, predict_fn=predict_fn)
            per_task[data.task.name][split] = evaluation.classification_metrics(
                getattr(data, split).labels, probs, data.task.positive_class, data.task.multi_label)
            if t == 0 and split == "test":
                test_probs = probs
    return model, featurized, result, per_task, test_probs


# ---------------------------------------------------------------------------------------------
# Run folders.

def _comparable(config_dict):
    # Fields that change how a run is executed, not what it computes.
    return {k: v for k, v in config_dict.items()
            if k not in ("strategy", "checkpoint_every", "checkpoint_seconds")}


def check_existing(run_dir, config, ctx):
    """Returns finished metrics to reuse, or None to (re)start; refuses to clobber other configs."""
    config_path = os.path.join(run_dir, "config.json")
    metrics_path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(config_path):
        return None
    recorded = io_utils.read_json(config_path)
    # A field added after the run was made counts as its default (runs stay reusable), unless
    # runs before it were made differently (config.BEFORE_FIELD_EXISTED).
    defaults = io_utils.json_roundtrip({
        f.name: dataclasses.asdict(f.default) if dataclasses.is_dataclass(f.default) else f.default
        for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING})
    defaults.update(config_lib.values_before_fields_existed(recorded["config"].get("method")))
    old = dict(_comparable({**defaults, **recorded["config"]}), data_dir=recorded.get("data_dir"))
    new = dict(_comparable(io_utils.json_roundtrip(config_lib.to_dict(config))),
               data_dir=os.path.abspath(ctx.data_dir))
    differences = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    same = not differences
    if same and not ctx.overwrite:
        if os.path.exists(metrics_path):
            logging.info("%s already finished; reusing its metrics (--overwrite to redo)", run_dir)
            return io_utils.read_json(metrics_path)
        return None  # unfinished: resume
    if not ctx.overwrite:
        raise ConfigError(
            f"{run_dir} holds a run with a different config or --data_dir "
            f"({', '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in differences)}); pass --overwrite to move it aside "
            "(it is kept, renamed), or choose another --output_dir")
    return REPLACE


REPLACE = object()  # sentinel: the earlier run is to be moved aside once the new input is valid


def move_aside(run_dir):
    aside = f"{run_dir}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    os.replace(run_dir, aside)
    logging.warning("moved the earlier run %s aside to %s", run_dir, aside)


def run_experiment(config, ctx):
    """Runs one cell; returns its metrics dict (also written to <run dir>/metrics.json)."""
    config = config.validate()
    if not training.is_chief_process():
        # A non-chief worker runs the same steps (collectives need it) in a folder of its own.
        ctx = dataclasses.replace(ctx, output_dir=os.path.join(
            ctx.output_dir, f".worker-{training.worker_index()}"))
    run_dir = run_dir_for(config, ctx)
    finished = check_existing(run_dir, config, ctx)
    if finished is not None and finished is not REPLACE:
        return finished
    # Load (and so validate) the data before touching the run folder: bad input loses nothing.
    datas = load_tasks(config, ctx)
    if finished is REPLACE:
        move_aside(run_dir)
    with io_utils.folder_lock(run_dir):
        start = time.time()
        io_utils.atomic_write_json(os.path.join(run_dir, "config.json"), {
            "config": config_lib.to_dict(config), "data_dir": os.path.abspath(ctx.data_dir),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        if config.method in ("tfidf", "all_positive"):
            from empathy_tf import sklearn_runs
            metrics = sklearn_runs.run(config, datas[0], run_dir)
        else:
            metrics = _run_neural(config, ctx, run_dir, datas)
        metrics["wall_time_s"] = round(time.time() - start, 1)
        metrics.update({"experiment": config.name, "dataset": config.dataset, "seed": config.seed,
                        "method": config.method})
        io_utils.atomic_write_json(os.path.join(run_dir, "metrics.json"), metrics)
        remove_checkpoints(run_dir)
    logging.info("%s: test %s", run_dir, {k: round(v, 4) for k, v in metrics["test"].items()
                                           if isinstance(v, float)})
    return metrics


def remove_checkpoints(run_dir):
    """Drops resume state once a run is finished: best.weights.h5 is what later use needs."""
    for name in os.listdir(run_dir):
        if name == "checkpoints":
            shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)


def _run_neural(config, ctx, run_dir, datas):
    io_utils.atomic_write_json(os.path.join(run_dir, "split.json"), {
        d.task.name: {"official_split": d.official_split, **d.split_ids()} for d in datas})
    write_hparams(config, run_dir)
    teacher_info = None
    teacher_probs = None
    teachers_start = time.time()
    if config.method == "kd":
        from empathy_tf.distillation import teachers
        teacher_probs, teacher_info = teachers.teacher_predictions(config, datas, ctx)
    teachers_s = time.time() - teachers_start
    model, featurized, result, per_task, test_probs = train_and_evaluate(
        config, datas, run_dir, ctx, teacher_probs)
    target = datas[0]
    io_utils.atomic_save_npz(os.path.join(run_dir, "predictions.npz"), ids=target.test.ids,
                             labels=target.test.labels, probs=test_probs)
    io_utils.atomic_write_text(os.path.join(run_dir, "vocab.txt"), "\n".join(featurized.vocabulary))
    # What inference needs to rebuild the featurizer and heads without the training data.
    io_utils.atomic_write_json(os.path.join(run_dir, "model.json"), {
        "lowercase": bool(getattr(getattr(featurized.featurizer, "tokenizer", None), "lowercase", True)),
        "heads": [{"name": d.task.name, "label_names": list(d.task.label_names),
                   "multi_label": d.task.multi_label, "positive_class": d.task.positive_class}
                  for d in datas]})
    return {
        "dev": per_task[target.task.name]["dev"],
        "test": per_task[target.task.name]["test"],
        "tasks": per_task,
        "best_epoch": result.best_epoch + 1,
        "history": result.history,
        "train": {"steps": result.total_steps, "steps_per_second": round(result.steps_per_second, 3),
                  "padding_efficiency": round(result.padding_efficiency, 4),
                  "train_time_s": round(result.wall_time_s, 1),
                  "examples": {d.task.name: len(d.train) for d in datas}},
        # Teachers trained (or read from the cache) by this run, then the student's training.
        "timing": {"teachers_s": round(teachers_s, 1), "student_train_s": round(result.wall_time_s, 1)},
        "teachers": teacher_info,
        "encoder": config.encoder if config.method != "glove" else f"glove:{config.glove_path or '6B.50d'}",
        "emotion_dataset": config.emotion_dataset if "emotion" in config.aux_tasks else None,
        "selection": config.selection,
        "precision": config_lib.resolve_precision(config.precision),
        "xla": config_lib.resolve_xla(config.xla, config.strategy),
    }


def write_hparams(config, run_dir):
    from tensorboard.plugins.hparams import api as hp
    values = {k: (v if isinstance(v, (bool, int, float, str)) else ",".join(map(str, v)))
              for k, v in config_lib.to_dict(config).items()}
    with tf.summary.create_file_writer(os.path.join(run_dir, "tb")).as_default():
        hp.hparams(values, trial_id=os.path.relpath(run_dir))
