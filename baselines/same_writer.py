"""`same_writer` (beyond the paper): predict an essay's label from its writer's training essays.

NewsEmp's label is its writer's own empathy rating, largely a trait of the writer (372 people wrote
5 essays each). This row predicts each dev/test example as the majority label of the training
examples by the same writer (the dataset's group field, e.g. `response_id`), and the training
majority class when the writer has none in training; a tie between labels goes to the one more
frequent in the whole training split. It reads no text. Under splits by example it measures how much
a table rewards recognising writers; under writer-grouped splits no test writer is in training
and it is exactly the majority-class predictor.

Example:

    predict, details = SameWriter().fit_predictor(config, data)   # data: a TaskData
    details["test_writers_in_train"]       # share of test examples whose writer is in training
    predict(data.test)                      # one-hot probabilities [n, C]
"""

import numpy as np

from empathy_tf.data import tasks as tasks_lib
from empathy_tf.errors import ConfigError
from empathy_tf.methods.base import register
from baselines.sklearn_rows import SklearnRow


def writer_field(data_config):
    """The field naming each example's writer: the grouping in use, else the dataset's declared.

    (Under `--group_by=none` the splits ignore writers, but this row still needs them.)
    """
    task = tasks_lib.get_task(data_config.dataset, **data_config.csv_options())
    field = (tasks_lib.group_field(task, data_config.group_by)
             or tasks_lib.group_field(task, "auto"))
    if field is None:
        source = task.get_source()
        raise ConfigError(
            f"same_writer needs each example's writer (a group field), and dataset "
            f"{data_config.dataset!r} declares none; name one with --group_by=FIELD (its fields: "
            f"{', '.join(sorted(source.extras)) or 'none'})")
    return field


def majority_by_writer(train_writers, train_labels, num_classes):
    """({writer: label}, the training majority class), ties broken by training frequency."""
    train_labels = np.asarray(train_labels, np.int64)
    frequency = np.bincount(train_labels, minlength=num_classes)
    fallback = int(frequency.argmax())
    # Rank classes by training frequency (ties: the smaller index) so a tie picks the frequent one.
    rank = np.empty(num_classes, np.int64)
    rank[np.lexsort((np.arange(num_classes), -frequency))] = np.arange(num_classes)
    writers, writer_of = np.unique(np.asarray(train_writers), return_inverse=True)
    counts = np.zeros((len(writers), num_classes), np.int64)
    np.add.at(counts, (writer_of.reshape(-1), train_labels), 1)
    best = counts.max(axis=1, keepdims=True)
    tied = counts == best
    label = np.where(tied, num_classes - rank, 0).argmax(axis=1)   # the best-ranked tied class
    return dict(zip(writers.tolist(), label.tolist())), fallback


@register
class SameWriter(SklearnRow):
    name = "same_writer"
    sections = ("data",)

    def validate(self, config):
        super().validate(config)
        writer_field(config.data)

    def fit_predictor(self, config, data):
        field = writer_field(config.data)
        task = data.task
        for split in ("train", "dev", "test"):
            if field not in getattr(data, split).extras:
                raise ConfigError(f"same_writer: the {split} split of {task.name} has no field "
                                  f"{field!r}")
        by_writer, fallback = majority_by_writer(data.train.extras[field], data.train.labels,
                                                 task.num_classes)

        def predict(split):
            labels = [by_writer.get(w, fallback) for w in split.extras[field].tolist()]
            return np.eye(task.num_classes, dtype=np.float32)[np.asarray(labels, np.int64)]

        seen = [w in by_writer for w in data.test.extras[field].tolist()]
        return predict, {"writer_field": field, "majority_class": fallback,
                         "test_writers_in_train": float(np.mean(seen)) if seen else 0.0}
