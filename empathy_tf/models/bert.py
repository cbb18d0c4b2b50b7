"""The BERT encoder, built from this suite's kernels, with keras-hub's weights copied in.

`BertEncoder` is the BERT architecture of keras-hub's `BertBackbone` (post-LayerNorm blocks,
tanh-approximate GELU, learned positions), written as ordinary Keras layers so that its kernels are
constructor arguments rather than patches: `dropout_impl` (hash or Keras dropout), `gelu_impl`
(fused or op-by-op GELU) and `bias_grad_impl` (float32 or TensorFlow bias gradients). The query,
key and value projections are one [hidden, 3·hidden] matmul. It saves and reloads as a `.keras`
layer computing the same function with the same kernels.

It reads two kinds of batch:

- padded: `{"token_ids": int32 [B, S], "padding_mask": bool [B, S]}`, one text per row;
- packed (training, `data.batching`): several texts share a row, `{"token_ids", "position_ids"
  (position within its text), "pack_ids" (k-th text of the row, 0 = padding), "text_starts"
  (flat index of each text's first token, in text order), "text_index" (text of each token, -1 =
  padding)}`; attention is block-diagonal, so each text sees only itself, exactly as if unpacked.

and returns one float32 vector per text (`pooling`: [CLS] state, BERT's pooler, or masked mean).
`sequence_output` gives the per-token states (masked-LM pre-training uses it).

`from_backbone` copies a keras-hub `BertBackbone`'s weights in (public `Variable.path` names);
`to_backbone` copies them back out, so an adapted encoder is saved as a keras-hub preset.

Example:

    backbone = keras_hub.models.BertBackbone.from_preset(path)
    encoder = from_backbone(backbone, pooling="cls", dropout_impl="hash")
    vectors = encoder({"token_ids": ids, "padding_mask": ids != 0})    # [B, 384]
"""

import keras
import numpy as np
import tensorflow as tf

from empathy_tf.kernels import Projection, make_dropout
from empathy_tf.kernels.attention import attention_context

POOLINGS = ("cls", "pooler", "mean")


def _initializer(seed):
    return keras.initializers.TruncatedNormal(stddev=0.02, seed=seed)


def _large_negative(dtype):
    return -3e4 if dtype == tf.float16 else -1e9


@keras.saving.register_keras_serializable(package="empathy_tf")
class BertBlock(keras.layers.Layer):
    """One post-LayerNorm transformer block: self-attention, then the feed-forward network."""

    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout=0.1,
                 layer_norm_epsilon=1e-12, dropout_impl="hash", gelu_impl="fused",
                 bias_grad_impl="keras", seed=0, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} is not a multiple of num_heads {num_heads}")
        self.hidden_dim, self.num_heads, self.intermediate_dim = hidden_dim, num_heads, intermediate_dim
        self.dropout, self.layer_norm_epsilon, self.seed = dropout, layer_norm_epsilon, seed
        self.dropout_impl, self.gelu_impl, self.bias_grad_impl = dropout_impl, gelu_impl, bias_grad_impl
        self.head_dim = hidden_dim // num_heads
        dense = dict(bias_grad_impl=bias_grad_impl, gelu_impl=gelu_impl, dtype=self.dtype_policy)
        drop = dict(dtype=self.dtype_policy)
        self.qkv = Projection(3 * hidden_dim, kernel_initializer=_initializer(seed), name="qkv",
                              **dense)
        self.attention_dropout = make_dropout(dropout_impl, dropout, seed, name="attention_dropout",
                                              **drop)
        self.attention_output = Projection(hidden_dim, kernel_initializer=_initializer(seed + 1),
                                           name="attention_output", **dense)
        self.attention_output_dropout = make_dropout(dropout_impl, dropout, seed + 1,
                                                     name="attention_output_dropout", **drop)
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="attention_norm", dtype=self.dtype_policy)
        self.intermediate = Projection(intermediate_dim, activation="gelu",
                                       kernel_initializer=_initializer(seed + 2),
                                       name="intermediate", **dense)
        self.output_dense = Projection(hidden_dim, kernel_initializer=_initializer(seed + 3),
                                       name="output", **dense)
        self.output_dropout = make_dropout(dropout_impl, dropout, seed + 2, name="output_dropout",
                                           **drop)
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="output_norm", dtype=self.dtype_policy)

    def build(self, input_shape):
        hidden = (None, self.hidden_dim)
        self.qkv.build(hidden)
        self.attention_output.build(hidden)
        self.attention_norm.build(hidden)
        self.intermediate.build(hidden)
        self.output_dense.build((None, self.intermediate_dim))
        self.output_norm.build(hidden)
        self.built = True

    def call(self, x, attention_bias, training=False):
        rows, length = tf.shape(x)[0], tf.shape(x)[1]
        heads, head_dim = self.num_heads, self.head_dim
        # split (gradient: one concat), not slicing (each slice's gradient is a full-size pad).
        query, key, value = (tf.transpose(tf.reshape(t, [rows, length, heads, head_dim]),
                                          [0, 2, 1, 3])                   # [rows, heads, S, d]
                             for t in tf.split(self.qkv(x), 3, axis=-1))
        query = query * tf.cast(head_dim ** -0.5, x.dtype)
        scores = tf.matmul(query, key, transpose_b=True) + attention_bias
        # Hash dropout's mask is recomputed in the backward pass, not stored (kernels/attention.py).
        context = attention_context(scores, value, self.attention_dropout, training)
        context = tf.transpose(context, [0, 2, 1, 3])                    # [rows, S, heads, d]
        context = tf.reshape(context, [rows, length, self.hidden_dim])
        attended = self.attention_output_dropout(self.attention_output(context), training=training)
        x = self.attention_norm(x + attended)
        transformed = self.output_dropout(self.output_dense(self.intermediate(x)), training=training)
        return self.output_norm(x + transformed)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim, "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon, "dropout_impl": self.dropout_impl,
                "gelu_impl": self.gelu_impl, "bias_grad_impl": self.bias_grad_impl,
                "seed": self.seed}


