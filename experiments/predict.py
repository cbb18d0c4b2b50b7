"""Classifies texts with a finished run folder (target label + probability, and every other head).

    python -m experiments.predict --run=runs/bert/newsemp/seed0-by_response_id "So sorry." "Nice."
    python -m experiments.predict --run=RUN_DIR --input=texts.txt --format=jsonl   # one per line
    cat texts.txt | python -m experiments.predict --run=RUN_DIR
    python -m experiments.predict --run=RUN_DIR -- "-texts starting with a dash go after --"

Blank lines are kept and reported as empty texts (flagged, see empathy_tf/serving/predictor.py).
To export a run as .keras + SavedModel, see `python -m experiments.export`.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF C++ start-up noise out of results

from absl import app, flags

flags.DEFINE_string("run", None, "Run folder: <output_dir>/<experiment>/<dataset>/seed<N>.")
flags.DEFINE_string("input", None, "File with one text per line (default: the arguments, else "
                    "standard input).")
flags.DEFINE_enum("format", "table", ["table", "jsonl"], "Output: a readable table or one JSON "
                  "object per text.")
FLAGS = flags.FLAGS


def main(argv):
    from empathy_tf.serving import predictor
    from experiments import registry  # noqa: F401 (wires in the baselines' methods)
    sys.exit(predictor.run_cli(FLAGS.run, argv[1:], FLAGS.input, FLAGS.format, sys.stdin,
                               sys.stdout, sys.stderr))


if __name__ == "__main__":
    app.run(main)
