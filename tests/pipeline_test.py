import numpy as np
import pytest

from empathy_tf.data import pipeline
from empathy_tf.data.featurize import Tokens
from tests import helpers


def test_plan_is_a_pure_function_of_seed_and_epoch():
    table, _ = helpers.tiny_table(np.random.default_rng(0))
    a = pipeline.plan_epochs(table, 8, seed=3, epochs=2)
    b = pipeline.plan_epochs(table, 8, seed=3, epochs=2)
    c = pipeline.plan_epochs(table, 8, seed=4, epochs=2)
    assert all(np.array_equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1]))
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], c[0]))
    # Each epoch covers every example exactly once, and the order changes between epochs.
    for plan in a:
        assert sorted(np.concatenate(plan).tolist()) == list(range(len(table)))
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], a[1]))


def test_batches_mix_tasks():
    table, _ = helpers.tiny_table(np.random.default_rng(0), sizes=(200, 200))
    plan = pipeline.plan_epochs(table, 16, seed=0, epochs=1, pool_batches=4)[0]
    mixed = sum(len(set(table.task_ids[b])) > 1 for b in plan)
    assert mixed > len(plan) // 2


def test_length_bucketing_keeps_padding_low():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(5, 15, 8000), rng.integers(80, 200, 2000)]).astype(np.int32)
    batches = pipeline.length_batches(np.arange(len(lengths)), lengths, 32, rng)
    assert pipeline.padding_efficiency(lengths, batches) >= 0.85
    naive = [np.arange(i, min(i + 32, len(lengths))) for i in range(0, len(lengths), 32)]
    shuffled = rng.permutation(len(lengths))
    naive = [shuffled[b] for b in naive]
    assert pipeline.padding_efficiency(lengths, naive) < 0.6


@pytest.mark.parametrize("sampling", ["alpha", "uniform"])
def test_sampling_rebalances_tasks(sampling):
    task_ids = np.array([0] * 900 + [1] * 100, np.int32)
    chosen = pipeline.sample_epoch(task_ids, 2, np.random.default_rng(0), sampling, alpha=0.5)
    share = np.mean(task_ids[chosen] == 1)
    assert len(chosen) in (999, 1000)
    assert share == pytest.approx(0.5 if sampling == "uniform" else 10 / 40, abs=0.01)


def test_training_dataset_pads_to_batch_longest():
    tokens = Tokens(np.arange(1, 16, dtype=np.int32), np.array([2, 5, 8], np.int32))
    gold = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    table = pipeline.ExampleTable.build([(tokens, gold, None)], [2])
    (features, targets), = list(pipeline.training_dataset(table, [np.array([0, 1])]))
    assert features["token_ids"].shape == (2, 5)
    assert features["token_ids"].numpy()[0].tolist() == [1, 2, 0, 0, 0]
    assert features["padding_mask"].numpy().sum(axis=1).tolist() == [2, 5]
    assert np.allclose(targets["weight"].numpy(), 0.5)
    assert np.allclose(targets["teacher"].numpy(), targets["gold"].numpy())


def test_training_dataset_rounds_lengths_up_to_a_multiple():
    tokens = Tokens(np.arange(1, 26, dtype=np.int32), np.array([2, 5, 18], np.int32))
    gold = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    table = pipeline.ExampleTable.build([(tokens, gold, None)], [2])
    batches = [np.array([0, 1]), np.array([2])]
    shapes = [f["token_ids"].shape for f, _ in pipeline.training_dataset(table, batches, length_multiple=8)]
    assert shapes == [(2, 8), (1, 24)]
    (features, _), _ = list(pipeline.training_dataset(table, batches, length_multiple=8))
    assert features["token_ids"].numpy()[1].tolist() == [3, 4, 5, 6, 7, 0, 0, 0]
    assert features["padding_mask"].numpy().sum(axis=1).tolist() == [2, 5]


