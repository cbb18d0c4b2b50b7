import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.utils.keras_utils import gelu_approximate

from empathy_tf import encoders, gelu


def _reference(x):
    """tanh-approximate GELU and its derivative in float64."""
    c = np.sqrt(2 / np.pi)
    t = np.tanh(c * (x + 0.044715 * x**3))
    return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x**2)


def _value_and_grad(fn, x, upstream):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return y, tape.gradient(y, x, output_gradients=upstream)


@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 1), (2, 1000)])
def test_matches_the_function_and_its_derivative(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, shape)
    upstream = rng.normal(0, 1, shape)
    y, dx = _value_and_grad(gelu.fused_gelu, tf.constant(x, tf.float32), tf.constant(upstream, tf.float32))
    value, slope = _reference(x)
    assert y.shape == shape and dx.shape == shape
    # float32 inside (XLA's tanh is a float32 approximation): a few ulps of the float64 values.
    np.testing.assert_allclose(y.numpy(), value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx.numpy(), upstream * slope, rtol=1e-4, atol=1e-5)


def test_bfloat16_rounds_once():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0, 3, [64, 96]), tf.bfloat16)
    upstream = tf.constant(rng.normal(0, 1, [64, 96]), tf.bfloat16)
    y, dx = _value_and_grad(gelu.fused_gelu, x, upstream)
    assert y.dtype == tf.bfloat16 and dx.dtype == tf.bfloat16
    x64 = x.numpy().astype(np.float64)
    value, slope = _reference(x64)
    # Computed in float32, rounded once: within a bfloat16 ulp (2^-8 relative) of the truth (the
    # slope's two terms cancel for x < -3, so the gradient gets an absolute tolerance too).
    np.testing.assert_allclose(y.numpy().astype(np.float64), value, rtol=2**-8, atol=1e-6)
    want = upstream.numpy().astype(np.float64) * slope
    np.testing.assert_allclose(dx.numpy().astype(np.float64), want, rtol=2**-8, atol=1e-3)
    # Op by op, each of ~8 bfloat16 ops rounds: further from the truth than the fused kernel.
    keras_y, keras_dx = _value_and_grad(gelu_approximate, x, upstream)
    for ours, theirs, truth in ((y, keras_y, value), (dx, keras_dx, want)):
        error = np.abs(ours.numpy().astype(np.float64) - truth).mean()
        assert error < np.abs(theirs.numpy().astype(np.float64) - truth).mean()


def test_use_fused_gelu_keeps_the_model_function():
    backbone, _ = encoders.tiny_bert(encoders.toy_vocabulary(["a b c d e"]))
    inputs = {"token_ids": tf.constant([[2, 5, 6, 7, 3]]), "padding_mask": tf.ones([1, 5], tf.bool),
              "segment_ids": tf.zeros([1, 5], tf.int32)}
    before = backbone(inputs, training=False)["sequence_output"].numpy()
    assert gelu.use_fused_gelu(backbone) == backbone.num_layers  # one feed-forward per layer
    after = backbone(inputs, training=False)["sequence_output"].numpy()
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
    with tf.GradientTape() as tape:
        out = backbone(inputs, training=True)
        loss = tf.reduce_sum(out["sequence_output"]**2) + tf.reduce_sum(out["pooled_output"]**2)
    grads = tape.gradient(loss, backbone.trainable_variables)
    assert all(g is not None for g in grads)
    assert gelu.use_unfused_gelu(backbone) == backbone.num_layers
    assert gelu.use_fused_gelu(backbone) == backbone.num_layers
