"""The suite from Python: run experiments, then classify texts with what they trained.

`run` does what `python -m experiments.run` does for one experiment, group or table, in this
process (so that Keras callbacks, which live here, can be given to the training), and returns
the cells' metrics keyed by run folder. `load_predictor` reloads a finished run for prediction.
Both are also `empathy_tf.run` and `empathy_tf.load_predictor`.

Example (the whole path on the smoke settings, seconds on a laptop):

    import empathy_tf
    metrics = empathy_tf.run("bert", dataset="newsemp", seeds=[0], data_dir="../shared/data",
                             output_dir="runs", smoke=True)
    run_dir, cell = next(iter(metrics.items()))     # "runs/bert-smoke/newsemp/seed0-by_response_id"
    empathy_tf.load_predictor(run_dir).predict(["I am so sorry for your loss."])[0]["label"]
"""

import logging as py_logging
import os



def run(experiment, dataset=None, seeds=None, data_dir=None, output_dir="runs", callbacks=(),
        tfds_dir=None, overwrite=False, allow_stale=False, **options):
    """Runs (or reuses, or resumes) every cell of an experiment, group or table; see the module
    docstring.

    Cells run one after the other in this process; a finished cell is reused, an unfinished one
    resumed, exactly as on the command line, and the first cell that fails raises its error.
    A table's cells are run, not tabulated: `python -m experiments.run --exp=<table>
    --report_only` (same `output_dir` and options) writes the table from them.

    Args:
        experiment: an experiment (`"kd_sst_emonet"`), group (`"baselines"`) or table
            (`"table4"`); `python -m experiments.run --list` names them.
        dataset: the `--dataset` (a table names its own).
        seeds: the seeds, e.g. `[0, 1, 2]` (default: 0, 1, 2 for a table, else `seed` or 0).
        data_dir: folder laid out like data/README.md (default: `$EMPATHY_DATA_DIR`, else
            `./data`).
        output_dir: where run folders, caches and teachers go.
        callbacks: `keras.callbacks.Callback`s given to the training of every model the cells
            train (distillation teachers included).
        tfds_dir, overwrite, allow_stale: as the flags of the same names.
        **options: any config option by name, as its flag (`epochs=2`, `aux_cap=2000`,
            `protocol="kfold:10"`, `smoke=True`).

    Returns:
        {run folder: metrics}: one entry per cell, in the order they ran; each value is the
        cell's `metrics.json` (`"test"` and `"dev"`: precision, recall, f1, accuracy, macro_f1).

    Raises:
        ConfigError, DataError: an unknown experiment or option, missing or malformed data, a
            run folder made with other settings (the message names the difference).
    """
    from empathy_tf import io_utils, runs
    from experiments import registry  # the experiments (and the baselines it wires in)
    if log_to_stderr():
        from empathy_tf import console
        console.load_tensorflow()   # without its start-up banners, as on the command line
    if dataset is not None:
        options["dataset"] = dataset
    _, cells = registry.cells(experiment, options, seeds)
    ctx = runs.RunContext(data_dir or os.environ.get("EMPATHY_DATA_DIR", "./data"), output_dir,
                          tfds_dir, overwrite, allow_stale, callbacks=tuple(callbacks))
    results = {}
    for _, config in cells:
        # As metrics.json holds it, whether the cell ran now or was reused.
        results[runs.run_dir_for(config, ctx)] = io_utils.json_roundtrip(runs.run_cell(config, ctx))
    return results


def load_predictor(run_dir, precision="float32"):
    """A finished run's `serving.predictor.Predictor`: `.predict(texts)` classifies raw texts.

    Args:
        run_dir: the run folder (a key of what `run` returned).
        precision: compute precision, or None for the run's own (see serving/predictor.py).

    Raises:
        ConfigError: not a finished run of a method with a Keras model.
    """
    from empathy_tf.serving import predictor
    from experiments import registry  # noqa: F401 (wires in the baselines' methods)
    return predictor.load_predictor(run_dir, precision)


def log_to_stderr():
    """The suite's console lines on stderr (`console.setup`) when nothing else set logging up (no
    `app.run`, no handler). Once the caller configured Python logging, it changes nothing.
    Returns whether it set the console up.
    """
    if py_logging.getLogger().handlers:
        return False
    from empathy_tf import console
    console.setup()
    return True
