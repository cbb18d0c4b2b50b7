"""Domain adaptation (Table 7): MLM masking, the adapted-encoder folder, source→target wiring."""

import dataclasses
import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import domain_adaptation as da
from empathy_tf import encoders, runner
from empathy_tf.errors import ConfigError, DataError
from experiments import domain_adaptation as table7

WORDS = [f"w{i}" for i in range(50)]
REPETITIVE = ["the cat sat on the mat", "a dog ate the bone", "the bird sang a song",
              "my cat likes the warm mat", "the dog and the bird play"] * 4


@pytest.fixture
def ctx(synthetic_data_dir, tfds_dir, tmp_path):
    return runner.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)


def _tokenizer():
    return encoders.tiny_bert(list(encoders.SPECIAL_TOKENS) + WORDS)[1]


def _random_texts(n, lo, hi, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


def _batches(texts, spec, tokenizer, batch_size=50):
    pre = da.make_preprocessor(tokenizer, spec)
    return list(da.mlm_dataset(texts, pre, batch_size, seed=0, repeat=False))


def test_masking_rate_specials_and_80_10_10_split():
    tokenizer = _tokenizer()
    spec = da.MlmSpec(max_seq_length=48)
    specials = {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
                tokenizer.mask_token_id}
    selected = selectable = as_mask = kept = 0
    for x, y, w in _batches(_random_texts(400, 30, 46), spec, tokenizer):
        ids, pos, y, w = (x["token_ids"].numpy(), x["mask_positions"].numpy(), y.numpy(),
                          w.numpy().astype(bool))
        lengths = x["padding_mask"].numpy().sum(1)
        for i in range(len(ids)):
            p, orig = pos[i][w[i]], y[i][w[i]]
            assert np.all((p > 0) & (p < lengths[i] - 1))  # never [CLS], [SEP] or padding
            assert not set(orig.tolist()) & specials
            selected += len(p)
            selectable += lengths[i] - 2
            as_mask += np.sum(ids[i][p] == tokenizer.mask_token_id)
            kept += np.sum(ids[i][p] == orig)
    # keras-hub selects ceil(15% of the selectable wordpieces) per sequence: a slight upward bias.
    assert 0.145 <= selected / selectable <= 0.165
    assert as_mask / selected == pytest.approx(0.8, abs=0.04)
    vocab = tokenizer.vocabulary_size()  # a "random" replacement may draw the same token
    assert kept / selected == pytest.approx(0.1 + 0.1 / vocab, abs=0.03)
    assert 1 - (as_mask + kept) / selected == pytest.approx(0.1 * (1 - 1 / vocab), abs=0.03)


def test_dynamic_masking_gives_a_new_mask_on_every_pass():
    tokenizer = _tokenizer()
    pre = da.make_preprocessor(tokenizer, da.MlmSpec(max_seq_length=48))
    text = _random_texts(1, 40, 40, seed=1)
    passes = [x["mask_positions"].numpy().tolist() for x, _, _ in
              da.mlm_dataset(text, pre, 1, seed=0).take(4)]
    assert len({json.dumps(p) for p in passes}) > 1


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    """A tiny encoder adapted for 40 steps on a repetitive corpus given as text:PATH."""
    root = tmp_path_factory.mktemp("adapt")
    path = root / "corpus.txt"
    path.write_text("\n".join(REPETITIVE) + "\n\n")
    ctx = runner.RunContext(str(root / "no_data"), str(root / "runs"))
    spec = da.MlmSpec(steps=40, batch_size=8, max_seq_length=16, learning_rate=3e-3,
                      precision="float32")
    return da.adapt_encoder(f"text:{path}", ctx, spec, encoder="tiny"), ctx, spec, str(path)


def test_mlm_loss_falls(adapted):
    result = adapted[0]
    losses = result.info["losses"]
    assert len(losses) == 40 and not result.reused
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses


def test_adapted_encoder_round_trip_and_reuse(adapted, monkeypatch):
    result, ctx, spec, path = adapted
    folder = result.folder
    assert os.path.basename(folder).startswith("text-corpus-")
    for name in ("config.json", "model.weights.h5", "tokenizer.json", "mlm.json"):
        assert os.path.exists(os.path.join(folder, name)), name
    assert not [d for d in os.listdir(os.path.dirname(folder)) if d.startswith(".tmp")]
    events = tf.io.gfile.glob(os.path.join(folder, "tb", "events.*"))
    tags = {v.tag for e in events for rec in tf.compat.v1.train.summary_iterator(e)
            for v in rec.summary.value}
    assert {"mlm/loss", "mlm/accuracy"} <= tags

    backbone, tokenizer = encoders.load_bert(folder)
    assert tokenizer.get_vocabulary() == encoders.toy_vocabulary(REPETITIVE)
    ids = tf.constant([[2, 7, 8, 9, 3, 0]])
    inputs = {"token_ids": ids, "segment_ids": tf.zeros_like(ids), "padding_mask": ids != 0}
    np.testing.assert_array_equal(backbone(inputs)["sequence_output"].numpy(),
                                  result.backbone(inputs)["sequence_output"].numpy())

    # A second call finds the folder: no training.
    monkeypatch.setattr(da, "_train_mlm", lambda *a, **k: pytest.fail("trained again"))
    again = da.adapt_encoder(f"text:{path}", ctx, spec, encoder="tiny")
    assert again.reused and again.folder == folder and again.info == result.info
    # The fingerprint covers the corpus content and the MLM settings.
    vocab = encoders.toy_vocabulary(REPETITIVE)
    fp = da._fingerprint(REPETITIVE, "tiny", vocab, spec, "float32")
    assert fp != da._fingerprint(REPETITIVE[:-1], "tiny", vocab, spec, "float32")
    assert fp != da._fingerprint(REPETITIVE, "tiny", vocab, spec.__class__(steps=41), "float32")
    keras_bias = dataclasses.replace(spec, bias_grad_impl="keras")
    assert fp != da._fingerprint(REPETITIVE, "tiny", vocab, keras_bias, "float32")
    with pytest.raises(ConfigError, match="mlm_bias_grad_impl='fast'"):
        dataclasses.replace(spec, bias_grad_impl="fast").validate()


def test_corpora_missing_named_builtin_and_text(synthetic_data_dir, tfds_dir, tmp_path):
    with pytest.raises(DataError, match=r"corpora/goemotions/train\.tsv: file not found.*"
                       r"google-research.*corpus\.txt"):
        da.load_corpus("goemotions", str(tmp_path))
    with pytest.raises(ConfigError, match="unknown MLM corpus 'wiki'.*semeval_tweets"):
        da.load_corpus("wiki", str(tmp_path))
    with pytest.raises(DataError, match="nope.txt: file not found"):
        da.load_corpus(f"text:{tmp_path / 'nope.txt'}", str(tmp_path))
    assert len(da.load_corpus("semeval_tweets", synthetic_data_dir, tfds_dir)) == 40
    assert len(da.load_corpus("carer_tweets", synthetic_data_dir, tfds_dir)) == 72
    # Named corpora in their original formats, and the one-document-per-line alternative.
    corpora = tmp_path / "corpora"
    (corpora / "health_tweets" / "Health-Tweets").mkdir(parents=True)
    (corpora / "health_tweets" / "Health-Tweets" / "bbc.txt").write_text(
        "1|Mon Apr 08|Flu cases rise http://bbc.in/x\n2|Tue Apr 09|a | b @who\n")
    assert da.load_corpus("health_tweets", str(tmp_path)) == ["Flu cases rise <URL>", "a | b <USER>"]
    (corpora / "empatheticdialogues").mkdir()
    (corpora / "empatheticdialogues" / "train.csv").write_text(
        "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"
        "hit:0,1,sad,I lost it,1,Oh no_comma_ that is sad,5|5|5,\n")
    assert da.load_corpus("empatheticdialogues", str(tmp_path)) == ["Oh no, that is sad"]
    # Your own corpus: --exp=pretrain --corpus=text:PATH.
    config = table7.make_config("pretrain", table7.Options(corpus="text:/x/my tweets.txt"), 0)
    assert (config.name, config.corpus) == ("pretrain_text-my_tweets", "text:/x/my tweets.txt")
    with pytest.raises(ConfigError, match="needs --corpus"):
        table7.make_config("pretrain", table7.Options(), 0)
    (corpora / "dailydialog").mkdir()
    (corpora / "dailydialog" / "corpus.txt").write_text("hello there\n\n how are you \n")
    assert da.load_corpus("dailydialog", str(tmp_path)) == ["hello there", "how are you"]


def test_source_target_wiring_and_table(ctx, monkeypatch):
    calls = []
    original = runner.train_and_evaluate

    def recording(config, datas, *args, **kwargs):
        calls.append((config.name, [d.task.name for d in datas], config.encoder))
        return original(config, datas, *args, **kwargs)

    monkeypatch.setattr(runner, "train_and_evaluate", recording)
    # target_only is the plain `bert` run on the target (tested in runner_test): check the dispatch.
    fake = {"test": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.5, "macro_f1": 0.5},
            "dataset": "twittemp", "seed": 0}
    monkeypatch.setattr(runner, "run_experiment", lambda config, ctx: calls.append(
        (config.name, [config.dataset], config.encoder)) or fake)
    options = table7.Options(smoke=True)
    rows = ["source_only", "pretrain_semeval_tweets", "pretrain_goemotions", "target_only"]
    results = table7.run_rows(rows, ctx, seeds=[0], options=options, keep_going=True)

    # Training and epoch selection saw only the source task; MLM only the unlabeled tweets.
    assert calls[0] == ("source_only", ["newsemp"], "tiny")
    name, tasks, encoder = calls[1]
    assert (name, tasks) == ("pretrain_semeval_tweets", ["newsemp"])
    assert os.path.dirname(encoder) == os.path.join(ctx.output_dir, "adapted")
    assert os.path.basename(encoder).startswith("semeval_tweets-")
    assert calls[2] == ("bert", ["twittemp"], "tiny")  # target_only: in-domain
    assert "corpora/goemotions/train.tsv" in results["pretrain_goemotions"]["error"]

    assert results["target_only"]["metrics"] == [fake]
    target_ids = runner.load_tasks(table7.make_config("target_only", options, 0), ctx)[0].test.ids
    for row in ("source_only", "pretrain_semeval_tweets"):
        config = table7.make_config(row, options, 0)
        run_dir = da.run_dir_for(config, ctx)
        assert run_dir.endswith(os.path.join(f"{row}-smoke", "newsemp-to-twittemp", "seed0"))
        metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
        split = json.load(open(os.path.join(run_dir, "split.json")))
        predictions = np.load(os.path.join(run_dir, "predictions.npz"))
        # The reported target metrics are on exactly the twittemp test ids (target_only's split).
        assert predictions["ids"].tolist() == split["twittemp"]["test"] == target_ids.tolist()
        assert not set(split["twittemp"]["test"]) & set(split["newsemp"]["train"])
        assert metrics["test"] == metrics["target"]["test"]
        assert metrics["train"]["examples"] == {"newsemp": len(split["newsemp"]["train"])}
        assert metrics["selection"] == "f1 on newsemp dev"
        assert set(metrics["source"]) >= {"dev", "test"} and metrics["dataset"] == "twittemp"
        for key in ("precision", "recall", "f1", "accuracy", "macro_f1"):
            assert 0.0 <= metrics["test"][key] <= 1.0
    assert results["pretrain_semeval_tweets"]["metrics"][0]["mlm"]["steps"] == 6

    # A finished cell is reused: no training.
    n = len(calls)
    assert da.run_uda(table7.make_config("source_only", options, 0), ctx) == \
        results["source_only"]["metrics"][0]
    assert len(calls) == n
    # Another config in the same folder is refused; --overwrite moves the old run aside.
    source_only = table7.make_config("source_only", options, 0)
    changed = dataclasses.replace(source_only, finetune=dataclasses.replace(
        source_only.finetune, learning_rate=1e-4))
    with pytest.raises(ConfigError, match="different config"):
        da.run_uda(changed, ctx)
    assert da.run_uda(changed, dataclasses.replace(ctx, overwrite=True))["test"]
    run_dir = da.run_dir_for(changed, ctx)
    aside = [d for d in os.listdir(os.path.dirname(run_dir)) if ".replaced-" in d]
    assert len(aside) == 1 and not os.path.exists(os.path.join(run_dir, "checkpoints"))

    path = table7.write_table7(results, ctx.output_dir, seeds=[0], smoke=True)
    text = open(path).read()
    assert path == os.path.join(ctx.output_dir, "tables", "table7-smoke.md")
    for label in ("source only", "SemEval-2018 E-c tweets", "target only", "GoEmotions",
                  "n/a [1]", "corpora/goemotions/train.tsv", "| 50.00 ± 0.00 | 50.00 ± 0.00 |",
                  "| 1/1 (0) |", "| 0/1 |"):
        assert label in text, label
