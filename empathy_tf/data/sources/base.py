"""What a dataset source is, and the strict parsing helpers every source's reader is built from.

A `Source` is one dataset as released: its files under `--data_dir`, its label names, how to obtain
it, and a strict reader that turns one file into `RawExamples`. Readers fail loudly: a problem
raises `DataError` whose message names the file, the 1-based physical line where the offending row
starts (also for quoted CSV fields spanning lines), the field and what was expected. A released
file with known defects is read with one warning that counts them (see twittemp.py).

A source also declares the tasks it provides (`tasks`: `Task`, defined here and looked up by name
through `empathy_tf.data.tasks`), e.g. TwittEmp's empathy, seek and provide views. Nothing else
needs to know a source exists: the task registry, the TFDS builders and the data cards derive
from `SOURCES`.

Example (a new dataset is one module under data/sources/ plus its name in `sources/__init__.py`):

    @register
    class MyData(Source):
        name = "mydata"
        label_names = ("neg", "pos")
        files = {"all": ("mydata/data.tsv",)}
        how_to_obtain = "download data.tsv from ..."
        tasks = (Task("mydata", "mydata", ("neg", "pos")),)

        def read(self, path, split):
            out = Collector(path)
            for line, raw in lines(path):
                text, label = split_last(path, line, raw, "\\t", ("text", "label"))
                out.add(line, f"line-{line}", text, parse_choice(path, line, "label", label, ("0", "1")))
            return out.result()
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
_TRUNCATION_WARNED = set()   # (file, line) already reported in this process
SOURCES: dict[str, "Source"] = {}


def register(cls):
    """Class decorator: makes one instance of a Source subclass and registers it by name."""
    source = cls()
    if source.name in SOURCES:
        raise AssertionError(f"source {source.name!r} registered twice")
    SOURCES[source.name] = source
    return cls


def get_source(name):
    """A registered source by name (importing `empathy_tf.data.sources` registers them all).

    A user's `csv:PATH` file is no registered source: it is read through its task
    (`data.tasks.get_task("csv:PATH").get_source()`).
    """
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}; valid: {', '.join(sorted(SOURCES))} (a "
                          "csv:PATH file is read through its task, data.tasks.get_task)")
    return SOURCES[name]


PAPER_SPLIT = (0.8, 0.1, 0.1)
FINE_GRAINED_SPLIT = (0.6, 0.2, 0.2)
ROLES = ("target", "sentiment", "emotion", "other")


@dataclasses.dataclass(frozen=True)
class Task:
    """One classification problem on a source.

    Attributes:
        name: `--dataset` name.
        source: Name of the source (data/sources/) it reads.
        label_names: The task's class names.
        label_map: Source class index -> task class index; None keeps the source's labels.
        positive_class: Class whose P/R/F1 is reported; None for multi-class/multi-label tasks.
        split_fractions: train/dev/test fractions when the source has no official split.
        role: target (empathy), sentiment, emotion (can fill the EmoNet slot) or other.
        multi_label: Labels are a 0/1 matrix (sigmoid head).
    """
    name: str
    source: str
    label_names: tuple
    label_map: tuple | None = None
    positive_class: int | None = 1
    split_fractions: tuple = PAPER_SPLIT
    role: str = "target"
    multi_label: bool = False

    @property
    def num_classes(self):
        return len(self.label_names)

    def labels_from_source(self, labels):
        labels = np.asarray(labels, dtype=np.int64)
        return labels if self.label_map is None else np.asarray(self.label_map)[labels]

    def get_source(self):
        return get_source(self.source)


@dataclasses.dataclass
class RawExamples:
    """Parsed examples of one split, in file order.

    Attributes:
        ids: Stable ids, unique within the dataset (across its splits too).
        texts: Example texts (stripped, preprocessed, at most `MAX_TEXT_CHARS` characters).
        labels: int64 class indices with shape [N], or a 0/1 int64 matrix [N, K] (multi-label).
        extras: Additional per-example columns (see `Source.extras`), each with leading dim N.
    """

    ids: list[str]
    texts: list[str]
    labels: np.ndarray
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.ids)


class Source:
    """A dataset as released; subclasses set the class attributes and implement `read`.

    Attributes:
        name: Registry key (`--dataset` names a task; a source's tasks carry this name).
        label_names: Class names of the file's label column (index = label).
        multi_label: True if labels are an [N, K] 0/1 matrix.
        files: split -> paths relative to the data dir; ('train', 'validation', 'test') for an
            official split, ('all',) for a dataset the suite splits itself.
        how_to_obtain: One sentence on where to get the file(s) (shown when one is missing).
        tweets: Texts are tweets: links and @usernames become <URL> and <USER> at read time
            (and in `serving`, at prediction time).
        extras: name -> (kind, shape) of additional columns, kind in {"str", "int", "float"}.
        group_by: The extra field whose groups must not be split between train, dev and test
            (say, the writer of several essays) under `--group_by=auto`; None: no grouping.
        tasks: The tasks this source provides (`Task`).
    """

    name: str = ""
    label_names: tuple = ()
    multi_label: bool = False
    files: dict = {}
    how_to_obtain: str = ""
    tweets: bool = False
    extras: dict = {}
    group_by: str | None = None
    tasks: tuple = ()

    @property
    def splits(self):
        return tuple(self.files)

    @property
    def official_split(self):
        return set(self.files) >= {"train", "validation", "test"}

    def read(self, path, split) -> RawExamples:
        raise NotImplementedError

    def identity(self):
        """What, besides the files' contents, decides what `read` returns (e.g. CSV options)."""
        return {"name": self.name, "labels": list(self.label_names)}

    def split_paths(self, data_dir, split):
        if split not in self.files:
            raise ConfigError(f"dataset {self.name!r} has no split {split!r}; splits: "
                              f"{list(self.files)}")
        return [os.path.join(os.path.abspath(data_dir), p) for p in self.files[split]]

    def check_files(self, data_dir):
        """Raises DataError naming a missing file and how to obtain it."""
        for split in self.splits:
            for path in self.split_paths(data_dir, split):
                if not os.path.isfile(path):
                    raise DataError(f"{path}: file not found (dataset {self.name!r}, split "
                                    f"{split!r}). To obtain it: {self.how_to_obtain}.")

    def read_split(self, data_dir, split) -> RawExamples:
        """Reads and validates one split (several files are concatenated, ids kept unique)."""
        self.check_files(data_dir)
        paths = self.split_paths(data_dir, split)
        parts = [self.read(path, split) for path in paths]
        return parts[0] if len(parts) == 1 else concat(parts, paths)

    def card(self):
        """One line for `--list_tasks` and data/README.md."""
        files = ", ".join(p for paths in self.files.values() for p in paths)
        return (f"{self.name}: {files}; labels {list(self.label_names)}"
                f"{' (multi-label)' if self.multi_label else ''}. {self.how_to_obtain}.")


def check_unique_ids(source, splits):
    """Raises DataError if an id occurs in two splits ({split: RawExamples})."""
    seen = {}
    for split, ex in splits.items():
        for example_id in ex.ids:
            if example_id in seen:
                first = seen[example_id]
                raise DataError(
                    f"duplicate example id {example_id!r} in split {first!r} "
                    f"({', '.join(source.files[first])}) and split {split!r} "
                    f"({', '.join(source.files[split])}); expected ids unique across splits")
            seen[example_id] = split


def concat(parts, paths):
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


# --------------------------------------------------------------------------------------------
# Text.

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# (?<!\w) keeps e-mail addresses (name@host) from being read as mentions.
_USER_RE = re.compile(r"(?<!\w)@\w+")

# In-graph (RE2) twins of preprocess_tweet, for the exported SavedModel. RE2 has no look-behind and
# ASCII-only \w and \s, so Python's Unicode classes are spelled out: \w is [\pL\pN_] and \s is
# str.isspace(). tests/serving_test.py checks both give the same text.
_PY_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}" \
            r"\x{202f}\x{205f}\x{3000}"
