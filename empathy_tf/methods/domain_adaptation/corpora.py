"""Unlabeled corpora for masked-LM pre-training (paper §6, Table 7).

`corpus=`: `semeval_tweets` (SemEval-2018 E-c train tweets), `carer_tweets` (CARER train texts) and
`goemotions` (GoEmotions train comments): the training texts of a labelled source, read by its
strict reader, labels dropped; the paper's `empatheticdialogues`, `dailydialog`, `isear`,
`health_tweets` (files under `<data_dir>/corpora/<name>/`, see data/README.md); or `text:PATH` (one
document per line).

Example:

    docs = load_corpus("semeval_tweets", data_dir="../shared/data")
"""

import csv
import dataclasses
import glob
import os

from empathy_tf.data.sources.base import preprocess_tweet, read_text
from empathy_tf.errors import ConfigError, DataError
from empathy_tf.io_utils import file_sha256, path_slug


@dataclasses.dataclass(frozen=True)
class NamedCorpus:
    """An external corpus expected under `<data_dir>/corpora/<name>/`."""
    name: str
    files: str          # path under <data_dir>/corpora/<name>/ (a glob for multi-file corpora)
    origin: str         # where to get it
    parse: object       # (path, text) -> list of documents


def _parse_empatheticdialogues(path, text):
    # ParlAI's reader: fields never contain commas (they are written as _comma_), so split on ",".
    docs = []
    for number, line in enumerate(text.split("\n"), start=1):
        if number == 1 or not line.strip():
            continue
        parts = line.split(",")
        if len(parts) < 6:
            raise DataError(f"{path}, line {number}: expected at least 6 comma-separated fields "
                            "(conv_id,utterance_idx,context,prompt,speaker_idx,utterance,...)")
        docs.append(parts[5].replace("_comma_", ","))
    return docs


def _parse_dailydialog(path, text):
    return [u for line in text.split("\n") for u in line.split("__eou__")]


def _parse_isear(path, text):
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return []
    delimiter = max("|,;\t", key=lines[0].count)
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [h.strip().lower() for h in rows[0]]
    column = next((c for c in ("sit", "text", "situation") if c in header), None)
    if column is None:
        raise DataError(f"{path}, line 1: no SIT (situation text) column in the header "
                        f"{rows[0][:8]}...; expected the ISEAR databank export with a SIT column")
    index = header.index(column)
    return [row[index] for row in rows[1:] if len(row) > index]


def _parse_health_tweets(path, text):
    # UCI "Health News in Twitter": tweet_id|created_at|text (the text may itself contain "|").
    return [preprocess_tweet(line.split("|", 2)[2]) for line in text.split("\n")
            if line.count("|") >= 2]


NAMED_CORPORA = {
    "empatheticdialogues": NamedCorpus(
        "empatheticdialogues", "train.csv",
        "EmpatheticDialogues (Rashkin et al., ACL 2019): train.csv of "
        "https://dl.fbaipublicfiles.com/parlai/empatheticdialogues/empatheticdialogues.tar.gz "
        "(CC BY-NC 4.0)", _parse_empatheticdialogues),
    "dailydialog": NamedCorpus(
        "dailydialog", "dialogues_text.txt",
        "DailyDialog (Li et al., IJCNLP 2017): ijcnlp_dailydialog/dialogues_text.txt of "
        "http://yanran.li/files/ijcnlp_dailydialog.zip (CC BY-NC-SA 4.0)", _parse_dailydialog),
    "isear": NamedCorpus(
        "isear", "isear.csv",
        "ISEAR (Scherer & Wallbott 1994): the databank exported to CSV with its SIT column, from "
        "https://www.unige.ch/cisa/research/materials-and-online-research/research-material/",
        _parse_isear),
    "health_tweets": NamedCorpus(
        "health_tweets", "Health-Tweets/*.txt",
        "Health News in Twitter (Karami et al. 2017), UCI Machine Learning Repository: "
        "https://archive.ics.uci.edu/dataset/438/health+news+in+twitter (unzip Health-Tweets/)",
        _parse_health_tweets),
}
# Corpora that are a labelled source's training texts (labels dropped), read by its strict reader.
BUILTIN_CORPORA = {"semeval_tweets": ("semeval2018_ec", "train"), "carer_tweets": ("carer", "train"),
                   "goemotions": ("goemotions", "train")}


