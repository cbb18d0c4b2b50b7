"""Mixed-task, length-bucketed tf.data input.

All training examples of all tasks live in one `ExampleTable` (ragged token ids, task id, gold and
teacher target vectors). Each epoch gets a *batch plan* computed with numpy from the seed and the
epoch number: the examples are sampled per task (proportional, size**alpha or uniform), shuffled,
cut into pools of `pool_batches` batches, sorted by a jittered length inside each pool and cut into
batches, and the batches are shuffled. So batches are padded only to their own longest member, yet
their contents and order change every epoch. The plan is a pure function of (seed, epoch), which makes
a resumed run see exactly the batches it would have seen.

Example:

    table = ExampleTable.build([(task_tokens, gold, teacher)], num_classes=2)
    plan = plan_epochs(table, batch_size=32, seed=0, epochs=3)
    for features, targets in training_dataset(table, plan):
        ...
"""

import dataclasses

import numpy as np
import tensorflow as tf

from empathy_tf.data.featurize import Tokens
from empathy_tf.errors import ConfigError

SAMPLING = ("proportional", "alpha", "uniform")


@dataclasses.dataclass
class ExampleTable:
    tokens: Tokens
    task_ids: np.ndarray  # int32 [N]
    gold: np.ndarray      # float32 [N, C_max]: one-hot / multi-hot, zero-padded past a task's classes
    teacher: np.ndarray   # float32 [N, C_max]: teacher probabilities (equal to gold when no teacher)
    num_tasks: int

    @staticmethod
    def build(parts, num_classes):
        """parts: per task, (Tokens, gold [n, C_t], teacher [n, C_t] or None)."""
        c_max = max(num_classes)
        golds, teachers, task_ids = [], [], []
        for t, (tokens, gold, teacher) in enumerate(parts):
            n = len(tokens)
            g = np.zeros([n, c_max], np.float32)
            g[:, : gold.shape[1]] = gold
            golds.append(g)
            tt = g.copy()
            if teacher is not None:
                tt[:, : teacher.shape[1]] = teacher
            teachers.append(tt)
            task_ids.append(np.full([n], t, np.int32))
        return ExampleTable(Tokens.concat([p[0] for p in parts]), np.concatenate(task_ids),
                            np.concatenate(golds), np.concatenate(teachers), len(parts))

    def __len__(self):
        return len(self.task_ids)


def one_hot_targets(labels, num_classes, multi_label):
    if multi_label:
        return np.asarray(labels, np.float32)
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels)]


def sample_epoch(task_ids, num_tasks, rng, sampling="proportional", alpha=0.75):
    """Indices of the examples one epoch trains on; the epoch size is the total example count."""
    if sampling not in SAMPLING:
        raise ConfigError(f"sampling={sampling!r}; expected one of {SAMPLING}")
    if sampling == "proportional" or num_tasks == 1:
        return np.arange(len(task_ids))
    sizes = np.bincount(task_ids, minlength=num_tasks).astype(np.float64)
    weights = sizes**alpha if sampling == "alpha" else np.ones_like(sizes)
    counts = np.floor(weights / weights.sum() * sizes.sum()).astype(np.int64)
    chosen = []
    for t in range(num_tasks):  # one numpy draw per task, not per example
        members = np.flatnonzero(task_ids == t)
        chosen.append(rng.choice(members, counts[t], replace=counts[t] > len(members)))
    return np.concatenate(chosen)


# Pools of 128 batches: the KD student's mix holds ~2% long NewsEmp essays among short SST-2 and
# CARER texts, and with pools of 16 batches each pool's few essays padded a whole batch of short
# texts (padding efficiency 0.74 on the full kd_sst_emonet mix; 0.94 with these settings).
POOL_BATCHES = 128
# Sorting on length × exp(U(-j, j)) lets examples of nearly equal length trade places, so that on
# a small dataset (one or two pools) the same examples do not meet in a batch every epoch: NewsEmp
# pairs batched together again in the next epoch drop from 0.51 (no jitter) to 0.08.
LENGTH_JITTER = 0.05
# An epoch is cut into at least this many pools, so a small dataset's batches are not all cut from
# one sort of the whole epoch. NewsEmp (1,488 essays, 93 batches of 16) fitted in one 128-batch pool
# and its first epochs came out high-recall in 6 of 6 seeds; with six pools (its layout before the
# pools grew) single-task BERT's moved part of the way back (README.md, Table 4 notes). Padding
# efficiency on NewsEmp at batch 16: 0.934 with six pools, 0.956 in one.
MIN_POOLS = 6


