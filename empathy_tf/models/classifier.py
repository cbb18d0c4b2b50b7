"""The multi-task classifier: one shared text encoder, one head per task (paper §3.1, Eq. 1).

Single-task BERT is this model with one task; the GloVe baselines are this model with a GloVe
encoder. Each head is dropout + Dense on the encoder's pooled vector; the model returns the float32
logits of every head, and the loss picks each example's own head.

Example:

    model = MultiTaskClassifier(encoder, [HeadSpec("newsemp", 2), HeadSpec("sst2", 2)])
    logits = model({"token_ids": ids, "padding_mask": mask})  # list: [B, 2], [B, 2]
"""

import dataclasses

import keras

from empathy_tf.errors import ConfigError
from empathy_tf.kernels import make_dropout


HEAD_DROPOUT_SEED_OFFSET = 7919


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """One task's head: its size, and what its classes mean (for predictions and exports)."""
    name: str
    num_classes: int
    multi_label: bool = False
    label_names: tuple = ()
    positive_class: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "label_names", tuple(self.label_names))

    @classmethod
    def from_record(cls, record, source):
        """A HeadSpec from its JSON record in `source` (a run's model.json).

        Records written before 0.2.0's last changes have no `num_classes`: it is the number of
        label names there. Anything else missing or unknown is an error naming the file.
        """
        record = dict(record)
        if "num_classes" not in record and record.get("label_names"):
            record["num_classes"] = len(record["label_names"])
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = {"name", "num_classes"} - set(record)
        unknown = set(record) - fields
        if missing or unknown:
            raise ConfigError(f"{source}: head record {record!r} has "
                              + "; ".join(filter(None, [
                                  missing and f"no {', '.join(sorted(missing))}",
                                  unknown and f"unknown fields {', '.join(sorted(unknown))}"]))
                              + f"; expected the fields {', '.join(sorted(fields))}")
        return cls(**record)

    @property
    def output_name(self):
        """The head's key in a SavedModel signature (task names like csv:PATH sanitised)."""
        return self.name.replace(":", "_").replace("/", "_")


@keras.saving.register_keras_serializable(package="empathy_tf")
class MultiTaskClassifier(keras.Model):
    """Shared encoder + per-task heads.

    Args:
        encoder: a layer mapping a batch to float32 [texts, D] (BertEncoder, GloveEncoder).
        heads: list of HeadSpec, in task-id order.
        dropout: dropout rate before each head.
        dropout_impl: "hash" or "keras" (see `kernels.dropout`).
        head_max_norm: optional max-norm constraint on the head kernels (Kim's CNN uses 3).
        seed: seed of the heads' initializers and the dropout.
    """

    def __init__(self, encoder, heads, dropout=0.1, dropout_impl="keras", head_max_norm=None,
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head_specs = [h if isinstance(h, HeadSpec) else HeadSpec(**h) for h in heads]
        self.dropout_rate, self.dropout_impl = dropout, dropout_impl
        self.head_max_norm, self.seed = head_max_norm, seed
        # Pooled vectors are float32 whatever the precision; so is everything after them.
        # Its own seed: the encoder's embedding dropout has `seed`, and equal seeds draw equal
        # masks.
        self.dropout = make_dropout(dropout_impl, dropout, seed + HEAD_DROPOUT_SEED_OFFSET,
                                    dtype="float32")
        constraint = keras.constraints.MaxNorm(head_max_norm) if head_max_norm else None
        self.heads = [
            keras.layers.Dense(h.num_classes, kernel_constraint=constraint, dtype="float32",
                               kernel_initializer=keras.initializers.TruncatedNormal(
                                   stddev=0.02, seed=seed + i),
                               name=f"head_{h.output_name}")
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
        return {**super().get_config(),
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "heads": [dataclasses.asdict(h) for h in self.head_specs],
                "dropout": self.dropout_rate, "dropout_impl": self.dropout_impl,
                "head_max_norm": self.head_max_norm, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
