"""Teachers: single-task runs whose predictions on their training split are cached.

A teacher is an ordinary cell of the `single` method, run through the same lifecycle as every other
cell (runs.py, via the `run_cell` function the student passes in), so it is reused, resumed or
refused by its identity like any cell. Its class probabilities on every training example are
computed once, from its best weights, and kept beside it in `train_predictions.npz` (with the
example ids and the teacher's identity hash).

- The target task's teacher is the cell of `DistillConfig.target_teacher` (the `bert` row) for the
  same dataset, seed and fold: the student's training split is exactly its training split. When
  that cell holds a run with other settings (say, another learning rate), the teacher is trained
  in `<output_dir>/teachers/<task>/<identity hash>` instead; nothing is overwritten.
- An auxiliary task's teacher is trained on the student's (capped) training examples of that task,
  with `teacher_seed`, in `<output_dir>/teachers/<task>/<identity hash>`: every student seed and
  fold that sees the same examples shares it.

On load the stored ids must equal the student's ids, in order: a cache that does not match is
refused, never realigned.

Example:

    probs, info = teacher_predictions(config, datas, ctx, runs.run_cell)  # [N_train, C] per task
"""

import dataclasses
import os
import time
import zipfile

import numpy as np
from absl import logging

from empathy_tf import console, io_utils, runs
from empathy_tf.config import DataConfig
from empathy_tf.errors import CacheMismatchError

PREDICTIONS = "train_predictions.npz"
# What np.load raises for a damaged .npz (a truncated zip, a missing or cut member).
UNREADABLE = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile)


def teacher_config(student, task_index):
    """The single-task config of the teacher of the student's `task_index`-th task."""
    data = student.data
    task = data.task_names()[task_index]
    trainer = dataclasses.replace(student.trainer,
                                  epochs=student.distill.teacher_epochs or student.trainer.epochs)
    if task_index == 0:
        name, seed = student.distill.target_teacher, student.seed
        teacher_data = DataConfig(dataset=task, protocol=data.protocol, fold=data.fold,
                                  train_cap=data.train_cap, group_by=data.group_by,
                                  train_fraction=data.train_fraction, **data.csv_options())
    else:
        name, seed = "teacher", student.distill.teacher_seed
        teacher_data = DataConfig(dataset=task, train_cap=data.aux_cap, **data.csv_options())
    return dataclasses.replace(student, name=name, method="single", seed=seed, data=teacher_data,
                               trainer=trainer)


def teacher_dir(config, ctx, task_index):
    """The target teacher's cell folder if free or matching, else a folder of its own."""
    own = os.path.join(ctx.output_dir, "teachers",
                       runs.dataset_slug(config.data.dataset) + ("-smoke" if config.smoke else ""),
                       runs.identity_hash(config.resolved(), ctx))
    if task_index > 0:
        return own
    cell = runs.run_dir_for(config, ctx)
    recorded_path = os.path.join(cell, "config.json")
    if not os.path.exists(recorded_path):
        return cell
    recorded = runs.read_run_file(recorded_path).get("identity")
    if recorded == runs.identity(config.resolved(), ctx):
        return cell
    logging.info("%s holds a run with other settings; the %s teacher goes to %s", cell,
                 config.data.dataset, own)
    return own


def load_cached(path, ids, identity_hash):
    """Cached probabilities for `ids`, or CacheMismatchError naming what does not match."""
    try:
        with np.load(path, allow_pickle=False) as cached:
            cached_ids, probs = cached["ids"], cached["probs"]
            cached_identity = str(cached["identity"])
    except UNREADABLE as e:
        raise CacheMismatchError(f"teacher cache {path} is unreadable ({e}); delete it to "
                                 "recompute") from e
    if cached_identity != identity_hash:
        raise CacheMismatchError(
            f"teacher cache {path} was made by a teacher of identity {cached_identity}, not "
            f"{identity_hash}; delete it to recompute")
    if len(cached_ids) != len(ids) or not np.array_equal(cached_ids.astype(str), np.asarray(ids, str)):
        raise CacheMismatchError(
            f"teacher cache {path} holds predictions for {len(cached_ids)} examples whose ids do "
            f"not match the {len(ids)} training examples of this run; refusing to misalign targets")
    return probs


def _unreadable(path):
    """What is wrong with a cache file that cannot be read (truncated, say), or None."""
    try:
        with np.load(path, allow_pickle=False) as cached:
            for key in ("ids", "probs", "identity"):
                cached[key]
    except UNREADABLE as e:
        return f"{type(e).__name__}: {e}"
    return None


def _predict_train(config, run_dir, data, identity_hash):
    from empathy_tf import methods   # methods/__init__ imports this package's method module
    from empathy_tf.methods.neural import predict_train
    model, preprocessor, _ = methods.get(config.method).load_model(run_dir, precision=None)
    tokens = preprocessor.encode(data.train.texts)
    probs = predict_train(model, tokens, preprocessor.pad_id)
    io_utils.atomic_save_npz(os.path.join(run_dir, PREDICTIONS),
                             ids=np.asarray(data.train.ids, str), probs=probs,
                             identity=np.asarray(identity_hash))


def cached_predictions(config, run_dir, data, identity_hash):
    """(the finished teacher's probabilities on `data.train`, seconds spent predicting them):
    computed once into its folder; an unreadable cache (truncated, say) is recomputed."""
    path = os.path.join(run_dir, PREDICTIONS)
    predict_s = 0.0
    problem = os.path.exists(path) and _unreadable(path)
    if problem:
        logging.warning("teacher cache %s is unreadable (%s); recomputing it", path, problem)
    if problem or not os.path.exists(path):
        predict_start = time.time()
        with io_utils.folder_lock(run_dir):
            _predict_train(config, run_dir, data, identity_hash)
        predict_s = time.time() - predict_start
    return load_cached(path, data.train.ids, identity_hash), predict_s


def teacher_predictions(student, datas, ctx, run_cell):
    """Teacher probabilities on each task's training split (trained, reused or cached)."""
    all_probs, info = [], {}
    # --overwrite redoes the cells asked for, not the teachers they reuse.
    ctx = dataclasses.replace(ctx, overwrite=False)
    for t, data in enumerate(datas):
        config = teacher_config(student, t)
        run_dir = teacher_dir(config, ctx, t)
        finished_before = runs.read_metrics(run_dir) is not None
        logging.info("teacher %d/%d: %s %s, %s -> %s", t + 1, len(datas), config.name,
                     data.task.name, "finished earlier, reusing it" if finished_before
                     else "training", run_dir)
        start = time.time()
        metrics = run_cell(config, ctx, run_dir=run_dir)
        if not finished_before:
            logging.info("teacher %d/%d: %s %s: test %s", t + 1, len(datas), config.name,
                         data.task.name, console.metrics_text(metrics["test"]))
        identity_hash = runs.identity_hash(config.resolved(), ctx)
        probs, predict_s = cached_predictions(config, run_dir, data, identity_hash)
        all_probs.append(probs)
        info[data.task.name] = {
            "run_dir": run_dir, "identity": identity_hash, "trained_now": not finished_before,
            "seconds": round(time.time() - start, 1), "predict_time_s": round(predict_s, 1),
            "dev": metrics["dev"], "test": metrics["test"],
            "train_time_s": metrics.get("train", {}).get("train_time_s")}
    return all_probs, info