def length_batches(indices, lengths, batch_size, rng, pool_batches=POOL_BATCHES, shuffle=True,
                   min_batch=1, jitter=LENGTH_JITTER):
    """Cuts `indices` into batches of similar length; returns a list of index arrays.

    A pool holds `pool_batches` batches, or fewer when the epoch has under `MIN_POOLS` such pools.
    """
    indices = np.asarray(indices, np.int64)
    if shuffle:
        indices = rng.permutation(indices)
    num_batches = -(-len(indices) // batch_size)
    pool = batch_size * max(1, min(pool_batches, -(-num_batches // MIN_POOLS)))
    pool_id = np.arange(len(indices)) // pool
    key = lengths[indices].astype(np.float64)
    if shuffle and jitter:
        key *= np.exp(rng.uniform(-jitter, jitter, len(indices)))
    order = np.lexsort((key, pool_id))  # sort by (jittered) length within each pool
    indices = indices[order]
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < min_batch:
        batches[-2:] = [np.concatenate(batches[-2:])]  # every replica must get an example
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def plan_epochs(table, batch_size, seed, epochs, sampling="proportional", alpha=0.75,
                pool_batches=POOL_BATCHES, min_batch=1):
    """Batch plans for every epoch: list (epochs) of lists (steps) of index arrays."""
    plans = []
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        chosen = sample_epoch(table.task_ids, table.num_tasks, rng, sampling, alpha)
        plans.append(length_batches(chosen, table.tokens.lengths, batch_size, rng, pool_batches,
                                    min_batch=min_batch))
    return plans


def padding_efficiency(lengths, batches):
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return real / max(padded, 1)


def _ragged_constant(tokens):
    return tf.RaggedTensor.from_row_lengths(tf.constant(tokens.flat, tf.int32),
                                            tf.constant(tokens.lengths, tf.int64))


def _batches_dataset(batches):
    flat = np.concatenate(batches) if batches else np.zeros([0], np.int64)
    lengths = np.asarray([len(b) for b in batches], np.int64)
    return tf.data.Dataset.from_tensor_slices(
        tf.RaggedTensor.from_row_lengths(tf.constant(flat, tf.int64), lengths))


def training_dataset(table, batches, pad_id=0, pipeline_id=0, num_pipelines=1, local_replicas=1,
                     length_multiple=1):
    """tf.data of ((features), (targets)) for a list of index batches, in the given order.

    Features: token_ids [b, T] (T = longest in the sub-batch, rounded up to `length_multiple`),
    padding_mask [b, T].
    Targets: task_id [b], gold/teacher [b, C_max], weight [b] = 1 / B (B = the whole global
    batch), so that summing `weight * loss` over all replicas gives the batch mean.

    Under tf.distribute, input pipeline `pipeline_id` of `num_pipelines` (one per worker) feeds
    `local_replicas` replicas: each global batch is dealt out in strides, so every replica gets a
    distinct, similar-length share, and each step consumes `local_replicas` consecutive elements.
    """
    tokens = _ragged_constant(table.tokens)
    task_ids = tf.constant(table.task_ids)
    gold = tf.constant(table.gold)
    teacher = tf.constant(table.teacher)
    stride = num_pipelines * local_replicas

    def share(index):
        # [global batch] -> [local_replicas] sub-batches for this pipeline.
        size = tf.cast(tf.shape(index)[0], tf.float32)
        subs = [index[pipeline_id + num_pipelines * r::stride] for r in range(local_replicas)]
        return tf.data.Dataset.from_tensor_slices(
            (tf.ragged.stack(subs), tf.fill([local_replicas], size)))

    def gather(index, global_size):
        if isinstance(index, tf.RaggedTensor):
            index = index.flat_values
        rows = tf.gather(tokens, index)
        token_ids = rows.to_tensor(default_value=pad_id)
        if length_multiple > 1:
            longest = tf.shape(token_ids)[1]
            padded = (longest + length_multiple - 1) // length_multiple * length_multiple
            token_ids = tf.pad(token_ids, [[0, 0], [0, padded - longest]], constant_values=pad_id)
        mask = tf.sequence_mask(rows.row_lengths(), maxlen=tf.shape(token_ids)[1])
        size = tf.shape(index)[0]
        features = {"token_ids": token_ids, "padding_mask": mask}
        targets = {"task_id": tf.gather(task_ids, index), "gold": tf.gather(gold, index),
                   "teacher": tf.gather(teacher, index),
                   "weight": tf.fill([size], 1.0 / global_size),
                   "index": index}
        return features, targets

    dataset = _batches_dataset(batches)
    if stride == 1:
        dataset = dataset.map(lambda index: (index, tf.cast(tf.shape(index)[0], tf.float32)))
    else:
        dataset = dataset.flat_map(share)
    return (dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))


# Inference batches hold up to this many padded tokens: short texts (SST-2, tweets) go 256 to a
# batch, where per-batch overhead is amortised; long ones (NewsEmp essays) go ~27 to a batch.
INFERENCE_MAX_TOKENS = 4096


def inference_batches(tokens, batch_size, max_tokens=None):
    """Length-sorted batches covering every example once (no shuffling; order restored later).

    A batch holds at most `batch_size` sequences and, if given, at most `max_tokens` padded tokens
    (but always at least one sequence).
    """
    order = np.argsort(tokens.lengths, kind="stable")
    if max_tokens is None:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    lengths = np.maximum(tokens.lengths[order], 1)
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        # Sorted ascending, so the batch's padded length is its last member's length.
        while (end < len(order) and end - start < batch_size
               and (end + 1 - start) * lengths[end] <= max_tokens):
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def inference_dataset(tokens, batch_size, pad_id=0, max_tokens=None):
    ragged = _ragged_constant(tokens)
    batches = inference_batches(tokens, batch_size, max_tokens)

    def gather(index):
        rows = tf.gather(ragged, index)
        token_ids = rows.to_tensor(default_value=pad_id)
        mask = tf.sequence_mask(rows.row_lengths(), maxlen=tf.shape(token_ids)[1])
        return {"token_ids": token_ids, "padding_mask": mask}, index

    return (_batches_dataset(batches)
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))
