"""Tasks: a dataset seen as one classification problem, with its split policy and positive class.

A dataset (see `readers.py`) holds raw examples; a Task says which labels to predict (e.g. TwittEmp's
`seek` view is "1 vs rest"), how to split when the dataset has no official split, and which class the
paper's precision/recall/F1 refer to.

Example:

    task = get_task("twittemp_seek")
    data = load_task_data(task, data_dir="../shared/data", seed=0)
    data.train.texts[:2], data.train.labels[:2]
"""

import dataclasses

import numpy as np
from sklearn.model_selection import train_test_split

from empathy_tf.errors import ConfigError, DataError

PAPER_SPLIT = (0.8, 0.1, 0.1)
FINE_GRAINED_SPLIT = (0.6, 0.2, 0.2)
EMOTION_DATASETS = ("carer", "semeval2018_ec", "emonet")


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    dataset: str                      # key for builders.load_dataset (or csv:PATH)
    label_names: tuple = ()
    multi_label: bool = False
    positive_class: int | None = 1    # class whose P/R/F1 is reported; None for multi-class tasks
    split_fractions: tuple = PAPER_SPLIT  # used only when the dataset has no official split
    view: str = "identity"            # identity | nonzero | eq1 | eq2 (TwittEmp's three views)
    csv_options: tuple = ()

    @property
    def num_classes(self):
        return len(self.label_names)


_VIEWS = {
    "identity": None,
    "nonzero": lambda y: (y != 0).astype(np.int64),
    "eq1": lambda y: (y == 1).astype(np.int64),
    "eq2": lambda y: (y == 2).astype(np.int64),
}

TASKS = {
    "newsemp": Task("newsemp", "newsemp", ("no_empathy", "empathy")),
    "twittemp": Task("twittemp", "twittemp", ("none", "empathy"), view="nonzero"),
    "twittemp_seek": Task("twittemp_seek", "twittemp", ("rest", "seeking"), view="eq1",
                          split_fractions=FINE_GRAINED_SPLIT),
    "twittemp_provide": Task("twittemp_provide", "twittemp", ("rest", "providing"), view="eq2",
                             split_fractions=FINE_GRAINED_SPLIT),
    "sst2": Task("sst2", "sst2", ("negative", "positive")),
    "carer": Task("carer", "carer", ("sadness", "joy", "love", "anger", "fear", "surprise"),
                  positive_class=None),
    "semeval2018_ec": Task("semeval2018_ec", "semeval2018_ec",
                           ("anger", "anticipation", "disgust", "fear", "joy", "sadness",
                            "surprise", "trust"), multi_label=True, positive_class=None),
    "emonet": Task("emonet", "emonet", ("anger", "anticipation", "disgust", "fear", "joy",
                                        "sadness", "surprise", "trust"), positive_class=None),
}
ALIASES = {"twittemp_empathy": "twittemp", "sst": "sst2", "semeval": "semeval2018_ec"}


def get_task(name, **csv_options):
    """Looks a task up by name; `csv:PATH` makes a task from a user's CSV/TSV file."""
    if name.startswith("csv:"):
        from empathy_tf.data import readers
        spec = readers.csv_spec(name[4:], **csv_options)
        binary = len(spec.label_names) == 2
        return Task(name, name, tuple(spec.label_names), positive_class=1 if binary else None,
                    csv_options=tuple(sorted(csv_options.items())))
    name = ALIASES.get(name, name)
    if name not in TASKS:
        raise ConfigError(f"unknown dataset {name!r}; valid: {', '.join(sorted(TASKS))}, "
                          "or csv:PATH for your own file")
    return TASKS[name]


@dataclasses.dataclass
class SplitData:
    ids: np.ndarray     # str
    texts: list
    labels: np.ndarray  # int64 [N] or [N, K]

    def __len__(self):
        return len(self.texts)

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        return SplitData(self.ids[indices], [self.texts[i] for i in indices], self.labels[indices])


@dataclasses.dataclass
class TaskData:
    task: Task
    train: SplitData
    dev: SplitData
    test: SplitData
    official_split: bool

    def split_ids(self):
        return {s: getattr(self, s).ids.tolist() for s in ("train", "dev", "test")}


def _stratify_key(labels):
    if labels.ndim == 1:
        return labels
    return None  # multi-label: plain random split


def seeded_split(labels, fractions, seed):
    """Stratified train/dev/test index arrays; the same seed gives the same split on any machine."""
    train_f, dev_f, test_f = fractions
    if abs(train_f + dev_f + test_f - 1.0) > 1e-6:
        raise ConfigError(f"split fractions {fractions} do not sum to 1")
    idx = np.arange(len(labels))
    strat = _stratify_key(labels)
    try:
        train_idx, rest = train_test_split(idx, train_size=train_f, random_state=seed,
                                           shuffle=True, stratify=strat)
        rest_strat = None if strat is None else strat[rest]
        dev_idx, test_idx = train_test_split(rest, train_size=dev_f / (dev_f + test_f),
                                             random_state=seed, shuffle=True, stratify=rest_strat)
    except ValueError as e:  # e.g. a class with a single example cannot be stratified
        raise DataError(f"cannot make a stratified {fractions} split of {len(labels)} examples: {e}")
    return np.sort(train_idx), np.sort(dev_idx), np.sort(test_idx)


def cap_split(split, cap, seed):
    """At most `cap` examples, stratified, seeded; the order of kept examples is preserved."""
    if cap is None or cap <= 0 or len(split) <= cap:
        return split
    strat = _stratify_key(split.labels)
    try:
        keep, _ = train_test_split(np.arange(len(split)), train_size=cap, random_state=seed,
                                   stratify=strat)
    except ValueError:
        keep = np.random.default_rng(seed).choice(len(split), cap, replace=False)
    return split.take(np.sort(keep))


def _to_split(raw, view):
    labels = np.asarray(raw.labels, dtype=np.int64)
    if _VIEWS[view] is not None:
        labels = _VIEWS[view](labels)
    return SplitData(np.asarray(raw.ids, dtype=str), list(raw.texts), labels)


def load_task_data(task, data_dir, seed=0, tfds_dir=None):
    """Loads a task's examples and splits them: official splits where they exist, else seeded."""
    from empathy_tf.data import builders
    spec, splits = builders.load_dataset(task.dataset, data_dir, tfds_dir=tfds_dir,
                                         **dict(task.csv_options))
    if set(splits) >= {"train", "validation", "test"}:
        parts = [_to_split(splits[s], task.view) for s in ("train", "validation", "test")]
        return TaskData(task, *parts, official_split=True)
    every = _to_split(splits["all"], task.view)
    train_idx, dev_idx, test_idx = seeded_split(every.labels, task.split_fractions, seed)
    return TaskData(task, every.take(train_idx), every.take(dev_idx), every.take(test_idx),
                    official_split=False)
