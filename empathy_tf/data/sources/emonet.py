"""EmoNet (Abdul-Mageed & Ungar, ACL 2017): tweets labelled with the 8 Plutchik emotions.

The tweets were never publicly released. Users who obtained them from the authors save them as
`emonet/emonet.tsv`: `text<TAB>label` per line (split on the last tab), optional header
`text<TAB>label`, labels the Plutchik-8 names in any case. Ids are `line-<N>`.
"""

from empathy_tf.data.sources.base import (Collector, Source, Task, lines, parse_choice, register,
                                          split_last)
from empathy_tf.data.sources.semeval2018_ec import PLUTCHIK8


@register
class EmoNet(Source):
    name = "emonet"
    label_names = PLUTCHIK8
    files = {"all": ("emonet/emonet.tsv",)}
    how_to_obtain = ("EmoNet tweets (Abdul-Mageed & Ungar 2017) were never publicly released: "
                     "obtain them from the authors and save them as a text<TAB>label TSV")
    tweets = True
    tasks = (Task("emonet", "emonet", PLUTCHIK8, positive_class=None, role="emotion"),)

    def read(self, path, split):
        del split
        out = Collector(path, tweets=True)
        header = False
        for number, (line, raw) in enumerate(lines(path)):
            text, label_text = split_last(path, line, raw, "\t", ("text", "label"))
            if (number == 0 and text.strip().lower() == "text"
                    and label_text.strip().lower() == "label"):
                header = True
                continue
            label = parse_choice(path, line, "label", label_text.lower(), PLUTCHIK8)
            out.add(line, f"line-{line}", text, label)
        return out.result(header=header)
