"""tf.distribute strategies, and which process of a multi-worker run is the chief.

Keras 3 `Model.fit` fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585), so the
suite trains with its own step (loop.py), the same code for every strategy. The cluster comes from
`TF_CONFIG` through `tf.distribute.cluster_resolver.TFConfigClusterResolver`.
"""

import os

import tensorflow as tf

from empathy_tf.config import STRATEGIES
from empathy_tf.errors import ConfigError


def make_strategy(name="default"):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("--strategy=multi_worker needs TF_CONFIG (see BUILD.md)")
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=tf.distribute.cluster_resolver.TFConfigClusterResolver())
    raise ConfigError(f"strategy={name!r}; expected one of {STRATEGIES}")


def _task(resolver=None):
    resolver = resolver or tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec().as_dict()
    return resolver.task_type, resolver.task_id, cluster


def is_chief(resolver=None):
    """True unless TF_CONFIG (or the strategy's resolver) names this process a non-chief."""
    task_type, task_id, cluster = _task(resolver)
    if not task_type:
        return True
    return task_type == "chief" or (task_type == "worker" and int(task_id or 0) == 0
                                    and "chief" not in cluster)


def worker_name(resolver=None):
    task_type, task_id, _ = _task(resolver)
    return f"{task_type or 'worker'}-{task_id or 0}"


def strategy_is_chief(strategy):
    return is_chief(getattr(strategy, "cluster_resolver", None))
