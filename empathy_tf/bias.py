"""Bias gradients summed in float32.

A bias added to a [tokens, features] activation gets the column sum of the incoming gradient as
its gradient. Keras' Dense and EinsumDense add a 1-D bias with `tf.nn.bias_add`, whose CPU
gradient kernel (BiasAddGrad) sums a bfloat16 gradient in bfloat16: 4,096 ones sum to 256
(`tests/bias_test.py`). Under `mixed_bfloat16` that is every feed-forward and attention-output bias
of BERT; on real batches of the KD student those gradients were off by up to 22% of their largest
entry (`benchmarks/bias_gradients.py`, BUILD.md).

Here the bias gradient is `ones · dY`, a matmul: oneDNN accumulates bfloat16 products in float32
and rounds once, so the error is one bfloat16 rounding (and a training step is as fast:
`benchmarks/throughput.py` times both). The forward pass is unchanged; biases of any trailing shape (the query, key and value
projections' [heads, head_dim]) take the same path.

Example:

    backbone = keras_hub.models.BertBackbone.from_preset(path)
    use_float32_bias_grad(backbone)   # every Dense / EinsumDense bias inside now sums in float32
"""

import keras
import tensorflow as tf

from empathy_tf import layer_calls


def bias_add(x, bias):
    """`x + bias` (bias broadcast over the leading axes of x) with a float32-accumulated gradient.

    `bias` may be a variable; it is read (and cast to x's dtype) here, outside the custom
    gradient, so its gradient reaches the variable through that read. A bias that is not the
    trailing dimensions of `x` (an EinsumDense bias on another axis, kept as size-1 dimensions)
    is added by TensorFlow, with TensorFlow's gradient.
    """
    x = tf.convert_to_tensor(x)
    bias = tf.cast(bias, x.dtype)
    rank = bias.shape.rank
    if not rank or x.shape.rank < rank or x.shape[-rank:].as_list() != bias.shape.as_list():
        return x + bias
    return _bias_add(x, bias)


@tf.custom_gradient
def _bias_add(x, bias):
    y = tf.nn.bias_add(x, bias) if bias.shape.rank == 1 else x + bias

    def grad(dy):
        rows = tf.reshape(dy, [-1, tf.size(bias)])
        ones = tf.ones([1, tf.shape(rows)[0]], dy.dtype)
        return dy, tf.reshape(tf.matmul(ones, rows), tf.shape(bias))

    return y, grad


def _dense_call(layer, inputs, training=None):
    return _bias_and_activation(layer, keras.ops.matmul(inputs, layer.kernel))


def _einsum_dense_call(layer, inputs, training=None):
    return _bias_and_activation(layer, keras.ops.einsum(layer.equation, inputs, layer.kernel))


def _bias_and_activation(layer, x):
    # What Dense.call / EinsumDense.call do after the product, with our bias_add.
    if layer.bias is not None:
        x = bias_add(x, layer.bias)
    return layer.activation(x) if layer.activation is not None else x


_CALLS = {keras.layers.EinsumDense: _einsum_dense_call, keras.layers.Dense: _dense_call}


def _call_for(layer):
    # Exact classes only (a subclass may compute differently); LoRA and quantized layers compute
    # their kernels differently too: all left to Keras.
    if (getattr(layer, "bias", None) is None or getattr(layer, "lora_enabled", False)
            or getattr(layer, "quantization_mode", None) is not None):
        return None
    return _CALLS.get(type(layer))


def use_float32_bias_grad(model):
    """Makes every Dense / EinsumDense with a bias inside `model` sum its bias gradient in float32.

    Returns the number of layers changed. Weights, configs and the forward pass are untouched;
    LoRA-enabled and quantized layers are left as they are.
    """
    return layer_calls.replace_calls(model, _call_for)


def use_keras_bias_grad(model):
    """Undoes `use_float32_bias_grad` (for A/B measurements); returns the number of layers restored."""
    return layer_calls.restore_calls(model, (_dense_call, _einsum_dense_call))
