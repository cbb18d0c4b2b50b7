import keras
import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import bias, encoders


def _bias_grad(fn, x, b, upstream):
    with tf.GradientTape() as tape:
        tape.watch(b)
        y = fn(x, b)
    return y, tape.gradient(y, b, output_gradients=upstream)


def test_tensorflow_sums_bfloat16_bias_gradients_in_bfloat16():
    # Why this module exists: if TensorFlow ever sums in float32, the keras path can be the default.
    ones = tf.ones([4096, 2], tf.bfloat16)
    assert tf.raw_ops.BiasAddGrad(out_backprop=ones).numpy().tolist() == [256, 256]
    _, grad = _bias_grad(bias.bias_add, tf.zeros([4096, 2], tf.bfloat16), tf.zeros([2], tf.bfloat16),
                         ones)
    assert grad.numpy().tolist() == [4096, 4096]


@pytest.mark.parametrize("bias_shape", [(48,), (4, 12)])
def test_bfloat16_bias_gradient_is_one_rounding_of_the_float64_sum(bias_shape):
    rng = np.random.default_rng(0)
    shape = (32, 43) + bias_shape
    x = tf.constant(rng.normal(0, 1, shape), tf.bfloat16)
    b = tf.constant(rng.normal(0, 1, bias_shape), tf.bfloat16)
    upstream = tf.constant(rng.normal(0, 1, shape), tf.bfloat16)
    y, grad = _bias_grad(bias.bias_add, x, b, upstream)
    assert y.dtype == tf.bfloat16 and grad.dtype == tf.bfloat16 and grad.shape == bias_shape
    np.testing.assert_array_equal(y.numpy(), (x + b).numpy())  # forward unchanged
    truth = upstream.numpy().astype(np.float64).reshape(-1, *bias_shape).sum(0)
    scale = np.abs(truth).max()
    np.testing.assert_allclose(grad.numpy().astype(np.float64), truth, rtol=2**-8, atol=scale * 2**-9)
    if len(bias_shape) == 1:  # TensorFlow's own kernel, for comparison: many roundings
        theirs = tf.raw_ops.BiasAddGrad(out_backprop=upstream).numpy().astype(np.float64)
        assert np.abs(theirs - truth).max() > 4 * np.abs(grad.numpy().astype(np.float64) - truth).max()


def test_a_bias_on_another_axis_keeps_tensorflows_path():
    # EinsumDense("abc,cd->abd", bias_axes="b") keeps its bias as [b, 1]: broadcast, not trailing.
    layer = keras.layers.EinsumDense("abc,cd->abd", output_shape=(7, 4), bias_axes="b")
    model = keras.Sequential([keras.Input((7, 3)), layer])
    x = tf.constant(np.random.default_rng(2).normal(0, 1, (5, 7, 3)), tf.float32)

    def bias_grad():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x) ** 2)
        return tape.gradient(loss, layer.bias).numpy()

    theirs = bias_grad()
    assert bias.use_float32_bias_grad(model) == 1
    np.testing.assert_allclose(bias_grad(), theirs, rtol=1e-6)


def test_float32_gradient_matches_tensorflow():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0, 1, (5, 7, 9)), tf.float32)
    b = tf.constant(rng.normal(0, 1, (9,)), tf.float32)
    upstream = tf.constant(rng.normal(0, 1, (5, 7, 9)), tf.float32)
    _, ours = _bias_grad(bias.bias_add, x, b, upstream)
    _, theirs = _bias_grad(tf.nn.bias_add, x, b, upstream)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_patched_model_keeps_its_function_and_weight_gradients():
    backbone, _ = encoders.tiny_bert(encoders.toy_vocabulary(["a b c d e"]))
    inputs = {"token_ids": tf.constant([[2, 5, 6, 7, 3], [2, 6, 5, 3, 0]]),
              "padding_mask": tf.constant([[True] * 5, [True] * 4 + [False]]),
              "segment_ids": tf.zeros([2, 5], tf.int32)}

    def outputs_and_grads():
        with tf.GradientTape() as tape:
            out = backbone(inputs, training=False)
            loss = tf.reduce_sum(out["sequence_output"]**2) + tf.reduce_sum(out["pooled_output"]**2)
        return out["sequence_output"].numpy(), tape.gradient(loss, backbone.trainable_variables)

    before, keras_grads = outputs_and_grads()
    # Per layer: query, key, value and attention output, feed-forward in and out; and the pooler.
    assert bias.use_float32_bias_grad(backbone) == 6 * backbone.num_layers + 1
    after, our_grads = outputs_and_grads()
    np.testing.assert_array_equal(after, before)
    for variable, ours, theirs in zip(backbone.trainable_variables, our_grads, keras_grads):
        assert ours is not None, variable.path
        np.testing.assert_allclose(tf.convert_to_tensor(ours).numpy(), tf.convert_to_tensor(theirs).numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=variable.path)
    assert bias.use_keras_bias_grad(backbone) == 6 * backbone.num_layers + 1
    assert bias.use_keras_bias_grad(backbone) == 0


def test_lora_layers_are_left_to_keras():
    dense = keras.layers.Dense(4)
    dense.build((None, 3))
    dense.enable_lora(2)
    model = keras.Sequential([keras.Input((3,)), dense])
    assert bias.use_float32_bias_grad(model) == 0
