"""Tiny models, token sequences and example tables for unit tests."""

import numpy as np
import tensorflow as tf

from empathy_tf.data import batching
from empathy_tf.data.preprocessor import Tokens
from empathy_tf.models import bert, encoders
from empathy_tf.models.classifier import HeadSpec, MultiTaskClassifier

VOCAB = list(encoders.SPECIAL_TOKENS) + [f"w{i}" for i in range(40)]
MAX_SEQUENCE_LENGTH = 64


def tiny_encoder(seed=0, dropout=0.1, dtype=None, **options):
    """A random one-layer `BertEncoder` of `encoders.TINY`'s width (hidden 32) over VOCAB."""
    size = {**encoders.TINY, "num_layers": 1, "max_sequence_length": MAX_SEQUENCE_LENGTH}
    encoder = bert.BertEncoder(vocabulary_size=len(VOCAB), seed=seed, dropout=dropout, dtype=dtype,
                               **size, **options)
    encoder.build()
    return encoder


def padded(ids, lengths):
    """Padded features of the given [B, S] ids, the first `lengths[i]` of row i real."""
    ids = np.asarray(ids, np.int32)
    mask = np.arange(ids.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return {"token_ids": tf.constant(np.where(mask, ids, 0)), "padding_mask": tf.constant(mask)}


def tiny_model(heads, seed=0, dropout=0.0, backbone_dropout=0.1, dtype=None, **encoder_options):
    """A built `MultiTaskClassifier` on `tiny_encoder`."""
    encoder = tiny_encoder(seed, backbone_dropout, dtype, **encoder_options)
    model = MultiTaskClassifier(encoder, heads, dropout=dropout, seed=seed)
    model(padded(np.full([1, 4], 5), [4]))
    return model


def random_tokens(n, rng, min_len=3, max_len=20):
    lengths = rng.integers(min_len, max_len + 1, n).astype(np.int32)
    flat = rng.integers(len(encoders.SPECIAL_TOKENS), len(VOCAB), lengths.sum()).astype(np.int32)
    return Tokens(flat, lengths)


def tiny_table(rng, sizes=(24, 16), classes=(2, 3), teacher=False, lengths=None):
    """(ExampleTable, heads) of random tasks; `lengths`: per task (min, max) token counts."""
    parts = []
    for t, (n, c) in enumerate(zip(sizes, classes)):
        labels = rng.integers(0, c, n)
        gold = batching.one_hot_targets(labels, c, False)
        probs = rng.dirichlet(np.ones(c), n).astype(np.float32) if teacher else None
        low, high = lengths[t] if lengths else (3, 20)
        parts.append((random_tokens(n, rng, low, high), gold, probs))
    heads = [HeadSpec(f"task{t}", c) for t, c in enumerate(classes)]
    return batching.ExampleTable.build(parts, list(classes)), heads


def all_layers(layer):
    """Every Keras layer inside `layer` (itself included), through its attributes and lists."""
    import keras
    found, stack = [], [layer]
    while stack:
        current = stack.pop()
        if any(current is f for f in found):
            continue
        found.append(current)
        for value in vars(current).values():
            children = value if isinstance(value, (list, tuple)) else [value]
            stack.extend(c for c in children if isinstance(c, keras.layers.Layer))
    return found
