"""Batched inference: every sequence's class probabilities, in the original order, no gradients."""

import numpy as np
import tensorflow as tf

from empathy_tf.data import batching


def make_predict_fn(model):
    """One traced inference function per model (reused: tracing is the expensive part)."""
    cached = getattr(model, "_empathy_predict_fn", None)
    if cached is not None:
        return cached

    @tf.function(autograph=False, input_signature=[{
        "token_ids": tf.TensorSpec([None, None], tf.int32),
        "padding_mask": tf.TensorSpec([None, None], tf.bool)}])
    def predict(features):
        return [tf.cast(p, tf.float32) for p in model.probabilities(model(features, training=False))]
    object.__setattr__(model, "_empathy_predict_fn", predict)  # not a tracked Keras attribute
    return predict


def predict_probs(model, tokens, heads=None, batch_size=256, pad_id=0,
                  max_tokens=batching.INFERENCE_MAX_TOKENS):
    """Probabilities of the given heads (all by default) for every sequence of `tokens`.

    Returns a list (one per head) of float32 arrays [N, C], in the order of `tokens`. Batches are
    length-sorted and hold up to `batch_size` sequences and `max_tokens` padded tokens.
    """
    predict_fn = make_predict_fn(model)
    heads = list(range(len(model.head_specs))) if heads is None else list(heads)
    out = [np.zeros([len(tokens), model.head_specs[h].num_classes], np.float32) for h in heads]
    for features, index in batching.inference_dataset(tokens, batch_size, pad_id, max_tokens):
        probs = predict_fn(features)
        index = index.numpy()
        for o, h in zip(out, heads):
            o[index] = probs[h].numpy()
    return out
