"""What every method with a Keras model shares: tokenize, build, fit, evaluate, save, reload.

A neural method trains a `MultiTaskClassifier` (one shared encoder, one head per task) with the one
training loop (training/loop.py) on the one loss (training/losses.py). Subclasses say how texts
become ids (`make_preprocessor`), which encoder reads them (`build_encoder`), and optionally where
teacher targets come from (`teacher_targets`, distillation) and which Keras callbacks the loop
runs (`callbacks`; `TeacherAnnealing` for distillation). `train(..., callbacks=[...])` adds a
caller's own `keras.callbacks.Callback`s after them.

A finished run folder holds what `load_model` needs to rebuild the trained model without the
training data or the pretrained checkpoint: `model.json` (encoder architecture, heads),
`preprocessor.json` + `vocab.txt`, `best.weights.h5`.

Example:

    method = methods.get("single")
    model, preprocessor, heads = method.load_model("runs/bert/newsemp/seed0", precision="float32")
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from empathy_tf import io_utils
from empathy_tf.config import ExperimentConfig
from empathy_tf.data import batching, preprocessor as preprocessor_lib
from empathy_tf.errors import ConfigError
from empathy_tf.eval import metrics as metrics_lib
from empathy_tf.methods.base import Method
from empathy_tf.training.losses import MultiTaskLoss
from empathy_tf.models.classifier import HeadSpec, MultiTaskClassifier
from empathy_tf.training import loop, predict as predict_lib
from empathy_tf.training.strategy import make_strategy

SPLITS = ("train", "dev", "test")


@dataclasses.dataclass
class Trained:
    """A trained model and what it was trained on."""
    model: object
    preprocessor: object
    heads: list
    tokens: list        # per task: {split: Tokens}
    fit: loop.FitResult
    seconds: dict       # tokenize / build (encoder loading included) / first 20 steps / dev eval


def head_specs(datas):
    return [HeadSpec(d.task.name, d.task.num_classes, d.task.multi_label, d.task.label_names,
                     d.task.positive_class) for d in datas]


def with_policy(precision, build):
    """Calls `build()` with the global dtype policy set to `precision`, then restores it.

    Layers capture the policy when they are created, so it is set only around the build (no
    leaking into later models or tests).
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return build()
    finally:
        keras.mixed_precision.set_global_policy(previous)


