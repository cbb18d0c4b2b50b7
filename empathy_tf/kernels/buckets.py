"""Flat sizes rounded up to a few buckets, so XLA compiles a bounded number of kernels."""

import math

import tensorflow as tf

BUCKETS_PER_OCTAVE_LOG2 = 3   # 8 size buckets per power of two: at most 12.5% generated in excess


def bucket_size(size):
    """`size` rounded up to a multiple of 2^(bit_length(size) - 1 - BUCKETS_PER_OCTAVE_LOG2)."""
    octave = tf.math.floor(tf.math.log(tf.cast(tf.maximum(size, 1), tf.float64)) / math.log(2.0))
    exponent = tf.maximum(octave - BUCKETS_PER_OCTAVE_LOG2, 0.0)
    step = tf.cast(tf.pow(tf.constant(2.0, tf.float64), exponent), tf.int32)
    return (size + step - 1) // step * step


def padded_flat(x, padded_size):
    flat = tf.reshape(x, [-1])
    return tf.pad(flat, [[0, padded_size - tf.size(flat)]])
