"""Tasks: a source seen as one classification problem, with its split policy and positive class.

A `Task` is declared by the source that provides it (data/sources/): which of the source's labels it
predicts (`label_map`, e.g. TwittEmp's seek view maps none/seeking/providing to 0/1/0), how the
source is split when it has no official split (`split_fractions`, stratified on the source's own
labels, so every view of TwittEmp gets the same split for a seed), which class the paper's P/R/F1
refer to, and its `role` (an 'emotion' task can fill the EmoNet slot).

Example:

    task = get_task("twittemp_seek")
    data = load_task_data(task, data_dir="../shared/data", protocol="kfold:5", seed=0, fold=2)
    data.train.texts[:2], data.train.labels[:2]

A source may declare how its examples are grouped (`Source.group_by`, e.g. NewsEmp's writer,
`response_id`): under `group_by="auto"` (the default) no group is split between train, dev and test.
"""

import dataclasses
import functools

import numpy as np

from empathy_tf.data import sources, splits as splits_lib
from empathy_tf.data.sources import user_csv
# A task is declared by its source, so it is defined beside `Source`; re-exported here.
from empathy_tf.data.sources.base import (FINE_GRAINED_SPLIT, PAPER_SPLIT, ROLES,  # noqa: F401
                                          Task)
from empathy_tf.errors import ConfigError, DataError

@functools.lru_cache(maxsize=256)   # asked per cell; a csv:PATH source reads its file to answer
def group_field(task, group_by):
    """The extra field whose groups the splits of `task` keep together, or None (by example).

    `group_by` is a field of the dataset's source, `auto` (the grouping the source declares, see
    `Source.group_by`) or `none`. Datasets with an official split are never regrouped.

    Example:

        group_field(get_task("newsemp"), "auto")    # 'response_id'
        group_field(get_task("twittemp"), "auto")   # None
    """
    if group_by == "none":
        return None
    dataset = task.name
    source = task.get_source()
    if group_by == "auto":
        return None if source.official_split else source.group_by
    if group_by not in source.extras:
        raise ConfigError(f"group_by={group_by!r}: dataset {dataset!r} has no such field; its "
                          f"fields: {', '.join(sorted(source.extras)) or 'none'} (or auto, none)")
    if source.official_split:
        raise ConfigError(f"group_by={group_by!r}: dataset {dataset!r} has an official split, "
                          "which is used as released; use group_by=auto or none")
    return group_by


def all_tasks():
    """{name: Task} over every registered source (derived, never listed by hand)."""
    out = {}
    for source in sources.SOURCES.values():
        for task in source.tasks:
            if task.name in out:
                raise AssertionError(f"task {task.name!r} declared by two sources")
            out[task.name] = task
    return out


def tasks_with_role(role):
    return tuple(sorted(name for name, task in all_tasks().items() if task.role == role))


def get_task(name, **csv_options):
    """Looks a task up by name; `csv:PATH` makes a task from a user's CSV/TSV file.

    `csv_options` (`DataConfig.csv_options()`: columns, delimiter, positive label) say how a
    `csv:PATH` file is read; other tasks ignore them.
    """
    if name.startswith("csv:"):   # the one place a csv:PATH name is read
        return user_csv.task_for(name, **csv_options)
    tasks = all_tasks()
    if name not in tasks:
        raise ConfigError(f"unknown dataset {name!r}; valid: {', '.join(sorted(tasks))}, "
                          "or csv:PATH for your own file")
    return tasks[name]


@dataclasses.dataclass
class SplitData:
    ids: np.ndarray     # str
    texts: list
    labels: np.ndarray  # int64 [N] or [N, K]
    # What subsets are stratified on: the source's own labels, so that every view of a source
    # (TwittEmp's seek and provide) keeps the same examples; None: the task's labels.
    strata: np.ndarray | None = None
    # The source's extra fields ({name: [N] array}, e.g. NewsEmp's response_id).
    extras: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.texts)

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        return SplitData(self.ids[indices], [self.texts[i] for i in indices], self.labels[indices],
                         None if self.strata is None else self.strata[indices],
                         {k: v[indices] for k, v in self.extras.items()})


@dataclasses.dataclass
class TaskData:
    task: Task
    train: SplitData
    dev: SplitData
    test: SplitData
    official_split: bool
    group_field: str | None = None   # the field whose groups the splits keep together

    def split_ids(self):
        return {s: getattr(self, s).ids.tolist() for s in ("train", "dev", "test")}

    def split_record(self):
        """What split.json records of this task: the grouping and every split's ids."""
        return {"official_split": self.official_split, "group_by": self.group_field,
                **self.split_ids()}

    def train_subsample(self, fraction, seed):
        """The same data training on `fraction` of the training split (see `splits.nested_subset`).

        Whole groups of `group_field`, stratified, seeded; dev and test unchanged. For one seed
        the subsamples are nested: the 10% one is inside the 25% one.
        """
        if fraction >= 1.0:
            return self
        train = self.train
        keep = splits_lib.nested_subset(
            len(train), fraction, seed,
            strata=train.labels if train.strata is None and train.labels.ndim == 1
            else train.strata,
            groups=train.extras[self.group_field] if self.group_field else None)
        return dataclasses.replace(self, train=train.take(keep))

    def capped(self, cap, seed, splits=("train",)):
        """The same data with at most `cap` examples in each of `splits` (stratified, seeded)."""
        return dataclasses.replace(self, **{s: cap_split(getattr(self, s), cap, seed)
                                            for s in splits})


