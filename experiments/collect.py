"""The TwittEmp collection filter (paper §4.2.1): keeps posts with a high-empathy word and a topic.

    python -m experiments.collect --input=posts.txt --output=kept.txt \
        --lexicon=../shared/data/empathy_lexicon_sedoc2019/empathy_lexicon.txt --top_k=100
    python -m experiments.collect --input=posts.csv --column=text --output=kept.txt \
        --words=my_words.txt --topics=cancer,chemo

Posts are read one per line (or from a CSV/TSV --column), links and @usernames become <URL> and
<USER>, duplicates are dropped; the kept posts are written one per line. See
empathy_tf/collection.py for the matching rules.
"""

import os
import sys

from absl import app, flags

flags.DEFINE_string("input", None, "Raw posts: one per line, or a CSV/TSV file with --column.")
flags.DEFINE_string("column", None, "Column of --input holding the posts (CSV/TSV with a header).")
flags.DEFINE_string("output", None, "Where the kept posts go (one per line).")
flags.DEFINE_string("lexicon", os.path.join(os.environ.get("EMPATHY_DATA_DIR", "./data"),
                                            "empathy_lexicon_sedoc2019", "empathy_lexicon.txt"),
                    "Empathy lexicon CSV (word,rating), Sedoc et al. 2019.")
flags.DEFINE_integer("top_k", 100, "How many of the highest-rated lexicon words to use.")
flags.DEFINE_string("words", None, "Optional word list (one per line): choose the top-K among "
                    "these lexicon words only.")
flags.DEFINE_list("topics", ["cancer"], "Topic keywords; a post needs at least one.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from empathy_tf import collection
    sys.exit(collection.run_cli(FLAGS.input, FLAGS.output, FLAGS.lexicon, FLAGS.top_k,
                                FLAGS.words, FLAGS.topics, FLAGS.column))


if __name__ == "__main__":
    app.run(main)
