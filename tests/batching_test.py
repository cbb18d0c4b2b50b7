"""data.batching: epoch plans, pooled and packed layouts, tf.data features, inference batches."""

import numpy as np
import pytest

from empathy_tf.data import batching
from empathy_tf.data.preprocessor import Tokens
from empathy_tf.errors import ConfigError
from tests import helpers


def _indices(step):
    return np.concatenate([s.index for s in step])


def _efficiency(batches, lengths):
    """Padding efficiency of plain batches (lists of indices), each padded to its longest."""
    return (sum(int(lengths[b].sum()) for b in batches)
            / sum(len(b) * int(lengths[b].max()) for b in batches))


# ---------------------------------------------------------------------------------------------
# Plans.

@pytest.mark.parametrize("layout", batching.LAYOUTS)
def test_plan_is_a_pure_function_of_seed_and_epoch(layout):
    table, _ = helpers.tiny_table(np.random.default_rng(0))
    a = batching.plan_epochs(table, layout, 8, seed=3, epochs=2)
    b = batching.plan_epochs(table, layout, 8, seed=3, epochs=2)
    c = batching.plan_epochs(table, layout, 8, seed=4, epochs=2)
    assert len(a) == 2 and len(a[0]) == len(b[0]) == 5  # 40 examples, batches of 8
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        for s, t in zip(x, y):
            for field in ("index", "row", "offset"):
                np.testing.assert_array_equal(getattr(s, field), getattr(t, field))
            assert (s.rows, s.width) == (t.rows, t.width)
    again = batching.plan_epoch(table, layout, 8, seed=3, epoch=1)  # epoch 1 alone, no epoch 0
    assert all(np.array_equal(_indices(x), _indices(y)) for x, y in zip(again, a[1]))
    assert not all(np.array_equal(_indices(x), _indices(y)) for x, y in zip(a[0], c[0]))
    # Each epoch covers every example exactly once, and the batches change between epochs.
    for plan in a + c:
        assert sorted(np.concatenate([_indices(step) for step in plan]).tolist()) == \
            list(range(len(table)))
    assert not all(np.array_equal(np.sort(_indices(x)), np.sort(_indices(y)))
                   for x, y in zip(a[0], a[1]))


@pytest.mark.parametrize("layout", batching.LAYOUTS)
def test_replicas_get_disjoint_shares_covering_the_batch(layout):
    table, _ = helpers.tiny_table(np.random.default_rng(0), sizes=(27, 16))  # 43 = 5 * 8 + 3
    single = batching.plan_epoch(table, layout, 8, seed=0, epoch=0)
    double = batching.plan_epoch(table, layout, 8, seed=0, epoch=0, replicas=2)
    assert len(double) == len(single) == 6
    lengths = table.tokens.lengths
    for one, step in zip(single, double):  # the same batches, dealt out to two replicas
        assert len(step) == 2 and all(len(s.index) for s in step)
        a, b = (set(s.index.tolist()) for s in step)
        assert not a & b
        assert sorted(a | b) == sorted(_indices(one).tolist())
        assert abs(len(a) - len(b)) <= 1
        for s in step:  # each share is as wide as its own longest text
            assert s.width == lengths[s.index].max()


def _last_batch_of_one_is_merged(layout, seed):
    table, _ = helpers.tiny_table(np.random.default_rng(0), sizes=(25, 16))  # 41 = 5 * 8 + 1
    single = batching.plan_epoch(table, layout, 8, seed=seed, epoch=0)
    assert sorted(len(_indices(s)) for s in single) == [1] + [8] * 5
    double = batching.plan_epoch(table, layout, 8, seed=seed, epoch=0, replicas=2)
    # The batch of one example is merged into another: every replica gets an example.
    assert sorted(len(_indices(s)) for s in double) == [8] * 4 + [9]
    assert all(len(s.index) for step in double for s in step)


def test_a_batch_smaller_than_the_replicas_is_merged_packed():
    for seed in range(5):
        _last_batch_of_one_is_merged("packed", seed)


def test_a_batch_smaller_than_the_replicas_is_merged_pooled():
    for seed in range(5):
        _last_batch_of_one_is_merged("pooled", seed)