def test_tokens_take_gathers_variable_rows():
    tokens = Tokens(np.arange(10, dtype=np.int32), np.array([3, 1, 4, 2], np.int32))
    taken = tokens.take([2, 0])
    assert taken.sequence(0).tolist() == [4, 5, 6, 7]
    assert taken.sequence(1).tolist() == [0, 1, 2]


def test_inference_batches_fill_a_token_budget():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(3, 20, 700), rng.integers(100, 300, 60)]).astype(np.int32)
    tokens = Tokens(np.zeros(lengths.sum(), np.int32), lengths)
    batches = pipeline.inference_batches(tokens, 256, max_tokens=4096)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch, following in zip(batches, batches[1:] + [None]):
        padded = len(batch) * lengths[batch].max()
        assert len(batch) <= 256 and (padded <= 4096 or len(batch) == 1)
        if following is not None:  # greedy: the next sequence would not have fitted
            grown = (len(batch) + 1) * max(lengths[batch].max(), lengths[following[0]])
            assert len(batch) == 256 or grown > 4096
    # Short texts share big batches, long ones small batches.
    assert len(batches[0]) == 256 and len(batches[-1]) <= 4096 // 100
    assert len(pipeline.inference_batches(tokens, 64)) == -(-len(lengths) // 64)


def _pairs_batched_again(first, second, n):
    batch_of = np.empty(n, np.int64)
    for i, batch in enumerate(second):
        batch_of[batch] = i
    again = sum(int((batch_of[b][:, None] == batch_of[b][None, :]).sum()) - len(b) for b in first)
    return again / sum(len(b) * (len(b) - 1) for b in first)


def test_rare_long_texts_do_not_pad_whole_batches_of_short_ones():
    # The KD student's mix: ~2% long essays among short sentences.
    rng = np.random.default_rng(0)
    lengths = rng.permutation(np.concatenate(
        [rng.integers(5, 25, 20000), rng.integers(80, 250, 400)])).astype(np.int32)
    default = pipeline.length_batches(np.arange(len(lengths)), lengths, 16, rng)
    assert pipeline.padding_efficiency(lengths, default) >= 0.85
    small_pools = pipeline.length_batches(np.arange(len(lengths)), lengths, 16, rng, pool_batches=16)
    assert pipeline.padding_efficiency(lengths, small_pools) < 0.8


def test_small_dataset_batches_change_between_epochs(monkeypatch):
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 250, 1500).astype(np.int32)  # NewsEmp-sized: 94 batches of 16
    index = np.arange(len(lengths))
    # A pool is capped at 1/MIN_POOLS of the epoch, so even without jitter the same neighbours
    # rarely meet again (in one 128-batch pool, sorted alike every epoch, half the pairs did).
    unjittered = [pipeline.length_batches(index, lengths, 16, rng, jitter=0) for _ in range(2)]
    assert pipeline.padding_efficiency(lengths, unjittered[0]) >= 0.85
    assert _pairs_batched_again(*unjittered, len(lengths)) < 0.25
    monkeypatch.setattr(pipeline, "MIN_POOLS", 1)
    one_pool = [pipeline.length_batches(index, lengths, 16, rng, jitter=0) for _ in range(2)]
    assert _pairs_batched_again(*one_pool, len(lengths)) > 0.4
    # Jitter alone also lets examples of nearly equal length trade places.
    jittered = [pipeline.length_batches(index, lengths, 16, rng) for _ in range(2)]
    assert _pairs_batched_again(*jittered, len(lengths)) < 0.25


def test_small_dataset_is_cut_into_several_pools():
    rng = np.random.default_rng(0)
    lengths = rng.permutation(np.arange(1, 1601)).astype(np.int32)  # distinct lengths: pools show
    batches = pipeline.length_batches(np.arange(len(lengths)), lengths, 16, rng, jitter=0)
    # Inside a pool, consecutive batches by length do not overlap; across pools they do. With one
    # pool no two batches would overlap in length range.
    ranges = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    overlapping = sum(lo <= prev_hi for (_, prev_hi), (lo, _) in zip(ranges, ranges[1:]))
    assert overlapping >= len(batches) // 2
