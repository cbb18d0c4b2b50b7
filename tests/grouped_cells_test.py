"""Writer-grouped cells end to end: `same_writer`, group-disjoint split records, `train_fraction`.

The synthetic NewsEmp file has 60 writers of 5 essays each whose label is mostly their own trait
(as on the real file), so the writer of a test essay predicts its label unless the splits keep
writers apart.
"""

import json
import os

import numpy as np
import pytest

from empathy_tf import runs
from empathy_tf.data import tasks
from empathy_tf.errors import ConfigError
from baselines.same_writer import majority_by_writer
from experiments import registry

WRITERS, ESSAYS = 60, 5


def write_grouped_newsemp(root, seed=0):
    rng = np.random.default_rng(seed)
    trait = rng.random(WRITERS) < 0.4   # 40% of writers empathic: the majority class is 0
    os.makedirs(os.path.join(root, "newsemp"), exist_ok=True)
    with open(os.path.join(root, "newsemp", "messages.csv"), "w") as f:
        f.write('"message_id","response_id","article_id","empathy","distress","empathy_bin",'
                '"distress_bin","essay"\n')
        for w in range(WRITERS):
            for e in range(ESSAYS):
                label = int(trait[w]) if rng.random() < 0.9 else 1 - int(trait[w])
                f.write(f'"R{w}_{e}","R{w}","{e}","4.0","2.0","{label}","0","essay {e} of '
                        f'writer {w} about the news"\n')
    return root


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, tfds_dir):
    root = write_grouped_newsemp(str(tmp_path_factory.mktemp("grouped_data")))
    return runs.RunContext(root, str(tmp_path_factory.mktemp("runs")), tfds_dir)


def writer_of(ctx):
    raw = tasks.get_task("newsemp").get_source().read_split(ctx.data_dir, "all")
    return dict(zip(raw.ids, raw.extras["response_id"]))


def cells(name, protocol="kfold:5", **changes):
    config = registry.get_config(name).replace(protocol=protocol, **changes)
    return [config.replace(fold=fold) for fold in range(5)]


def test_majority_by_writer_ties_and_fallback():
    by_writer, fallback = majority_by_writer(["a", "a", "b", "b", "c", "c", "c"],
                                             [1, 1, 0, 1, 0, 0, 1], num_classes=2)
    # Training labels: 0 three times, 1 four times, so a tie (writer b) goes to 1.
    assert fallback == 1 and by_writer == {"a": 1, "b": 1, "c": 0}
    _, fallback = majority_by_writer(["a", "b"], [0, 1], num_classes=3)
    assert fallback == 0   # a tie between classes: the smaller index


def test_same_writer_measures_the_leak_and_is_the_majority_floor_when_grouped(ctx):
    writers = writer_of(ctx)
    leak = [runs.run_cell(c, ctx) for c in cells("same_writer", group_by="none")]
    assert np.mean([m["test"]["accuracy"] for m in leak]) > 0.75
    assert min(m["details"]["test_writers_in_train"] for m in leak) > 0.9
    grouped = [runs.run_cell(c, ctx) for c in cells("same_writer")]
    for config, metrics in zip(cells("same_writer"), grouped):
        run_dir = runs.run_dir_for(config, ctx)
        assert os.path.basename(os.path.dirname(run_dir)) == "kfold5-seed0-by_response_id"
        record = json.load(open(os.path.join(run_dir, "split.json")))["newsemp"]
        assert record["group_by"] == "response_id"
        parts = [{writers[i] for i in record[s]} for s in ("train", "dev", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert metrics["details"]["test_writers_in_train"] == 0.0
        # No test writer in training: every prediction is the training majority class.
        predictions = np.load(os.path.join(run_dir, "predictions.npz"))
        majority = metrics["details"]["majority_class"]
        assert np.all(predictions["probs"].argmax(axis=1) == majority)
        expected_accuracy = np.mean(predictions["labels"] == majority)
        assert metrics["test"]["accuracy"] == pytest.approx(expected_accuracy)
    assert (np.mean([m["test"]["accuracy"] for m in grouped])
            < np.mean([m["test"]["accuracy"] for m in leak]) - 0.15)


def test_same_writer_needs_a_group_field(synthetic_data_dir, tfds_dir, tmp_path):
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path), tfds_dir)
    with pytest.raises(ConfigError, match="same_writer needs each example's writer .* dataset "
                                          "'twittemp' declares none; name one with "
                                          "--group_by=FIELD \\(its fields: permalink\\)"):
        runs.run_cell(registry.get_config("same_writer").replace(dataset="twittemp"), ctx)


def test_train_fraction_subsamples_training_only_nested_and_by_writer(ctx):
    writers = writer_of(ctx)
    records = {}
    for fraction in (0.25, 0.5, 1.0):
        config = cells("tfidf_lr", train_fraction=fraction)[2]
        runs.run_cell(config, ctx)
        run_dir = runs.run_dir_for(config, ctx)
        suffix = "" if fraction == 1.0 else f"-train{fraction:g}"
        assert os.path.basename(os.path.dirname(run_dir)) == f"kfold5-seed0-by_response_id{suffix}"
        records[fraction] = json.load(open(os.path.join(run_dir, "split.json")))["newsemp"]
        assert records[fraction]["train_fraction"] == fraction
    full = records[1.0]
    for fraction in (0.25, 0.5):
        record = records[fraction]
        assert record["dev"] == full["dev"] and record["test"] == full["test"]
        assert set(record["train"]) < set(full["train"])
        # Whole writers, about the fraction of the training essays.
        kept = {writers[i] for i in record["train"]}
        assert sum(writers[i] in kept for i in full["train"]) == len(record["train"])
        assert abs(len(record["train"]) - fraction * len(full["train"])) < ESSAYS
    assert set(records[0.25]["train"]) < set(records[0.5]["train"])   # nested