def test_widths_round_up_to_the_length_multiple():
    table, _ = helpers.tiny_table(np.random.default_rng(0))
    lengths = table.tokens.lengths
    for layout in batching.LAYOUTS:
        for step in batching.plan_epoch(table, layout, 8, seed=0, epoch=0, length_multiple=16):
            s = step[0]
            assert s.width % 16 == 0 and 0 <= s.width - lengths[s.index].max() < 16


@pytest.mark.parametrize("sampling", ["alpha", "uniform"])
def test_sampling_rebalances_tasks(sampling):
    task_ids = np.array([0] * 900 + [1] * 100, np.int32)
    chosen = batching.sample_epoch(task_ids, 2, np.random.default_rng(0), sampling, alpha=0.5)
    share = np.mean(task_ids[chosen] == 1)
    assert len(chosen) in (999, 1000)
    assert share == pytest.approx(0.5 if sampling == "uniform" else 10 / 40, abs=0.01)


def test_unknown_layout_and_sampling_are_refused():
    table, _ = helpers.tiny_table(np.random.default_rng(0))
    with pytest.raises(ConfigError, match="batching='sorted'"):
        batching.plan_epoch(table, "sorted", 8, seed=0, epoch=0)
    with pytest.raises(ConfigError, match="sampling='greedy'"):
        batching.plan_epoch(table, "packed", 8, seed=0, epoch=0, sampling="greedy")


def test_example_table_pads_targets_to_the_widest_task():
    rng = np.random.default_rng(0)
    teacher = np.array([[0.2, 0.3, 0.5]], np.float32)
    table = batching.ExampleTable.build(
        [(helpers.random_tokens(2, rng), batching.one_hot_targets([1, 0], 2, False), None),
         (helpers.random_tokens(1, rng), batching.one_hot_targets([2], 3, False), teacher)], [2, 3])
    assert len(table) == 3 and table.num_tasks == 2 and table.task_ids.tolist() == [0, 0, 1]
    assert table.gold.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    np.testing.assert_array_equal(table.teacher[:2], table.gold[:2])  # no teacher: gold
    np.testing.assert_array_equal(table.teacher[2], teacher[0])
    assert batching.one_hot_targets([[1, 0, 1]], 3, True).tolist() == [[1, 0, 1]]


# ---------------------------------------------------------------------------------------------
# Mixing tasks of very different lengths (NewsEmp essays among SST-2 / CARER sentences).

@pytest.fixture(scope="module")
def mixed_table():
    table, _ = helpers.tiny_table(np.random.default_rng(0), sizes=(1000, 3000, 3000),
                                  classes=(2, 2, 6), lengths=[(150, 250), (5, 25), (5, 25)])
    return table


def test_packed_batches_mix_tasks_like_random_batches_with_little_padding(mixed_table):
    table, lengths = mixed_table, mixed_table.tokens.lengths
    packed = batching.plan_epoch(table, "packed", 16, seed=0, epoch=0)
    shuffle = batching.random_batches(np.arange(len(table)), 16, np.random.default_rng(12345))
    random = [[batching.Share(b, b * 0, b * 0, len(b), int(lengths[b].max()))] for b in shuffle]
    ours = batching.mixing_stats(packed, table.task_ids)
    theirs = batching.mixing_stats(random, table.task_ids)
    assert abs(ours["target_single_task_share"] - theirs["target_single_task_share"]) <= 0.02
    assert abs(ours["tasks_per_batch"] - theirs["tasks_per_batch"]) <= 0.1
    assert abs(ours["target_steps"] - theirs["target_steps"]) <= 0.05
    assert batching.padding_efficiency(packed, lengths) >= 0.85
    # The same minibatches padded one text per row would waste most of the grid.
    assert batching.padding_efficiency(random, lengths) < 0.5


def test_pooled_batches_keep_target_examples_among_themselves(mixed_table):
    table = mixed_table
    pooled = batching.plan_epoch(table, "pooled", 16, seed=0, epoch=0)
    stats = batching.mixing_stats(pooled, table.task_ids)
    assert stats["target_single_task_share"] > 0.5  # why the packed layout exists
    assert batching.padding_efficiency(pooled, table.tokens.lengths) >= 0.85


