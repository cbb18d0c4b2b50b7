"""Tiny models and tables for unit tests."""

import numpy as np
import tensorflow as tf

from empathy_tf import encoders
from empathy_tf.data import pipeline
from empathy_tf.data.featurize import Tokens
from empathy_tf.models import HeadSpec, MultiTaskClassifier

VOCAB = list(encoders.SPECIAL_TOKENS) + [f"w{i}" for i in range(40)]


def tiny_model(heads, seed=0, dropout=0.0, backbone_dropout=0.1):
    backbone = encoders.tiny_bert(VOCAB, seed=seed, max_sequence_length=64,
                                  dropout=backbone_dropout)[0]
    model = MultiTaskClassifier(encoders.BertEncoder(backbone), heads, dropout=dropout, seed=seed)
    model({"token_ids": tf.zeros([1, 4], tf.int32), "padding_mask": tf.ones([1, 4], tf.bool)})
    return model


def random_tokens(n, rng, min_len=3, max_len=20):
    lengths = rng.integers(min_len, max_len + 1, n).astype(np.int32)
    flat = rng.integers(5, len(VOCAB), lengths.sum()).astype(np.int32)
    return Tokens(flat, lengths)


def tiny_table(rng, sizes=(24, 16), classes=(2, 3), teacher=False):
    parts = []
    for n, c in zip(sizes, classes):
        labels = rng.integers(0, c, n)
        gold = pipeline.one_hot_targets(labels, c, False)
        probs = rng.dirichlet(np.ones(c), n).astype(np.float32) if teacher else None
        parts.append((random_tokens(n, rng), gold, probs))
    heads = [HeadSpec(f"task{t}", c) for t, c in enumerate(classes)]
    return pipeline.ExampleTable.build(parts, list(classes)), heads
