"""The CPU kernels (empathy_tf.kernels): hash dropout, fused GELU, float32 bias gradients.

Numerics asserted here hold on every x86-64 CPU: TensorFlow's element-wise ops and reductions
are Eigen code compiled into the wheel, XLA's are generated code of float32 accuracy. The one
property of a particular CPU kind's kernels (TensorFlow's bfloat16 BiasAddGrad) is checked only
where it was measured, and skipped elsewhere.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from empathy_tf import hardware
from empathy_tf.kernels import attention, buckets, dropout, gelu
from empathy_tf.kernels import HashDropout, Projection, bias_add, dropout_attention, fused_gelu
from empathy_tf.kernels import make_dropout
from tests import helpers


# ---------------------------------------------------------------------------------------------
# Hash dropout.

def _mask(seed, shape=(64, 1000), rate=0.1, dtype=tf.float32):
    x = tf.ones(shape, dtype)
    return dropout.hash_dropout(x, rate, tf.constant(seed)).numpy().astype(np.float64)


def test_drop_probability_and_scale():
    rate = 0.1
    y = _mask([3, 7], rate=rate)
    kept = y != 0
    # 64,000 Bernoulli(0.9) draws: 5 standard deviations is 0.006.
    assert abs(kept.mean() - (1 - rate)) < 0.006
    np.testing.assert_allclose(y[kept], np.float32(1 / (1 - rate)))


def test_masks_are_deterministic_and_independent_across_seeds_and_neighbours():
    a, b, c = _mask([0, 1]), _mask([0, 1]), _mask([0, 2])
    np.testing.assert_array_equal(a, b)
    a, c = (a != 0).astype(float), (c != 0).astype(float)
    # Independent Bernoulli(0.9) masks agree with probability 0.9² + 0.1² = 0.82.
    assert abs(np.mean(a == c) - 0.82) < 0.01
    flat = a.ravel()
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.02
    rows = a.reshape(64, 1000)
    assert abs(np.corrcoef(rows[:-1].ravel(), rows[1:].ravel())[0, 1]) < 0.02


def test_gradient_is_the_mask():
    x = tf.random.normal([8, 33])
    seed = tf.constant([5, 9])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = dropout.hash_dropout(x, 0.25, seed)
        total = tf.reduce_sum(y)
    grad = tape.gradient(total, x).numpy()
    mask = _mask([5, 9], shape=(8, 33), rate=0.25)
    np.testing.assert_allclose(grad, mask, rtol=1e-6)
    np.testing.assert_allclose(y.numpy(), x.numpy() * mask, rtol=1e-6)


def test_masks_of_different_seeds_are_not_index_permutations_of_each_other():
    a, b = _mask([11, 0], shape=(4096,)), _mask([12, 0], shape=(4096,))
    index = np.arange(4096)
    # Independent masks agree on about 82% of positions under any fixed index permutation.
    assert np.mean((a != 0) == (b[index ^ (11 ^ 12)] != 0)) < 0.9


def test_bfloat16_inputs_keep_their_dtype():
    y = dropout.hash_dropout(tf.ones([4, 16], tf.bfloat16), 0.1, tf.constant([1, 2]))
    assert y.dtype == tf.bfloat16
    scale = np.float32(tf.bfloat16.as_numpy_dtype(1 / 0.9))
    assert set(np.unique(y.numpy().astype(np.float32))) <= {0.0, scale}


def test_bucket_sizes_are_few_and_tight():
    sizes = np.arange(1000, 4000, dtype=np.int32)
    bucketed = buckets.bucket_size(tf.constant(sizes)).numpy()
    assert np.all(bucketed >= sizes)
    assert np.all(bucketed <= np.ceil(sizes * 1.125))
    # Two octaves (1000-2047 and 2048-3999), 8 buckets each, plus the boundary.
    assert len(set(bucketed.tolist())) <= 17
    assert buckets.bucket_size(tf.constant(1)).numpy() == 1
    flat = buckets.padded_flat(tf.reshape(tf.range(1, 7), [2, 3]), 8).numpy()
    assert flat.tolist() == [1, 2, 3, 4, 5, 6, 0, 0]


def test_hash_dropout_layer_is_identity_at_inference_and_new_masks_per_training_call():
    layer = HashDropout(0.5, seed=3)
    x = tf.ones([4, 64])
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    a, b = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    assert not np.array_equal(a, b)  # each call draws the layer's next seed
    # Same seed, same sequence of masks.
    again = HashDropout(0.5, seed=3)
    np.testing.assert_array_equal(again(x, training=True).numpy(), a)
    np.testing.assert_array_equal(again(x, training=True).numpy(), b)
    assert np.array_equal(HashDropout(0.0, seed=1)(x, training=True).numpy(), x.numpy())


def test_hash_dropout_config_round_trip_and_validation():
    layer = HashDropout(0.2, seed=7, name="drop")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, HashDropout)
    assert (restored.rate, restored.seed, restored.name) == (0.2, 7, "drop")
    for rate in (-0.1, 1.0):
        with pytest.raises(ValueError, match="rate"):
            HashDropout(rate)


def test_make_dropout_kinds():
    assert isinstance(make_dropout("hash", 0.1, seed=0), HashDropout)
    keras_layer = make_dropout("keras", 0.1, seed=0)
    assert type(keras_layer) is keras.layers.Dropout and keras_layer.rate == 0.1
    with pytest.raises(ValueError, match="dropout_impl='philox'"):
        make_dropout("philox", 0.1)


@pytest.mark.parametrize("impl, kind", [("hash", HashDropout), ("keras", keras.layers.Dropout)])
def test_encoder_dropout_impl_changes_training_masks_only(impl, kind):
    encoder = helpers.tiny_encoder(dropout=0.1, dropout_impl=impl)
    layers = [l for l in helpers.all_layers(encoder)
              if isinstance(l, (HashDropout, keras.layers.Dropout))]
    # Embedding dropout + 3 per transformer layer (attention probabilities, two residual branches).
    assert len(layers) == 1 + 3 * encoder.num_layers
    assert all(type(l) is kind for l in layers)
    inputs = helpers.padded([[2, 5, 6, 7, 3]], [5])
    eval_a = encoder.sequence_output(inputs, training=False)[0].numpy()
    eval_b = encoder.sequence_output(inputs, training=False)[0].numpy()
    np.testing.assert_array_equal(eval_a, eval_b)
    train_a = encoder.sequence_output(inputs, training=True)[0].numpy()
    train_b = encoder.sequence_output(inputs, training=True)[0].numpy()
    assert not np.allclose(train_a, train_b)
    # The same function at inference whatever the dropout kind.
    other = helpers.tiny_encoder(dropout=0.1, dropout_impl="keras" if impl == "hash" else "hash")
    np.testing.assert_array_equal(other.sequence_output(inputs)[0].numpy(), eval_a)


# ---------------------------------------------------------------------------------------------
# Attention dropout with its mask recomputed in the backward pass.

def _stored_mask_dropout(x, rate, seed):
    """Hash dropout as a plain product, TensorFlow keeping the mask for the gradient."""
    x = tf.convert_to_tensor(x)
    return x * dropout.hash_mask(x, rate, seed)


def _encoder_step(encoder):
    """A traced training step's outputs and gradients (what the training loop differentiates)."""
    inputs = helpers.padded(np.arange(36).reshape(3, 12) % 40 + 5, [12, 7, 3])
    weights = tf.constant(np.random.default_rng(0).normal(size=[3, encoder.hidden_dim]), tf.float32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = encoder(inputs, training=True)
            loss = tf.reduce_sum(out * weights)
        grads = tape.gradient(loss, encoder.trainable_variables)
        return out, [tf.convert_to_tensor(g) for g in grads]   # embedding rows: dense
    return [step() for _ in range(2)]     # two steps: two seeds of every dropout layer


@pytest.mark.parametrize("dtype, gelu_impl", [(None, "fused"), (None, "keras"),
                                              ("mixed_bfloat16", "fused")])
def test_recomputing_backward_passes_give_bitwise_the_storing_ones_numbers(dtype, gelu_impl,
                                                                        monkeypatch):
    """Dropout masks and Keras GELU's intermediates recomputed, not stored: the same bits."""
    recomputed = _encoder_step(helpers.tiny_encoder(dropout=0.3, dtype=dtype, gelu_impl=gelu_impl))
    # The recomputing paths ran.
    assert attention._dropout_matmul_fn.cache_info().currsize > 0
    assert dropout._dropout_fn.cache_info().currsize > 0
    if gelu_impl == "keras":
        assert gelu._keras_gelu_recomputing.experimental_get_tracing_count() > 0
    # The op-by-op path (masks stored for the backward pass) on the same encoder.
    monkeypatch.setattr(attention, "_recomputes_mask", lambda layer, training: False)
    monkeypatch.setattr(dropout, "hash_dropout", _stored_mask_dropout)
    # ...and Keras' GELU keeping its intermediates.
    monkeypatch.setattr(gelu, "keras_gelu_for_training", gelu.keras_gelu)
    stored = _encoder_step(helpers.tiny_encoder(dropout=0.3, dtype=dtype, gelu_impl=gelu_impl))
    for (out_a, grads_a), (out_b, grads_b) in zip(recomputed, stored):
        np.testing.assert_array_equal(out_a.numpy(), out_b.numpy())
        assert len(grads_a) == len(grads_b) > 0
        for a, b in zip(grads_a, grads_b):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Dropout is on: the two steps' masks differ, so do their outputs.
    assert not np.array_equal(recomputed[0][0].numpy(), recomputed[1][0].numpy())


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_dropout_attention_op_matches_the_op_by_op_gradients_eagerly(dtype):
    rng = np.random.default_rng(2)
    scores = tf.constant(rng.normal(0, 2, [2, 3, 9, 9]), dtype)
    value = tf.constant(rng.normal(0, 1, [2, 3, 9, 4]), dtype)
    upstream = tf.constant(rng.normal(0, 1, [2, 3, 9, 4]), dtype)
    seed = tf.constant([7, 11])

    def grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([scores, value])
            out = fn(scores, value)
        return [out, *tape.gradient(out, [scores, value], output_gradients=upstream)]

    ours = grads(lambda s, v: dropout_attention(s, v, 0.2, seed))
    theirs = grads(lambda s, v: tf.matmul(_stored_mask_dropout(tf.nn.softmax(s), 0.2, seed), v))
    for a, b in zip(ours, theirs):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # And hash dropout alone (its gradient recomputes the mask too).
    ours = grads(lambda s, v: tf.matmul(dropout.hash_dropout(s, 0.2, seed), v))
    theirs = grads(lambda s, v: tf.matmul(_stored_mask_dropout(s, 0.2, seed), v))
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ---------------------------------------------------------------------------------------------
# Fused GELU.

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
def test_gelu_matches_the_function_and_its_derivative(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, shape)
    upstream = rng.normal(0, 1, shape)
    y, dx = _value_and_grad(fused_gelu, tf.constant(x, tf.float32),
                            tf.constant(upstream, tf.float32))
    value, slope = _reference(x)
    assert y.shape == shape and dx.shape == shape
    # float32 inside (XLA's tanh is a float32 approximation): a few ulps of the float64 values.
    np.testing.assert_allclose(y.numpy(), value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx.numpy(), upstream * slope, rtol=1e-4, atol=1e-5)


def test_bfloat16_gelu_rounds_once():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0, 3, [64, 96]), tf.bfloat16)
    upstream = tf.constant(rng.normal(0, 1, [64, 96]), tf.bfloat16)
    y, dx = _value_and_grad(fused_gelu, x, upstream)
    assert y.dtype == tf.bfloat16 and dx.dtype == tf.bfloat16
    x64 = x.numpy().astype(np.float64)
    value, slope = _reference(x64)
    # Computed in float32, rounded once: within a bfloat16 ulp (2^-8 relative) of the truth (the
    # slope's two terms cancel for x < -3, so the gradient gets an absolute tolerance too).
    np.testing.assert_allclose(y.numpy().astype(np.float64), value, rtol=2**-8, atol=1e-6)
    want = upstream.numpy().astype(np.float64) * slope
    np.testing.assert_allclose(dx.numpy().astype(np.float64), want, rtol=2**-8, atol=1e-3)
    # Op by op, each of ~8 bfloat16 ops rounds: further from the truth than the fused kernel.
    keras_y, keras_dx = _value_and_grad(gelu.keras_gelu, x, upstream)
    for ours, theirs, truth in ((y, keras_y, value), (dx, keras_dx, want)):
        error = np.abs(ours.numpy().astype(np.float64) - truth).mean()
        assert error < np.abs(theirs.numpy().astype(np.float64) - truth).mean()