# ---------------------------------------------------------------------------------------------
# Pooled batches (length-sorted pools).

def test_length_bucketing_keeps_padding_low():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(5, 15, 8000),
                              rng.integers(80, 200, 2000)]).astype(np.int32)
    batches = batching.pooled_batches(np.arange(len(lengths)), lengths, 32, rng)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert _efficiency(batches, lengths) >= 0.85
    naive = batching.random_batches(np.arange(len(lengths)), 32, rng)
    assert _efficiency(naive, lengths) < 0.6


def test_pooled_batches_mix_tasks_of_similar_lengths():
    table, _ = helpers.tiny_table(np.random.default_rng(0), sizes=(200, 200))
    batches = batching.pooled_batches(np.arange(len(table)), table.tokens.lengths, 16,
                                      np.random.default_rng(0), pool_batches=4)
    mixed = sum(len(set(table.task_ids[b])) > 1 for b in batches)
    assert mixed > len(batches) // 2


def test_rare_long_texts_do_not_pad_whole_batches_of_short_ones():
    # The KD student's mix: ~2% long essays among short sentences.
    rng = np.random.default_rng(0)
    lengths = rng.permutation(np.concatenate(
        [rng.integers(5, 25, 20000), rng.integers(80, 250, 400)])).astype(np.int32)
    index = np.arange(len(lengths))
    assert _efficiency(batching.pooled_batches(index, lengths, 16, rng), lengths) >= 0.85
    small_pools = batching.pooled_batches(index, lengths, 16, rng, pool_batches=16)
    assert _efficiency(small_pools, lengths) < 0.8


def _pairs_batched_again(first, second, n):
    batch_of = np.empty(n, np.int64)
    for i, batch in enumerate(second):
        batch_of[batch] = i
    again = sum(int((batch_of[b][:, None] == batch_of[b][None, :]).sum()) - len(b) for b in first)
    return again / sum(len(b) * (len(b) - 1) for b in first)


def test_small_dataset_batches_change_between_epochs(monkeypatch):
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 250, 1500).astype(np.int32)  # NewsEmp-sized: 94 batches of 16
    index = np.arange(len(lengths))
    # A pool is capped at 1/MIN_POOLS of the epoch, so even without jitter the same neighbours
    # rarely meet again (in one 128-batch pool, sorted alike every epoch, half the pairs did).
    unjittered = [batching.pooled_batches(index, lengths, 16, rng, jitter=0) for _ in range(2)]
    assert _efficiency(unjittered[0], lengths) >= 0.85
    assert _pairs_batched_again(*unjittered, len(lengths)) < 0.25
    monkeypatch.setattr(batching, "MIN_POOLS", 1)
    one_pool = [batching.pooled_batches(index, lengths, 16, rng, jitter=0) for _ in range(2)]
    assert _pairs_batched_again(*one_pool, len(lengths)) > 0.4
    # Jitter alone also lets examples of nearly equal length trade places.
    jittered = [batching.pooled_batches(index, lengths, 16, rng) for _ in range(2)]
    assert _pairs_batched_again(*jittered, len(lengths)) < 0.25


def test_small_dataset_is_cut_into_several_pools():
    rng = np.random.default_rng(0)
    lengths = rng.permutation(np.arange(1, 1601)).astype(np.int32)  # distinct lengths: pools show
    batches = batching.pooled_batches(np.arange(len(lengths)), lengths, 16, rng, jitter=0)
    # Inside a pool, consecutive batches by length do not overlap; across pools they do. With one
    # pool no two batches would overlap in length range.
    ranges = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    overlapping = sum(lo <= prev_hi for (_, prev_hi), (lo, _) in zip(ranges, ranges[1:]))
    assert overlapping >= len(batches) // 2


# ---------------------------------------------------------------------------------------------
# Packed rows.

def test_pack_rows_first_fit_decreasing():
    lengths = np.array([3, 8, 5, 2, 6])
    row, offset, rows = batching.pack_rows(lengths, 8)
    assert rows == 3  # 8 | 6 + 2 | 5 + 3
    for r in range(rows):
        spans = sorted((offset[i], offset[i] + lengths[i]) for i in np.flatnonzero(row == r))
        assert spans[-1][1] <= 8
        assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))


