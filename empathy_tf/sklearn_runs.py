"""Rows that need no neural network: TF-IDF + logistic regression, and predicting all-positive.

`all_positive` is the floor readers need to see: on a balanced binary task it scores a
positive-class F1 near 0.67 without looking at the text.
"""

import os

import numpy as np

from empathy_tf import evaluation, io_utils
from empathy_tf.errors import ConfigError


def run(config, data, run_dir):
    task = data.task
    if task.multi_label:
        raise ConfigError(f"{config.method} supports single-label tasks only, not {task.name}")
    io_utils.atomic_write_json(os.path.join(run_dir, "split.json"), {
        task.name: {"official_split": data.official_split, **data.split_ids()}})
    extra = {}
    if config.method == "all_positive":
        if task.positive_class is None:
            raise ConfigError(f"all_positive needs a binary task; {task.name} has no positive class")
        def predict(split):
            probs = np.zeros([len(split), task.num_classes], np.float32)
            probs[:, task.positive_class] = 1.0
            return probs
    else:
        from baselines import tfidf
        model, extra = tfidf.train_tfidf_lr(data.train.texts, data.train.labels, data.dev.texts,
                                            data.dev.labels, seed=config.seed,
                                            positive_label=task.positive_class)
        def predict(split):
            probs = np.zeros([len(split), task.num_classes], np.float32)
            probs[:, model.classes_] = model.predict_proba(split.texts)
            return probs
    result = {}
    for split in ("dev", "test"):
        result[split] = evaluation.classification_metrics(
            getattr(data, split).labels, predict(getattr(data, split)), task.positive_class)
    probs = predict(data.test)
    io_utils.atomic_save_npz(os.path.join(run_dir, "predictions.npz"), ids=data.test.ids,
                             labels=data.test.labels, probs=probs)
    result["tasks"] = {task.name: {"dev": result["dev"], "test": result["test"]}}
    result["details"] = extra
    return result
