"""Compares two k-fold runs fold by fold: each one's test mean ± std and A − B with the tables'
statistics (corrected resampled t interval, p, MDD, Bayesian correlated t-test).

    python -m experiments.compare RUN_A RUN_B
    python -m experiments.compare runs/kd_sst_emonet/twittemp/kfold5-seed0-train0.1 \
        long/bert/twittemp/kfold5-seed0-train0.1 --metrics=macro_f1,f1,recall

A run is a seed folder of a k-fold protocol (`<output_dir>/<exp>/<dataset>/kfold<K>-seed<N>...`,
holding `fold<F>/`). Folds pair only where both cells were tested on the same examples; a user
error (missing folder, other test examples, other protocol) is one line on stderr and exit code 2.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_list("metrics", ["macro_f1", "f1"], "Test metrics compared (metrics.json's names).")
flags.DEFINE_float("rope", 1.0, "Half-width of the region of practical equivalence, in points.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 3:
        raise app.UsageError(f"expected two run folders, got {len(argv) - 1}: {argv[1:]}")
    from empathy_tf.eval import compare
    sys.exit(compare.run_cli(argv[1], argv[2], FLAGS.metrics, FLAGS.rope))


if __name__ == "__main__":
    app.run(main)