@pytest.mark.parametrize("pad_id", [0, 1])
def test_packed_features_reconstruct_every_text(pad_id):
    table, _ = helpers.tiny_table(np.random.default_rng(0), sizes=(12, 30),
                                  lengths=[(20, 40), (2, 8)])
    plan = batching.plan_epoch(table, "packed", 16, seed=0, epoch=0)
    shares = [s for step in plan for s in step]
    elements = list(batching.training_dataset(table, plan, "packed", pad_id=pad_id))
    assert len(elements) == len(plan)
    packed_rows = 0
    for share, (features, targets) in zip(shares, elements):
        f = {k: v.numpy() for k, v in features.items()}
        assert f["token_ids"].shape == (share.rows, share.width) and share.rows < len(share.index)
        np.testing.assert_array_equal(targets["index"].numpy(), share.index)
        np.testing.assert_array_equal(targets["task_id"].numpy(), table.task_ids[share.index])
        np.testing.assert_array_equal(targets["gold"].numpy(), table.gold[share.index])
        np.testing.assert_allclose(targets["weight"].numpy().sum(), 1.0, rtol=1e-6)
        padding = f["text_index"] == -1
        np.testing.assert_array_equal(padding, f["pack_ids"] == 0)
        assert np.all(f["token_ids"][padding] == pad_id) and np.all(f["position_ids"][padding] == 0)
        assert (~padding).sum() == table.tokens.lengths[share.index].sum()
        for k, i in enumerate(share.index):  # texts in index order
            text = table.tokens.sequence(i)
            row, col = divmod(int(f["text_starts"][k]), share.width)
            span = slice(col, col + len(text))
            np.testing.assert_array_equal(f["token_ids"][row, span], text)
            np.testing.assert_array_equal(f["position_ids"][row, span], np.arange(len(text)))
            assert np.all(f["text_index"][row, span] == k)
            assert (f["text_index"] == k).sum() == len(text)
        # Block-diagonal attention: a (row, pack id) block holds exactly one text.
        for r in range(share.rows):
            ids = set(f["pack_ids"][r][f["pack_ids"][r] > 0].tolist())
            packed_rows += len(ids) > 1
            for p in ids:
                assert len(set(f["text_index"][r][f["pack_ids"][r] == p].tolist())) == 1
    assert packed_rows > 0  # short texts did share rows


def test_model_outputs_on_packed_rows_equal_those_on_padded_texts():
    table, heads = helpers.tiny_table(np.random.default_rng(1), sizes=(6, 18),
                                      lengths=[(20, 40), (3, 9)])
    model = helpers.tiny_model(heads, dropout=0.1, backbone_dropout=0.1)
    plan = batching.plan_epoch(table, "packed", 24, seed=0, epoch=0)
    (features, targets), = list(batching.training_dataset(table, plan, "packed"))
    assert features["token_ids"].shape[0] < len(table)
    index = targets["index"].numpy()
    packed = model(features, training=False)
    tokens = table.tokens.take(index)
    width = int(tokens.lengths.max())
    ids = np.zeros([len(index), width], np.int32)
    for k in range(len(index)):
        ids[k, : tokens.lengths[k]] = tokens.sequence(k)
    alone = model(helpers.padded(ids, tokens.lengths), training=False)
    for a, b in zip(packed, alone):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Pooled features.

def test_pooled_features_pad_to_the_share_width():
    tokens = Tokens(np.arange(1, 26, dtype=np.int32), np.array([2, 5, 18], np.int32))
    gold = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    table = batching.ExampleTable.build([(tokens, gold, None)], [2])
    plan = [[batching.Share(np.array([0, 1]), np.arange(2), np.zeros(2, np.int64), 2, 8)],
            [batching.Share(np.array([2]), np.arange(1), np.zeros(1, np.int64), 1, 24)]]
    elements = list(batching.training_dataset(table, plan, "pooled", pad_id=7))
    assert [tuple(f["token_ids"].shape) for f, _ in elements] == [(2, 8), (1, 24)]
    (features, targets), _ = elements
    assert features["token_ids"].numpy()[0].tolist() == [1, 2, 7, 7, 7, 7, 7, 7]
    assert features["token_ids"].numpy()[1].tolist() == [3, 4, 5, 6, 7, 7, 7, 7]
    assert features["padding_mask"].numpy().sum(axis=1).tolist() == [2, 5]
    assert np.allclose(targets["weight"].numpy(), 0.5)
    assert np.allclose(targets["teacher"].numpy(), targets["gold"].numpy())