def test_activation_names():
    assert gelu.activation(None) is None
    assert gelu.activation("tanh") is tf.tanh
    assert gelu.activation("gelu") is fused_gelu
    assert gelu.activation("gelu", gelu_impl="keras") is gelu.keras_gelu
    with pytest.raises(ValueError, match="gelu_impl='fast'"):
        gelu.activation("gelu", gelu_impl="fast")
    with pytest.raises(ValueError, match="relu"):
        gelu.activation("relu")
    # Registered: a saved activation resolves back to the fused function.
    assert keras.activations.get(keras.activations.serialize(fused_gelu)) is fused_gelu


def test_encoder_gelu_impl_keeps_the_function_and_its_gradients():
    inputs = helpers.padded([[2, 5, 6, 7, 3], [2, 6, 5, 3, 0]], [5, 4])
    results = []
    for impl in ("fused", "keras"):
        encoder = helpers.tiny_encoder(dropout=0.0, gelu_impl=impl)
        with tf.GradientTape() as tape:
            out = encoder(inputs)
            loss = tf.reduce_sum(out**2)
        grads = tape.gradient(loss, encoder.trainable_variables)
        assert all(g is not None for g in grads)
        results.append((out.numpy(), [tf.convert_to_tensor(g).numpy() for g in grads]))
    (fused_out, fused_grads), (keras_out, keras_grads) = results
    np.testing.assert_allclose(fused_out, keras_out, rtol=1e-4, atol=1e-5)
    for ours, theirs, variable in zip(fused_grads, keras_grads, encoder.trainable_variables):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5, err_msg=variable.path)


