"""Hand-made cell folders (config.json, metrics.json, predictions.npz) for the report tests."""

import os

import numpy as np

from empathy_tf import io_utils
from empathy_tf.eval import metrics as metrics_lib


def write_cell(run_dir, config, labels, probs, ids, finished=True, extra_metrics=None,
               machine="test machine, 2 logical CPUs", code_version="0.0+test", split=None,
               group_by=None, protocol=None):
    """Writes a cell folder as runs.run_cell would; `finished=False` leaves only config.json.

    `split`: {"train", "dev", "test": ids} written to split.json under the cell's dataset;
    `group_by` and `protocol` are recorded in the config's data section as given (options the
    data side declares; the report reads them from the files).
    """
    from empathy_tf import methods
    from experiments import registry  # noqa: F401 (wires in the baselines' methods)
    # The identity's sections are the method's (their contents do not matter to the report).
    identity = {section.split(".")[0]: {} for section in methods.get(config.method).sections}
    record = config.to_dict()
    if group_by is not None:
        record["data"]["group_by"] = group_by
    if protocol is not None:
        record["data"]["protocol"] = protocol
    io_utils.atomic_write_json(os.path.join(run_dir, "config.json"), {
        "config": record, "identity": identity, "code_version": code_version,
        "data_dir": "/data/synthetic", "machine": machine})
    if split is not None:
        io_utils.atomic_write_json(os.path.join(run_dir, "split.json"), {
            config.data.dataset: {"official_split": False,
                                  **{k: [str(i) for i in v] for k, v in split.items()}}})
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
