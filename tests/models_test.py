"""models.bert (BertEncoder vs keras-hub's BertBackbone, packed rows) and models.classifier."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from empathy_tf.kernels import HashDropout
from empathy_tf.models import bert, encoders
from empathy_tf.models.classifier import HeadSpec, MultiTaskClassifier
from tests import helpers

VOCABULARY_SIZE = 45
LENGTHS = (9, 5, 3, 1)


@pytest.fixture(scope="module")
def backbone():
    """A small keras-hub BertBackbone with every weight random (biases and LayerNorms too)."""
    import keras_hub
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCABULARY_SIZE, num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=64, dropout=0.1, dtype="float32")
    rng = np.random.default_rng(0)
    for w in backbone.weights:
        scale = 0.2 if len(w.shape) > 1 else 0.5
        w.assign(rng.normal(0, scale, w.shape) + (1.0 if w.path.endswith("gamma") else 0.0))
    return backbone


@pytest.fixture(scope="module")
def texts():
    rng = np.random.default_rng(1)
    return [np.concatenate([[2], rng.integers(5, VOCABULARY_SIZE, n - 2), [3]])[:n]
            if n > 1 else np.array([2]) for n in LENGTHS]


def _padded(texts, width=None):
    width = width or max(map(len, texts))
    ids = np.zeros([len(texts), width], np.int32)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = t
    return helpers.padded(ids, [len(t) for t in texts])


def _packed(rows, width):
    """Packed features of `rows` (lists of texts), the texts numbered in row order."""
    names = ("token_ids", "position_ids", "pack_ids", "text_index")
    grid = {k: np.zeros([len(rows), width], np.int32) for k in names}
    grid["text_index"][:] = -1
    starts, k = [], 0
    for r, row in enumerate(rows):
        offset = 0
        for j, text in enumerate(row):
            span = slice(offset, offset + len(text))
            grid["token_ids"][r, span] = text
            grid["position_ids"][r, span] = np.arange(len(text))
            grid["pack_ids"][r, span] = j + 1
            grid["text_index"][r, span] = k
            starts.append(r * width + offset)
            offset, k = offset + len(text), k + 1
    return {**{n: tf.constant(v) for n, v in grid.items()},
            "text_starts": tf.constant(starts, tf.int32)}


def _backbone_outputs(backbone, texts):
    features = _padded(texts)
    out = backbone({**features, "segment_ids": tf.zeros_like(features["token_ids"])},
                   training=False)
    return (out["sequence_output"].numpy(), out["pooled_output"].numpy(),
            features["padding_mask"].numpy())


# ---------------------------------------------------------------------------------------------
# BertEncoder == keras-hub BertBackbone (float32).

@pytest.mark.parametrize("impls", [dict(gelu_impl="fused", bias_grad_impl="float32"),
                                   dict(gelu_impl="keras", bias_grad_impl="keras")])
def test_padded_batches_match_the_backbone(backbone, texts, impls):
    sequence, pooled, mask = _backbone_outputs(backbone, texts)
    lengths = mask.sum(1)
    for pooling, want in (("cls", sequence[:, 0]), ("pooler", pooled),
                          ("mean", (sequence * mask[..., None]).sum(1) / lengths[:, None])):
        encoder = bert.from_backbone(backbone, pooling=pooling, dropout_impl="hash", **impls)
        assert encoder.dropout == 0.1 and encoder.num_layers == 2 and encoder.hidden_dim == 32
        got = encoder(_padded(texts), training=False)
        assert got.dtype == tf.float32 and got.shape == (len(texts), 32)
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5, err_msg=pooling)
    ours, _ = encoder.sequence_output(_padded(texts))
    np.testing.assert_allclose(ours.numpy()[mask], sequence[mask], atol=1e-5)
    # More padding changes nothing.
    wider, _ = encoder.sequence_output(_padded(texts, width=16))
    np.testing.assert_allclose(wider.numpy()[:, :mask.shape[1]][mask], sequence[mask], atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "pooler", "mean"])
def test_packed_rows_give_each_text_its_unpacked_vector(backbone, texts, pooling):
    encoder = bert.from_backbone(backbone, pooling=pooling)
    alone = encoder(_padded(texts), training=False).numpy()
    # Texts 0 and 3 share row 0, texts 1 and 2 row 1 (text order = row order), padding after.
    rows = [[texts[0], texts[3]], [texts[1], texts[2]]]
    packed = _packed(rows, width=12)
    got = encoder(packed, training=False).numpy()
    np.testing.assert_allclose(got, alone[[0, 3, 1, 2]], atol=1e-5)
    # And per token: every text's states are those of the text alone.
    sequence = encoder.sequence_output(packed)[0].numpy()
    reference, _ = encoder.sequence_output(_padded(texts))
    for r, row in enumerate(rows):
        offset = 0
        for text in row:
            i = next(k for k, t in enumerate(texts) if t is text)
            np.testing.assert_allclose(sequence[r, offset:offset + len(text)],
                                       reference.numpy()[i, : len(text)], atol=1e-5)
            offset += len(text)
    if pooling == "cls":  # the backbone agrees too
        np.testing.assert_allclose(got, _backbone_outputs(backbone, texts)[0][[0, 3, 1, 2], 0],
                                   atol=1e-5)


def test_to_backbone_round_trip_is_exact(backbone):
    encoder = bert.from_backbone(backbone, pooling="pooler")
    again = bert.to_backbone(encoder)
    theirs = {w.path: w.numpy() for w in backbone.weights}
    assert sorted(w.path for w in again.weights) == sorted(theirs)
    for w in again.weights:
        np.testing.assert_array_equal(w.numpy(), theirs[w.path], err_msg=w.path)
    assert again.get_config()["num_layers"] == 2 and again.dtype_policy.name == "float32"
    copy = bert.from_backbone(again, pooling="pooler")
    for a, b in zip(encoder.weights, copy.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_from_backbone_refuses_other_architectures():
    class NotBert:
        weights = []

        def get_config(self):
            return dict(vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
                        intermediate_dim=8, max_sequence_length=8, num_segments=2, dropout=0.0)

    with pytest.raises(ValueError, match="no weight 'token_embedding/embeddings'"):
        bert.from_backbone(NotBert())


def test_encoder_options_are_checked():
    with pytest.raises(ValueError, match="pooling='max'"):
        helpers.tiny_encoder(pooling="max")
    with pytest.raises(ValueError, match="multiple of num_heads"):
        bert.BertBlock(hidden_dim=30, num_heads=4, intermediate_dim=8)


def test_pooler_trains_only_when_used():
    def pooler_variables(pooling):
        return [v for v in helpers.tiny_encoder(pooling=pooling).trainable_variables
                if "pooler" in v.path]

    assert not pooler_variables("cls") and not pooler_variables("mean")
    assert len(pooler_variables("pooler")) == 2


def test_tiny_encoder_and_vocabulary():
    vocabulary = encoders.toy_vocabulary(["The cat sat.", "the dog"])
    assert vocabulary[:5] == list(encoders.SPECIAL_TOKENS)
    assert set(vocabulary[5:]) == {"the", "cat", "sat", ".", "dog"}
    encoder = encoders.load_encoder("tiny", vocabulary_size=len(vocabulary), seed=3, pooling="mean")
    assert (encoder.num_layers, encoder.hidden_dim, encoder.seed) == (2, 32, 3)
    assert encoder.token_embeddings.shape == (len(vocabulary), 32)


# ---------------------------------------------------------------------------------------------
# MultiTaskClassifier.

HEADS = [HeadSpec("newsemp", 2), HeadSpec("emotion:go", 4, multi_label=True)]


def test_keras_file_round_trip_computes_the_same_outputs(tmp_path):
    encoder = helpers.tiny_encoder(dropout=0.1, dropout_impl="hash", gelu_impl="fused",
                                   bias_grad_impl="float32", pooling="pooler")
    model = MultiTaskClassifier(encoder, HEADS, dropout=0.1, dropout_impl="hash", seed=0)
    features = _padded([np.array([2, 5, 6, 7, 3]), np.array([2, 8, 3])])
    before = [l.numpy() for l in model(features)]
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(restored, MultiTaskClassifier)
    assert isinstance(restored.encoder, bert.BertEncoder)
    assert restored.head_specs == HEADS
    config = restored.encoder.get_config()
    assert {k: config[k] for k in ("dropout_impl", "gelu_impl", "bias_grad_impl", "pooling")} == \
        dict(dropout_impl="hash", gelu_impl="fused", bias_grad_impl="float32", pooling="pooler")
    assert isinstance(restored.dropout, HashDropout)
    after = restored(features)
    assert [a.shape for a in after] == [(2, 2), (2, 4)]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b.numpy())
    probs = restored.probabilities(after)
    np.testing.assert_allclose(probs[0].numpy().sum(-1), 1.0, rtol=1e-6)   # softmax
    np.testing.assert_allclose(probs[1].numpy(), tf.sigmoid(after[1]).numpy())  # sigmoid


def test_mixed_bfloat16_keeps_variables_and_outputs_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = helpers.tiny_model(HEADS, dropout=0.1, backbone_dropout=0.1,
                                   bias_grad_impl="float32")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    reference = helpers.tiny_model(HEADS, dropout=0.1, backbone_dropout=0.1)
    assert model.encoder.dtype_policy.name == "mixed_bfloat16"
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert len(model.trainable_variables) == len(reference.trainable_variables)
    features = _padded([np.array([2, 5, 6, 7, 3]), np.array([2, 8, 3])])
    sequence, _ = model.encoder.sequence_output(features)
    assert sequence.dtype == tf.bfloat16  # computed in bfloat16 ...
    with tf.GradientTape() as tape:
        logits = model(features, training=True)
        loss = sum(tf.reduce_sum(l**2) for l in logits)
    assert all(l.dtype == tf.float32 for l in logits)  # ... pooled and classified in float32
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None and g.dtype == tf.float32 for g in grads)
    # The same function up to bfloat16 rounding (layer-normed states of size ~1; a few roundings
    # of 2^-8 each, whether or not this CPU has native bfloat16 instructions).
    np.testing.assert_allclose(model.encoder(features).numpy(), reference.encoder(features).numpy(),
                               atol=0.06)


def test_every_hash_dropout_layer_of_a_classifier_has_its_own_seed():
    encoder = helpers.tiny_encoder(seed=0, dropout=0.1, dropout_impl="hash")
    model = MultiTaskClassifier(encoder, HEADS, dropout=0.1, dropout_impl="hash", seed=0)
    states = [tuple(layer.seed_generator.state.numpy().tolist())
              for layer in helpers.all_layers(model) if isinstance(layer, HashDropout)]
    assert len(states) == 1 + 1 + 3 * encoder.num_layers
    assert len(set(states)) == len(states), states


def test_head_records_of_older_runs_are_read_and_bad_ones_named():
    from empathy_tf.errors import ConfigError
    older = {"name": "newsemp", "label_names": ["no_empathy", "empathy"], "multi_label": False,
             "positive_class": 1}   # model.json before num_classes was recorded
    assert HeadSpec.from_record(older, "run/model.json") == HeadSpec(
        "newsemp", 2, False, ("no_empathy", "empathy"), 1)
    with pytest.raises(ConfigError, match=r"run/model.json: .*no num_classes.*unknown fields width"):
        HeadSpec.from_record({"name": "x", "width": 3}, "run/model.json")
