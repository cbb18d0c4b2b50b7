"""Fused tanh-approximate GELU: one XLA kernel forward and one backward.

BERT applies `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` to the [tokens, intermediate] output of
every feed-forward layer, the largest activation in the model. Run as TensorFlow ops that is ~8
element-wise kernels forward and ~12 backward, each a pass over memory, and in bfloat16 each
converts every element to float and back. Here the forward is one loop and the backward one loop
that recomputes tanh from x (nothing extra is kept for the gradient), both computing in float32 and
rounding once to the input's dtype, so bfloat16 results are as close or closer to the float32
function than the op-by-op ones.

The input is flattened and padded to one of 8 sizes per power of two (`buckets.bucket_size`), so XLA
compiles a bounded number of kernels however the batch shapes vary.

Example:

    y = fused_gelu(x)                        # same function as keras.activations.gelu(x, approximate=True)
    activation("gelu", gelu_impl="keras")    # Keras' op-by-op GELU (float32's default)

Keras' op-by-op GELU keeps its intermediates for the backward pass (~5 tensors of the largest
activation's size per layer); in training, `Projection` runs it through
`keras_gelu_for_training`, whose gradient recomputes them from x instead.
"""

import math

import keras
import tensorflow as tf

from empathy_tf.kernels.buckets import bucket_size, padded_flat

GELU_IMPLS = ("fused", "keras")
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_CUBIC = 0.044715


# reduce_retracing: one trace with an unknown length (XLA still compiles per padded size).
@tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
def _forward(x):
    x32 = tf.cast(x, tf.float32)
    inner = _SQRT_2_OVER_PI * (x32 + _CUBIC * x32 * x32 * x32)
    return tf.cast(0.5 * x32 * (1.0 + tf.tanh(inner)), x.dtype)


@tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
def _backward(x, dy):
    x32 = tf.cast(x, tf.float32)
    t = tf.tanh(_SQRT_2_OVER_PI * (x32 + _CUBIC * x32 * x32 * x32))
    dinner = _SQRT_2_OVER_PI * (1.0 + 3.0 * _CUBIC * x32 * x32)
    slope = 0.5 * (1.0 + t) + 0.5 * x32 * (1.0 - t * t) * dinner
    return tf.cast(tf.cast(dy, tf.float32) * slope, x.dtype)


@tf.custom_gradient
def _gelu_with_recomputing_gradient(x_padded):
    def grad(dy):
        return _backward(x_padded, dy)
    return _forward(x_padded), grad


# A module-level function around the custom gradient: traced once per dtype, however many models
# call it. (tf.custom_gradient inside each model's own tf.function registers a new gradient for
# every trace, and the registry keeps every traced graph alive: +0.1 GB per MiniLM model built.)
@tf.function(reduce_retracing=True, autograph=False)
def _gelu_flat(x_padded):
    return _gelu_with_recomputing_gradient(x_padded)


def _fused_gelu(x):
    x = tf.convert_to_tensor(x)
    size = tf.size(x)
    y = _gelu_flat(padded_flat(x, bucket_size(size)))
    return tf.reshape(y[:size], tf.shape(x))


@keras.saving.register_keras_serializable(package="empathy_tf", name="fused_gelu")
def fused_gelu(x):
    """tanh-approximate GELU of `x` (any shape, float32 or bfloat16/float16), fused."""
    return _fused_gelu(x)


def keras_gelu(x):
    return keras.activations.gelu(x, approximate=True)


@tf.custom_gradient
def _keras_gelu_with_recomputing_gradient(x):
    def grad(dy):
        # The op-by-op forward again, from x, once the gradient arrives, and TensorFlow's own
        # gradients of those ops: the same numbers as keeping its intermediates.
        with tf.control_dependencies([dy]):
            x_again = tf.identity(x)
        with tf.GradientTape() as tape:
            tape.watch(x_again)
            y = keras_gelu(x_again)
        return tape.gradient(y, x_again, output_gradients=dy)
    return keras_gelu(x), grad


# Module-level, traced once per dtype (see _gelu_flat).
@tf.function(reduce_retracing=True, autograph=False)
def _keras_gelu_recomputing(x):
    return _keras_gelu_with_recomputing_gradient(x)


def keras_gelu_for_training(x):
    """Keras' op-by-op GELU whose backward pass keeps only `x`, recomputing the ~5 intermediates
    of [tokens, intermediate] size it would otherwise keep (bitwise the same gradient)."""
    return _keras_gelu_recomputing(x)


def activation(name, gelu_impl="fused"):
    """The function for an activation name: None, 'tanh' or 'gelu' (of the given kind)."""
    if name is None:
        return None
    if name == "tanh":
        return tf.tanh
    if name == "gelu":
        if gelu_impl not in GELU_IMPLS:
            raise ValueError(f"gelu_impl={gelu_impl!r}; expected one of {GELU_IMPLS}")
        return fused_gelu if gelu_impl == "fused" else keras_gelu
    raise ValueError(f"unknown activation {name!r}")