class NeuralMethod(Method):
    """Shared implementation of the Keras methods (see the module docstring)."""

    has_keras_model = True
    head_dropout_section = "bert"

    # -- hooks --------------------------------------------------------------------------------

    def make_preprocessor(self, config, datas):
        raise NotImplementedError

    def build_encoder(self, config, preprocessor):
        raise NotImplementedError

    def head_options(self, config):
        """MultiTaskClassifier arguments besides encoder and heads."""
        return {"dropout": config.bert.dropout, "dropout_impl": config.bert.dropout_impl}

    def teacher_targets(self, config, datas, ctx, run_cell):
        """(per task: teacher probabilities on its train split or None, info for metrics.json)."""
        return [None] * len(datas), None

    def callbacks(self, config):
        """(the loss's λ variable or None, the method's `keras.callbacks.Callback`s)."""
        return None, []

    # -- the cell ---------------------------------------------------------------------------

    def tokenize(self, preprocessor, datas, ctx):
        return [{split: preprocessor_lib.encode_cached(preprocessor, getattr(d, split).texts,
                                                       ctx.cache_dir)
                 for split in SPLITS} for d in datas]

    def build_model(self, config, preprocessor, heads):
        def build():
            keras.utils.set_random_seed(config.seed)
            model = MultiTaskClassifier(self.build_encoder(config, preprocessor), heads,
                                        seed=config.seed, **self.head_options(config))
            pad = preprocessor.pad_id
            model({"token_ids": tf.fill([2, 8], pad + 5), "padding_mask": tf.ones([2, 8], tf.bool)})
            return model
        return with_policy(config.numerics.precision, build)

    def train(self, config, datas, run_dir, ctx, teacher_probs=None, callbacks=()):
        """Trains one model on `datas` (target first) in `run_dir`; returns a `Trained`.

        `callbacks`: a caller's `keras.callbacks.Callback`s, run after the method's own (their
        log keys: training/callbacks.py).
        """
        if config.numerics.deterministic:
            tf.config.experimental.enable_op_determinism()
        strategy = make_strategy(config.execution.strategy)
        clock = time.time()
        preprocessor = self.make_preprocessor(config, datas)
        tokens = self.tokenize(preprocessor, datas, ctx)
        seconds = {"tokenize_s": time.time() - clock}
        heads = head_specs(datas)
        teacher_probs = teacher_probs or [None] * len(datas)
        table = batching.ExampleTable.build(
            [(tokens[t]["train"], batching.one_hot_targets(d.train.labels, heads[t].num_classes,
                                                           heads[t].multi_label), teacher_probs[t])
             for t, d in enumerate(datas)], [h.num_classes for h in heads])
        eval_sets = [loop.EvalSet(t, d.task.name, tokens[t]["dev"], d.dev.labels,
                                  d.task.positive_class, d.task.multi_label)
                     for t, d in enumerate(datas)]
        clock = time.time()
        with strategy.scope():
            model = self.build_model(config, preprocessor, heads)
        seconds["build_s"] = time.time() - clock
        lam, own_callbacks = self.callbacks(config)
        fit = loop.fit(model, table, eval_sets, strategy, run_dir, MultiTaskLoss(heads, lam),
                       trainer=config.trainer, numerics=config.numerics,
                       execution=config.execution, data=config.data, seed=config.seed,
                       callbacks=[*own_callbacks, *callbacks], pad_id=preprocessor.pad_id)
        # the fit itself is recorded once, as timing.student_train_s
        seconds.update(first_20_steps_s=fit.warmup_steps_s, dev_eval_s=fit.dev_eval_s)
        return Trained(model, preprocessor, heads, tokens, fit, seconds)

    def run(self, config, datas, run_dir, ctx, run_cell):
        start = time.time()
        teacher_probs, teacher_info = self.teacher_targets(config, datas, ctx, run_cell)
        teachers_s = time.time() - start
        trained = self.train(config, datas, run_dir, ctx, teacher_probs,
                             callbacks=ctx.callbacks)
        clock = time.time()
        per_task, test_probs = evaluate(trained, datas, config.execution.eval_aux)
        test_s = time.time() - clock
        target = datas[0]
        io_utils.atomic_save_npz(os.path.join(run_dir, "predictions.npz"), ids=target.test.ids,
                                 labels=target.test.labels, probs=test_probs)
        self.save_model(trained, datas, run_dir)
        fit = trained.fit
        return {
            "dev": per_task[target.task.name]["dev"],
            "test": per_task[target.task.name]["test"],
            "tasks": per_task,
            "best_epoch": fit.best_epoch + 1,
            "epochs_trained": fit.epochs_trained,
            "history": fit.history,
            "dev_tasks": list(fit.dev_tasks),   # tasks whose dev sets were evaluated (--eval_aux)
            "train": {"steps": fit.total_steps, "steps_per_second": round(fit.steps_per_second, 3),
                      "tokens_per_second": round(fit.tokens_per_second, 1),
                      "steady_tokens_per_second": round(fit.steady_tokens_per_second, 1),
                      "padding_efficiency": round(fit.padding_efficiency, 4),
                      "batching": config.trainer.layout(len(datas)),
                      "train_time_s": round(fit.wall_time_s, 1),
                      "examples": {d.task.name: len(d.train) for d in datas}},
            "timing": {"teachers_s": round(teachers_s, 1), "test_s": round(test_s, 1),
                       **{k: round(v, 1) for k, v in trained.seconds.items()},
                       "student_train_s": round(fit.wall_time_s, 1)},
            "teachers": teacher_info,
            "selection": config.trainer.selection,
        }

    # -- saving and reloading -----------------------------------------------------------------

    def save_model(self, trained, datas, run_dir):
        trained.preprocessor.save(run_dir)
        encoder = trained.model.encoder
        encoder_config = {k: v for k, v in encoder.get_config().items()
                          if k not in ("dtype", "trainable", "name")}
        io_utils.atomic_write_json(os.path.join(run_dir, "model.json"), {
            "encoder": {"class": type(encoder).__name__, "config": encoder_config},
            "heads": [dataclasses.asdict(h) for h in trained.heads],
            "classifier": {k: v for k, v in trained.model.get_config().items()
                           if k in ("dropout", "dropout_impl", "head_max_norm", "seed")}})

    def load_model(self, run_dir, precision="float32"):
        """(model with the run's best weights, preprocessor, HeadSpecs) of a finished run.

        `precision`: compute precision of the rebuilt model (None: the run's own). Float32 gives
        the same answer on every machine; the weights are float32 either way.
        """
        for name in ("metrics.json", "best.weights.h5", "model.json"):
            if not os.path.isfile(os.path.join(run_dir, name)):
                raise ConfigError(f"{run_dir}: no {name}; the run has not finished (rerun "
                                  "experiments.run on it to resume)")
        recorded = io_utils.read_json(os.path.join(run_dir, "config.json"))
        config = ExperimentConfig.from_dict(recorded["config"])
        model_json = os.path.join(run_dir, "model.json")
        info = io_utils.read_json(model_json)
        preprocessor = preprocessor_lib.load(run_dir)
        heads = [HeadSpec.from_record(h, model_json) for h in info["heads"]]
        precision = precision or config.numerics.precision
        # Keras' registry of serializable classes knows the encoder: its module registered it when
        # this method's module was imported (BERT's here; the GloVe one in baselines/glove.py).
        from empathy_tf.models import bert  # noqa: F401 pylint: disable=unused-import
        encoder_class = keras.saving.get_registered_object(f"empathy_tf>{info['encoder']['class']}")

        def build():
            encoder = encoder_class.from_config(info["encoder"]["config"])
            model = MultiTaskClassifier(encoder, heads, **info["classifier"])
            model({"token_ids": tf.fill([2, 8], preprocessor.pad_id + 5),
                   "padding_mask": tf.ones([2, 8], tf.bool)})
            return model
        model = with_policy(precision, build)
        weights = os.path.join(run_dir, "best.weights.h5")
        try:
            model.load_weights(weights)
        except Exception as e:  # noqa: BLE001 - h5py and Keras raise several types for this
            raise ConfigError(f"{weights} cannot be read ({type(e).__name__}: {e}); the file is "
                              "damaged: rerun the cell's experiments.run command with "
                              "--overwrite to retrain it") from None
        return model, preprocessor, heads


