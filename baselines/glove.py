"""Sentence encoders of the GloVe baselines: CNN, LSTM, BiLSTM and ConvLSTM (Tables 4-6).

All four share one embedding path (a GloVe-initialised ``Embedding``, padded positions zeroed) and
differ only in the block that turns the ``[B, T, d]`` embeddings into pooled features ``[B, D]``:

* ``cnn`` (Kim, 2014): wide Conv1D of widths 3/4/5 with 100 ReLU maps each, max-over-time pooling
  over the windows that touch a real token, concatenated (D = 300).
* ``lstm``: LSTM over the masked sequence, last state (D = hidden_units).
* ``bilstm``: bidirectional LSTM, both last states concatenated (D = 2 * hidden_units).
* ``convlstm`` (Khanpour et al., 2017): Conv1D(100, width 3, 'same', ReLU) -> MaxPooling1D(2) ->
  LSTM, with the mask max-pooled alongside (D = hidden_units).

Each ends in dropout. Masking makes a batch member's features independent of how much padding its
batch has (batches are padded to their own longest member). The classifier head is not part of the
encoder; for ``cnn`` the paper (after Kim) puts a max-norm constraint of ``MAX_NORM['cnn']`` on the
head's weights.

Example:
    >>> import keras
    >>> from baselines.glove import MAX_NORM, build_glove_encoder
    >>> encoder = build_glove_encoder("cnn", embedding_matrix)          # doctest: +SKIP
    >>> inputs = {"token_ids": keras.Input((None,), dtype="int32"),
    ...           "padding_mask": keras.Input((None,), dtype="bool")}
    >>> head = keras.layers.Dense(2, activation="softmax",
    ...                           kernel_constraint=keras.constraints.MaxNorm(MAX_NORM["cnn"]))
    >>> model = keras.Model(inputs, head(encoder(inputs)))             # doctest: +SKIP
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from empathy_tf.errors import ConfigError

KINDS = ("cnn", "lstm", "bilstm", "convlstm")
# Max-norm for the classifier head's kernel, per kind (Kim 2014 uses l2 norm <= 3 for the CNN).
MAX_NORM = {"cnn": 3.0}

CNN_FILTER_WIDTHS = (3, 4, 5)
CNN_FILTERS = 100
CONVLSTM_FILTERS = 100
CONVLSTM_WIDTH = 3
CONVLSTM_POOL = 2

# Fill for masked positions before a max. In float16 it becomes -inf, which is still safe: every
# row keeps at least one valid position (see GloveEncoder.call), so a max never sees only fill.
_NEG = -1e9


def build_glove_encoder(
    kind: str,
    embedding_matrix: np.ndarray,
    trainable_embeddings: bool = False,
    hidden_units: int = 128,
    dropout: float = 0.5,
    seed: int = 0,
) -> keras.layers.Layer:
    """Builds a GloVe baseline encoder.

    Args:
        kind: One of ``'cnn'``, ``'lstm'``, ``'bilstm'``, ``'convlstm'``.
        embedding_matrix: Float matrix ``[V, d]`` (row 0 = padding), e.g. from
            :func:`baselines.word_vectors.build_embedding_matrix`.
        trainable_embeddings: Fine-tune the embeddings (``False`` keeps them frozen).
        hidden_units: LSTM size (``lstm``, ``bilstm``, ``convlstm``; ignored by ``cnn``).
        dropout: Dropout rate on the pooled features.
        seed: Seed of the weight initialisers and the dropout.

    Returns:
        A :class:`GloveEncoder` mapping ``{"token_ids": int [B, T], "padding_mask": bool [B, T]}``
        to float32 features ``[B, encoder.output_dim]``.

    Raises:
        ConfigError: ``kind`` is unknown.
    """
    return GloveEncoder(
        kind=kind,
        vocab_size=int(np.shape(embedding_matrix)[0]),
        embedding_dim=int(np.shape(embedding_matrix)[1]),
        trainable_embeddings=trainable_embeddings,
        hidden_units=hidden_units,
        dropout=dropout,
        seed=seed,
        embedding_matrix=embedding_matrix,
    )


@keras.saving.register_keras_serializable(package="empathy_tf")
class GloveEncoder(keras.layers.Layer):
    """Embedding + CNN / LSTM / BiLSTM / ConvLSTM block + dropout; see the module docstring.

    Prefer :func:`build_glove_encoder`. ``get_config`` holds the shapes, not the embedding matrix:
    a deserialised encoder starts from random embeddings and gets the real ones from the saved
    weights (as with any Keras layer saved in a ``.keras`` file).

    Args:
        kind: One of :data:`KINDS`.
        vocab_size: Rows of the embedding matrix.
        embedding_dim: Columns of the embedding matrix.
        trainable_embeddings: Whether the embedding is trained.
        hidden_units: LSTM size.
        dropout: Dropout rate on the pooled features.
        seed: Seed of the weight initialisers and the dropout.
        embedding_matrix: Initial embeddings ``[vocab_size, embedding_dim]``; ``None`` = random
            (only meant for deserialisation).
        **kwargs: Passed to ``keras.layers.Layer``.

    Attributes:
        output_dim: Size D of the features.
    """

    def __init__(
        self,
        kind: str,
        vocab_size: int,
        embedding_dim: int,
        trainable_embeddings: bool = False,
        hidden_units: int = 128,
        dropout: float = 0.5,
        seed: int = 0,
        embedding_matrix: np.ndarray | None = None,
        **kwargs,
    ):
        if kind not in KINDS:
            raise ConfigError(f"unknown GloVe encoder kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        super().__init__(**kwargs)
        self.kind = kind
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.trainable_embeddings = bool(trainable_embeddings)
        self.hidden_units = int(hidden_units)
        self.dropout_rate = float(dropout)
        self.seed = int(seed)

        if embedding_matrix is not None:
            embedding_matrix = np.asarray(embedding_matrix, dtype=np.float32)
            if embedding_matrix.shape != (self.vocab_size, self.embedding_dim):
                raise ValueError(
                    f"embedding_matrix has shape {embedding_matrix.shape}, expected "
                    f"({self.vocab_size}, {self.embedding_dim})"
                )
        # Plain ids in, explicit padding_mask handled below: mask_zero would not reach the CNN.
        self.embedding = keras.layers.Embedding(
            self.vocab_size,
            self.embedding_dim,
            weights=None if embedding_matrix is None else [embedding_matrix],
            trainable=self.trainable_embeddings,
            name="embedding",
        )
        # Each initialiser gets its own seed: Keras 3 initialisers with equal seeds give equal values.
        seeds = iter(range(self.seed * 100 + 1, self.seed * 100 + 100))

        def conv(filters, width, padding, name):
            return keras.layers.Conv1D(
                filters,
                width,
                padding=padding,
                activation="relu",
                kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
                name=name,
            )

        def lstm(name, go_backwards=False):
            # Default activations, no recurrent dropout, unroll=False: the cuDNN kernel stays usable.
            return keras.layers.LSTM(
                self.hidden_units,
                go_backwards=go_backwards,
                kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
                recurrent_initializer=keras.initializers.Orthogonal(seed=next(seeds)),
                name=name,
            )

        if kind == "cnn":
            self.convs = [conv(CNN_FILTERS, w, "valid", f"conv{w}") for w in CNN_FILTER_WIDTHS]
            self.output_dim = CNN_FILTERS * len(CNN_FILTER_WIDTHS)
        elif kind == "lstm":
            self.rnn = lstm("lstm")
            self.output_dim = self.hidden_units
        elif kind == "bilstm":
            self.rnn = keras.layers.Bidirectional(
                lstm("forward_lstm"),
                backward_layer=lstm("backward_lstm", go_backwards=True),
                merge_mode="concat",
                name="bilstm",
            )
            self.output_dim = 2 * self.hidden_units
        else:  # convlstm
            self.conv = conv(CONVLSTM_FILTERS, CONVLSTM_WIDTH, "same", "conv")
            # 'same' keeps the last token of an odd-length sequence (so 'valid' would make the
            # features depend on the padding).
            self.pool = keras.layers.MaxPooling1D(CONVLSTM_POOL, padding="same", name="pool")
            self.rnn = lstm("lstm")
            self.output_dim = self.hidden_units
        self.feature_dropout = keras.layers.Dropout(self.dropout_rate, seed=self.seed, name="dropout")

    def build(self, input_shape=None):
        # Explicit so that load_weights / load_model find every variable before the first call.
        feature_shape = (None, None, self.embedding_dim)
        self.embedding.build((None, None))
        if self.kind == "cnn":
            for c in self.convs:
                c.build(feature_shape)
        elif self.kind == "convlstm":
            self.conv.build(feature_shape)
            self.rnn.build((None, None, CONVLSTM_FILTERS))
        else:
            self.rnn.build(feature_shape)
        self.built = True

    def call(self, inputs, training=None):
        token_ids = inputs["token_ids"]
        mask = inputs.get("padding_mask")
        mask = ops.not_equal(token_ids, 0) if mask is None else ops.cast(mask, "bool")

        x = self.embedding(token_ids)
        # Zero padded positions even if the padding row of a trainable embedding has drifted.
        x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
        # A row with no token at all (text empty after tokenisation) reads position 0, a zero
        # vector: keeps every max finite and gives the LSTM (and cuDNN) a sequence length >= 1.
        empty = ops.logical_not(ops.any(mask, axis=1, keepdims=True))
        mask = ops.concatenate([ops.logical_or(mask[:, :1], empty), mask[:, 1:]], axis=1)

        if self.kind == "cnn":
            pooled = [self._conv_max(c, w, x, mask) for c, w in zip(self.convs, CNN_FILTER_WIDTHS)]
            features = ops.concatenate(pooled, axis=-1)
        elif self.kind == "convlstm":
            h = self.conv(x)
            # Padded positions must not win the pooling max (their conv output sees real neighbours).
            h = ops.where(ops.expand_dims(mask, -1), h, ops.cast(_NEG, h.dtype))
            h = self.pool(h)
            pooled_mask = _max_pool_mask(mask, CONVLSTM_POOL, CONVLSTM_POOL, "same")
            h = ops.where(ops.expand_dims(pooled_mask, -1), h, ops.zeros_like(h))
            features = self.rnn(h, mask=pooled_mask, training=training)
        else:
            features = self.rnn(x, mask=mask, training=training)
        features = self.feature_dropout(features, training=training)
        return ops.cast(features, "float32")

    def _conv_max(self, conv, width, x, mask):
        # Wide convolution (pad width-1 zeros on both sides, as Kim's code does): any T >= 1 works
        # and every token is seen by `width` windows. A window is valid iff it covers a real token.
        pad = width - 1
        h = conv(ops.pad(x, [[0, 0], [pad, pad], [0, 0]]))  # [B, T + pad, F]
        valid = _max_pool_mask(mask, width, 1, "valid", pad=pad)  # [B, T + pad]
        h = ops.where(ops.expand_dims(valid, -1), h, ops.cast(_NEG, h.dtype))
        return ops.max(h, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape["token_ids"][0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            kind=self.kind,
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            trainable_embeddings=self.trainable_embeddings,
            hidden_units=self.hidden_units,
            dropout=self.dropout_rate,
            seed=self.seed,
        )
        return config


def _max_pool_mask(mask, pool_size, strides, padding, pad=0):
    """Boolean [B, T] mask -> [B, T'] mask: True where the pooling window holds a True.

    ``pad`` False positions are added on both sides first (matching a wide convolution).
    """
    m = ops.cast(mask, "float32")
    if pad:
        m = ops.pad(m, [[0, 0], [pad, pad]])
    pooled = ops.max_pool(ops.expand_dims(m, -1), pool_size, strides, padding)
    return ops.squeeze(pooled, -1) > 0.5
