"""Hand-made cell folders (config.json, metrics.json, predictions.npz) for the report tests."""

import os

import numpy as np

from empathy_tf import io_utils
from empathy_tf.eval import metrics as metrics_lib


def write_cell(run_dir, config, labels, probs, ids, finished=True, extra_metrics=None,
               machine="test machine, 2 logical CPUs", code_version="0.0+test"):
    """Writes a cell folder as runs.run_cell would; `finished=False` leaves only config.json."""
    from empathy_tf import methods
    from experiments import registry  # noqa: F401 (wires in the baselines' methods)
    # The identity's sections are the method's (their contents do not matter to the report).
    identity = {section.split(".")[0]: {} for section in methods.get(config.method).sections}
    io_utils.atomic_write_json(os.path.join(run_dir, "config.json"), {
        "config": config.to_dict(), "identity": identity, "code_version": code_version,
        "data_dir": "/data/synthetic", "machine": machine})
    if not finished:
        return None
    test = metrics_lib.classification_metrics(labels, probs, positive_class=1)
    metrics = {"dev": dict(test), "test": test, "tasks": {}, "wall_time_s": 60.0,
               "precision": "float32", "code_version": code_version, "seed": config.seed,
               "fold": config.data.fold, "protocol": config.data.protocol,
               "experiment": config.name, "dataset": config.data.dataset, **(extra_metrics or {})}
    io_utils.atomic_write_json(os.path.join(run_dir, "metrics.json"), metrics)
    io_utils.atomic_save_npz(os.path.join(run_dir, "predictions.npz"), ids=np.asarray(ids),
                             labels=np.asarray(labels), probs=np.asarray(probs, np.float32))
    return metrics


def noisy_probs(labels, accuracy, rng):
    """[n, 2] probabilities whose argmax is right for about `accuracy` of the examples."""
    right = rng.random(len(labels)) < accuracy
    predicted = np.where(right, labels, 1 - labels)
    confidence = 0.55 + 0.4 * rng.random(len(labels))
    probs = np.empty((len(labels), 2))
    probs[np.arange(len(labels)), predicted] = confidence
    probs[np.arange(len(labels)), 1 - predicted] = 1 - confidence
    return probs
