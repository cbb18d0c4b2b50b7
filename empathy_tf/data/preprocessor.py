"""Text → token ids, one implementation for training, inference and export.

A preprocessor turns texts into variable-length id sequences, stored ragged (`Tokens`: flat ids +
lengths) and never padded: padding happens per batch (batching.py). Its graph function
`encode_graph` (1-D tf.string -> ragged int32) is what training tokenizes with (in chunks, cached on
disk), what `serving.Predictor` runs, and what the exported SavedModel contains, so the three
cannot drift apart. `normalize_graph` repeats what the readers do to raw text (tweet placeholders
for tweet sources, the `MAX_TEXT_CHARS` cut) for texts that did not come through a reader.

- `WordPiecePreprocessor`: BERT input `[CLS] wordpieces [SEP]`, cut to `max_seq_length`.
- `WordPreprocessor`: word ids of the GloVe baselines (a `TextVectorization` vocabulary adapted on
  the training texts only, or restored from a run folder), at most `max_words`, never empty.

Both save themselves into a run folder (`vocab.txt`, `preprocessor.json`) and `load` rebuilds them
from it alone.

Example:

    preprocessor = WordPiecePreprocessor(tokenizer, max_seq_length=256)
    tokens = encode_cached(preprocessor, texts, cache_dir="runs/.cache")
    tokens.lengths.max()      # the longest sequence, [CLS] and [SEP] included
"""

import dataclasses
import os
import zipfile

import numpy as np
import tensorflow as tf
from absl import logging

from empathy_tf import io_utils
from empathy_tf.data.sources.base import MAX_TEXT_CHARS, RE2_URL, RE2_USER
from empathy_tf.errors import ConfigError

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
        if not parts:
            return Tokens(np.zeros([0], np.int32), np.zeros([0], np.int32))
        return Tokens(np.concatenate([p.flat for p in parts]).astype(np.int32),
                      np.concatenate([p.lengths for p in parts]).astype(np.int32))

    def sequence(self, i):
        start = int(self.offsets[i])
        return self.flat[start:start + int(self.lengths[i])]

    def ragged(self):
        return tf.RaggedTensor.from_row_lengths(tf.constant(self.flat, tf.int32),
                                                tf.constant(self.lengths, tf.int64))


def _from_ragged(ragged):
    return Tokens(ragged.flat_values.numpy().astype(np.int32),
                  ragged.row_lengths().numpy().astype(np.int32))


class Preprocessor:
    """Shared behaviour; subclasses define `encode_graph`, `fingerprint`, `vocabulary`, `save`."""

    kind = ""
    tweets = False
    pad_id = 0

    def normalize_graph(self, texts):
        """What the readers do to raw texts: tweet placeholders (tweet sources), the length cut."""
        texts = tf.strings.regex_replace(texts, "\\x00", " ")   # as Collector.add does
        if self.tweets:
            texts = tf.strings.regex_replace(texts, RE2_URL, "<URL>")
            texts = tf.strings.regex_replace(texts, RE2_USER, r"\1<USER>")
        return tf.strings.substr(texts, 0, MAX_TEXT_CHARS, unit="UTF8_CHAR")

    def encode(self, texts, normalize=False):
        """Token ids of `texts` (a list of str); `normalize` for texts not read by a reader."""
        texts = list(texts)
        parts = []
        for start in range(0, len(texts), _CHUNK):
            chunk = tf.constant(texts[start:start + _CHUNK], tf.string)
            parts.append(_from_ragged(self._encode_chunk(self.normalize_graph(chunk) if normalize
                                                         else chunk)))
        return Tokens.concat(parts)

    def _info(self):
        return {"kind": self.kind, "tweets": self.tweets}

    def save(self, folder):
        io_utils.atomic_write_text(os.path.join(folder, "vocab.txt"), "\n".join(self.vocabulary))
        io_utils.atomic_write_json(os.path.join(folder, "preprocessor.json"), self._info())


class WordPiecePreprocessor(Preprocessor):
    """BERT input: [CLS] wordpieces [SEP], cut to `max_seq_length` (never padded here)."""

    kind = "wordpiece"

    def __init__(self, tokenizer, max_seq_length=256, tweets=False):
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.tweets = bool(tweets)
        self.cls_id = tokenizer.cls_token_id
        self.sep_id = tokenizer.sep_token_id
        self.pad_id = tokenizer.pad_token_id
        self.vocabulary = tokenizer.get_vocabulary()
        self.lowercase = bool(getattr(tokenizer, "lowercase", False))
        self.fingerprint = io_utils.fingerprint("wordpiece", self.vocabulary, self.max_seq_length,
                                                self.lowercase)
        # Inside a tf.function keras-hub keeps the output ragged (eagerly it converts to lists).
        self._encode_chunk = tf.function(self.encode_graph, autograph=False,
                                         input_signature=[tf.TensorSpec([None], tf.string)])

    def encode_graph(self, texts):
        ids = tf.cast(self.tokenizer(texts)[:, : self.max_seq_length - 2], tf.int32)
        batch = tf.shape(ids.row_lengths())[0]
        cls = tf.fill([batch, 1], self.cls_id)
        sep = tf.fill([batch, 1], self.sep_id)
        return tf.concat([cls, ids, sep], axis=1)

    def _info(self):
        return {**super()._info(), "max_seq_length": self.max_seq_length,
                "lowercase": self.lowercase}


