"""Tests for baselines.glove: loading word vectors and building the embedding matrix."""

import gzip

import numpy as np
import pytest
from gensim.models import KeyedVectors

from baselines.glove import build_embedding_matrix, load_word_vectors
from empathy_tf.errors import DataError


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
