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

    def only(self, dataset):
        """This table on one of its datasets (`--dataset` with a table): a section run, or
        reported, on its own. Its report is named `<table>-<dataset>`, so that it never
        overwrites the whole table's; Holm then counts that section's comparisons only."""
        if dataset not in self.datasets:
            raise ConfigError(f"dataset={dataset!r}: {self.name} has no such section; its "
                              f"datasets: {', '.join(self.datasets)}")
        if self.datasets == (dataset,):
            return self
        return dataclasses.replace(self, name=f"{self.name}-{dataset}", datasets=(dataset,))

    @property
    def is_curve(self):
        """Rows at several training fractions: a learning curve."""
        return len({r.train_fraction for r in self.rows}) > 1


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