class WordPreprocessor(Preprocessor):
    """Word ids for the GloVe baselines: a vocabulary of the training split, or a saved one."""

    kind = "words"
    UNK_ID = 1

    def __init__(self, train_texts=None, vocabulary=None, max_words=400, max_vocabulary=50000,
                 tweets=False):
        import keras
        self.max_words = int(max_words)
        self.tweets = bool(tweets)
        options = dict(standardize="lower_and_strip_punctuation", split="whitespace",
                       output_mode="int", ragged=True)
        if vocabulary is not None:
            vocabulary = list(vocabulary)
            if vocabulary[:2] != ["", "[UNK]"]:
                raise ConfigError("the GloVe vocabulary must start with '' and '[UNK]' (from "
                                  f"TextVectorization.get_vocabulary()), found {vocabulary[:2]}")
            self.vectorizer = keras.layers.TextVectorization(vocabulary=vocabulary[2:], **options)
        else:
            self.vectorizer = keras.layers.TextVectorization(max_tokens=max_vocabulary, **options)
            self.vectorizer.adapt(tf.data.Dataset.from_tensor_slices(list(train_texts)).batch(1024))
        self.vocabulary = self.vectorizer.get_vocabulary()
        if vocabulary is not None and self.vocabulary != vocabulary:
            raise ConfigError("the saved GloVe vocabulary does not rebuild identically "
                              "(duplicate words?)")
        self.fingerprint = io_utils.fingerprint("words", self.vocabulary, self.max_words)
        self._encode_chunk = tf.function(self.encode_graph, autograph=False,
                                         input_signature=[tf.TensorSpec([None], tf.string)])

    def encode_graph(self, texts):
        ids = tf.cast(self.vectorizer(texts), tf.int32)[:, : self.max_words]
        # A text of punctuation only has no words: keep one [UNK] so no sequence is empty.
        empty = tf.equal(ids.row_lengths(), 0)
        filler = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], self.UNK_ID),
            tf.cast(empty, tf.int64))
        return tf.concat([ids, filler], axis=1)

    def _info(self):
        return {**super()._info(), "max_words": self.max_words}


def load(folder):
    """The preprocessor saved in a run folder (`vocab.txt` + `preprocessor.json`)."""
    info_path = os.path.join(folder, "preprocessor.json")
    vocab_path = os.path.join(folder, "vocab.txt")
    for path in (info_path, vocab_path):
        if not os.path.isfile(path):
            raise ConfigError(f"{folder}: no {os.path.basename(path)}; not a finished run of a "
                              "neural method (rerun experiments.run on it to finish it)")
    info = io_utils.read_json(info_path)
    with open(vocab_path, encoding="utf-8") as f:
        vocabulary = f.read().split("\n")  # not splitlines(): '' (GloVe padding) is a real entry
    if info["kind"] == "words":
        return WordPreprocessor(vocabulary=vocabulary, max_words=info["max_words"],
                                tweets=info["tweets"])
    import keras_hub
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=info["lowercase"])
    return WordPiecePreprocessor(tokenizer, info["max_seq_length"], tweets=info["tweets"])


def encode_cached(preprocessor, texts, cache_dir=None):
    """Tokenizes `texts` once; later calls with the same preprocessor and texts read the cache."""
    if cache_dir is None:
        return preprocessor.encode(texts)
    key = io_utils.fingerprint(preprocessor.fingerprint, list(texts))
    path = os.path.join(cache_dir, "tokens", f"{key}.npz")
    if os.path.exists(path):
        try:
            with np.load(path) as cached:
                tokens = Tokens(cached["flat"], cached["lengths"])
            if len(tokens) == len(texts):
                return tokens
            problem = f"holds {len(tokens)} sequences for {len(texts)} texts"
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            problem = f"is unreadable ({type(e).__name__}: {e})"
        # Writes are atomic, so only a damaged disk or a hand-edited file gets here.
        logging.warning("token cache %s %s; rebuilding it", path, problem)
    tokens = preprocessor.encode(texts)
    io_utils.atomic_save_npz(path, flat=tokens.flat, lengths=tokens.lengths)
    return tokens
