"""A user's own CSV/TSV file as a source: `--dataset=csv:PATH`.

The file needs a header naming its text and label columns (options `text_column`, default `text`,
and `label_column`, default `label`); `id_column` optionally names an id column (ids are
`line-<N>` otherwise, N the line on which the row starts). The delimiter follows the extension
(`.csv` comma, `.tsv` tab) unless the `delimiter` option gives one. Label names are the sorted
unique label strings (numerically sorted when all are integers); the task reports P/R/F1 of class 1
only for a clearly negative/positive pair (0/1, false/true, no/yes, neg/pos, negative/positive).
The file is the single split `all`, split by the suite like NewsEmp.

Example:

    task = task_for("csv:posts.tsv", text_column="tweet")
    task.label_names, task.get_source().data_dir
"""

import dataclasses
import os

from empathy_tf.data.sources.base import (Collector, Source, Task, check_field_count, csv_rows,
                                          header_index, show)
from empathy_tf.errors import ConfigError, DataError

OPTIONS = ("text_column", "label_column", "id_column", "delimiter")   # how the file is read
TASK_OPTIONS = (*OPTIONS, "positive_label")                            # and what is reported
_TAB_NAMES = ("tab", "\\t")   # --delimiter=tab: a literal tab is awkward on a command line
_POSITIVE_PAIRS = (("0", "1"), ("false", "true"), ("no", "yes"), ("neg", "pos"),
                   ("negative", "positive"))


def _path_of(name):
    if not isinstance(name, str) or not name.startswith("csv:"):
        raise ConfigError(f"expected csv:PATH, got {name!r}")
    path = name[len("csv:"):]
    if not path:
        raise ConfigError("csv: needs a path, e.g. csv:/data/my_file.tsv")
    return os.path.abspath(os.path.expanduser(path))


def _delimiter(path, delimiter):
    if delimiter in _TAB_NAMES:
        return "\t"
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


def _check_unknown(unknown):
    if unknown:
        raise ConfigError(f"unknown csv option(s) {sorted(unknown)}; valid options: "
                          f"{', '.join(OPTIONS)}")


def _parse(path, text_column, label_column, id_column, delimiter):
    """(Collector holding the raw label strings, whether a header was found)."""
    columns = tuple(c for c in (text_column, label_column, id_column) if c is not None)
    if len(set(columns)) != len(columns):
        raise ConfigError(f"csv options name the same column twice: {columns}")
    out = Collector(path)
    header = None
    for line, row in csv_rows(path, delimiter, columns):
        if header is None:
            header = row
            index = header_index(path, line, header, columns, delimiter)
            continue
        check_field_count(path, line, row, len(header), header)
        label = row[index[label_column]].strip()
        if not label:
            raise DataError(f"{path}, line {line}: field {label_column!r} is empty; expected a "
                            "label")
        if id_column is not None:
            example_id = row[index[id_column]].strip()
            if not example_id:
                raise DataError(f"{path}, line {line}: field {id_column!r} is empty; expected an "
                                "id")
        else:
            example_id = f"line-{line}"
        out.add(line, example_id, row[index[text_column]], label)
    return out, header is not None


def label_names_of(labels):
    """Sorted unique label strings, numerically sorted when all are integers."""
    unique = set(labels)
    as_int = {u: _int_or_none(u) for u in unique}
    if all(v is not None for v in as_int.values()):
        return tuple(sorted(unique, key=lambda u: (as_int[u], u)))
    return tuple(sorted(unique))


def positive_class_of(label_names, positive_label=None, path=""):
    """The index of `positive_label`; else 1 for a clearly negative/positive pair, else None."""
    if positive_label is not None:
        if len(label_names) != 2 or positive_label not in label_names:
            raise ConfigError(f"{path}: positive_label={positive_label!r}; expected one of the "
                              f"labels of a two-class file, got labels {list(label_names)}")
        return label_names.index(positive_label)
    if len(label_names) == 2 and tuple(n.lower() for n in label_names) in _POSITIVE_PAIRS:
        return 1
    return None