def cap_split(split, cap, seed):
    """At most `cap` examples, stratified, seeded; the order of kept examples is preserved."""
    if cap is None or cap <= 0 or len(split) <= cap:
        return split
    strata = split.labels if split.strata is None else split.strata
    return split.take(splits_lib.stratified_subset(strata, cap, seed))


def _as_split(raw, task):
    strata = None if task.multi_label else np.asarray(raw.labels, dtype=np.int64)
    return SplitData(np.asarray(raw.ids, dtype=str), list(raw.texts),
                     task.labels_from_source(raw.labels), strata, dict(raw.extras))


def split_all(task, raw, protocol, seed, fold, group):
    """(train, dev, test) indices of a source's `all` examples by `protocol`, grouped by `group`."""
    strata = raw.labels if not task.multi_label else None
    groups = None if group is None else raw.extras[group]
    return splits_lib.split_indices(strata, len(raw), task.split_fractions, protocol, seed, fold,
                                    groups=groups)


def load_task_data(task, data_dir, protocol="split", seed=0, fold=0, tfds_dir=None,
                   group_by="none"):
    """A task's examples, split: the official split where one exists, else by `protocol`.

    Splits are stratified on the source's labels, so every view of a source gets the same ids;
    with a grouping (`group_by`, see `group_field`) no group is in two of train, dev and test.
    """
    from empathy_tf.data import tfds_source
    source = task.get_source()
    raw = tfds_source.load(source, data_dir, tfds_dir=tfds_dir)
    if source.official_split:
        parts = [_as_split(raw[s], task) for s in ("train", "validation", "test")]
        return check_classes(TaskData(task, *parts, official_split=True))
    group = group_field(task, group_by)
    every = _as_split(raw["all"], task)
    try:
        train, dev, test = split_all(task, raw["all"], protocol, seed, fold, group)
    except DataError as e:
        raise _rare_class_error(source, data_dir, raw["all"], protocol, e) from None
    return check_classes(TaskData(task, every.take(train), every.take(dev), every.take(test),
                                  official_split=False, group_field=group))


def check_protocol(data_config, data_dir):
    """Fails in seconds, before any cell starts, when the target cannot be split as asked.

    Reads the target's file with its reader (no TensorFlow) and makes the first cell's split, so
    `kfold:5000` on a 60-row file, or more folds than writers, is one clear error, not thousands
    of failed cells.
    """
    from empathy_tf.protocols import protocol_spec
    task = get_task(data_config.dataset, **data_config.csv_options())
    source = task.get_source()
    if source.official_split:
        return
    group = group_field(task, data_config.group_by)
    raw = source.read_split(data_dir, "all")
    files = ", ".join(source.split_paths(data_dir, "all"))
    spec = protocol_spec(data_config.protocol)
    try:
        split_all(task, raw, data_config.protocol, 0, min(data_config.fold, spec.folds - 1), group)
    except DataError as e:
        raise DataError(f"{files}: --protocol={data_config.protocol}"
                        f"{f' --group_by={group}' if group else ''} cannot split dataset "
                        f"{task.name!r}: {e}") from None


def _rare_class_error(source, data_dir, raw, protocol, error):
    """A split that failed for a class too small to stratify, said with the class and its rows."""
    labels = np.asarray(raw.labels)
    counts = np.bincount(labels, minlength=len(source.label_names))
    present = np.flatnonzero(counts)
    rarest = present[counts[present] == counts[present].min()]
    if counts[present].min() > 2:
        return error
    described = []
    for label in rarest:
        rows = np.flatnonzero(labels == label)
        where = ", ".join(f"id {raw.ids[r]!r} (data row {r + 1})" for r in rows[:5])
        described.append(f"label {source.label_names[label]!r} has only {len(rows)} example(s): "
                         f"{where}")
    files = ", ".join(source.split_paths(data_dir, "all"))
    return DataError(f"{files}: {'; '.join(described)}; a stratified {protocol} split "
                     "needs more of every class (is it a typo? fix or drop those rows) ({error})")


def check_classes(data):
    """Refuses a single-label task with fewer than two classes in a split: its scores (say, an F1
    of 1.0 from a one-unit softmax) would mean nothing."""
    if data.task.multi_label:
        return data
    if data.task.num_classes < 2:
        raise DataError(f"{data.task.name}: the task has {data.task.num_classes} class "
                        f"({list(data.task.label_names)}); classification needs at least two")
    for split in ("train", "dev", "test"):
        present = np.unique(getattr(data, split).labels)
        if len(present) < 2:
            names = [data.task.label_names[i] for i in present]
            raise DataError(f"{data.task.name}: its {split} split holds only the class(es) "
                            f"{names}; every split needs at least two classes (too few examples "
                            "of a class?)")
    return data
