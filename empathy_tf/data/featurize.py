"""Featurizers turn texts into variable-length token-id sequences, once, cached on disk.

Sequences are stored ragged (flat ids + lengths), never padded: padding happens per batch, to the
batch's own longest member (see `pipeline.py`).

Example:

    featurizer = WordPieceFeaturizer(tokenizer, max_seq_length=256)
    tokens = tokenize_cached(featurizer, texts, cache_dir="runs/.cache")
    tokens.lengths.max()  # the longest sequence, [CLS] and [SEP] included
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from empathy_tf import io_utils

_CHUNK = 4096  # texts per tokenizer call: big enough to amortise op dispatch, small in memory


@dataclasses.dataclass
class Tokens:
    """Ragged token ids: sequence i is flat[offsets[i]:offsets[i] + lengths[i]]."""
    flat: np.ndarray     # int32
    lengths: np.ndarray  # int32

    @property
    def offsets(self):
        return np.concatenate([[0], np.cumsum(self.lengths[:-1], dtype=np.int64)]).astype(np.int64)

    def __len__(self):
        return len(self.lengths)

    def take(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        starts = self.offsets[indices]
        # Vectorised gather of variable-length rows: position of each output id in `flat`.
        row_of = np.repeat(np.arange(len(indices)), lengths)
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return Tokens(self.flat[starts[row_of] + within], lengths)

    @staticmethod
    def concat(parts):
        return Tokens(np.concatenate([p.flat for p in parts]).astype(np.int32),
                      np.concatenate([p.lengths for p in parts]).astype(np.int32))

    def sequence(self, i):
        start = int(self.offsets[i])
        return self.flat[start:start + int(self.lengths[i])]


def _from_ragged(ragged):
    return Tokens(ragged.flat_values.numpy().astype(np.int32),
                  ragged.row_lengths().numpy().astype(np.int32))


class WordPieceFeaturizer:
    """BERT input: [CLS] wordpieces [SEP], cut to `max_seq_length` (never padded here)."""

    def __init__(self, tokenizer, max_seq_length=256):
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.cls_id = tokenizer.cls_token_id
        self.sep_id = tokenizer.sep_token_id
        self.pad_id = tokenizer.pad_token_id
        vocab = tokenizer.get_vocabulary()
        self.fingerprint = io_utils.fingerprint("wordpiece", vocab, self.max_seq_length,
                                                bool(getattr(tokenizer, "lowercase", False)))

        # Inside a tf.function keras-hub keeps the output ragged (eagerly it converts to lists).
        self._encode_chunk = tf.function(self._encode_graph,
                                         input_signature=[tf.TensorSpec([None], tf.string)])

    def _encode_graph(self, texts):
        ids = tf.cast(self.tokenizer(texts)[:, : self.max_seq_length - 2], tf.int32)
        batch = tf.shape(ids.row_lengths())[0]
        cls = tf.fill([batch, 1], self.cls_id)
        sep = tf.fill([batch, 1], self.sep_id)
        return tf.concat([cls, ids, sep], axis=1)

    def encode(self, texts):
        parts = []
        for start in range(0, len(texts), _CHUNK):
            parts.append(_from_ragged(self._encode_chunk(tf.constant(list(texts[start:start + _CHUNK])))))
        if not parts:
            return Tokens(np.zeros([0], np.int32), np.zeros([0], np.int32))
        return Tokens.concat(parts)


class WordFeaturizer:
    """Word ids for the GloVe baselines; the vocabulary comes from the training split only."""

    UNK_ID = 1

    def __init__(self, train_texts, max_words=400, max_vocabulary=50000):
        import keras
        self.max_words = int(max_words)
        self.vectorizer = keras.layers.TextVectorization(
            max_tokens=max_vocabulary, standardize="lower_and_strip_punctuation",
            split="whitespace", output_mode="int", ragged=True)
        self.vectorizer.adapt(tf.data.Dataset.from_tensor_slices(list(train_texts)).batch(1024))
        self.vocabulary = self.vectorizer.get_vocabulary()
        self.pad_id = 0
        self.fingerprint = io_utils.fingerprint("words", self.vocabulary, self.max_words)

    def encode(self, texts):
        parts = []
        for start in range(0, len(texts), _CHUNK):
            ids = tf.cast(self.vectorizer(tf.constant(list(texts[start:start + _CHUNK]))), tf.int32)
            ids = ids[:, : self.max_words]
            # A text of punctuation only has no words: keep one [UNK] so no sequence is empty.
            empty = tf.equal(ids.row_lengths(), 0)
            filler = tf.RaggedTensor.from_row_lengths(
                tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], self.UNK_ID),
                tf.cast(empty, tf.int64))
            parts.append(_from_ragged(tf.concat([ids, filler], axis=1)))
        if not parts:
            return Tokens(np.zeros([0], np.int32), np.zeros([0], np.int32))
        return Tokens.concat(parts)


def tokenize_cached(featurizer, texts, cache_dir=None):
    """Tokenizes `texts` once; later calls with the same featurizer and texts read the cache."""
    if cache_dir is None:
        return featurizer.encode(texts)
    key = io_utils.fingerprint(featurizer.fingerprint, list(texts))
    path = os.path.join(cache_dir, "tokens", f"{key}.npz")
    if os.path.exists(path):
        try:
            with np.load(path) as cached:
                tokens = Tokens(cached["flat"], cached["lengths"])
            if len(tokens) == len(texts):
                return tokens
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: rebuild it below (writes are atomic, so this is rare)
    tokens = featurizer.encode(texts)
    io_utils.atomic_save_npz(path, flat=tokens.flat, lengths=tokens.lengths)
    return tokens
