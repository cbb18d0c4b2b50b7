"""Exports a finished run folder as a Keras .keras file and a self-contained TF SavedModel.

    python -m experiments.export --run=runs/bert/newsemp/seed0-by_response_id --out=exports/bert
    python -m experiments.export --run=RUN_DIR --out=DIR --overwrite

The SavedModel's `serving_default` signature takes raw texts (tf.string [B], named `texts`) and
returns each head's probabilities; see empathy_tf/serving/export.py for its contents and how to
load it.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_string("run", None, "Run folder: <output_dir>/<experiment>/<dataset>/seed<N>.")
flags.DEFINE_string("out", None, "Folder to write model.keras, saved_model/, export.json into.")
flags.DEFINE_bool("overwrite", False, "Replace an existing export in --out.")
flags.DEFINE_enum("precision", "float32", ["float32", "run"], "Compute precision of the export: "
                  "float32 (same answer on any hardware) or the run's own.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from empathy_tf.serving import export
    from experiments import registry  # noqa: F401 (wires in the baselines' methods)
    sys.exit(export.run_cli(FLAGS.run, FLAGS.out, FLAGS.overwrite,
                            None if FLAGS.precision == "run" else FLAGS.precision))


if __name__ == "__main__":
    app.run(main)
