"""Tests for baselines.encoders: shapes, padding invariance, training and serialisation."""

import keras
import numpy as np
import pytest

from baselines.encoders import KINDS, MAX_NORM, GloveEncoder, build_glove_encoder
from empathy_tf.errors import ConfigError

VOCAB_SIZE, DIM = 30, 8
# Lengths 1 and 3 are below the widest CNN filter (5).
EXAMPLES = [[3, 4, 5], [7], [2, 9, 11, 12, 13, 14], [5, 6, 7, 8, 9, 10, 11]]


def matrix(seed=0):
    m = np.random.default_rng(seed).normal(size=(VOCAB_SIZE, DIM)).astype(np.float32)
    m[0] = 0.0
    return m


def batch(seqs, length):
    ids = np.zeros((len(seqs), length), np.int32)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    return {"token_ids": ids, "padding_mask": ids != 0}


def inputs_spec():
    return {
        "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((None,), dtype="bool", name="padding_mask"),
    }


def classifier(encoder, kind):
    inputs = inputs_spec()
    norm = MAX_NORM.get(kind)
    head = keras.layers.Dense(2, activation="softmax", kernel_constraint=norm and keras.constraints.MaxNorm(norm))
    model = keras.Model(inputs, head(encoder(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", jit_compile=False)
    return model


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ConfigError, match="cnn, lstm, bilstm, convlstm"):
        build_glove_encoder("gru", matrix())


@pytest.mark.parametrize("kind, dim", [("cnn", 300), ("lstm", 16), ("bilstm", 32), ("convlstm", 16)])
def test_output_shape(kind, dim):
    encoder = build_glove_encoder(kind, matrix(), hidden_units=16)
    assert encoder.output_dim == dim
    for seqs, length in (([[3], [4]], 1), ([[3], [4, 5]], 2), ([[3], [4, 5]], 9)):
        out = encoder(batch(seqs, length))
        assert tuple(out.shape) == (2, dim) and out.dtype == "float32"
    assert np.isfinite(np.asarray(out)).all()


@pytest.mark.parametrize("kind", KINDS)
def test_features_do_not_depend_on_padding(kind):
    encoder = build_glove_encoder(kind, matrix(), hidden_units=16)
    longest = max(map(len, EXAMPLES))
    encoder(batch(EXAMPLES, longest))
    # Non-zero biases: with zero biases, windows over padding output relu(0) = 0 and the CNN
    # check would pass even without masking.
    rng = np.random.default_rng(1)
    for w in encoder.weights:
        if "bias" in w.path:
            w.assign(rng.normal(0.0, 0.5, w.shape))
    padded = np.asarray(encoder(batch(EXAMPLES, longest + 7), training=False))
    for i, ex in enumerate(EXAMPLES):
        alone = np.asarray(encoder(batch([ex], len(ex)), training=False))[0]
        np.testing.assert_allclose(alone, padded[i], rtol=1e-5, atol=1e-6, err_msg=f"{kind}, example {i}")
    # A text that is empty after tokenisation still gets finite features.
    assert np.isfinite(np.asarray(encoder(batch([[]], 4)))).all()


@pytest.mark.parametrize("kind", KINDS)
def test_one_training_step_frozen_embeddings(kind):
    encoder = build_glove_encoder(kind, matrix(), trainable_embeddings=False, hidden_units=16)
    model = classifier(encoder, kind)
    assert all("embedding" not in w.path for w in encoder.trainable_weights)
    before = {w.path: np.array(w) for w in encoder.weights}
    loss = model.train_on_batch(batch(EXAMPLES, 9), np.array([0, 1, 0, 1]))
    assert np.isfinite(loss)
    for w in encoder.weights:
        changed = not np.array_equal(before[w.path], np.array(w))
        assert changed == ("embedding" not in w.path), w.path


def test_trainable_embeddings_train_but_keep_padding_row_zero():
    encoder = build_glove_encoder("cnn", matrix(), trainable_embeddings=True)
    model = classifier(encoder, "cnn")
    before = np.array(encoder.embedding.embeddings)
    model.train_on_batch(batch(EXAMPLES, 9), np.array([0, 1, 0, 1]))
    after = np.array(encoder.embedding.embeddings)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after[0], 0.0)


def test_same_seed_same_weights_and_config_round_trip(tmp_path):
    a = build_glove_encoder("bilstm", matrix(), hidden_units=16, seed=5)
    b = build_glove_encoder("bilstm", matrix(), hidden_units=16, seed=5)
    x = batch(EXAMPLES, 7)
    np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))
    forward, backward = (w for w in a.weights if w.path.endswith("lstm_cell/kernel"))
    assert not np.array_equal(np.array(forward), np.array(backward))

    inputs = inputs_spec()
    model = keras.Model(inputs, a(inputs))
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), rtol=1e-6)
    assert isinstance(restored.layers[-1], GloveEncoder)
