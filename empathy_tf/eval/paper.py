"""The paper's published numbers (Tables 4-7), and which of its rows disagree with themselves.

`paper_tables.csv` (beside this file) holds every published cell of Tables 4-7 of Hosseini &
Caragea (Findings of EMNLP 2021): one line per (table, dataset, row), positive-class precision,
recall and F1 in %, row names as this suite's experiment names (`emonet` = the paper's EmoNet; Table
7's Twitter row = `pretrain_health_tweets`; `newsemp_to_twittemp` = trained on NewsEmp, tested on
TwittEmp). It is a copy of the transcription shipped with this project's shared material.

The published cells are not all internally consistent: in 28 of the 51 rows the reported F1
differs from 2PR/(P+R) by more than half a point (Table 4 LSTM: P 38.89, R 28.05 gives 32.59,
reported 43.33). Averaging per-run F1 over runs can explain small gaps, not these. Tables show the
numbers as published and mark such rows (`inconsistent`), and rows whose precision is below what
their recall allows at the class balance of the test split (`precision_impossible`: all of Table
7's NewsEmp-trained rows, on TwittEmp's two empathic tweets to one other).

Example:

    cell = paper_cell("table4", "newsemp", "bert")
    cell.f1, cell.implied_f1, cell.inconsistent     # (63.79, 62.78, True)
    display_name("kd_sst_emonet")                   # 'KD_SST+EmoNet'
"""

import csv
import dataclasses
import functools
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper_tables.csv")
INCONSISTENT_POINTS = 0.5
# The paper's names of its rows (Tables 4-7); other rows keep the suite's names.
PAPER_NAMES = {
    "cnn": "CNN", "lstm": "LSTM", "bilstm": "BiLSTM", "convlstm": "ConvLSTM", "bert": "BERT",
    "mt_sst": "MT_SST", "mt_emonet": "MT_EmoNet", "mt_sst_emonet": "MT_SST+EmoNet",
    "kd_sst": "KD_SST", "kd_emonet": "KD_EmoNet", "kd_sst_emonet": "KD_SST+EmoNet",
    "source_only": "Source only", "target_only": "Target only",
    "pretrain_empatheticdialogues": "EmpatheticDialogues", "pretrain_dailydialog": "DailyDialog",
    "pretrain_goemotions": "GoEmotions", "pretrain_isear": "ISEAR",
    "pretrain_health_tweets": "Twitter (health)",
}


@dataclasses.dataclass(frozen=True)
class PaperCell:
    table: str
    dataset: str
    row: str
    precision: float
    recall: float
    f1: float

    @property
    def implied_f1(self):
        """2PR/(P+R) of the published P and R."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def inconsistent(self):
        return abs(self.f1 - self.implied_f1) > INCONSISTENT_POINTS

    def least_precision(self, positive_rate):
        """The lowest precision (%) the published recall allows on a test split whose share of
        positives is `positive_rate`: every negative predicted positive, R·π / (R·π + 1 − π)."""
        found = self.recall / 100.0 * positive_rate
        return 100.0 * found / (found + 1.0 - positive_rate)

    def precision_impossible(self, positive_rate):
        """The published precision is below `least_precision` by more than the rounding slack:
        the published recall cannot have come from a test split with this class balance."""
        return positive_rate is not None and \
            self.precision < self.least_precision(positive_rate) - INCONSISTENT_POINTS


@functools.lru_cache(maxsize=1)
def cells():
    """{(table, dataset, row): PaperCell} of every published cell."""
    out = {}
    with open(PATH, newline="", encoding="utf-8") as f:
        for record in csv.DictReader(f):
            cell = PaperCell(record["table"], record["dataset"], record["row"],
                             float(record["precision"]), float(record["recall"]),
                             float(record["f1"]))
            out[(cell.table, cell.dataset, cell.row)] = cell
    return out


def paper_cell(table, dataset, row):
    """The published cell, or None when the paper has no such row."""
    return cells().get((table, dataset, row))


def display_name(row):
    """The paper's name of a row ('KD_SST+EmoNet'), or the row's own name when it has none."""
    return PAPER_NAMES.get(row, row)