def corpus_names():
    return sorted(BUILTIN_CORPORA) + sorted(NAMED_CORPORA) + ["text:PATH"]


corpus_slug = path_slug   # text:PATH corpora get folder-safe names


def _read_corpus_file(path, what):
    return read_text(path, what).replace("\r\n", "\n")


def check_corpus_name(corpus):
    if not (corpus in BUILTIN_CORPORA or corpus in NAMED_CORPORA or corpus.startswith("text:")):
        raise ConfigError(f"unknown MLM corpus {corpus!r}; valid: {', '.join(corpus_names())}")


def _clean(docs):
    return [d.strip() for d in docs if d and d.strip()]


def load_corpus(corpus, data_dir, tfds_dir=None):
    """The documents of an MLM corpus, in file order, blank ones dropped.

    Raises:
        ConfigError: unknown corpus name.
        DataError: a missing or unreadable file (the message names the expected path and the
            corpus's origin).
    """
    check_corpus_name(corpus)
    if corpus.startswith("text:"):
        path = os.path.abspath(os.path.expanduser(corpus[5:]))
        docs = _clean(_read_corpus_file(path, "MLM corpus text:PATH, one document per line").split("\n"))
    elif corpus in BUILTIN_CORPORA:
        from empathy_tf.data import sources, tfds_source
        dataset, split = BUILTIN_CORPORA[corpus]
        splits = tfds_source.load(sources.get_source(dataset), data_dir, tfds_dir=tfds_dir)
        docs = _clean(splits[split].texts)  # labels are ignored: the text is unlabeled data here
    else:
        spec = NAMED_CORPORA[corpus]
        folder = os.path.join(os.path.abspath(os.path.expanduser(data_dir)), "corpora", corpus)
        plain = os.path.join(folder, "corpus.txt")
        if os.path.isfile(plain):  # the format-free alternative, one document per line
            docs = _clean(_read_corpus_file(plain, f"MLM corpus {corpus!r}").split("\n"))
        else:
            pattern = os.path.join(folder, spec.files)
            paths = sorted(glob.glob(pattern))
            if not paths:
                raise DataError(
                    f"{pattern}: file not found (MLM corpus {corpus!r}). To obtain it: "
                    f"{spec.origin}. Alternatively put one document per line in {plain}. "
                    "See data/README.md, section 'Corpora for masked-LM pre-training'.")
            docs = []
            for path in paths:
                docs.extend(spec.parse(path, _read_corpus_file(path, f"MLM corpus {corpus!r}")))
            docs = _clean(docs)
    if not docs:
        raise DataError(f"MLM corpus {corpus!r} has no non-blank document")
    return docs


def corpus_files(corpus, data_dir):
    """{file: sha256} of the files a corpus reads (part of a cell's data identity)."""
    if not corpus:
        return {}
    if corpus.startswith("text:"):
        path = os.path.abspath(os.path.expanduser(corpus[5:]))
        return {path: file_sha256(path)} if os.path.isfile(path) else {}
    if corpus in BUILTIN_CORPORA:
        return {}  # a source's files: fingerprinted as that source's data
    folder = os.path.join(os.path.abspath(os.path.expanduser(data_dir)), "corpora", corpus)
    paths = sorted(glob.glob(os.path.join(folder, NAMED_CORPORA[corpus].files)))
    plain = os.path.join(folder, "corpus.txt")
    paths = [plain] if os.path.isfile(plain) else paths
    return {os.path.relpath(p, folder): file_sha256(p) for p in paths}