def packed_features(inputs):
    """Packed-batch features of a padded or packed batch (see the module docstring)."""
    if "pack_ids" in inputs:
        return inputs
    token_ids = inputs["token_ids"]
    mask = tf.cast(inputs["padding_mask"], tf.bool)
    rows, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    row = tf.range(rows)
    return {"token_ids": token_ids,
            "position_ids": tf.broadcast_to(tf.range(length)[None, :], [rows, length]),
            "pack_ids": tf.cast(mask, tf.int32),
            "text_starts": row * length,
            "text_index": tf.where(mask, tf.broadcast_to(row[:, None], [rows, length]), -1),
            "padded": True}


@keras.saving.register_keras_serializable(package="empathy_tf")
class BertEncoder(keras.layers.Layer):
    """BERT: embeddings, `num_layers` `BertBlock`s, pooling to one float32 vector per text.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
        max_sequence_length, num_segments, layer_norm_epsilon: the architecture (keras-hub's
            `BertBackbone` names and defaults).
        dropout: Dropout rate of embeddings, attention probabilities and block outputs.
        pooling: "cls" (the [CLS] state, the paper's choice), "pooler" (BERT's tanh pooler over
            [CLS]) or "mean" (masked mean of the last layer, how all-MiniLM-L6-v2 was trained).
        dropout_impl, gelu_impl, bias_grad_impl: the kernels (`empathy_tf.kernels`).
        seed: Seed of the initializers and dropout masks.
    """

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                 max_sequence_length=512, num_segments=2, dropout=0.1, layer_norm_epsilon=1e-12,
                 pooling="cls", dropout_impl="hash", gelu_impl="fused", bias_grad_impl="keras",
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r}; expected one of {POOLINGS}")
        self.vocabulary_size, self.num_layers = int(vocabulary_size), int(num_layers)
        self.num_heads, self.hidden_dim = int(num_heads), int(hidden_dim)
        self.intermediate_dim, self.max_sequence_length = int(intermediate_dim), int(max_sequence_length)
        self.num_segments, self.dropout = int(num_segments), float(dropout)
        self.layer_norm_epsilon, self.pooling, self.seed = layer_norm_epsilon, pooling, int(seed)
        self.dropout_impl, self.gelu_impl, self.bias_grad_impl = dropout_impl, gelu_impl, bias_grad_impl
        self.output_dim = self.hidden_dim
        self.embeddings_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="embeddings_norm", dtype=self.dtype_policy)
        self.embeddings_dropout = make_dropout(dropout_impl, dropout, seed, name="embeddings_dropout",
                                               dtype=self.dtype_policy)
        self.blocks = [BertBlock(hidden_dim, num_heads, intermediate_dim, dropout,
                                 layer_norm_epsilon, dropout_impl, gelu_impl, bias_grad_impl,
                                 seed=seed + 10 * (i + 1), name=f"block_{i}",
                                 dtype=self.dtype_policy)
                       for i in range(num_layers)]
        # BERT's pooler only gets a gradient when it is used: no optimizer slots otherwise.
        self.pooler = Projection(hidden_dim, activation="tanh", bias_grad_impl=bias_grad_impl,
                                 kernel_initializer=_initializer(seed + 5), name="pooler",
                                 dtype=self.dtype_policy, trainable=pooling == "pooler")

    def build(self, input_shape=None):
        embedding = dict(initializer=_initializer(self.seed), autocast=False)
        # Read as float32 and gathered before any cast: casting the whole table every step
        # would cost more than the lookup.
        self.token_embeddings = self.add_weight(
            name="token_embeddings", shape=(self.vocabulary_size, self.hidden_dim), **embedding)
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_sequence_length, self.hidden_dim),
            **embedding)
        self.segment_embeddings = self.add_weight(
            name="segment_embeddings", shape=(self.num_segments, self.hidden_dim), **embedding)
        self.embeddings_norm.build((None, self.hidden_dim))
        for block in self.blocks:
            block.build((None, None, self.hidden_dim))
        self.pooler.build((None, self.hidden_dim))
        self.built = True

    def _attention_bias(self, features, dtype):
        pack = features["pack_ids"]
        negative = tf.cast(_large_negative(dtype), dtype)
        if features.get("padded", False):   # one text per row: mask the keys only
            return tf.where(pack[:, None, None, :] > 0, tf.zeros([], dtype), negative)
        allowed = (pack[:, :, None] == pack[:, None, :]) & (pack[:, None, :] > 0)
        return tf.where(allowed[:, None, :, :], tf.zeros([], dtype), negative)

    def sequence_output(self, inputs, training=False):
        """Per-token states [rows, S, hidden] (compute dtype) and the packed features."""
        features = packed_features(inputs)
        token_ids = tf.cast(features["token_ids"], tf.int32)
        x = (tf.gather(self.token_embeddings, token_ids)
             + tf.gather(self.position_embeddings, features["position_ids"])
             + self.segment_embeddings[0])
        x = self.embeddings_dropout(self.embeddings_norm(x), training=training)
        bias = self._attention_bias(features, x.dtype)
        for block in self.blocks:
            x = block(x, bias, training=training)
        return x, features

    def call(self, inputs, training=False):
        sequence, features = self.sequence_output(inputs, training)
        flat = tf.reshape(sequence, [-1, self.hidden_dim])
        if self.pooling == "mean":
            index = tf.reshape(features["text_index"], [-1])
            texts = tf.shape(features["text_starts"])[0]
            index = tf.where(index < 0, texts, index)   # padding goes to a dropped extra bucket
            total = tf.math.unsorted_segment_sum(tf.cast(flat, tf.float32), index, texts + 1)
            count = tf.math.unsorted_segment_sum(tf.ones_like(index, tf.float32), index, texts + 1)
            return total[:-1] / tf.maximum(count[:-1], 1.0)[:, None]
        first = tf.gather(flat, features["text_starts"])
        if self.pooling == "pooler":
            first = self.pooler(first)
        return tf.cast(first, tf.float32)

    def compute_output_shape(self, input_shape):
        return (None, self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers, "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim, "intermediate_dim": self.intermediate_dim,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments, "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon, "pooling": self.pooling,
                "dropout_impl": self.dropout_impl, "gelu_impl": self.gelu_impl,
                "bias_grad_impl": self.bias_grad_impl, "seed": self.seed}


