"""The task registry (derived from the sources) and `load_task_data` (TFDS patched out)."""

import numpy as np
import pytest

from empathy_tf.data import tasks, tfds_source
from empathy_tf.errors import ConfigError
from tests.conftest import write_carer, write_goemotions, write_newsemp, write_sst2

NAMES = {"newsemp", "twittemp", "twittemp_seek", "twittemp_provide", "sst2", "carer",
         "semeval2018_ec", "goemotions", "emonet"}


@pytest.fixture
def no_tfds(monkeypatch):
    """tfds_source.load without TFDS (the round trip is tested in tfds_source_test.py)."""
    monkeypatch.setattr(tfds_source, "load", lambda source, data_dir, tfds_dir=None: {
        s: source.read_split(data_dir, s) for s in source.splits})


def test_registry_names_and_roles():
    assert set(tasks.all_tasks()) == NAMES
    assert tasks.tasks_with_role("target") == ("newsemp", "twittemp", "twittemp_provide",
                                               "twittemp_seek")
    assert tasks.tasks_with_role("sentiment") == ("sst2",)
    # Any emotion task fills the EmoNet slot (--emotion_dataset), GoEmotions included.
    assert tasks.tasks_with_role("emotion") == ("carer", "emonet", "goemotions", "semeval2018_ec")
    multi = {n for n, t in tasks.all_tasks().items() if t.multi_label}
    assert multi == {"semeval2018_ec", "goemotions"}
    positive = {n for n, t in tasks.all_tasks().items() if t.positive_class == 1}
    assert positive == {"newsemp", "twittemp", "twittemp_seek", "twittemp_provide", "sst2"}
    for name, task in tasks.all_tasks().items():
        assert task.get_source().name == task.source and tasks.get_task(name) is task


def test_unknown_task():
    with pytest.raises(ConfigError, match=r"unknown dataset 'sst'.*sst2.*csv:PATH"):
        tasks.get_task("sst")


def test_official_split_is_used_as_is(tmp_path, no_tfds):
    write_sst2(str(tmp_path))
    data = tasks.load_task_data(tasks.get_task("sst2"), str(tmp_path), "kfold:5", seed=3, fold=4)
    assert data.official_split
    assert (len(data.train), len(data.dev), len(data.test)) == (80, 30, 30)
    assert data.train.ids[0] == "train-2" and data.dev.ids[0] == "validation-2"
    assert data.test.ids[0] == "test-1" and data.train.labels.dtype == np.int64


def test_goemotions_multi_label_task(tmp_path, no_tfds):
    write_goemotions(str(tmp_path))
    data = tasks.load_task_data(tasks.get_task("goemotions"), str(tmp_path))
    assert data.official_split and data.train.labels.shape == (84, 28)
    assert data.test.ids.tolist()[:2] == ["te00000x", "te00001x"]


def test_single_split_source_is_split_by_protocol(tmp_path, no_tfds):
    write_newsemp(str(tmp_path), n=120)
    task = tasks.get_task("newsemp")
    data = tasks.load_task_data(task, str(tmp_path), "split", seed=0)
    assert not data.official_split
    assert (len(data.train), len(data.dev), len(data.test)) == (96, 12, 12)
    again = tasks.load_task_data(task, str(tmp_path), "split", seed=0)
    assert data.split_ids() == again.split_ids()
    tested = []
    for fold in range(4):
        cell = tasks.load_task_data(task, str(tmp_path), "kfold:4", seed=0, fold=fold)
        ids = cell.split_ids()
        assert not set(ids["train"]) & set(ids["dev"]) | set(ids["train"]) & set(ids["test"])
        tested += ids["test"]
    assert sorted(tested) == sorted(sum(data.split_ids().values(), []))


def test_capped_keeps_order_and_strata(tmp_path, no_tfds):
    write_carer(str(tmp_path))
    data = tasks.load_task_data(tasks.get_task("carer"), str(tmp_path))
    capped = data.capped(36, seed=0)
    assert len(capped.train) == 36 and len(capped.dev) == len(data.dev)
    assert np.bincount(capped.train.labels).tolist() == [6] * 6
    order = {i: k for k, i in enumerate(data.train.ids)}
    assert [order[i] for i in capped.train.ids] == sorted(order[i] for i in capped.train.ids)
