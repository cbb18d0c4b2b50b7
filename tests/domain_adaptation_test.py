"""Domain adaptation (Table 7): MLM masking, the adapted-encoder folder, source→target wiring."""

import json
import os
import random
import signal

import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import runs
from empathy_tf.config import ExperimentConfig
from empathy_tf.errors import ConfigError, DataError, RunInterrupted
from empathy_tf.methods import load_tasks
from empathy_tf.methods.domain_adaptation import corpora, mlm
from empathy_tf.models import encoders
from empathy_tf.training import loop
from experiments import registry

WORDS = [f"w{i}" for i in range(50)]
REPETITIVE = ["the cat sat on the mat", "a dog ate the bone", "the bird sang a song",
              "my cat likes the warm mat", "the dog and the bird play"] * 4


def _tokenizer():
    return encoders.load_tokenizer("tiny", list(encoders.SPECIAL_TOKENS) + WORDS)


def _random_texts(n, lo, hi, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


def _masking(tokenizer, max_length=48):
    adaptation = ExperimentConfig().adaptation.__class__(mlm_max_seq_length=max_length)
    return mlm.Masking.from_config(adaptation, tokenizer)


def test_masking_rate_specials_and_80_10_10_split():
    tokenizer = _tokenizer()
    masking = _masking(tokenizer)
    specials = {tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
                tokenizer.mask_token_id}
    texts = _random_texts(400, 30, 46)
    ids, lengths = mlm.pack_texts(tokenizer, texts, masking.max_length)
    selected = selectable = as_mask = kept = 0
    for x, y, w in mlm.mlm_dataset(ids, lengths, mlm.row_order(400, 50, 8, 0), masking, seed=0):
        ids_b, pos, y, w = (x["token_ids"].numpy(), x["mask_positions"].numpy(), y.numpy(),
                            w.numpy())
        assert w.sum() == pytest.approx(1.0)   # weights: 1 / selected positions of the batch
        w = w > 0
        lengths_b = x["padding_mask"].numpy().sum(1)
        assert ids_b.shape[1] == lengths_b.max()   # padded to the batch's own longest text
        for i in range(len(ids_b)):
            p, orig = pos[i][w[i]], y[i][w[i]]
            assert np.all((p > 0) & (p < lengths_b[i] - 1))  # never [CLS], [SEP] or padding
            assert not set(orig.tolist()) & specials
            # ceil(15% of the selectable wordpieces) per sequence, as keras-hub selects.
            assert len(p) == int(np.ceil(round(0.15 * (lengths_b[i] - 2), 6)))
            selected += len(p)
            selectable += lengths_b[i] - 2
            as_mask += np.sum(ids_b[i][p] == tokenizer.mask_token_id)
            kept += np.sum(ids_b[i][p] == orig)
    assert 0.145 <= selected / selectable <= 0.165
    assert as_mask / selected == pytest.approx(0.8, abs=0.04)
    vocab = tokenizer.vocabulary_size()  # a "random" replacement may draw the same token
    assert kept / selected == pytest.approx(0.1 + 0.1 / vocab, abs=0.03)
    # Dynamic masking: the same text gets a new mask at every step.
    one_ids, one_lengths = mlm.pack_texts(tokenizer, _random_texts(1, 40, 40, seed=1), 48)
    passes = [x["mask_positions"].numpy().tolist() for x, _, _ in
              mlm.mlm_dataset(one_ids, one_lengths, mlm.row_order(1, 1, 4, 0), masking, seed=0)]
    assert len({json.dumps(p) for p in passes}) > 1


def test_batches_and_masks_are_a_pure_function_of_seed_and_step():
    tokenizer = _tokenizer()
    masking = _masking(tokenizer, 24)
    ids, lengths = mlm.pack_texts(tokenizer, _random_texts(30, 1, 30), 24)
    order = mlm.row_order(30, 8, 10, seed=3)
    # Each pass over the corpus is a permutation; the same seed gives the same order.
    assert sorted(order.reshape(-1)[:30].tolist()) == list(range(30))
    np.testing.assert_array_equal(order, mlm.row_order(30, 8, 10, seed=3))
    assert not np.array_equal(order, mlm.row_order(30, 8, 10, seed=4))

    def batches(**kwargs):
        return [tf.nest.map_structure(lambda t: t.numpy(), b)
                for b in mlm.mlm_dataset(ids, lengths, order, masking, **kwargs)]

    full = batches(seed=0)
    assert len(full) == 10
    # Resuming at step 6 gives steps 6.. exactly; another seed other masks.
    for a, b in zip(full[6:], batches(seed=0, first_step=6), strict=True):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    assert any(not np.array_equal(a[0]["token_ids"], b[0]["token_ids"])
               for a, b in zip(full, batches(seed=1)))
    # Two replicas get the two halves of the same global batch, masked alike.
    halves = batches(seed=0, replicas=2)
    assert len(halves) == 20
    for step, batch in enumerate(full):
        for part, half in zip(batch, zip(*halves[2 * step:2 * step + 2])):
            tf.nest.map_structure(lambda a, *h: np.testing.assert_array_equal(
                a, np.concatenate(h)), part, *half)
    with pytest.raises(ConfigError, match="mlm_batch_size=8 must be a multiple of .* 3 replicas"):
        mlm.mlm_dataset(ids, lengths, order, masking, seed=0, replicas=3)


def test_texts_shorter_than_the_selection_are_masked_inside_the_batch():
    """A batch whose longest text is shorter than selection_length (CARER's first tweet is 7
    wordpieces, the selection 11): every position, fillers too, indexes the cut batch."""
    tokenizer = _tokenizer()
    masking = _masking(tokenizer)                        # selection_length ceil(0.15·48)+1 = 9
    ids, lengths = mlm.pack_texts(tokenizer, ["w1 w2 w3", "w4 w5"], masking.max_length)
    x, labels, weights = mlm.mask_batch(ids, lengths, masking, seed=0, step=0)
    width = x["token_ids"].shape[1]
    assert width == 5 and x["mask_positions"].shape == (2, masking.selection_length)
    assert int(tf.reduce_max(x["mask_positions"])) < width
    assert float(tf.reduce_sum(weights)) == pytest.approx(1.0)
    selected = tf.boolean_mask(x["mask_positions"], weights > 0).numpy()
    assert len(selected) == 2 and np.all((selected > 0) & (selected < 4))   # one per text


def test_adaptation_runs_when_the_corpus_opens_with_a_short_text(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(["w1 w2"] + REPETITIVE) + "\n")
    ctx = runs.RunContext(str(tmp_path / "no_data"), str(tmp_path / "runs"))
    config = _adaptation_config(path, mlm_steps=3, mlm_max_seq_length=48)
    texts = corpora.load_corpus(config.adaptation.corpus, ctx.data_dir)
    assert texts[0] == "w1 w2"
    assert mlm.adapt_encoder(config, ctx, texts).info["steps"] == 3


def _adaptation_config(path, **changes):
    options = dict(corpus=f"text:{path}", mlm_steps=40, mlm_batch_size=8, mlm_max_seq_length=16,
                   mlm_learning_rate=3e-3, precision="float32")
    return registry.get_config("pretrain").smoked().replace(**{**options, **changes}).resolved()


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
    assert not [d for d in os.listdir(os.path.dirname(folder)) if d.startswith(".partial")]
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


def _adapt_in(root, strategy=None, **changes):
    """The `adapted` fixture's adaptation in another output folder (same identity)."""
    root.mkdir(exist_ok=True)
    path = root / "corpus.txt"
    path.write_text("\n".join(REPETITIVE) + "\n\n")
    ctx = runs.RunContext(str(root / "no_data"), str(root / "runs"))
    config = _adaptation_config(path, **changes)
    texts = corpora.load_corpus(config.adaptation.corpus, ctx.data_dir)
    return lambda: mlm.adapt_encoder(config, ctx, texts, strategy=strategy)


def _encoder_weights(folder):
    return encoders.load_encoder(folder).get_weights()


def _scalar_steps(folder, tag):
    events = tf.io.gfile.glob(os.path.join(folder, "tb", "events.*"))
    return sorted(rec.step for e in events for rec in tf.compat.v1.train.summary_iterator(e)
                  for v in rec.summary.value if v.tag == tag)


def test_an_interrupted_adaptation_resumes_exactly(adapted, tmp_path, monkeypatch):
    uninterrupted = adapted[0]

    def stop_at_13(run_dir, step, stop):   # as a SIGINT before step 13 would
        if step == 13:
            stop.requested = signal.SIGINT

    monkeypatch.setattr(loop, "_test_pause", stop_at_13)
    adapt = _adapt_in(tmp_path / "a")
    with pytest.raises(RunInterrupted, match="step 13; checkpoint saved"):
        adapt()
    monkeypatch.undo()
    root = tmp_path / "a" / "runs" / "adapted"
    [partial] = [d for d in os.listdir(root) if d.startswith(".partial-")]
    assert json.load(open(root / partial / "checkpoints" / "state.json"))["step"] == 13
    assert not [d for d in os.listdir(root) if d.startswith("text-")]
    # Another identity has another work folder: it starts from step 0, the partial stays.
    other = _adapt_in(tmp_path / "a", mlm_steps=20)()
    assert other.info["resumed_at_step"] == 0 and os.path.isdir(root / partial)
    resumed = adapt()
    assert resumed.info["resumed_at_step"] == 13 and not resumed.reused
    assert not os.path.exists(root / partial)
    assert not os.path.exists(os.path.join(resumed.folder, "checkpoints"))
    assert resumed.info["losses"] == uninterrupted.info["losses"]
    assert resumed.info["accuracies"] == uninterrupted.info["accuracies"]
    for a, b in zip(_encoder_weights(resumed.folder), _encoder_weights(uninterrupted.folder),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    # TensorBoard: the resumed run appends steps 14..40 to the interrupted run's 1..13.
    assert _scalar_steps(resumed.folder, "mlm/loss") == list(range(1, 41))


def test_mirrored_strategy_gives_the_default_strategy_losses(adapted, tmp_path):
    mirrored = _adapt_in(tmp_path, tf.distribute.MirroredStrategy(["/cpu:0"]))()
    np.testing.assert_allclose(mirrored.info["losses"], adapted[0].info["losses"], rtol=0,
                               atol=1e-6)


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