# ---------------------------------------------------------------------------------------------
# keras-hub BertBackbone <-> BertEncoder.

_BACKBONE_OPTIONS = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                     "intermediate_dim", "max_sequence_length", "num_segments", "dropout")


def _weight_pairs(encoder):
    """(our variable, keras-hub path(s), to_ours, to_theirs) for every weight of the encoder."""
    hidden = encoder.hidden_dim
    pairs = [(encoder.token_embeddings, "token_embedding/embeddings"),
             (encoder.position_embeddings, "position_embedding/embeddings"),
             (encoder.segment_embeddings, "segment_embedding/embeddings"),
             (encoder.embeddings_norm.gamma, "embeddings_layer_norm/gamma"),
             (encoder.embeddings_norm.beta, "embeddings_layer_norm/beta"),
             (encoder.pooler.kernel, "pooled_dense/kernel"),
             (encoder.pooler.bias, "pooled_dense/bias")]
    out = [(ours, (path,), lambda w: w[0], lambda w, shapes: [w]) for ours, path in pairs]
    for i, block in enumerate(encoder.blocks):
        prefix = f"transformer_layer_{i}/"
        attention = prefix + "self_attention_layer/"
        qkv = tuple(attention + f"{p}/kernel" for p in ("query", "key", "value"))
        qkv_bias = tuple(attention + f"{p}/bias" for p in ("query", "key", "value"))
        out += [
            (block.qkv.kernel, qkv, lambda w: np.concatenate([x.reshape(x.shape[0], -1) for x in w], 1),
             lambda w, shapes: [p.reshape(s) for p, s in zip(np.split(w, 3, axis=1), shapes)]),
            (block.qkv.bias, qkv_bias, lambda w: np.concatenate([x.reshape(-1) for x in w]),
             lambda w, shapes: [p.reshape(s) for p, s in zip(np.split(w, 3), shapes)]),
            (block.attention_output.kernel, (attention + "attention_output/kernel",),
             lambda w, h=hidden: w[0].reshape(-1, h), lambda w, shapes: [w.reshape(shapes[0])]),
        ]
        singles = [(block.attention_output.bias, attention + "attention_output/bias"),
                   (block.attention_norm.gamma, prefix + "self_attention_layer_norm/gamma"),
                   (block.attention_norm.beta, prefix + "self_attention_layer_norm/beta"),
                   (block.intermediate.kernel, prefix + "feedforward_intermediate_dense/kernel"),
                   (block.intermediate.bias, prefix + "feedforward_intermediate_dense/bias"),
                   (block.output_dense.kernel, prefix + "feedforward_output_dense/kernel"),
                   (block.output_dense.bias, prefix + "feedforward_output_dense/bias"),
                   (block.output_norm.gamma, prefix + "feedforward_layer_norm/gamma"),
                   (block.output_norm.beta, prefix + "feedforward_layer_norm/beta")]
        out += [(ours, (path,), lambda w: w[0], lambda w, shapes: [w]) for ours, path in singles]
    return out


