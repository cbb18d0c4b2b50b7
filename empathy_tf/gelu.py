"""Fused tanh-approximate GELU: one XLA kernel forward and one backward.

keras-hub's BERT applies `gelu_approximate` (0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))) to the
[tokens, intermediate] output of every feed-forward layer, the largest activation in the model. Run
as TensorFlow ops that is ~8 element-wise kernels forward and ~12 backward, each a pass over memory,
and in bfloat16 each converts every element to float and back: on a 2-core CPU the MiniLM student
trained 1.23x faster with no GELU at all (`benchmarks/throughput.py` prints that bound and the fused
A/B, 1.05-1.09x; BUILD.md). Here the forward is one loop and the backward one loop that recomputes tanh from x
(nothing extra is kept for the gradient), both computing in float32 and rounding once to the input's
dtype, so bfloat16 results are as close or closer to the float32 function than the op-by-op ones.

The input is flattened and padded to one of 8 sizes per power of two (`dropout.bucket_size`), so XLA
compiles a bounded number of kernels however the batch shapes vary.

Example:

    backbone = keras_hub.models.BertBackbone.from_preset(path)
    use_fused_gelu(backbone)   # every Dense with keras-hub's gelu_approximate now uses the fused one
"""

import math

import keras
import tensorflow as tf
from keras_hub.src.utils.keras_utils import gelu_approximate

from empathy_tf.dropout import bucket_size

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_CUBIC = 0.044715


# reduce_retracing: one trace with an unknown length (XLA still compiles per padded size).
@tf.function(jit_compile=True, reduce_retracing=True)
def _forward(x):
    x32 = tf.cast(x, tf.float32)
    inner = _SQRT_2_OVER_PI * (x32 + _CUBIC * x32 * x32 * x32)
    return tf.cast(0.5 * x32 * (1.0 + tf.tanh(inner)), x.dtype)


@tf.function(jit_compile=True, reduce_retracing=True)
def _backward(x, dy):
    x32 = tf.cast(x, tf.float32)
    t = tf.tanh(_SQRT_2_OVER_PI * (x32 + _CUBIC * x32 * x32 * x32))
    dinner = _SQRT_2_OVER_PI * (1.0 + 3.0 * _CUBIC * x32 * x32)
    slope = 0.5 * (1.0 + t) + 0.5 * x32 * (1.0 - t * t) * dinner
    return tf.cast(tf.cast(dy, tf.float32) * slope, x.dtype)


def _padded_flat(x, padded_size):
    flat = tf.reshape(x, [-1])
    return tf.pad(flat, [[0, padded_size - tf.size(flat)]])


@tf.custom_gradient
def fused_gelu(x):
    """tanh-approximate GELU of `x` (any shape, float32 or bfloat16/float16)."""
    x = tf.convert_to_tensor(x)
    size = tf.size(x)
    padded_size = bucket_size(size)
    x_padded = _padded_flat(x, padded_size)
    y = tf.reshape(_forward(x_padded)[:size], tf.shape(x))

    def grad(dy):
        dx = _backward(x_padded, _padded_flat(dy, padded_size))
        return tf.reshape(dx[:size], tf.shape(x))

    return y, grad


def _swap_activation(model, old, new):
    changed = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.Dense) and layer.activation is old:
            layer.activation = new
            changed += 1
    return changed


def use_fused_gelu(model):
    """Makes every Dense layer inside `model` that applies keras-hub's `gelu_approximate` fused.

    Returns the number of layers changed. The same function is computed (in float32 inside the
    kernel); weights and configs are untouched.
    """
    return _swap_activation(model, gelu_approximate, fused_gelu)


def use_unfused_gelu(model):
    """Undoes `use_fused_gelu` (for A/B measurements); returns the number of layers restored."""
    return _swap_activation(model, fused_gelu, gelu_approximate)