# ---------------------------------------------------------------------------------------------
# Bias gradients.

def _bias_grad(x, bias, upstream, float32_grad):
    bias = tf.Variable(bias, dtype=tf.float32)
    with tf.GradientTape() as tape:
        y = bias_add(x, bias, float32_grad=float32_grad)
    return y, tape.gradient(y, bias, output_gradients=upstream)


NATIVE_BF16 = pytest.mark.skipif(
    not hardware.cpu_has_native_bf16(),
    reason="the float32 bias path is a bfloat16 matmul; oneDNN accumulates it in float32 (one "
           "rounding) on CPUs with avx512_bf16/AMX, where precision=auto uses bfloat16; elsewhere "
           "bfloat16 is emulated and its rounding is not asserted")


@NATIVE_BF16
def test_float32_bias_gradient_of_bfloat16_sums_exactly():
    # 4,096 and 65,536 ones: powers of two, exact after one rounding to bfloat16.
    for rows in (4096, 65536):
        ones = tf.ones([rows, 2], tf.bfloat16)
        _, grad = _bias_grad(tf.zeros([rows, 2], tf.bfloat16), np.zeros(2), ones, True)
        assert grad.dtype == tf.float32
        assert grad.numpy().tolist() == [rows, rows]


@pytest.mark.skipif(not hardware.cpu_has_native_bf16(),
                    reason="TensorFlow's bfloat16 BiasAddGrad was measured (4,096 ones -> 256) on "
                           "CPUs with avx512_bf16 only; its rounding elsewhere is not asserted")
