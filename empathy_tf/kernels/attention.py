"""Attention probabilities, dropout and the value product, with the dropout mask recomputed.

BERT's attention computes `context = dropout(softmax(scores)) · value` per head. Written op by op,
the backward pass keeps three [rows, heads, S, S] tensors per layer: the softmax output (for the
softmax gradient), the dropout mask (for the product's gradient) and the dropped probabilities
(for the value gradient); at S = 256 and 16 rows each is 50 MB in float32, 900 MB over MiniLM's six
layers. With hash dropout (`kernels.dropout`) the mask is a pure function of the seed words and
the element's index, so `dropout_attention` keeps only the softmax output (and `value`, which the
step keeps anyway): the gradient of dropout-and-product regenerates the mask and the dropped
probabilities from them, and the softmax's own gradient uses the same stored output.

The forward and the gradients are bitwise those of the op-by-op path: the same TensorFlow ops
(Softmax, Mul, BatchMatMul) on the same operands, and the gradient is TensorFlow's own formulas
for the product and the mask (`math_grad._BatchMatMulV2`, `math_grad._MulGrad`) written out
(`tests/kernels_test.py` compares both paths' gradients of an encoder). Regenerating the mask
costs one more pass of the mask kernel per layer and step.

Example:

    context = attention_context(scores, value, block.attention_dropout, training=True)
    # == tf.matmul(block.attention_dropout(tf.nn.softmax(scores), training=True), value)
"""

import functools

import tensorflow as tf

from empathy_tf.kernels.dropout import HashDropout, hash_mask


@functools.lru_cache(maxsize=None)
def _dropout_matmul_fn(rate):
    """A module-level traced function per drop rate, around the custom gradient (traced once per
    dtype, however many models call it: see kernels/gelu.py on custom gradients inside each
    model's own tf.function keeping every traced graph alive)."""

    # The custom gradient's inputs are kept by the backward pass (tf.custom_gradient passes them
    # through an IdentityN), so they are the tensors it keeps anyway: the softmax output (which
    # the softmax gradient needs) and `value`, never the scores.
    @tf.custom_gradient
    def dropout_matmul(probs, value, seed):
        context = tf.matmul(probs * hash_mask(probs, rate, seed), value)

        def grad(dcontext):
            # Recomputed, not stored; only once the gradient arrives: its inputs are ready at
            # the forward pass, and the executor (functions inlined) would run it then and keep
            # every layer's mask until the backward pass.
            with tf.control_dependencies([dcontext]):
                mask = hash_mask(probs, rate, seed)
            # math_grad._BatchMatMulV2 for adj_x = adj_y = False, then math_grad._MulGrad.
            dvalue = tf.matmul(probs * mask, dcontext, adjoint_a=True, grad_b=True)
            ddropped = tf.matmul(dcontext, value, adjoint_b=True, grad_a=True)
            return ddropped * mask, dvalue, None

        return context, grad

    return tf.function(dropout_matmul, reduce_retracing=True, autograph=False)


def dropout_attention(scores, value, rate, seed):
    """`matmul(hash_dropout(softmax(scores), rate, seed), value)`, keeping only the softmax output
    for the backward pass. `scores` [..., S, S], `value` [..., S, d], `seed` [2] integers."""
    return _dropout_matmul_fn(float(rate))(tf.nn.softmax(scores), value, seed)


def _recomputes_mask(dropout_layer, training):
    return isinstance(dropout_layer, HashDropout) and training and dropout_layer.rate > 0


def attention_context(scores, value, dropout_layer, training=False):
    """`matmul(dropout_layer(softmax(scores)), value)`; with a `HashDropout` layer in training,
    through `dropout_attention` (the same numbers, the mask recomputed in the backward pass)."""
    if _recomputes_mask(dropout_layer, training):
        return dropout_attention(scores, value, dropout_layer.rate,
                                 dropout_layer.seed_generator.next())
    return tf.matmul(dropout_layer(tf.nn.softmax(scores), training=training), value)
