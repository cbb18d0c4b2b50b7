"""Training batches: which examples make each optimizer step, and how they are laid out in rows.

All training examples of all tasks live in one `ExampleTable` (ragged token ids, task id, gold and
teacher target vectors). Each epoch gets a *plan* computed with numpy from (seed, epoch) alone, so a
resumed run sees exactly the batches it would have seen. Two layouts (`TrainerConfig.batching`):

- `packed` (default when tasks are mixed): every step is a random minibatch, consecutive examples of
  one shuffle of the epoch, so its tasks mix exactly as under random batching (the paper: "examples
  from the three tasks are shuffled together within minibatches"). The step's texts are packed into
  rows as wide as its longest text (first-fit decreasing), several short texts per row with
  block-diagonal attention (models/bert.py), so a step with one 200-token essay and fifteen
  20-token sentences pads to about 1.1 rows of 200 instead of 16. Padding efficiency on the
  `kd_sst_emonet` mix: 0.90 (pools of one-task-sorted batches: 0.94; random batches padded: 0.30).
- `pooled`: the epoch's examples are cut into pools of `POOL_BATCHES` batches, sorted by a jittered
  length inside each pool and cut into batches, which are shuffled: each text gets its own row and
  a batch pads to its longest member. Best for one task (NewsEmp: 0.93) and the only layout the
  GloVe encoders (sequence models) can read.

A plan is a list of steps; a step is a list of per-replica `Share`s: the examples' table indices,
their row and column offset, the number of rows and the row width. Under tf.distribute every
replica gets a distinct share of each global batch (strided over the length-sorted batch).

Example:

    table = ExampleTable.build([(tokens, gold, teacher)], num_classes=[2])
    plan = plan_epoch(table, "packed", batch_size=16, seed=0, epoch=0)
    for features, targets in training_dataset(table, plan):
        ...
"""

import dataclasses

import numpy as np
import tensorflow as tf

from empathy_tf.config import LAYOUTS, SAMPLING
from empathy_tf.data.preprocessor import Tokens
from empathy_tf.errors import ConfigError

# Pools of 128 batches: with pools of 16, each pool's few long essays padded whole batches of short
# texts (padding efficiency 0.74 on the full kd_sst_emonet mix under pooled batching).
POOL_BATCHES = 128
# Sorting on length × exp(U(-j, j)) lets examples of nearly equal length trade places, so that on
# a small dataset the same examples do not meet in a batch every epoch.
LENGTH_JITTER = 0.05
# An epoch is cut into at least this many pools, so a small dataset's batches are not all cut from
# one sort of the whole epoch (NewsEmp: 6 pools of 16 batches of 16).
MIN_POOLS = 6
# Inference batches hold up to this many padded tokens: short texts (SST-2, tweets) go 256 to a
# batch, where per-batch overhead is amortised; long ones (NewsEmp essays) ~27 to a batch.
INFERENCE_MAX_TOKENS = 4096


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


@dataclasses.dataclass
class Share:
    """One replica's part of a step: texts `index` at (`row`, `offset`) of a [rows, width] grid."""
    index: np.ndarray   # int64 [n] table indices, in text order
    row: np.ndarray     # int64 [n]
    offset: np.ndarray  # int64 [n]
    rows: int
    width: int


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


