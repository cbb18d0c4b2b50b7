"""The multi-task classifier: one shared text encoder, one head per task (paper §3.1, Eq. 1).

Single-task BERT is this model with one task; the GloVe baselines are this model with a GloVe
encoder. Each head is dropout + Dense on the encoder's pooled vector; the model returns the logits
of every head (float32, also under mixed precision), and the loss picks each example's own head.

Example:

    encoder = BertEncoder(backbone)
    model = MultiTaskClassifier(encoder, [HeadSpec("newsemp", 2), HeadSpec("sst2", 2)])
    logits = model({"token_ids": ids, "padding_mask": mask})  # list: [B, 2], [B, 2]
"""

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    name: str
    num_classes: int
    multi_label: bool = False


@keras.saving.register_keras_serializable(package="empathy_tf")
class MultiTaskClassifier(keras.Model):
    """Shared encoder + per-task heads.

    Args:
        encoder: a layer mapping {"token_ids", "padding_mask"} to [B, D] (BertEncoder, GloveEncoder).
        heads: list of HeadSpec, in task-id order.
        dropout: dropout rate before each head.
        head_max_norm: optional max-norm constraint on the head kernels (Kim's CNN uses 3).
    """

    def __init__(self, encoder, heads, dropout=0.1, head_max_norm=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head_specs = [h if isinstance(h, HeadSpec) else HeadSpec(**h) for h in heads]
        self.dropout_rate = dropout
        self.head_max_norm = head_max_norm
        # The model's own policy, not whatever global policy is set when a saved model is loaded.
        self.dropout = keras.layers.Dropout(dropout, seed=seed, dtype=self.dtype_policy)
        constraint = keras.constraints.MaxNorm(head_max_norm) if head_max_norm else None
        self.heads = [
            keras.layers.Dense(h.num_classes, kernel_constraint=constraint, dtype="float32",
                               kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02, seed=seed + i),
                               name=f"head_{h.name.replace(':', '_').replace('/', '_')}")
            for i, h in enumerate(self.head_specs)
        ]

    def call(self, inputs, training=False):
        pooled = self.dropout(self.encoder(inputs, training=training), training=training)
        return [head(pooled) for head in self.heads]

    def probabilities(self, logits):
        """Softmax for single-label heads, sigmoid for multi-label heads."""
        return [keras.ops.sigmoid(l) if h.multi_label else keras.ops.softmax(l)
                for h, l in zip(self.head_specs, logits)]

    def get_config(self):
        config = super().get_config()
        config.update({
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "heads": [dataclasses.asdict(h) for h in self.head_specs],
            "dropout": self.dropout_rate, "head_max_norm": self.head_max_norm})
        return config

    @classmethod
    def from_config(cls, config):
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