class UserCsv(Source):
    """A source made at run time from one user file (not registered)."""

    builder_name = "csv"
    tweets = False

    def __init__(self, path, label_names, text_column, label_column, id_column, delimiter):
        self.path = path
        self.name = f"csv:{path}"
        self.label_names = tuple(label_names)
        self.data_dir = os.path.dirname(path)
        self.files = {"all": (os.path.basename(path),)}
        self.how_to_obtain = f"your own file {path}"
        self.text_column = text_column
        self.label_column = label_column
        self.id_column = id_column
        self.delimiter = delimiter
        self.tasks = ()

    @property
    def csv_options(self):
        return dict(text_column=self.text_column, label_column=self.label_column,
                    id_column=self.id_column, delimiter=self.delimiter)

    def split_paths(self, data_dir, split):
        # The file's own folder, whatever --data_dir says (tfds_source.load passes it anyway).
        del data_dir
        return super().split_paths(self.data_dir, split)

    def identity(self):
        # The path is left out on purpose: moving the file must not force a rebuild.
        return {"name": "csv", "labels": list(self.label_names), "csv": self.csv_options}

    def read(self, path, split):
        del split
        out, header = _parse(path, self.text_column, self.label_column, self.id_column,
                             self.delimiter)
        index = {n: i for i, n in enumerate(self.label_names)}
        for k, label in enumerate(out.labels):
            if label not in index:
                raise DataError(
                    f"{path}, line {out.line_of(out.ids[k])}: field {self.label_column!r} has "
                    f"value {show(label)}; expected one of {list(self.label_names)} (the file "
                    "changed since its label names were read)")
            out.labels[k] = index[label]
        return out.result(header=header)

    def card(self):
        return (f"{self.name}: your own file; labels {list(self.label_names)}; options "
                f"{self.csv_options}.")


def source_for(name, text_column="text", label_column="label", id_column=None, delimiter=None,
               **unknown):
    """The source of `csv:PATH`; reads (and validates) the file to find its label names.

    Args:
        name: `csv:PATH`, PATH absolute or relative to the current directory.
        text_column: Header name of the text column.
        label_column: Header name of the label column (arbitrary strings).
        id_column: Optional header name of an id column; ids default to `line-<N>`.
        delimiter: Field delimiter; by default tab for .tsv and comma for .csv files.

    Raises:
        ConfigError: no path, an unknown option, no delimiter for the extension.
        DataError: the file is missing or malformed.
    """
    _check_unknown(unknown)
    path = _path_of(name)
    delimiter = _delimiter(path, delimiter)
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found; expected a CSV/TSV file with a header holding "
                        f"the columns {text_column!r} and {label_column!r}")
    out, header = _parse(path, text_column, label_column, id_column, delimiter)
    out.require_rows(header=header)
    names = label_names_of(out.labels)
    _check_labels(path, label_column, out, names)
    return UserCsv(path, names, text_column, label_column, id_column, delimiter)


def _check_labels(path, label_column, out, names):
    """Refuses one class, and labels that differ only in case or spacing (`Yes`, `yes `)."""
    first_line = {}
    for example_id, label in zip(out.ids, out.labels):
        first_line.setdefault(label, out.line_of(example_id))
    if len(names) < 2:
        raise DataError(f"{path}: every row's {label_column!r} is {show(names[0])}; a "
                        "classification task needs at least two classes")
    variants = {}
    for name in names:
        variants.setdefault(" ".join(name.split()).casefold(), []).append(name)
    clashes = [group for group in variants.values() if len(group) > 1]
    if clashes:
        described = "; ".join(" vs ".join(f"{show(n)} (first on line {first_line[n]})"
                                          for n in group) for group in clashes)
        raise DataError(f"{path}: field {label_column!r} has labels that differ only in case or "
                        f"spacing: {described}; they would be different classes. Write each "
                        "class one way")


@dataclasses.dataclass(frozen=True)
class UserCsvTask(Task):
    """A `Task` on a user file; remembers the csv options its source is read with."""

    csv_options: tuple = ()

    def get_source(self):
        return source_for(self.source, **dict(self.csv_options))


def task_for(name, positive_label=None, **options):
    """The task of `csv:PATH`: single-label, role 'target'.

    Args:
        name: `csv:PATH`.
        positive_label: The label whose P/R/F1 are reported (two-class files); by default the
            second of a clearly negative/positive pair, else none (macro-F1 is reported).
        **options: As for `source_for`; empty strings mean "not given" (config values:
            `--id_column=` is no id column), and `delimiter` may be `tab`.
    """
    _check_unknown(set(options) - set(OPTIONS))
    options = {k: v for k, v in options.items() if v not in (None, "")}
    source = source_for(name, **options)
    positive_class = positive_class_of(source.label_names, positive_label or None, source.path)
    return UserCsvTask(name, source.name, source.label_names, positive_class=positive_class,
                       role="target", csv_options=tuple(sorted(options.items())))