def test_two_pipelines_feed_their_replicas_shares():
    table, _ = helpers.tiny_table(np.random.default_rng(0), sizes=(9, 7))
    plan = batching.plan_epoch(table, "packed", 8, seed=0, epoch=0, replicas=2)
    parts = [[t["index"].numpy() for _, t in batching.training_dataset(
        table, plan, "packed", pipeline_id=p, num_pipelines=2, local_replicas=1)] for p in (0, 1)]
    for k, step in enumerate(plan):
        for p in (0, 1):
            np.testing.assert_array_equal(parts[p][k], step[p].index)
    weights = [t["weight"].numpy() for _, t in batching.training_dataset(table, plan, "packed",
                                                                         local_replicas=2)]
    # Two elements per step, each example weighing 1 / (global batch): a step sums to 1.
    assert len(weights) == 2 * len(plan)
    np.testing.assert_allclose([w.sum() for w in weights[0::2]] +
                               [w.sum() for w in weights[1::2]], [0.5] * (2 * len(plan)), rtol=1e-6)


def test_tokens_take_gathers_variable_rows():
    tokens = Tokens(np.arange(10, dtype=np.int32), np.array([3, 1, 4, 2], np.int32))
    taken = tokens.take([2, 0])
    assert taken.sequence(0).tolist() == [4, 5, 6, 7]
    assert taken.sequence(1).tolist() == [0, 1, 2]
    both = Tokens.concat([taken, tokens.take([3])])
    assert both.lengths.tolist() == [4, 3, 2] and both.sequence(2).tolist() == [8, 9]
    assert both.ragged().to_list() == [[4, 5, 6, 7], [0, 1, 2], [8, 9]]


# ---------------------------------------------------------------------------------------------
# Inference.

def test_inference_batches_fill_a_token_budget():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(3, 20, 700),
                              rng.integers(100, 300, 60)]).astype(np.int32)
    batches = batching.inference_batches(lengths, 256, max_tokens=4096)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch, following in zip(batches, batches[1:] + [None]):
        padded = len(batch) * lengths[batch].max()
        assert len(batch) <= 256 and (padded <= 4096 or len(batch) == 1)
        if following is not None:  # greedy: the next sequence would not have fitted
            grown = (len(batch) + 1) * max(lengths[batch].max(), lengths[following[0]])
            assert len(batch) == 256 or grown > 4096
    # Short texts share big batches, long ones small batches.
    assert len(batches[0]) == 256 and len(batches[-1]) <= 4096 // 100
    assert len(batching.inference_batches(lengths, 64)) == -(-len(lengths) // 64)
    # A text longer than the budget still gets a batch of its own.
    assert [len(b) for b in batching.inference_batches(np.array([5000, 3]), 8, 4096)] == [1, 1]


def test_inference_dataset_covers_every_text_once_padded():
    tokens = helpers.random_tokens(40, np.random.default_rng(0), 1, 30)
    seen = []
    for features, index in batching.inference_dataset(tokens, batch_size=16, pad_id=1,
                                                      max_tokens=128):
        index = index.numpy()
        ids, mask = features["token_ids"].numpy(), features["padding_mask"].numpy()
        assert ids.size <= 128 or len(index) == 1
        assert mask.sum(1).tolist() == tokens.lengths[index].tolist()
        for k, i in enumerate(index):
            np.testing.assert_array_equal(ids[k][mask[k]], tokens.sequence(i))
        assert np.all(ids[~mask] == 1)
        seen += index.tolist()
    assert sorted(seen) == list(range(40))