def test_tensorflow_sums_bfloat16_bias_gradients_in_bfloat16():
    # Why bias_grad_impl="float32" exists: if TensorFlow ever sums in float32 here, the keras
    # kernel can be the default for 16-bit compute too (hardware.resolve_kernel).
    ones = tf.ones([4096, 2], tf.bfloat16)
    assert tf.raw_ops.BiasAddGrad(out_backprop=ones).numpy().tolist() == [256, 256]
    _, grad = _bias_grad(tf.zeros([4096, 2], tf.bfloat16), np.zeros(2), ones, False)
    assert grad.numpy().tolist() == [256, 256]


@pytest.mark.parametrize("shape", [(32, 43, 48), (1376, 64)])
def test_bfloat16_bias_gradient_keeps_the_forward_and_its_shape(shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(0, 1, shape), tf.bfloat16)
    bias = rng.normal(0, 1, shape[-1:])
    upstream = tf.constant(rng.normal(0, 1, shape), tf.bfloat16)
    y, grad = _bias_grad(x, bias, upstream, True)
    assert y.dtype == tf.bfloat16 and grad.dtype == tf.float32 and grad.shape == shape[-1:]
    reference, _ = _bias_grad(x, bias, upstream, False)
    np.testing.assert_array_equal(y.numpy(), reference.numpy())  # forward unchanged


