"""Single-task teachers and their cached predictions.

A teacher is a single-task run of the same trainer on one task's training split. Its class
probabilities on every training example are computed once (batched, no gradients) and stored in
`<output_dir>/teachers/<task>/<fingerprint>/predictions.npz` with the example ids. The fingerprint
covers the task's data (ids, texts, labels of train and dev) and the teacher's configuration, so
student runs with other seeds or other experiments reuse a teacher whose inputs are unchanged, and
any change (new data, another split, another encoder) gets a new teacher. On load the stored ids
must equal the student's ids, in order: a cache that does not match is refused, never realigned.

Example:

    probs, info = teacher_predictions(config, task_datas, ctx)  # one [N_train, C] array per task
"""

import dataclasses
import gc
import os
import time

import numpy as np
from absl import logging

from empathy_tf import io_utils
from empathy_tf.errors import CacheMismatchError

# Config fields that change what a teacher learns; paths, strategy and student-only fields don't.
TEACHER_FIELDS = ("encoder", "pooling", "max_seq_length", "dropout", "dropout_impl", "gelu_impl",
                  "bias_grad_impl", "epochs", "batch_size", "learning_rate", "warmup_fraction",
                  "weight_decay", "selection", "precision", "xla", "seed", "smoke")


def teacher_config(student_config, task_name):
    return dataclasses.replace(
        student_config, name="teacher", method="single", dataset=task_name, aux_tasks=(),
        seed=student_config.teacher_seed,
        epochs=student_config.teacher_epochs or student_config.epochs, aux_cap=0)


def teacher_fingerprint(config, data):
    fields = {f: getattr(config, f) for f in TEACHER_FIELDS}
    return io_utils.fingerprint(
        data.task.name, fields, list(data.train.ids), list(data.train.texts), data.train.labels,
        list(data.dev.ids), data.dev.labels)


def load_cached(path, ids, fingerprint):
    """Cached probabilities for `ids`, or CacheMismatchError naming what does not match."""
    try:
        with np.load(path, allow_pickle=False) as cached:
            cached_ids, probs = cached["ids"], cached["probs"]
            cached_fp = str(cached["fingerprint"])
    except (OSError, KeyError, ValueError) as e:
        raise CacheMismatchError(f"teacher cache {path} is unreadable ({e}); delete it to retrain") from e
    if cached_fp != fingerprint:
        raise CacheMismatchError(
            f"teacher cache {path} was made for other data or settings (fingerprint {cached_fp}, "
            f"expected {fingerprint}); delete it to retrain")
    if len(cached_ids) != len(ids) or not np.array_equal(cached_ids.astype(str), np.asarray(ids, str)):
        raise CacheMismatchError(
            f"teacher cache {path} holds predictions for {len(cached_ids)} examples whose ids do "
            f"not match the {len(ids)} training examples of this run; refusing to misalign targets")
    return probs


def teacher_predictions(config, datas, ctx):
    """Teacher probabilities on each task's training split, trained or read from the cache."""
    from empathy_tf import runner, training
    all_probs, info = [], {}
    for data in datas:
        tconfig = teacher_config(config, data.task.name)
        fp = teacher_fingerprint(tconfig, data)
        folder = os.path.join(ctx.output_dir, "teachers", runner.dataset_slug(data.task.name) +
                              ("-smoke" if config.smoke else ""), fp)
        path = os.path.join(folder, "predictions.npz")
        trained_now = False
        if not os.path.exists(path):
            with io_utils.folder_lock(folder):
                if not os.path.exists(path):  # another process may have finished it meanwhile
                    trained_now = True
                    logging.info("Training the %s teacher in %s", data.task.name, folder)
                    io_utils.atomic_write_json(os.path.join(folder, "config.json"),
                                               {"config": dataclasses.asdict(tconfig), "fingerprint": fp})
                    model, featurized, result, per_task, _ = runner.train_and_evaluate(
                        tconfig, [data], folder, ctx)
                    predict_start = time.time()
                    probs = training.predict_probs(model, featurized.tokens[0]["train"], 0,
                                                   pad_id=featurized.pad_id)
                    io_utils.atomic_write_json(os.path.join(folder, "metrics.json"), {
                        **per_task[data.task.name], "best_epoch": result.best_epoch + 1,
                        "train_time_s": round(result.wall_time_s, 1),
                        "predict_time_s": round(time.time() - predict_start, 1),
                        "train_examples": len(data.train)})
                    io_utils.atomic_save_npz(path, ids=np.asarray(data.train.ids, str),
                                             probs=probs.astype(np.float32),
                                             fingerprint=np.asarray(fp))
                    runner.remove_checkpoints(folder)
                    del model
                    gc.collect()
        else:
            logging.info("Reusing the cached %s teacher %s", data.task.name, folder)
        all_probs.append(load_cached(path, data.train.ids, fp))
        metrics_path = os.path.join(folder, "metrics.json")
        info[data.task.name] = {"fingerprint": fp, "folder": folder, "trained_now": trained_now,
                                "metrics": io_utils.read_json(metrics_path)
                                if os.path.exists(metrics_path) else None}
    return all_probs, info
