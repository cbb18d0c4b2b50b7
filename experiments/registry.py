"""Named experiments: each name maps to a function returning an ExperimentConfig.

The names are the paper's rows (Tables 4-6): `bert`, `mt_sst`, `mt_emonet`, `mt_sst_emonet`,
`kd_sst`, `kd_emonet`, `kd_sst_emonet`, the GloVe baselines `cnn`, `lstm`, `bilstm`, `convlstm`,
and two rows beyond the paper, `tfidf_lr` and `all_positive`. Groups (`baselines`, `table4`...)
expand to several experiments. "emonet" in a name means the emotion slot, filled by
`--emotion_dataset` (CARER by default; EmoNet itself was never released).

    python -m experiments.run --exp=kd_sst_emonet --dataset=newsemp --aux_cap=2000
"""

from empathy_tf.config import ExperimentConfig
from empathy_tf.errors import ConfigError

# BERT fine-tuning defaults. On NewsEmp dev the default encoder peaked after the first of 4
# epochs (seed 0), so 3 epochs with best-dev-epoch selection lose nothing and save a quarter.
BERT = dict(epochs=3, batch_size=16, learning_rate=5e-5, max_seq_length=256, dropout=0.1)
GLOVE = dict(method="glove", epochs=10, batch_size=32, learning_rate=1e-3, dropout=0.5,
             weight_decay=0.0, warmup_fraction=0.0)


def _bert(name, method="single", aux=()):
    return lambda: ExperimentConfig(name=name, method=method, aux_tasks=aux, **BERT)


def _glove(kind):
    return lambda: ExperimentConfig(name=kind, glove_kind=kind, **GLOVE)


EXPERIMENTS = {
    "bert": _bert("bert"),
    "mt_sst": _bert("mt_sst", "mt", ("sst2",)),
    "mt_emonet": _bert("mt_emonet", "mt", ("emotion",)),
    "mt_sst_emonet": _bert("mt_sst_emonet", "mt", ("sst2", "emotion")),
    "kd_sst": _bert("kd_sst", "kd", ("sst2",)),
    "kd_emonet": _bert("kd_emonet", "kd", ("emotion",)),
    "kd_sst_emonet": _bert("kd_sst_emonet", "kd", ("sst2", "emotion")),
    "cnn": _glove("cnn"),
    "lstm": _glove("lstm"),
    "bilstm": _glove("bilstm"),
    "convlstm": _glove("convlstm"),
    "tfidf_lr": lambda: ExperimentConfig(name="tfidf_lr", method="tfidf"),
    "all_positive": lambda: ExperimentConfig(name="all_positive", method="all_positive"),
}

PAPER_ROWS = ("cnn", "lstm", "bilstm", "convlstm", "bert", "mt_sst", "mt_emonet", "mt_sst_emonet",
              "kd_sst", "kd_emonet", "kd_sst_emonet")
EXTRA_ROWS = ("tfidf_lr", "all_positive")
GROUPS = {
    "baselines": ("cnn", "lstm", "bilstm", "convlstm", "tfidf_lr"),
}


def names():
    return sorted(EXPERIMENTS) + sorted(GROUPS)


def expand(name):
    """The experiment names a (group) name stands for."""
    if name in EXPERIMENTS:
        return (name,)
    if name in GROUPS:
        return GROUPS[name]
    raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(names())}")


def get_config(name):
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(names())}")
    return EXPERIMENTS[name]()
