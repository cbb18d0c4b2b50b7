"""Domain adaptation (Table 7): MLM masking, the adapted-encoder folder, source→target wiring."""

import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import runs
from empathy_tf.config import ExperimentConfig
from empathy_tf.errors import ConfigError, DataError
from empathy_tf.methods import load_tasks
from empathy_tf.methods.domain_adaptation import corpora, mlm
from empathy_tf.models import encoders
from experiments import registry

WORDS = [f"w{i}" for i in range(50)]
REPETITIVE = ["the cat sat on the mat", "a dog ate the bone", "the bird sang a song",
              "my cat likes the warm mat", "the dog and the bird play"] * 4


def _tokenizer():
    return encoders.load_tokenizer("tiny", list(encoders.SPECIAL_TOKENS) + WORDS)


def _random_texts(n, lo, hi, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


def test_masking_rate_specials_and_80_10_10_split():
    tokenizer = _tokenizer()
    adaptation = ExperimentConfig().adaptation.__class__(mlm_max_seq_length=48)
    pre = mlm.make_preprocessor(tokenizer, adaptation)
    specials = {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
                tokenizer.mask_token_id}
    selected = selectable = as_mask = kept = 0
    for x, y, w in mlm.mlm_dataset(_random_texts(400, 30, 46), pre, 50, seed=0, repeat=False):
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
    # Dynamic masking: the same text gets a new mask on every pass.
    passes = [x["mask_positions"].numpy().tolist() for x, _, _ in
              mlm.mlm_dataset(_random_texts(1, 40, 40, seed=1), pre, 1, seed=0).take(4)]
    assert len({json.dumps(p) for p in passes}) > 1


def _adaptation_config(path, **changes):
    return registry.get_config("pretrain").smoked().replace(
        corpus=f"text:{path}", mlm_steps=40, mlm_batch_size=8, mlm_max_seq_length=16,
        mlm_learning_rate=3e-3, precision="float32", **changes).resolved()


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    """A tiny encoder adapted for 40 steps on a repetitive corpus given as text:PATH."""
    root = tmp_path_factory.mktemp("adapt")
    path = root / "corpus.txt"
    path.write_text("\n".join(REPETITIVE) + "\n\n")
    ctx = runs.RunContext(str(root / "no_data"), str(root / "runs"))
    config = _adaptation_config(path)
    texts = corpora.load_corpus(config.adaptation.corpus, ctx.data_dir)
    return mlm.adapt_encoder(config, ctx, texts), ctx, config, texts


def test_mlm_loss_falls_and_the_encoder_round_trips(adapted, monkeypatch):
    result, ctx, config, texts = adapted
    losses = result.info["losses"]
    assert len(losses) == 40 and not result.reused
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses
    folder = result.folder
    assert os.path.basename(folder).startswith("text-corpus-")
    for name in ("config.json", "model.weights.h5", "tokenizer.json", "mlm.json"):
        assert os.path.exists(os.path.join(folder, name)), name
    assert not [d for d in os.listdir(os.path.dirname(folder)) if d.startswith(".tmp")]
    events = tf.io.gfile.glob(os.path.join(folder, "tb", "events.*"))
    tags = {v.tag for e in events for rec in tf.compat.v1.train.summary_iterator(e)
            for v in rec.summary.value}
    assert {"mlm/loss", "mlm/accuracy"} <= tags
    # The folder is a keras-hub preset: it loads as an encoder of its own.
    assert encoders.load_tokenizer(folder).get_vocabulary() == encoders.toy_vocabulary(REPETITIVE)
    assert encoders.load_encoder(folder).vocabulary_size == len(encoders.toy_vocabulary(REPETITIVE))
    # A second call finds the folder: no training.
    monkeypatch.setattr(mlm, "_train", lambda *a, **k: pytest.fail("trained again"))
    again = mlm.adapt_encoder(config, ctx, texts)
    assert again.reused and again.folder == folder and again.info == result.info
    # The identity covers the corpus, the MLM options and the kernels.
    vocab = encoders.toy_vocabulary(REPETITIVE)
    identity = mlm.adaptation_identity(config, texts, vocab)
    assert identity != mlm.adaptation_identity(config, texts[:-1], vocab)
    assert identity != mlm.adaptation_identity(config.replace(mlm_steps=41), texts, vocab)
    assert identity != mlm.adaptation_identity(config.replace(bias_grad_impl="float32"), texts,
                                               vocab)


def test_corpora_missing_named_builtin_and_text(synthetic_data_dir, tfds_dir, tmp_path):
    with pytest.raises(DataError, match=r"goemotions/train\.tsv: file not found.*google-research"):
        corpora.load_corpus("goemotions", str(tmp_path))
    with pytest.raises(ConfigError, match="unknown MLM corpus 'wiki'.*semeval_tweets"):
        corpora.load_corpus("wiki", str(tmp_path))
    with pytest.raises(DataError, match="nope.txt: file not found"):
        corpora.load_corpus(f"text:{tmp_path / 'nope.txt'}", str(tmp_path))
    assert len(corpora.load_corpus("semeval_tweets", synthetic_data_dir, tfds_dir)) == 40
    assert len(corpora.load_corpus("carer_tweets", synthetic_data_dir, tfds_dir)) == 72
    assert len(corpora.load_corpus("goemotions", synthetic_data_dir, tfds_dir)) == 84
    # Named corpora in their original formats, and the one-document-per-line alternative.
    folder = tmp_path / "corpora"
    (folder / "health_tweets" / "Health-Tweets").mkdir(parents=True)
    (folder / "health_tweets" / "Health-Tweets" / "bbc.txt").write_text(
        "1|Mon Apr 08|Flu cases rise http://bbc.in/x\n2|Tue Apr 09|a | b @who\n")
    assert corpora.load_corpus("health_tweets", str(tmp_path)) == ["Flu cases rise <URL>",
                                                                   "a | b <USER>"]
    (folder / "empatheticdialogues").mkdir()
    (folder / "empatheticdialogues" / "train.csv").write_text(
        "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"
        "hit:0,1,sad,I lost it,1,Oh no_comma_ that is sad,5|5|5,\n")
    assert corpora.load_corpus("empatheticdialogues", str(tmp_path)) == ["Oh no, that is sad"]
    (folder / "dailydialog").mkdir()
    (folder / "dailydialog" / "corpus.txt").write_text("hello there\n\n how are you \n")
    assert corpora.load_corpus("dailydialog", str(tmp_path)) == ["hello there", "how are you"]


def test_source_target_wiring(synthetic_data_dir, tfds_dir, tmp_path):
    ctx = runs.RunContext(synthetic_data_dir, str(tmp_path / "runs"), tfds_dir)
    target_ids = load_tasks(registry.get_config("bert").smoked().replace(dataset="twittemp"),
                            ctx)[0].test.ids
    for row in ("source_only", "pretrain_semeval_tweets"):
        config = registry.get_config(row).smoked()
        metrics = runs.run_cell(config, ctx)
        run_dir = runs.run_dir_for(config, ctx)
        assert os.path.basename(os.path.dirname(run_dir)).startswith("newsemp-to-twittemp")
        split = json.load(open(os.path.join(run_dir, "split.json")))
        predictions = np.load(os.path.join(run_dir, "predictions.npz"))
        # The reported target metrics are on exactly the twittemp test ids (target_only's split).
        assert predictions["ids"].tolist() == split["twittemp"]["test"] == target_ids.tolist()
        assert metrics["test"] == metrics["target"]["test"] and metrics["task"] == "twittemp"
        assert metrics["train"]["examples"] == {"newsemp": len(split["newsemp"]["train"])}
        assert metrics["selection"] == "macro_f1 on newsemp dev"
        assert set(metrics["source"]) >= {"dev", "test"}
    assert metrics["mlm"]["steps"] == 6 and metrics["encoder"].startswith(
        os.path.join(ctx.output_dir, "adapted", "semeval_tweets-"))
    with pytest.raises(ConfigError, match="both 'newsemp'"):
        runs.run_cell(registry.get_config("source_only").smoked().replace(target="newsemp"), ctx)
    with pytest.raises(ConfigError, match="unknown MLM corpus"):
        runs.run_cell(registry.get_config("pretrain").smoked().replace(corpus="wiki"), ctx)
