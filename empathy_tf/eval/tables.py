"""What a result table is (the paper's Tables 4-7) and which run folders it reads.

A `TableSpec` names a table's datasets and rows; experiments/registry.py declares the paper's.
Its cells are (row, dataset, seed, fold) run folders written by runs.py; `collect` reads what each
holds. Only finished cells (those with `metrics.json`) count; missing, unfinished or failed ones are
listed as such ("8/10 folds"), never averaged as if the row were complete. The Markdown, CSV and
chart are written from them by eval/report.py.
"""

import dataclasses
import os

from empathy_tf import io_utils

METRICS = ("precision", "recall", "f1", "accuracy", "macro_f1")


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a table: an experiment, on the table's dataset unless the row names one."""
    name: str
    experiment: str = ""
    dataset: str = ""
    in_paper: bool = True

    def __post_init__(self):
        if not self.experiment:
            object.__setattr__(self, "experiment", self.name)

    def dataset_for(self, table_dataset):
        return self.dataset or table_dataset


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A table: its datasets (sections), rows, the row others are compared with, and which of
    the paper's tables (paper_tables.csv) holds its published numbers."""
    name: str
    title: str
    datasets: tuple
    rows: tuple
    baseline: str = ""
    paper_table: str = ""

    def __post_init__(self):
        if not self.paper_table:
            object.__setattr__(self, "paper_table", self.name)
        if not self.baseline:
            names = [r.name for r in self.rows]
            object.__setattr__(self, "baseline", "bert" if "bert" in names else names[0])


@dataclasses.dataclass
class Cell:
    """One (dataset, row, seed, fold) of a table and what its run folder holds.

    Attributes:
        status: "finished" (metrics.json), "unfinished" (config.json only), "not_started" or
            "failed" (it failed in this invocation; its folder content is ignored).
        metrics: the contents of metrics.json for finished cells, else None.
        record: config.json for cells that started, else None.
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

    @property
    def predictions_path(self):
        return os.path.join(self.run_dir, "predictions.npz")


def collect(cells, failed=None):
    """Fills in each Cell's status, metrics and record from its run folder.

    `failed`: {run_dir: message} of cells that failed in this invocation; they are reported as
    failed even if an older metrics.json lies in their folder (it may belong to another config).
    """
    failed = failed or {}
    for cell in cells:
        config_path = os.path.join(cell.run_dir, "config.json")
        metrics_path = os.path.join(cell.run_dir, "metrics.json")
        if os.path.exists(config_path):
            cell.record = io_utils.read_json(config_path)
            cell.status = "unfinished"
        if cell.run_dir in failed:
            cell.status, cell.error = "failed", failed[cell.run_dir]
        elif os.path.exists(metrics_path):
            cell.status, cell.metrics = "finished", io_utils.read_json(metrics_path)
    return cells
