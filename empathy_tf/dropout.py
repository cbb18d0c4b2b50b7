"""Hash dropout: Bernoulli(1 - rate) masks from a counter hash, generated in one fused XLA kernel.

Keras' TensorFlow dropout draws a float uniform per element with Philox, then scales, compares and
selects in separate passes over memory. On a 2-core CPU that was ~20% of a MiniLM training step at
32 × 64 tokens (`benchmarks/throughput.py` prints the current share). Here the mask of element i
is `mix(mix(i ^ k0) + k1) >= rate · 2^32`, with (k0, k1) the layer's next Keras seed and `mix` a
32-bit integer hash (Wellons' lowbias32): one XLA loop writes the {0, 1/(1-rate)} mask in the
input's dtype, and the layer multiplies. The drop probability is `rate` to within 2^-32; masks are
deterministic given the seed, as Keras' are, but not the same masks, so it is part of a run's
identity (`ExperimentConfig.dropout_impl`).

The mask is generated for a length rounded up to one of 8 sizes per power of two and sliced, so XLA
compiles a bounded number of kernels (one per size bucket) however the batch shapes vary.

Example:

    backbone = keras_hub.models.BertBackbone.from_preset(path)
    use_hash_dropout(backbone)          # every Dropout layer inside now uses hash masks
"""

import math

import keras
import tensorflow as tf

from empathy_tf import layer_calls

BUCKETS_PER_OCTAVE_LOG2 = 3   # 8 size buckets per power of two: at most 12.5% generated in excess


def _mix32(x):
    """lowbias32: a bijection of uint32 with near-ideal avalanche."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = x * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


@tf.function(jit_compile=True)
def _keep_scale_mask(size, key, threshold, scale):
    """Flat [size] mask: `scale` where the element is kept, 0 where dropped."""
    index = tf.cast(tf.range(size), tf.uint32)
    bits = _mix32(_mix32(tf.bitwise.bitwise_xor(index, key[0])) + key[1])
    return tf.where(bits >= threshold, scale, tf.zeros_like(scale))


def bucket_size(size):
    """`size` rounded up to a multiple of 2^(bit_length(size) - 1 - BUCKETS_PER_OCTAVE_LOG2)."""
    octave = tf.math.floor(tf.math.log(tf.cast(tf.maximum(size, 1), tf.float64)) / math.log(2.0))
    exponent = tf.maximum(octave - BUCKETS_PER_OCTAVE_LOG2, 0.0)
    step = tf.cast(tf.pow(tf.constant(2.0, tf.float64), exponent), tf.int32)
    return (size + step - 1) // step * step


def hash_dropout(inputs, rate, seed):
    """Inverted dropout of `inputs` with drop probability `rate` and a [2] integer `seed`."""
    inputs = tf.convert_to_tensor(inputs)
    size = tf.size(inputs)
    key = tf.cast(seed, tf.uint32)
    threshold = tf.constant(min(round(rate * 2**32), 2**32 - 1), tf.uint32)
    scale = tf.constant(1.0 / (1.0 - rate), inputs.dtype)
    mask = _keep_scale_mask(bucket_size(size), key, threshold, scale)
    return inputs * tf.reshape(mask[:size], tf.shape(inputs))


def _hash_dropout_call(layer, inputs, training=False):
    if training and layer.rate > 0:
        return hash_dropout(inputs, layer.rate, layer.seed_generator.next())
    return inputs


def use_hash_dropout(model):
    """Makes every `keras.layers.Dropout` inside `model` (without a noise shape) use hash masks.

    Returns the number of layers changed. The layers keep their rate, seed generator and config;
    only how a training-time mask is drawn changes (inference is unaffected).
    """
    return layer_calls.replace_calls(
        model, lambda layer: _hash_dropout_call if isinstance(layer, keras.layers.Dropout)
        and layer.noise_shape is None else None)


def use_keras_dropout(model):
    """Undoes `use_hash_dropout` (for A/B measurements); returns the number of layers restored."""
    return layer_calls.restore_calls(model, (_hash_dropout_call,))