@NATIVE_BF16
@pytest.mark.parametrize("shape", [(32, 43, 48), (1376, 64)])
def test_bfloat16_bias_gradient_is_one_rounding_of_the_float64_sum(shape):
    rng = np.random.default_rng(0)
    upstream = tf.constant(rng.normal(0, 1, shape), tf.bfloat16)
    _, grad = _bias_grad(tf.zeros(shape, tf.bfloat16), np.zeros(shape[-1:]), upstream, True)
    values = upstream.numpy().astype(np.float64).reshape(-1, shape[-1])
    truth, scale = values.sum(0), np.abs(values).sum(0)
    # Accumulated in float32, rounded once to bfloat16 (8 significant bits).
    assert np.all(np.abs(grad.numpy() - truth) <= 2.0**-8 * np.abs(truth) + 1e-5 * scale)
    _, keras = _bias_grad(tf.zeros(shape, tf.bfloat16), np.zeros(shape[-1:]), upstream, False)
    assert np.abs(grad.numpy() - truth).max() <= np.abs(keras.numpy() - truth).max()


def test_float32_compute_keeps_tensorflows_bias_gradient():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0, 1, (5, 7, 9)), tf.float32)
    bias = rng.normal(0, 1, (9,))
    upstream = tf.constant(rng.normal(0, 1, (5, 7, 9)), tf.float32)
    y_ours, ours = _bias_grad(x, bias, upstream, True)
    y_theirs, theirs = _bias_grad(x, bias, upstream, False)
    np.testing.assert_array_equal(y_ours.numpy(), y_theirs.numpy())
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.numpy(), upstream.numpy().sum((0, 1)), rtol=1e-5, atol=1e-5)


def test_projection_computes_a_dense_layer():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (3, 5, 8)).astype(np.float32)
    layer = Projection(6, activation="gelu", bias_grad_impl="float32")
    layer.build((None, 8))
    layer.bias.assign(rng.normal(0, 1, 6))
    y = layer(tf.constant(x)).numpy()
    assert y.shape == (3, 5, 6) and layer.compute_output_shape((3, 5, 8)) == (3, 5, 6)
    want, _ = _reference(x.astype(np.float64) @ layer.kernel.numpy() + layer.bias.numpy())
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    restored = Projection.from_config(layer.get_config())
    assert (restored.units, restored.activation_name, restored.gelu_impl, restored.bias_grad_impl) \
        == (6, "gelu", "fused", "float32")
    with pytest.raises(ValueError, match="bias_grad_impl='float64'"):
        Projection(4, bias_grad_impl="float64")