def evaluate(trained, datas, eval_aux=False):
    """({task: {"dev": metrics, "test": metrics}}, the target's test probabilities).

    Dev metrics are the best epoch's, computed by the loop with these very weights (no second
    pass over the dev sets). The target's test set is predicted here, once; the auxiliary tasks'
    only with `eval_aux` (--eval_aux), like their dev sets: a row is read from its target task,
    and predicting SST-2's and CARER's test sets took 8-10 s of a multi-task cell.
    """
    best = trained.fit.history[trained.fit.best_epoch]
    per_task, test_probs = {}, None
    for t, data in enumerate(datas[:None if eval_aux else 1]):
        [probs] = predict_lib.predict_probs(trained.model, trained.tokens[t]["test"], [t],
                                            pad_id=trained.preprocessor.pad_id)
        per_task[data.task.name] = {
            **({"dev": best[data.task.name]} if data.task.name in best else {}),
            "test": metrics_lib.classification_metrics(data.test.labels, probs,
                                                       data.task.positive_class,
                                                       data.task.multi_label)}
        if t == 0:
            test_probs = probs
    return per_task, test_probs


def predict_train(model, tokens, pad_id, task_index=0):
    """Probabilities of one head on a train split (a teacher's targets), float32."""
    [probs] = predict_lib.predict_probs(model, tokens, [task_index], pad_id=pad_id)
    return np.asarray(probs, np.float32)
