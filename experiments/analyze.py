"""Writes a dataset's characteristics (paper Tables 2-3, Figure 2) as Markdown, JSON and PNGs.

    python -m experiments.analyze --dataset=newsemp --data_dir=../shared/data --output_dir=runs
    # -> runs/analysis/newsemp/{report.md,stats.json,length_words.png,length_sentences.png}

--dataset takes a source (newsemp, twittemp, sst2, carer, semeval2018_ec, goemotions, emonet),
csv:PATH, or a task name, which stands for its source (twittemp_seek reads twittemp, with its
three classes); `python -m experiments.run --list` lists the tasks. A user error (unknown name,
missing or malformed file) is one line on stderr and exit code 2.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_string("dataset", "newsemp", "Source or task name, or csv:PATH.")
flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"),
                    "Folder laid out like data/README.md (default: $EMPATHY_DATA_DIR, else "
                    "./data).")
flags.DEFINE_string("output_dir", "./runs", "The report goes to <output_dir>/analysis/<source>/.")
flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder (default $TFDS_DATA_DIR or "
                    "~/tensorflow_datasets).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from empathy_tf.eval import analysis
    sys.exit(analysis.run_cli(FLAGS.dataset, FLAGS.data_dir, FLAGS.output_dir, FLAGS.tfds_dir))


if __name__ == "__main__":
    app.run(main)
