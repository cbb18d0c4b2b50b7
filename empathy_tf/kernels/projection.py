"""A dense projection on the last axis whose bias gradient is accumulated in float32.

A bias added to a [tokens, features] activation gets the column sum of the incoming gradient as its
gradient. TensorFlow's CPU kernel for that gradient (BiasAddGrad) sums a bfloat16 gradient in
bfloat16: 4,096 ones sum to 256 (`tests/kernels_test.py` checks it still does). Under
`mixed_bfloat16` that hits every bias of BERT. With `bias_grad_impl="float32"` the gradient is the
matmul `ones · dY`: oneDNN (and cuBLAS) accumulate bfloat16 products in float32 and round the sum
once, and a matmul is as fast as TensorFlow's reduction (a float32 `reduce_sum` of the cast
gradient was 5% slower per training step; docs/performance.md). In float32 compute both paths are
TensorFlow's own. The forward pass is the same either way.

Example:

    ffn = Projection(1536, activation="gelu", bias_grad_impl="float32")
    y = ffn(x)                 # x [..., 384] -> y [..., 1536]
"""

import keras
import tensorflow as tf

from empathy_tf.kernels import gelu

BIAS_GRAD_IMPLS = ("float32", "keras")


@tf.custom_gradient
def _bias_add_with_float32_grad(x, bias):
    y = tf.nn.bias_add(x, tf.cast(bias, x.dtype))

    def grad(dy):
        ones = tf.ones([1, tf.shape(dy)[0]], dy.dtype)
        return dy, tf.cast(tf.matmul(ones, dy)[0], tf.float32)

    return y, grad


# Module-level, traced once per dtype: see kernels/gelu.py on custom gradients inside each model's
# own tf.function keeping every traced graph alive.
@tf.function(reduce_retracing=True, autograph=False)
def _bias_add_float32_grad(x, bias):
    return _bias_add_with_float32_grad(x, bias)


def bias_add(x, bias, float32_grad=False):
    """`x + bias` over the last axis; `bias` is the float32 variable (or its value).

    With `float32_grad` and a 16-bit `x`, the bias gradient is `ones · dY` (float32 accumulation).
    """
    bias = tf.convert_to_tensor(bias)
    if float32_grad and x.dtype != tf.float32:
        flat = tf.reshape(x, [-1, tf.shape(x)[-1]])
        return tf.reshape(_bias_add_float32_grad(flat, bias), tf.shape(x))
    return tf.nn.bias_add(x, tf.cast(bias, x.dtype))


@keras.saving.register_keras_serializable(package="empathy_tf")
class Projection(keras.layers.Layer):
    """`activation(x · kernel + bias)` on the last axis.

    Args:
        units: Output features.
        activation: None, "tanh" or "gelu".
        gelu_impl: "fused" or "keras" (see `kernels.gelu`), for activation="gelu".
        bias_grad_impl: "float32" (bias gradients accumulated in float32 under 16-bit compute)
            or "keras" (TensorFlow's BiasAddGrad).
        kernel_initializer: Keras initializer of the kernel (the bias starts at zero).
    """

    def __init__(self, units, activation=None, gelu_impl="fused", bias_grad_impl="keras",
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if bias_grad_impl not in BIAS_GRAD_IMPLS:
            raise ValueError(f"bias_grad_impl={bias_grad_impl!r}; expected one of {BIAS_GRAD_IMPLS}")
        self.units = int(units)
        self.activation_name = activation
        self.gelu_impl = gelu_impl
        self.bias_grad_impl = bias_grad_impl
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._activation = gelu.activation(activation, gelu_impl)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units),
                                      initializer=self.kernel_initializer)
        # Read as float32 (not autocast): the float32 bias gradient needs the variable itself.
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros",
                                    autocast=False)
        self.built = True

    def call(self, inputs, training=False):
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, [-1, inputs.shape[-1]])
        y = tf.matmul(flat, tf.cast(self.kernel, flat.dtype))
        y = bias_add(y, self.bias, float32_grad=self.bias_grad_impl == "float32")
        if self._activation is gelu.keras_gelu and training:
            y = gelu.keras_gelu_for_training(y)   # its intermediates recomputed, not kept
        elif self._activation is not None:
            y = self._activation(y)
        return tf.reshape(y, tf.concat([shape[:-1], [self.units]], 0))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation_name,
                "gelu_impl": self.gelu_impl, "bias_grad_impl": self.bias_grad_impl,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