RE2_URL = r"(?i)(?:https?://|www\.)[^" + _PY_SPACE + r"]+"
RE2_USER = r"(^|[^\pL\pN_])@[\pL\pN_]+"


def preprocess_tweet(text):
    """Replaces links with ``<URL>`` and @usernames with ``<USER>``."""
    return _USER_RE.sub("<USER>", _URL_RE.sub("<URL>", text))


def show(value, limit=80):
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


def lines(path):
    """Yields (1-based line number, line) of non-blank lines, without line terminators."""
    text = read_text(path)
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if line.strip():
            yield number, line


def csv_rows(path, delimiter, expected):
    """Yields (start line, fields) for each non-blank CSV record.

    ``csv.reader.line_num`` is the number of physical lines consumed *after* a record, so the
    record started on the line following the previous record's end. `expected` (the expected
    header columns) only serves error messages.
    """
    text = read_text(path)
    # Texts longer than csv's default field limit (131072 chars) must reach the truncation below
    # instead of failing inside the csv module.
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
                                f"{delimiter_name(delimiter)}-separated columns ({e}); header "
                                f"found: {show(first, 160)}; expected columns: {list(expected)}"
                                f"{_delimiter_hint(first, delimiter)}") from None
            raise DataError(f"{path}, line {start}: malformed CSV record ({e}); expected "
                            f"{delimiter_name(delimiter)}-separated fields with balanced "
                            "double quotes") from None
        end = reader.line_num
        if row and any(field.strip() for field in row):
            seen_header = True
            yield start, row