def _round_up(n, multiple):
    return -(-int(n) // multiple) * multiple


def _chunks(indices, batch_size, min_batch):
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < min_batch:
        batches[-2:] = [np.concatenate(batches[-2:])]  # every replica must get an example
    return batches


def pooled_batches(indices, lengths, batch_size, rng, pool_batches=POOL_BATCHES,
                   jitter=LENGTH_JITTER, min_batch=1):
    """Cuts shuffled `indices` into batches of similar length (see the module docstring)."""
    indices = rng.permutation(np.asarray(indices, np.int64))
    num_batches = -(-len(indices) // batch_size)
    pool = batch_size * max(1, min(pool_batches, -(-num_batches // MIN_POOLS)))
    pool_id = np.arange(len(indices)) // pool
    key = lengths[indices].astype(np.float64) * np.exp(rng.uniform(-jitter, jitter, len(indices)))
    indices = indices[np.lexsort((key, pool_id))]  # by (jittered) length within each pool
    batches = _chunks(indices, batch_size, min_batch)
    return [batches[i] for i in rng.permutation(len(batches))]


def random_batches(indices, batch_size, rng, min_batch=1):
    """Consecutive chunks of one shuffle: the minibatches of random batching."""
    return _chunks(rng.permutation(np.asarray(indices, np.int64)), batch_size, min_batch)


def pack_rows(lengths, width):
    """(row, offset) of each text packed first-fit decreasing into rows of `width` tokens."""
    order = np.argsort(-lengths, kind="stable")
    row = np.zeros(len(lengths), np.int64)
    offset = np.zeros(len(lengths), np.int64)
    used = []
    for i in order:  # at most a batch of texts per call: a short loop, done at planning time
        for r, filled in enumerate(used):
            if filled + lengths[i] <= width:
                row[i], offset[i], used[r] = r, filled, filled + lengths[i]
                break
        else:
            row[i], offset[i] = len(used), 0
            used.append(int(lengths[i]))
    return row, offset, len(used)


def _shares(batch, lengths, layout, replicas, length_multiple):
    # Deal the length-sorted batch out in strides: every replica gets a similar-length share.
    batch = batch[np.argsort(lengths[batch], kind="stable")]
    shares = []
    for r in range(replicas):
        index = np.sort(batch[r::replicas]) if layout == "packed" else batch[r::replicas]
        n = lengths[index]
        width = _round_up(max(int(n.max()), 1), length_multiple)
        if layout == "packed":
            row, offset, rows = pack_rows(n, width)
        else:
            row, offset, rows = np.arange(len(index)), np.zeros(len(index), np.int64), len(index)
        shares.append(Share(index, row, offset, rows, width))
    return shares


def plan_epoch(table, layout, batch_size, seed, epoch, sampling="proportional", alpha=0.75,
               replicas=1, length_multiple=1):
    """The steps of one epoch: a list (steps) of lists (replicas) of `Share`s."""
    if layout not in LAYOUTS:
        raise ConfigError(f"batching={layout!r}; expected one of {LAYOUTS}")
    rng = np.random.default_rng([seed, epoch])
    chosen = sample_epoch(table.task_ids, table.num_tasks, rng, sampling, alpha)
    lengths = table.tokens.lengths
    batches = (pooled_batches(chosen, lengths, batch_size, rng, min_batch=replicas)
               if layout == "pooled" else random_batches(chosen, batch_size, rng, replicas))
    return [_shares(b, lengths, layout, replicas, length_multiple) for b in batches]


def plan_epochs(table, layout, batch_size, seed, epochs, **options):
    return [plan_epoch(table, layout, batch_size, seed, epoch, **options) for epoch in range(epochs)]


# ---------------------------------------------------------------------------------------------
# What a plan looks like: the figures of benchmarks/throughput.py --only=mixing.

def padding_efficiency(plan, lengths):
    """Real tokens / padded tokens over the steps of a plan."""
    real = sum(int(lengths[s.index].sum()) for step in plan for s in step)
    padded = sum(s.rows * s.width for step in plan for s in step)
    return real / max(padded, 1)


def mixing_stats(plan, task_ids, target=0):
    """{target_single_task_share, tasks_per_batch, target_steps} of a plan.

    target_single_task_share: the share of the target task's examples that sit in minibatches
    holding no other task; tasks_per_batch: mean number of tasks per minibatch; target_steps:
    the share of steps holding any target example.
    """
    alone = total = steps_with_target = 0
    tasks = []
    for step in plan:
        index = np.concatenate([s.index for s in step])
        present = np.unique(task_ids[index])
        tasks.append(len(present))
        n_target = int(np.sum(task_ids[index] == target))
        total += n_target
        steps_with_target += n_target > 0
        alone += n_target if len(present) == 1 and n_target else 0
    return {"target_single_task_share": alone / max(total, 1),
            "tasks_per_batch": float(np.mean(tasks)) if tasks else 0.0,
            "target_steps": steps_with_target / max(len(plan), 1)}


# ---------------------------------------------------------------------------------------------
# tf.data.

def _ragged(arrays, dtype):
    flat = np.concatenate(arrays) if arrays else np.zeros([0], np.int64)
    return tf.RaggedTensor.from_row_lengths(tf.constant(flat, dtype),
                                            tf.constant([len(a) for a in arrays], tf.int64))


def training_dataset(table, plan, layout, pad_id=0, pipeline_id=0, num_pipelines=1,
                     local_replicas=1):
    """tf.data of (features, targets), one element per replica share, in plan order.

    Features: packed layout {"token_ids", "position_ids", "pack_ids", "text_starts", "text_index"}
    (see models/bert.py); pooled layout {"token_ids", "padding_mask"}. Targets: task_id [n],
    gold/teacher [n, C_max], index [n] and weight [n] = 1 / B (B = the whole global batch), so
    that summing `weight * loss` over all replicas gives the batch mean.

    Under tf.distribute, input pipeline `pipeline_id` of `num_pipelines` (one per worker) feeds
    `local_replicas` replicas; each step consumes `local_replicas` consecutive elements.
    """
    tokens = table.tokens.ragged()
    task_ids, gold, teacher = (tf.constant(a) for a in (table.task_ids, table.gold, table.teacher))
    first = pipeline_id * local_replicas
    shares = [s for step in plan for s in step[first:first + local_replicas]]
    sizes = [sum(len(s.index) for s in step) for step in plan for _ in range(local_replicas)]
    grids = np.asarray([[s.rows, s.width] for s in shares], np.int64).reshape([-1, 2])
    data = tf.data.Dataset.from_tensor_slices((
        _ragged([s.index for s in shares], tf.int64), _ragged([s.row for s in shares], tf.int64),
        _ragged([s.offset for s in shares], tf.int64), tf.constant(grids),
        tf.constant(sizes, tf.float32)))

    def gather(index, row, offset, grid, global_size):
        rows, width = grid[0], grid[1]
        texts = tf.gather(tokens, index)
        lengths = texts.row_lengths()
        n = tf.shape(index)[0]
        targets = {"task_id": tf.gather(task_ids, index), "gold": tf.gather(gold, index),
                   "teacher": tf.gather(teacher, index), "index": index,
                   "weight": tf.fill([n], 1.0 / global_size)}
        if layout == "pooled":
            token_ids = texts.to_tensor(default_value=pad_id, shape=[rows, width])
            mask = tf.sequence_mask(lengths, maxlen=width)
            return {"token_ids": token_ids, "padding_mask": mask}, targets
        starts = row * width + offset                                    # flat first token
        within = tf.ragged.range(lengths).flat_values                    # position in its text
        text_of_token = texts.value_rowids()
        destination = (tf.gather(starts, text_of_token) + within)[:, None]
        shape = tf.reshape(rows * width, [1])

        def scatter(values, fill):
            values = tf.cast(values, tf.int32)
            return tf.reshape(tf.scatter_nd(destination, values - fill, shape) + fill,
                              [rows, width])

        features = {
            "token_ids": scatter(texts.flat_values, pad_id),
            "position_ids": scatter(within, 0),
            # Any id unique to a text within its row makes attention block-diagonal.
            "pack_ids": scatter(text_of_token + 1, 0),
            "text_starts": tf.cast(starts, tf.int32),
            "text_index": scatter(text_of_token, -1),
        }
        return features, targets

    return (data.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))


def inference_batches(lengths, batch_size, max_tokens=None):
    """Length-sorted batches covering every example once (no shuffling; order restored later).

    A batch holds at most `batch_size` sequences and, if given, at most `max_tokens` padded tokens
    (but always at least one sequence).
    """
    order = np.argsort(lengths, kind="stable")
    if max_tokens is None:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    sorted_lengths = np.maximum(lengths[order], 1)
    # Sorted ascending, so a batch's padded size is (its size) × (its last member's length):
    # greedily extend while both limits hold (vectorised per batch start).
    batches, start = [], 0
    while start < len(order):
        candidates = np.arange(1, min(batch_size, len(order) - start) + 1)
        fits = candidates * sorted_lengths[start + candidates - 1] <= max_tokens
        size = int(candidates[fits].max()) if fits.any() else 1
        batches.append(order[start:start + size])
        start += size
    return batches


def inference_dataset(tokens, batch_size=256, pad_id=0, max_tokens=INFERENCE_MAX_TOKENS):
    """(padded features, original indices) batches over every sequence of `tokens`."""
    ragged = tokens.ragged()
    batches = inference_batches(tokens.lengths, batch_size, max_tokens)

    def gather(index):
        rows = tf.gather(ragged, index)
        token_ids = rows.to_tensor(default_value=pad_id)
        mask = tf.sequence_mask(rows.row_lengths(), maxlen=tf.shape(token_ids)[1])
        return {"token_ids": token_ids, "padding_mask": mask}, index

    return (tf.data.Dataset.from_tensor_slices(_ragged(batches, tf.int64))
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))
