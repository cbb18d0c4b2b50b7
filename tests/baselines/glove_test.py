"""baselines.glove (the GloVe baselines' encoders) and baselines.word_vectors (word-vector files)."""

import gzip

import keras
import numpy as np
import pytest
from gensim.models import KeyedVectors

from baselines.glove import KINDS, MAX_NORM, GloveEncoder, build_glove_encoder
from baselines.word_vectors import build_embedding_matrix, load_word_vectors
from empathy_tf.errors import ConfigError, DataError
from empathy_tf.models.classifier import HeadSpec, MultiTaskClassifier

# ---------------------------------------------------------------------------------------------
# Encoders.

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


def test_in_a_multi_task_classifier_with_max_norm_heads(tmp_path):
    encoder = build_glove_encoder("cnn", matrix(), hidden_units=16, dropout=0.5, seed=1)
    heads = [HeadSpec("newsemp", 2), HeadSpec("sst2", 2)]
    model = MultiTaskClassifier(encoder, heads, dropout=0.5, head_max_norm=MAX_NORM["cnn"], seed=1)
    x = batch(EXAMPLES, 7)
    logits = model(x)
    assert [tuple(l.shape) for l in logits] == [(4, 2), (4, 2)]
    assert all(isinstance(h.kernel_constraint, keras.constraints.MaxNorm) for h in model.heads)
    model.save(tmp_path / "glove.keras")
    restored = keras.models.load_model(tmp_path / "glove.keras")
    assert isinstance(restored.encoder, GloveEncoder) and restored.head_max_norm == 3.0
    for a, b in zip(logits, restored(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------------------------------------
# Word vectors.


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def tiny_kv():
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["the", "cat", "sat"], np.arange(9, dtype=np.float32).reshape(3, 3))
    return kv


def test_bundled_glove_loads_and_is_cached():
    kv = load_word_vectors()
    assert kv.vectors.shape == (400000, 50)
    assert kv.vectors.dtype == np.float32
    assert kv.key_to_index["the"] == 0
    np.testing.assert_allclose(kv["the"][:3], [0.418, 0.24968, -0.41242], rtol=1e-5)
    assert load_word_vectors() is kv


def test_tiny_glove_text_file(tmp_path):
    # CRLF line ends, a trailing blank line, a tab-separated line and a duplicate (first wins).
    path = write(tmp_path / "tiny.txt", "the 0.1 0.2 0.3\r\ncat 1 2 3\r\ndog\t4\t5\t6\ncat 7 8 9\n\n")
    kv = load_word_vectors(path)
    assert kv.vector_size == 3
    assert kv.index_to_key == ["the", "cat", "dog"]
    np.testing.assert_allclose(kv["the"], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(kv["cat"], [1, 2, 3])
    np.testing.assert_allclose(kv["dog"], [4, 5, 6])


def test_word_with_spaces_and_gzip(tmp_path):
    # glove.840B has words containing spaces; they end up as one key.
    path = tmp_path / "spaces.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("a 1 2\n. . . 3 4\n")
    kv = load_word_vectors(path)
    np.testing.assert_allclose(kv[". . ."], [3, 4])


def test_word2vec_text_binary_and_kv(tmp_path):
    kv = tiny_kv()
    for name, kwargs in (("w2v.txt", {"binary": False}), ("w2v.bin", {"binary": True}), ("noext", {"binary": True})):
        kv.save_word2vec_format(str(tmp_path / name), **kwargs)
        loaded = load_word_vectors(str(tmp_path / name))
        assert loaded.index_to_key == kv.index_to_key, name
        np.testing.assert_allclose(loaded.vectors, kv.vectors, err_msg=name)
    kv.save(str(tmp_path / "vectors.kv"))
    np.testing.assert_allclose(load_word_vectors(str(tmp_path / "vectors.kv"))["sat"], kv["sat"])


def test_wrong_dimension_names_file_line_and_both_dims(tmp_path):
    path = write(tmp_path / "bad.txt", "a 1 2 3 4 5\nb 1 2 3 4 5\nc 1 2 3 4\nd 1 2 3 4 5\n")
    with pytest.raises(DataError) as e:
        load_word_vectors(path)
    msg = str(e.value)
    assert path in msg and "line 3" in msg
    assert "dimension 4" in msg and "dimension is 5" in msg


def test_word2vec_header_dimension_and_count_are_checked(tmp_path):
    with pytest.raises(DataError, match=r"line 3 has dimension 3 .*dimension is 2 \(from the header\)"):
        load_word_vectors(write(tmp_path / "h.txt", "2 2\na 1 2\nb 1 2 3\n"))
    with pytest.raises(DataError, match="declares 3 vectors but the file has 2"):
        load_word_vectors(write(tmp_path / "n.txt", "3 2\na 1 2\nb 1 2\n"))


@pytest.mark.parametrize("line, needle", [("b 1 x 3", "non-numeric value 'x'"), ("b 1 nan 3", "non-finite")])
def test_bad_value_names_file_and_line(tmp_path, line, needle):
    path = write(tmp_path / "v.txt", f"a 1 2 3\n{line}\nc 1 2 3\n")
    with pytest.raises(DataError) as e:
        load_word_vectors(path)
    assert path in str(e.value) and "line 2" in str(e.value) and needle in str(e.value)


def test_missing_and_empty_files(tmp_path):
    missing = str(tmp_path / "glove.6B.100d.txt")
    with pytest.raises(DataError) as e:
        load_word_vectors(missing)
    assert missing in str(e.value) and "nlp.stanford.edu/projects/glove" in str(e.value)
    for name, text in (("empty.txt", ""), ("blank.txt", "\n\n")):
        with pytest.raises(DataError, match="empty"):
            load_word_vectors(write(tmp_path / name, text))


def test_edited_file_is_reloaded(tmp_path):
    path = tmp_path / "e.txt"
    write(path, "a 1 2\n")
    assert load_word_vectors(path).index_to_key == ["a"]
    write(path, "a 1 2\nbb 3 4\n")
    assert load_word_vectors(path).index_to_key == ["a", "bb"]


def test_embedding_matrix_rows():
    kv = tiny_kv()
    vocab = ["", "[UNK]", "the", "Cat", "unseen"]
    matrix, n_found = build_embedding_matrix(vocab, kv, seed=3, oov_scale=0.05)
    assert matrix.dtype == np.float32 and matrix.shape == (5, 3)
    assert n_found == 2
    np.testing.assert_array_equal(matrix[0], 0)
    np.testing.assert_array_equal(matrix[2], kv["the"])
    np.testing.assert_array_equal(matrix[3], kv["cat"])  # found via its lower-case form
    oov = matrix[[1, 4]]
    assert np.all(np.abs(oov) <= 0.05) and np.all(oov != 0)

    again, _ = build_embedding_matrix(vocab, kv, seed=3, oov_scale=0.05)
    np.testing.assert_array_equal(again, matrix)
    other, _ = build_embedding_matrix(vocab, kv, seed=4, oov_scale=0.05)
    assert not np.allclose(other[[1, 4]], oov)
    # An OOV row does not depend on which other words were found.
    fewer, n = build_embedding_matrix(["", "[UNK]", "nope", "Cat", "unseen"], kv, seed=3, oov_scale=0.05)
    assert n == 1
    np.testing.assert_array_equal(fewer[4], matrix[4])


def test_embedding_matrix_needs_padding_first():
    with pytest.raises(ValueError, match="padding"):
        build_embedding_matrix(["[UNK]", "the"], tiny_kv(), seed=0)
