"""Named experiments: each name maps to a function returning an ExperimentConfig.

The names are the paper's rows (Tables 4-6): `bert`, `mt_sst`, `mt_emonet`, `mt_sst_emonet`,
`kd_sst`, `kd_emonet`, `kd_sst_emonet`, the GloVe baselines `cnn`, `lstm`, `bilstm`, `convlstm`,
and two rows beyond the paper, `tfidf_lr` and `all_positive`. Groups (`baselines`, `table4`...)
expand to several experiments. "emonet" in a name means the emotion slot, filled by
`--emotion_dataset` (CARER by default; EmoNet itself was never released).

    python -m experiments.run --exp=kd_sst_emonet --dataset=newsemp --aux_cap=2000

Tables (`table4`, `table5`, `table6`) are groups too, with datasets and the paper's numbers in
`TABLES`; running one runs every (row, dataset, seed) cell and writes the table:

    python -m experiments.run --exp=table4 --data_dir=../shared/data   # seeds 0,1,2
"""

import dataclasses

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
TABLE_ROWS = PAPER_ROWS + EXTRA_ROWS
DEFAULT_TABLE_SEEDS = (0, 1, 2)


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One of the paper's result tables: which rows on which datasets, and the published numbers.

    Attributes:
        name: group name, e.g. "table4".
        title: caption used in the written table.
        datasets: target datasets (task names); each gets its own section.
        rows: experiment names, paper rows first, then rows beyond the paper.
        paper: {dataset: {row: {"precision", "recall", "f1"}}}, in %, None where unknown.
    """
    name: str
    title: str
    datasets: tuple
    rows: tuple = TABLE_ROWS
    paper: dict = dataclasses.field(default_factory=dict)

    def paper_value(self, dataset, row, metric="f1"):
        return self.paper.get(dataset, {}).get(row, {}).get(metric)


def _paper(f1=None):
    """Paper numbers per row: {row: {precision, recall, f1}}, None wherever not known."""
    f1 = f1 or {}
    return {row: {"precision": None, "recall": None, "f1": f1.get(row)} for row in PAPER_ROWS}


# The paper's numbers (positive-class P / R / F1, in %). Only the F1 values below were transcribed
# so far; every None is still to be filled in from the paper's PDF (Hosseini & Caragea, Findings of
# EMNLP 2021, Tables 4-6). Never fill a None by guessing: a None shows as "—" in the table.
TABLES = {
    "table4": TableSpec("table4", "Table 4: NewsEmp", ("newsemp",), paper={"newsemp": _paper({
        "cnn": 60.16, "lstm": 43.33, "bilstm": 47.06, "convlstm": 50.28, "bert": 63.79,
        "mt_sst_emonet": 64.42, "kd_sst_emonet": 68.41})}),
    "table5": TableSpec("table5", "Table 5: TwittEmp (empathy vs none)", ("twittemp",),
                        paper={"twittemp": _paper()}),
    "table6": TableSpec("table6", "Table 6: TwittEmp, seeking and providing empathy",
                        ("twittemp_seek", "twittemp_provide"),
                        paper={"twittemp_seek": _paper(), "twittemp_provide": _paper()}),
    # Table 7 (domain adaptation) has its own runner and table writer:
    # python -m experiments.domain_adaptation --exp=table7 (experiments/domain_adaptation.py).
}

GROUPS = {
    "baselines": ("cnn", "lstm", "bilstm", "convlstm", "tfidf_lr"),
    **{name: spec.rows for name, spec in TABLES.items()},
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


def get_table(name):
    """The TableSpec of a table name, or None when `name` is not a table."""
    return TABLES.get(name)


def get_config(name):
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(names())}")
    return EXPERIMENTS[name]()
