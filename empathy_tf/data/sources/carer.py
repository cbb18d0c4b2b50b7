"""CARER / dair-ai emotion (Saravia et al., EMNLP 2018): tweets, 6 emotions, single-label.

Files: `carer_emotion/{train,val,test}.txt` of the 16k/2k/2k "split" release of
github.com/dair-ai/emotion_dataset, `text;label_name` per line (split on the last ';'). The dair-ai
originals have no header; some copies add `text;label_name` (or `text;label`) as the first line.
Ids are `<split>-<line>`. The texts are already lowercased with links and mentions removed.
"""

from empathy_tf.data.sources.base import (Collector, Source, Task, lines, parse_choice, register,
                                          split_last)

LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")
_HEADERS = ("text;label_name", "text;label")


@register
class Carer(Source):
    name = "carer"
    label_names = LABELS
    files = {"train": ("carer_emotion/train.txt",), "validation": ("carer_emotion/val.txt",),
             "test": ("carer_emotion/test.txt",)}
    how_to_obtain = ("download train.txt, val.txt and test.txt of github.com/dair-ai/"
                     "emotion_dataset (the 16k/2k/2k 'split' release, also Hugging Face "
                     "dair-ai/emotion) into carer_emotion/")
    tasks = (Task("carer", "carer", LABELS, positive_class=None, role="emotion"),)

    def read(self, path, split):
        out = Collector(path)
        header = False
        for number, (line, raw) in enumerate(lines(path)):
            if number == 0 and raw.strip().lower() in _HEADERS:
                header = True
                continue
            text, label_text = split_last(path, line, raw, ";", ("text", "label_name"))
            label = parse_choice(path, line, "label_name", label_text, LABELS)
            out.add(line, f"{split}-{line}", text, label)
        return out.result(header=header)