def csv_records(path, delimiter, columns):
    """Yields (start line, {column: value}) for each row of a CSV file with a header."""
    header_seen = False
    for line, row in csv_rows(path, delimiter, columns):
        if not header_seen:
            header_seen, header, width = True, row, len(row)
            index = header_index(path, line, header, columns, delimiter)
            continue
        check_field_count(path, line, row, width, header)
        yield line, {c: row[i] for c, i in index.items()}


def _delimiter_hint(header_text, delimiter):
    others = [d for d in (",", "\t", ";", "|") if d != delimiter and d in header_text]
    if not others:
        return ""
    guess = max(others, key=header_text.count)
    return (f" (the file seems to use {delimiter_name(guess)} as delimiter, expected "
            f"{delimiter_name(delimiter)})")


def delimiter_name(delimiter):
    return {",": "comma", "\t": "tab", ";": "semicolon"}.get(delimiter, repr(delimiter))


def header_index(path, line, header, expected, delimiter):
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


def check_field_count(path, line, row, n, columns):
    if len(row) != n:
        raise DataError(f"{path}, line {line}: row has {len(row)} fields; expected {n} "
                        f"({', '.join(columns)}); found {show(row, 160)}")


def split_last(path, line, raw, sep, fields):
    """Splits `raw` on the last `sep` (texts may contain the separator, labels never do)."""
    text, found, label = raw.rpartition(sep)
    if not found:
        raise DataError(f"{path}, line {line}: no {delimiter_name(sep)} separator found in "
                        f"{show(raw)}; expected '{fields[0]}{sep}{fields[1]}'")
    return text, label


def parse_choice(path, line, field, value, allowed):
    """Returns allowed.index(value) or raises a DataError naming line, field and value."""
    v = value.strip()
    try:
        return allowed.index(v)
    except ValueError:
        raise DataError(f"{path}, line {line}: field {field!r} has value {show(value)}; expected "
                        f"one of {list(allowed)}") from None


def parse_float(path, line, field, value):
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise DataError(f"{path}, line {line}: field {field!r} has value {show(value)}; expected "
                        "a finite number")
    return x


def require(path, line, field, value, what):
    """The stripped value, or DataError when it is empty."""
    value = value.strip()
    if not value:
        raise DataError(f"{path}, line {line}: field {field!r} is empty; expected {what}")
    return value


class Collector:
    """Accumulates the rows of one file and enforces the per-row rules shared by all readers."""

    def __init__(self, path, tweets=False):
        self.path = path
        self.tweets = tweets
        self.ids, self.texts, self.labels = [], [], []
        self.extras = collections.defaultdict(list)
        self._id_line = {}

    def add(self, line, example_id, text, label, **extras):
        path = self.path
        # TensorFlow's string ops stop at a NUL byte: the rest of the text would vanish silently.
        text = text.replace("\x00", " ").strip()
        if not text:
            raise DataError(f"{path}, line {line}: field 'text' is empty; expected a non-empty text")
        if self.tweets:
            text = preprocess_tweet(text)
        if len(text) > MAX_TEXT_CHARS:
            # A file is read several times per run (its labels, its TFDS copy): say it once.
            if (path, line) not in _TRUNCATION_WARNED:
                _TRUNCATION_WARNED.add((path, line))
                logging.warning("%s, line %d: text has %d characters; truncated to "
                                "MAX_TEXT_CHARS=%d", path, line, len(text), MAX_TEXT_CHARS)
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

    def require_rows(self, header=True):
        if not self.ids:
            what = "only a header and no rows" if header else "no rows"
            raise DataError(f"{self.path}: the file holds {what}; expected at least one example")

    def result(self, header=True, kinds=None):
        self.require_rows(header)
        labels = np.asarray(self.labels, dtype=np.int64)
        extras = {}
        for k, values in self.extras.items():
            kind = (kinds or {}).get(k, ("str", ()))[0]
            dtype = {"str": object, "int": np.int64, "float": np.float64}[kind]
            extras[k] = np.asarray(values, dtype=dtype)
        return RawExamples(ids=self.ids, texts=self.texts, labels=labels, extras=extras)
