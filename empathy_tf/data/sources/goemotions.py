"""GoEmotions (Demszky et al., ACL 2020): 58k Reddit comments, 27 emotions + neutral, multi-label.

Files: `data/{train,dev,test}.tsv` of github.com/google-research/google-research, folder
goemotions/ (Apache 2.0), placed under `goemotions/`. No header; each line is
`text<TAB>label ids<TAB>comment id`, the label ids comma-separated integers 0..27 indexing `LABELS`
(e.g. `6,22`). Ids are the comment ids (unique across the three files). The released texts are
already anonymised ([NAME], [RELIGION] placeholders), so they are not preprocessed as tweets.
"""

import re

import numpy as np

from empathy_tf.data.sources.base import Collector, Source, Task, lines, register, require, show
from empathy_tf.errors import DataError

LABELS = ("admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
          "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
          "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
          "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral")
FIELDS = ("text", "labels", "id")
_LABEL_ID = re.compile(r"[0-9]{1,2}")


def parse_label_ids(path, line, value):
    """'6,22' -> a 0/1 vector over LABELS; DataError naming line and field otherwise."""
    value = require(path, line, "labels", value,
                    f"comma-separated label ids, integers 0..{len(LABELS) - 1}")
    vector = np.zeros(len(LABELS), dtype=np.int64)
    for part in value.split(","):
        part = part.strip()
        if not _LABEL_ID.fullmatch(part) or int(part) >= len(LABELS):
            raise DataError(f"{path}, line {line}: field 'labels' has value {show(value)}; "
                            f"expected comma-separated label ids, integers 0..{len(LABELS) - 1} "
                            f"(e.g. '27' or '6,22'); found {show(part)}")
        if vector[int(part)]:
            raise DataError(f"{path}, line {line}: field 'labels' has value {show(value)}; "
                            f"label id {part} appears twice; expected each label id once")
        vector[int(part)] = 1
    return vector


@register
class GoEmotions(Source):
    name = "goemotions"
    label_names = LABELS
    multi_label = True
    files = {"train": ("goemotions/train.tsv",), "validation": ("goemotions/dev.tsv",),
             "test": ("goemotions/test.tsv",)}
    how_to_obtain = ("download train.tsv, dev.tsv and test.tsv of github.com/google-research/"
                     "google-research/tree/master/goemotions/data (Apache 2.0, Demszky et al. "
                     "2020) into goemotions/")
    tasks = (Task("goemotions", "goemotions", LABELS, positive_class=None, role="emotion",
                  multi_label=True),)

    def read(self, path, split):
        del split  # comment ids are unique across the three files
        out = Collector(path)
        for line, raw in lines(path):
            row = raw.split("\t")
            if len(row) != len(FIELDS):
                raise DataError(
                    f"{path}, line {line}: row has {len(row)} tab-separated fields; expected "
                    f"{len(FIELDS)} ({', '.join(FIELDS)}; a text may not contain a tab, and the "
                    f"file has no header); found {show(row, 160)}")
            text, labels, comment_id = row
            comment_id = require(path, line, "id", comment_id, "a comment id")
            out.add(line, comment_id, text, parse_label_ids(path, line, labels))
        return out.result(header=False)
