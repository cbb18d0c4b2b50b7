import keras
import numpy as np
import tensorflow as tf

from empathy_tf import dropout, encoders


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


def test_bfloat16_inputs_keep_their_dtype():
    y = dropout.hash_dropout(tf.ones([4, 16], tf.bfloat16), 0.1, tf.constant([1, 2]))
    assert y.dtype == tf.bfloat16


def test_bucket_sizes_are_few_and_tight():
    sizes = np.arange(1000, 4000)
    buckets = np.array([int(dropout.bucket_size(tf.constant(int(s)))) for s in sizes])
    assert np.all(buckets >= sizes)
    assert np.all(buckets <= np.ceil(sizes * 1.125))
    # Two octaves (1000-2047 and 2048-3999), 8 buckets each, plus the boundary.
    assert len(set(buckets.tolist())) <= 17


def test_use_hash_dropout_changes_training_masks_only():
    backbone, _ = encoders.tiny_bert(encoders.toy_vocabulary(["a b c d e"]))
    changed = dropout.use_hash_dropout(backbone)
    # Embedding dropout + 3 per transformer layer (attention probabilities, two residual branches).
    assert changed == 1 + 3 * backbone.num_layers
    inputs = {"token_ids": tf.constant([[2, 5, 6, 7, 3]]), "padding_mask": tf.ones([1, 5], tf.bool),
              "segment_ids": tf.zeros([1, 5], tf.int32)}
    eval_a = backbone(inputs, training=False)["sequence_output"]
    eval_b = backbone(inputs, training=False)["sequence_output"]
    np.testing.assert_array_equal(eval_a, eval_b)
    train_a = backbone(inputs, training=True)["sequence_output"]
    train_b = backbone(inputs, training=True)["sequence_output"]
    # Each call draws the layer's next seed: different masks, different outputs.
    assert not np.allclose(train_a, train_b)
    layer = next(l for l in backbone._flatten_layers() if isinstance(l, keras.layers.Dropout))
    assert layer.call.__func__ is dropout._hash_dropout_call
    assert dropout.use_keras_dropout(backbone) == changed
    assert layer.call.__func__ is keras.layers.Dropout.call
