"""Hash dropout: Bernoulli(1 - rate) masks from a counter hash, generated in one fused XLA kernel.

Keras' TensorFlow dropout draws a float uniform per element with Philox, then scales, compares and
selects in separate passes over memory. Here the mask of element i is `mix(mix(i ^ k0) + k1) >=
rate · 2^32`, with (k0, k1) the layer's next seed from a `keras.random.SeedGenerator` and `mix` a
32-bit integer hash (Wellons' lowbias32): one XLA loop writes the {0, 1/(1-rate)} mask in the
input's dtype, and the layer multiplies (the round keys are themselves hashes of both seed words). The drop probability is `rate` to within 2^-32; masks are
deterministic given the seed, as Keras' are, but not the same masks, so the choice is part of a
run's identity (`BertConfig.dropout_impl`).

Nothing but the seed is kept for the backward pass: the gradient (dy · mask) regenerates the
mask, once the gradient arrives (`kernels.attention` does the same for the attention
probabilities). With MiniLM's 19 dropout layers that is 19 activation-sized tensors fewer per step.

The mask is generated for a length rounded up to one of 8 sizes per power of two and sliced, so
XLA compiles a bounded number of kernels however the batch shapes vary.

Example:

    layer = HashDropout(0.1, seed=0)
    y = layer(x, training=True)              # about 10% zeros, the rest x / 0.9
    make_dropout("keras", 0.1, seed=0)       # keras.layers.Dropout, for A/B measurements
"""

import functools

import keras
import tensorflow as tf

from empathy_tf.kernels.buckets import bucket_size

DROPOUT_IMPLS = ("hash", "keras")


def _mix32(x):
    """lowbias32: a bijection of uint32 with near-ideal avalanche."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = x * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


@tf.function(jit_compile=True, autograph=False)
def _keep_scale_mask(size, key, threshold, scale):
    """Flat [size] mask: `scale` where the element is kept, 0 where dropped."""
    # Both round keys depend on both seed words: were a seed word only XORed into the index,
    # the masks of seeds that differ in that word would be the same bits, shifted.
    k0 = _mix32(key[0] ^ _mix32(key[1] + tf.constant(0x9E3779B9, tf.uint32)))
    k1 = _mix32(key[1] ^ _mix32(k0))
    index = tf.cast(tf.range(size), tf.uint32)
    bits = _mix32(_mix32(_mix32(tf.bitwise.bitwise_xor(index, k0)) + k1) ^ k0)
    return tf.where(bits >= threshold, scale, tf.zeros_like(scale))


def hash_mask(inputs, rate, seed, shape=None):
    """The {0, 1/(1-rate)} mask (shape and dtype of `inputs`) that `hash_dropout` multiplies by.

    `shape` (a [rank] int32 tensor), where given, replaces `inputs`' shape (`inputs` then only
    gives the dtype).

    A pure function of `seed`, `rate` and the element's flat index, so a gradient can recompute it
    instead of storing it (`kernels.attention`).
    """
    shape = tf.shape(inputs) if shape is None else shape
    size = tf.reduce_prod(shape)
    key = tf.cast(seed, tf.uint32)
    threshold = tf.constant(min(round(rate * 2**32), 2**32 - 1), tf.uint32)
    scale = tf.constant(1.0 / (1.0 - rate), inputs.dtype)
    mask = _keep_scale_mask(bucket_size(size), key, threshold, scale)
    return tf.reshape(mask[:size], shape)


def _mask_of_shape(shape, dtype, rate, seed):
    return hash_mask(tf.zeros([0], dtype), rate, seed, shape)


@functools.lru_cache(maxsize=None)
def _dropout_fn(rate):
    """Hash dropout whose gradient regenerates the mask from the seed instead of storing it.

    A module-level traced function per drop rate (custom gradients inside each model's own
    tf.function keep every traced graph alive: kernels/gelu.py). The product and its gradient are
    TensorFlow's own (`math_grad._MulGrad`: dy · mask), so the numbers are those of `x · mask`.
    """

    @tf.custom_gradient
    def dropout(inputs, shape, seed):
        y = inputs * _mask_of_shape(shape, inputs.dtype, rate, seed)

        def grad(dy):
            # Only once the gradient arrives: the mask's inputs are ready in the forward pass, and
            # the executor would otherwise compute it then and keep it until the backward pass.
            with tf.control_dependencies([dy]):
                mask = _mask_of_shape(shape, dy.dtype, rate, seed)
            return dy * mask, None, None

        return y, grad

    return tf.function(dropout, reduce_retracing=True, autograph=False)


def hash_dropout(inputs, rate, seed):
    """Inverted dropout of `inputs` with drop probability `rate` and a [2] integer `seed`.

    The backward pass recomputes the mask from `seed` (nothing but the seed is kept for it).
    """
    inputs = tf.convert_to_tensor(inputs)
    return _dropout_fn(float(rate))(inputs, tf.shape(inputs), seed)


@keras.saving.register_keras_serializable(package="empathy_tf")
class HashDropout(keras.layers.Layer):
    """Inverted dropout whose masks come from `hash_dropout` (identity at inference).

    Args:
        rate: Drop probability in [0, 1).
        seed: Seed of the layer's `keras.random.SeedGenerator` (one new key per call).
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return hash_dropout(inputs, self.rate, self.seed_generator.next())
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def make_dropout(impl, rate, seed=None, **kwargs):
    """A dropout layer of the given kind: `hash` (HashDropout) or `keras` (keras.layers.Dropout)."""
    if impl == "hash":
        return HashDropout(rate, seed=seed, **kwargs)
    if impl == "keras":
        return keras.layers.Dropout(rate, seed=seed, **kwargs)
    raise ValueError(f"dropout_impl={impl!r}; expected one of {DROPOUT_IMPLS}")