def from_backbone(backbone, **options):
    """A `BertEncoder` with the architecture and weights of a keras-hub `BertBackbone`.

    `options` are the encoder's other constructor arguments (pooling, kernels, seed, dtype).
    """
    config = {k: backbone.get_config()[k] for k in _BACKBONE_OPTIONS}
    if "dropout" in options:
        config["dropout"] = options.pop("dropout")
    encoder = BertEncoder(**config, **options)
    encoder.build()
    theirs = {v.path: v for v in backbone.weights}
    for ours, paths, to_ours, _ in _weight_pairs(encoder):
        missing = [p for p in paths if p not in theirs]
        if missing:
            raise ValueError(f"the BERT backbone has no weight {missing[0]!r}; is it a BERT "
                             "architecture (keras-hub BertBackbone)?")
        ours.assign(to_ours([np.asarray(theirs[p].numpy()) for p in paths]))
    return encoder


def to_backbone(encoder):
    """A float32 keras-hub `BertBackbone` holding `encoder`'s weights (to save as a preset)."""
    import keras_hub
    backbone = keras_hub.models.BertBackbone(
        **{k: getattr(encoder, k) for k in _BACKBONE_OPTIONS}, dtype="float32")
    theirs = {v.path: v for v in backbone.weights}
    for ours, paths, _, to_theirs in _weight_pairs(encoder):
        parts = to_theirs(np.asarray(ours.numpy()), [tuple(theirs[p].shape) for p in paths])
        for path, value in zip(paths, parts):
            theirs[path].assign(value)
    return backbone
