"""The nested config: options declared once, replaced by name or path, identity derived."""

import pytest

from empathy_tf import hardware, runs
from empathy_tf.config import DataConfig, ExperimentConfig
from empathy_tf.errors import ConfigError
from empathy_tf.protocols import protocol_spec
from experiments import registry


def test_replace_by_name_or_path_and_round_trip():
    config = ExperimentConfig().replace(epochs=2, **{"data.aux_cap": 10, "aux_tasks": ["sst2"]})
    assert (config.trainer.epochs, config.data.aux_cap, config.data.aux_tasks) == (2, 10, ("sst2",))
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown config option 'epoch'"):
        config.replace(epoch=3)
    with pytest.raises(ConfigError, match="unknown config option 'trainer.aux_cap'"):
        config.replace(**{"trainer.aux_cap": 3})
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        ExperimentConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="selection='loss'"):
        config.replace(selection="loss").validate()
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        config.replace(epochs=0).validate()


def test_protocols():
    kinds = {text: (spec.kind, spec.repeats, spec.folds) for text in ("split", "kfold:10", "repeated:5")
             for spec in [protocol_spec(text)]}
    assert kinds == {"split": ("split", 0, 1), "kfold:10": ("kfold", 0, 10),
                     "repeated:5": ("repeated", 5, 1)}
    for bad in ("kfold", "kfold:1", "split:2", "folds:3", "repeated:x"):
        with pytest.raises(ConfigError, match="protocol"):
            protocol_spec(bad)
    with pytest.raises(ConfigError, match="fold=3 is out of range"):
        DataConfig(protocol="kfold:3", fold=3).validate()
    spec = protocol_spec("repeated_kfold:3:10")
    assert (spec.kind, spec.repeats, spec.folds, spec.cell_protocol) == ("repeated_kfold", 3, 10,
                                                                        "kfold:10")
    for bad, message in (("repeated_kfold:3", "expected repeated_kfold:R:K"),
                         ("repeated_kfold:3:1", "K \\(folds\\) must be an integer >= 2, got '1'"),
                         ("repeated_kfold:0:5", "R \\(repeats\\) must be an integer >= 1"),
                         ("repeated_kfold:x:5", "R \\(repeats\\) must be an integer"),
                         ("kfold:5:2", "expected kfold:K")):
        with pytest.raises(ConfigError, match=message):
            protocol_spec(bad)
    with pytest.raises(ConfigError, match="fold=10 is out of range .* \\(folds 0-9\\)"):
        DataConfig(protocol="repeated_kfold:2:10", fold=10).validate()
    with pytest.raises(ConfigError, match="fold=2 needs a protocol with folds"):
        DataConfig(protocol="split", fold=2).validate()
    for fraction in (0.0, 1.5):
        with pytest.raises(ConfigError, match="train_fraction must be in"):
            DataConfig(train_fraction=fraction).validate()


def test_identity_keeps_what_defines_a_result():
    single = DataConfig(aux_cap=2000, emotion_dataset="semeval2018_ec")
    assert single.identity() == DataConfig().identity()   # aux options: no aux tasks here
    assert DataConfig(protocol="repeated:3").identity() == DataConfig().identity()
    multi = DataConfig(aux_tasks=("sst2", "emotion"))
    assert multi.identity()["aux_tasks"] == ["sst2", "carer"]   # the tasks, not their names
    assert (DataConfig(aux_tasks=("emotion",), emotion_dataset="semeval2018_ec").identity()
            != DataConfig(aux_tasks=("emotion",)).identity())
    assert "fold" in DataConfig(protocol="kfold:5", fold=2).identity()
    # repeated_kfold:R:K cells are kfold:K cells (seeds 0..R-1): the same identity.
    assert (DataConfig(protocol="repeated_kfold:3:5", fold=2).identity()
            == DataConfig(protocol="kfold:5", fold=2).identity())