def test_projection_under_mixed_bfloat16_computes_in_bfloat16_with_float32_variables():
    x = tf.constant(np.random.default_rng(3).normal(0, 1, (4096, 8)), tf.float32)
    layers = {impl: Projection(2, bias_grad_impl=impl, dtype="mixed_bfloat16")
              for impl in ("float32", "keras")}
    grads = {}
    for impl, layer in layers.items():
        layer.build((None, 8))
        assert layer.kernel.dtype == "float32" and layer.bias.dtype == "float32"
        with tf.GradientTape() as tape:
            y = layer(x)
        assert y.dtype == tf.bfloat16
        grads[impl] = tape.gradient(y, layer.bias, output_gradients=tf.ones_like(y))
    assert grads["float32"].dtype == tf.float32
    if hardware.cpu_has_native_bf16():  # see NATIVE_BF16
        assert grads["float32"].numpy().tolist() == [4096, 4096]
    assert grads["keras"].dtype == tf.float32  # BiasAddGrad's bfloat16 sum, cast to the variable


def test_encoder_bias_grad_impl_keeps_function_and_gradients_in_float32():
    inputs = helpers.padded([[2, 5, 6, 7, 3], [2, 6, 5, 3, 0]], [5, 4])
    results = []
    for impl in ("float32", "keras"):
        encoder = helpers.tiny_encoder(dropout=0.0, bias_grad_impl=impl, pooling="pooler")
        projections = [l for l in helpers.all_layers(encoder) if isinstance(l, Projection)]
        # Per block: qkv, attention output, feed-forward in and out; and the pooler.
        assert len(projections) == 4 * encoder.num_layers + 1
        assert all(p.bias_grad_impl == impl for p in projections)
        with tf.GradientTape() as tape:
            sequence, _ = encoder.sequence_output(inputs)
            loss = tf.reduce_sum(sequence**2) + tf.reduce_sum(encoder(inputs)**2)
        grads = tape.gradient(loss, encoder.trainable_variables)
        results.append((sequence.numpy(), grads))
    (out_a, grads_a), (out_b, grads_b) = results
    np.testing.assert_array_equal(out_a, out_b)
    for variable, ours, theirs in zip(encoder.trainable_variables, grads_a, grads_b):
        assert ours is not None, variable.path
        np.testing.assert_allclose(tf.convert_to_tensor(ours).numpy(),
                                   tf.convert_to_tensor(theirs).numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=variable.path)


# ---------------------------------------------------------------------------------------------
# Persistent XLA cache.

_KERNELS_RUN = """
from empathy_tf import hardware
print("CACHE", hardware.enable_persistent_xla_cache())
import numpy as np, tensorflow as tf
from empathy_tf.kernels import dropout, gelu
x = tf.constant(np.random.default_rng(0).normal(size=[5, 77]), tf.float32)
y = gelu.fused_gelu(dropout.hash_dropout(x, 0.1, tf.constant([3, 4])))
print("SUM", float(tf.reduce_sum(tf.cast(y, tf.float64))), y.numpy().tobytes().hex()[:64])
"""


def _run_kernels(tmp_path, cache, dump):
    import os
    import subprocess
    import sys
    env = {**os.environ, hardware.XLA_CACHE_ENV: cache, "XLA_FLAGS": f"--xla_dump_to={dump}",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_XLA_FLAGS", None)
    out = subprocess.run([sys.executable, "-c", _KERNELS_RUN], env=env, capture_output=True,
                         text=True, check=True).stdout
    compiles = len(list(tmp_path.glob(f"{os.path.basename(dump)}/*before_optimizations.txt")))
    return [l for l in out.splitlines() if l.startswith(("CACHE", "SUM"))], compiles


def test_persistent_xla_cache_loads_instead_of_compiling_and_computes_the_same(tmp_path):
    cache = str(tmp_path / "cache")
    off, compiles_off = _run_kernels(tmp_path, "off", str(tmp_path / "dump_off"))
    first, compiles_first = _run_kernels(tmp_path, cache, str(tmp_path / "dump_first"))
    second, compiles_second = _run_kernels(tmp_path, cache, str(tmp_path / "dump_second"))
    assert off[0] == "CACHE None" and first[0] == second[0] == f"CACHE {cache}"
    assert compiles_off == compiles_first == 2      # the mask and the GELU, each compiled...
    assert compiles_second == 0                      # ...and loaded by the next process
    assert off[1] == first[1] == second[1]
    assert len(list((tmp_path / "cache").iterdir())) == compiles_first
