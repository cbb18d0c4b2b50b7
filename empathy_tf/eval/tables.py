"""What a result table is made of: its spec (`TableSpec`, `Row`), its cells, and its protocol.

A `TableSpec` names a table's datasets and rows; experiments/registry.py declares the paper's
tables and the learning curve. Its cells are (row, dataset, seed, fold) run folders written by
runs.py. Only finished cells (those with `metrics.json`) count; missing, unfinished or failed ones
are listed as such ("8/10 folds"), never averaged as if the row were complete. The report
(`eval/report.py`) turns them into Markdown, CSV and charts.

Example:

    curve_row = Row("kd_sst_emonet_10", experiment="kd_sst_emonet", in_paper=False,
                    overrides=(("train_fraction", 0.1),), compare_to="bert_10")
    curve_row.options          # {'train_fraction': 0.1}: the runner applies it to the config
    parse_protocol("repeated_kfold:3:10").folds           # 10
    parse_protocol("kfold:10").test_train_ratio           # 1/9
"""

import dataclasses
import os

from empathy_tf import io_utils
from empathy_tf.errors import ConfigError

METRICS = ("precision", "recall", "f1", "accuracy", "macro_f1")


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a table: an experiment, on the table's dataset unless the row names one.

    Attributes:
        name: the row's name in the table (unique within it).
        experiment: the registry experiment it runs (default: `name`).
        dataset: the dataset it runs on, when not the table's section (Table 7).
        in_paper: whether the paper has the row (the transcription decides when it has it).
        overrides: ((option, value), ...) the runner applies to the experiment's config after the
            flags: they define the row (e.g. the learning curve's `train_fraction`).
        compare_to: the row it is compared with (default: the table's baseline).
        floor: a trivial predictor that shows what a trained model must beat.
    """
    name: str
    experiment: str = ""
    dataset: str = ""
    in_paper: bool = True
    overrides: tuple = ()
    compare_to: str = ""
    floor: bool = False

    def __post_init__(self):
        if not self.experiment:
            object.__setattr__(self, "experiment", self.name)

    def dataset_for(self, table_dataset):
        return self.dataset or table_dataset

    @property
    def options(self):
        """The overrides as {option: value}."""
        return dict(self.overrides)

    @property
    def train_fraction(self):
        return float(self.options.get("train_fraction", 1.0))


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A table: its datasets (sections), rows, the row others are compared with, which of the
    paper's tables (paper_tables.csv) holds its published numbers, and a note shown under its
    title."""
    name: str
    title: str
    datasets: tuple
    rows: tuple
    baseline: str = ""
    paper_table: str = ""
    note: str = ""

    def __post_init__(self):
        if not self.paper_table:
            object.__setattr__(self, "paper_table", self.name)
        if not self.baseline:
            names = [r.name for r in self.rows]
            object.__setattr__(self, "baseline", "bert" if "bert" in names else names[0])

    def baseline_of(self, row):
        """The name of the row `row` is compared with (None for the baseline itself)."""
        name = row.compare_to or self.baseline
        return None if name == row.name else name

    @property
    def is_curve(self):
        """Rows at several training fractions: a learning curve."""
        return len({r.train_fraction for r in self.rows}) > 1


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A protocol as the report needs it: `repeats` × `folds` cells per row.

    `split` (1 × 1 per seed), `repeated:N` (N × 1), `kfold:K` (1 × K per seed),
    `repeated_kfold:R:K` (R × K; cells seed<r>/fold<f>).
    """
    text: str
    kind: str
    repeats: int
    folds: int

    @property
    def cross_validation(self):
        """Cells whose training sets overlap by construction (k-fold kinds)."""
        return self.folds > 1

    @property
    def test_train_ratio(self):
        """n_test/n_train of the Nadeau & Bengio correction: 1/(K−1) under K folds, where the
        training side is every example outside the test fold (train and dev); 0 (the plain
        paired t-test) for protocols whose cells are treated as independent."""
        return 1.0 / (self.folds - 1) if self.cross_validation else 0.0


def parse_protocol(text):
    """The `Protocol` of `split`, `repeated:N`, `kfold:K` or `repeated_kfold:R:K`.

        parse_protocol("repeated_kfold:3:10")   # repeats=3, folds=10
    """
    parts = str(text).split(":")
    kind, counts = parts[0], parts[1:]
    expected = {"split": 0, "repeated": 1, "kfold": 1, "repeated_kfold": 2}
    if kind not in expected or len(counts) != expected[kind] or \
            not all(c.isdigit() and int(c) >= 1 for c in counts):
        raise ConfigError(f"protocol={text!r}; expected split, repeated:N, kfold:K or "
                          "repeated_kfold:R:K with positive integers")
    counts = [int(c) for c in counts]
    repeats = counts[0] if kind in ("repeated", "repeated_kfold") else 1
    folds = counts[-1] if kind in ("kfold", "repeated_kfold") else 1
    if kind in ("kfold", "repeated_kfold") and folds < 2:
        raise ConfigError(f"protocol={text!r}: K must be >= 2")
    return Protocol(str(text), kind, repeats, folds)


@dataclasses.dataclass
class Cell:
    """One (dataset, row, seed, fold) of a table and what its run folder holds.

    Attributes:
        status: "finished" (metrics.json), "unfinished" (config.json only), "not_started" or
            "failed" (it failed in this invocation; its folder content is ignored).
        metrics: the contents of metrics.json for finished cells, else None.
        record: config.json for cells that started, else None.
        split: split.json (example ids per task and split) when the folder has it, else None.
    """
    dataset: str
    row: str
    seed: int
    fold: int
    run_dir: str
    status: str = "not_started"
    metrics: dict | None = None
    record: dict | None = None
    error: str | None = None
    split: dict | None = None

    @property
    def predictions_path(self):
        return os.path.join(self.run_dir, "predictions.npz")


def collect(cells, failed=None):
    """Fills in each Cell's status, metrics, record and split from its run folder.

    `failed`: {run_dir: message} of cells that failed in this invocation; they are reported as
    failed even if an older metrics.json lies in their folder (it may belong to another config).
    """
    failed = failed or {}
    for cell in cells:
        config_path = os.path.join(cell.run_dir, "config.json")
        metrics_path = os.path.join(cell.run_dir, "metrics.json")
        split_path = os.path.join(cell.run_dir, "split.json")
        if os.path.exists(config_path):
            cell.record = io_utils.read_json(config_path)
            cell.status = "unfinished"
        if os.path.exists(split_path):
            cell.split = io_utils.read_json(split_path)
        if cell.run_dir in failed:
            cell.status, cell.error = "failed", failed[cell.run_dir]
        elif os.path.exists(metrics_path):
            cell.status, cell.metrics = "finished", io_utils.read_json(metrics_path)
    return cells
