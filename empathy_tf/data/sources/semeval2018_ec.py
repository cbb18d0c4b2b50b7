"""SemEval-2018 Task 1 E-c, English (Mohammad et al. 2018): tweets, 11 emotions, multi-label.

Files: `semeval2018_ec/2018-E-c-En-{train,dev,test-gold}.txt`, tab-separated with header
`ID Tweet anger anticipation disgust fear joy love optimism pessimism sadness surprise trust` and
0/1 flags. The label is the 0/1 vector of the 8 Plutchik emotions (`PLUTCHIK8`, the EmoNet label
set); the extra `all_emotions` keeps all 11 flags. Ids are the official `ID`s (unique across files).
"""

import numpy as np

from empathy_tf.data.sources.base import (Collector, Source, Task, check_field_count, header_index,
                                          lines, parse_choice, register, require)

PLUTCHIK8 = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "love", "optimism", "pessimism",
            "sadness", "surprise", "trust")
COLUMNS = ("ID", "Tweet") + EMOTIONS
_PLUTCHIK_POSITIONS = np.array([EMOTIONS.index(e) for e in PLUTCHIK8])


@register
class SemEval2018EC(Source):
    name = "semeval2018_ec"
    label_names = PLUTCHIK8
    multi_label = True
    files = {"train": ("semeval2018_ec/2018-E-c-En-train.txt",),
             "validation": ("semeval2018_ec/2018-E-c-En-dev.txt",),
             "test": ("semeval2018_ec/2018-E-c-En-test-gold.txt",)}
    how_to_obtain = ("download the English E-c files 2018-E-c-En-{train,dev,test-gold}.txt of "
                     "SemEval-2018 Task 1 'Affect in Tweets' (saifmohammad.com/WebPages/"
                     "AffectInTweets.htm)")
    tweets = True
    extras = {"all_emotions": ("int", (len(EMOTIONS),))}
    tasks = (Task("semeval2018_ec", "semeval2018_ec", PLUTCHIK8, positive_class=None,
                  role="emotion", multi_label=True),)

    def read(self, path, split):
        del split  # the official ids (e.g. 2018-En-21441) are unique across the three files
        out = Collector(path, tweets=True)
        header_line = None
        for line, raw in lines(path):
            # Tweets may start with a double quote: plain tab splitting (no CSV quoting) is right.
            row = raw.split("\t")
            if header_line is None:
                header_line = line
                index = header_index(path, line, row, COLUMNS, "\t")
                width = len(row)
                continue
            check_field_count(path, line, row, width, COLUMNS)
            example_id = require(path, line, "ID", row[index["ID"]], "a tweet id")
            emotions = [parse_choice(path, line, e, row[index[e]], ("0", "1")) for e in EMOTIONS]
            out.add(line, example_id, row[index["Tweet"]],
                    np.asarray(emotions)[_PLUTCHIK_POSITIONS], all_emotions=emotions)
        return out.result(header=header_line is not None, kinds=self.extras)