def test_grouping_and_training_fraction_in_the_identity():
    # NewsEmp declares its writers (response_id) as its grouping: auto resolves to it.
    assert DataConfig().group_field() == "response_id"
    assert DataConfig().identity()["group_by"] == "response_id"
    assert DataConfig(group_by="response_id").identity() == DataConfig().identity()
    # By example and on the whole training split: no key, as in cells made before the options.
    ungrouped = DataConfig(group_by="none").identity()
    assert "group_by" not in ungrouped and "train_fraction" not in ungrouped
    assert DataConfig(dataset="twittemp").group_field() is None     # declares no grouping
    assert "group_by" not in DataConfig(dataset="twittemp").identity()
    assert DataConfig(train_fraction=0.25).identity()["train_fraction"] == 0.25
    with pytest.raises(ConfigError, match="group_by='writer': dataset 'newsemp' has no such "
                                          "field; its fields: article_id, distress"):
        DataConfig(group_by="writer").group_field()
    with pytest.raises(ConfigError, match="has no such field; its fields: none"):
        DataConfig(dataset="sst2", group_by="writer").group_field()
    # A config recorded before group_by existed was split by example.
    recorded = ExperimentConfig().to_dict()
    del recorded["data"]["group_by"], recorded["data"]["train_fraction"]
    restored = ExperimentConfig.from_dict(recorded)
    assert (restored.data.group_by, restored.data.train_fraction) == ("none", 1.0)
    assert ExperimentConfig.from_dict(ExperimentConfig().to_dict()).data.group_by == "auto"


def test_identity_is_derived_from_the_methods_sections(synthetic_data_dir):
    ctx = runs.RunContext(synthetic_data_dir, "unused")
    bert = registry.get_config("bert").smoked().resolved()
    ident = runs.identity(bert, ctx)
    assert set(ident) == {"method", "seed", "smoke", "data", "bert", "trainer", "numerics",
                          "data_files", "code_version"}
    # Options a method does not read do not change its identity...
    assert runs.identity(bert.replace(glove_kind="lstm", annealing="none"), ctx) == ident
    # ...and the experiment's name is not part of it (the KD target teacher is the bert cell).
    assert runs.identity(bert.replace(name="teacher"), ctx) == ident
    tfidf = registry.get_config("tfidf_lr").resolved()
    assert set(runs.identity(tfidf, ctx)["trainer"]) == {"selection"}
    assert runs.identity(tfidf.replace(epochs=9), ctx) == runs.identity(tfidf, ctx)
    kd = registry.get_config("kd_sst").smoked().resolved()
    assert "distill" in runs.identity(kd, ctx)


def test_auto_resolves_by_the_stated_rules(monkeypatch):
    resolved = ExperimentConfig().resolved()
    assert resolved.numerics.precision == hardware.resolve_precision("auto")
    assert resolved.numerics.xla == "optimizer"
    assert ExperimentConfig().replace(strategy="mirrored").resolved().numerics.xla == "off"
    assert "auto" not in (resolved.bert.dropout_impl, resolved.bert.gelu_impl,
                          resolved.bert.bias_grad_impl)
    # bfloat16 where the CPU computes it natively, else float32.
    monkeypatch.setattr(hardware, "_gpu_compute_capability", lambda: None)
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"flags": {"avx2", "fma"}, "model": "x",
                                                        "family": "25"})
    assert hardware.resolve_precision("auto") == "float32"
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"flags": {"avx512_bf16"}, "model": "x",
                                                        "family": "26"})
    assert hardware.resolve_precision("auto") == "mixed_bfloat16"
    # Float32 bias sums only matter for 16-bit compute.
    assert hardware.resolve_kernel("bias_grad_impl", "auto", "float32") == "keras"
    assert hardware.resolve_kernel("bias_grad_impl", "auto", "mixed_bfloat16") == "float32"
    assert hardware.resolve_kernel("gelu_impl", "keras", "mixed_bfloat16") == "keras"


def test_batching_layout_follows_the_number_of_tasks():
    trainer = ExperimentConfig().trainer
    assert trainer.layout(1) == "pooled" and trainer.layout(3) == "packed"
    assert trainer.__class__(batching="packed").layout(1) == "packed"


def test_smoke_shrinks_every_section():
    smoke = registry.get_config("pretrain_semeval_tweets").smoked()
    assert smoke.smoke and smoke.bert.encoder == "tiny" and smoke.trainer.epochs == 1
    assert smoke.adaptation.mlm_steps <= 6
