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
"""

import dataclasses

import numpy as np

from empathy_tf.data import splits as splits_lib
from empathy_tf.errors import ConfigError, DataError

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
        from empathy_tf.data import sources
        return sources.get_source(self.source)


def all_tasks():
    """{name: Task} over every registered source (derived, never listed by hand)."""
    from empathy_tf.data import sources
    out = {}
    for source in sources.SOURCES.values():
        for task in source.tasks:
            if task.name in out:
                raise AssertionError(f"task {task.name!r} declared by two sources")
            out[task.name] = task
    return out


def tasks_with_role(role):
    return tuple(sorted(name for name, task in all_tasks().items() if task.role == role))


def get_task(name):
    """Looks a task up by name; `csv:PATH` makes a task from a user's CSV/TSV file."""
    if name.startswith("csv:"):
        from empathy_tf.data.sources import user_csv
        return user_csv.task_for(name)
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

    def __len__(self):
        return len(self.texts)

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        return SplitData(self.ids[indices], [self.texts[i] for i in indices], self.labels[indices],
                         None if self.strata is None else self.strata[indices])


@dataclasses.dataclass
class TaskData:
    task: Task
    train: SplitData
    dev: SplitData
    test: SplitData
    official_split: bool

    def split_ids(self):
        return {s: getattr(self, s).ids.tolist() for s in ("train", "dev", "test")}

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
                     task.labels_from_source(raw.labels), strata)


def load_task_data(task, data_dir, protocol="split", seed=0, fold=0, tfds_dir=None):
    """A task's examples, split: the official split where one exists, else by `protocol`.

    Splits are stratified on the source's labels, so every view of a source gets the same ids.
    """
    from empathy_tf.data import tfds_source
    source = task.get_source()
    raw = tfds_source.load(source, data_dir, tfds_dir=tfds_dir)
    if source.official_split:
        parts = [_as_split(raw[s], task) for s in ("train", "validation", "test")]
        return check_classes(TaskData(task, *parts, official_split=True))
    every = _as_split(raw["all"], task)
    strata = raw["all"].labels if not task.multi_label else None
    try:
        train, dev, test = splits_lib.split_indices(strata, len(every), task.split_fractions,
                                                    protocol, seed, fold)
    except DataError as e:
        raise _rare_class_error(source, data_dir, raw["all"], protocol, e) from None
    return check_classes(TaskData(task, every.take(train), every.take(dev), every.take(test),
                                  official_split=False))


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
