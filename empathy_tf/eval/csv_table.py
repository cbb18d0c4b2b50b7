"""A table's results as CSV: one line per (dataset, row), after `# label: text` comment lines
(read with `pandas.read_csv(path, comment="#")`).

The columns are declared once, in `COLUMNS`, as (name, value of a RowResult); `csv.DictWriter`
writes them. Fractions are written as percentages, differences in points, empty when undefined.

Example:

    text = csv_text(results, facts)
    [name for name, _ in COLUMNS][:3]     # ['dataset', 'row', 'in_paper']
"""

import csv
import io

from empathy_tf.eval import aggregate, provenance


def _pct(value):
    return "" if value is None else f"{100.0 * value:.4f}"


def _num(value, digits=4):
    return "" if value is None else f"{value:.{digits}f}"


def _p(value):
    return "" if value is None else f"{value:.4g}"


def _cells_with(status):
    return lambda r: " ".join(f"s{c.seed}f{c.fold}" for c in r.cells if c.status == status)


def _test(metric, index):
    return lambda r: _pct(r.test[metric][index])


def _pooled(metric):
    return lambda r: (_pct(r.pooled.metrics[metric][0])
                      if r.pooled and metric in r.pooled.metrics else "")


def _comparison(metric, value):
    def read(r):
        comparison = r.comparisons.get(metric)
        return "" if comparison is None else value(comparison)
    return read


def _difference(metric, field, write=_num):
    return _comparison(metric, lambda c: write(getattr(c.difference, field)))


def _bayes(metric, field):
    return _comparison(metric, lambda c: "" if c.bayes is None else _num(getattr(c.bayes, field)))


def _bootstrap(field, scale=100.0):
    return lambda r: "" if r.bootstrap is None else _num(scale * getattr(r.bootstrap, field))


def _paper(field, write=lambda v: _num(v, 2)):
    return lambda r: "" if r.paper is None else write(getattr(r.paper, field))


def _mlm(field):
    return lambda r: _num((r.mlm or {}).get(field))


COLUMNS = [
    ("dataset", lambda r: r.dataset),
    ("row", lambda r: r.row.name),
    ("experiment", lambda r: r.row.experiment),
    ("in_paper", lambda r: int(r.in_paper)),
    ("floor", lambda r: int(r.row.floor)),
    ("protocol", lambda r: r.protocol.text),
    ("train_fraction", lambda r: f"{r.row.train_fraction:g}"),
    ("train_examples", lambda r: _num(r.train_examples, 1)),
    ("grouping", lambda r: provenance.by_value([c for c in r.cells if c.record],
                                               provenance.grouping)),
    ("cells_finished", lambda r: len(r.finished)),
    ("cells_requested", lambda r: len(r.cells)),
    ("cells_unfinished", _cells_with("unfinished")),
    ("cells_not_run", _cells_with("not_started")),
    ("cells_failed", _cells_with("failed")),
    *((f"test_{m}_{stat}", _test(m, i)) for m in aggregate.METRICS
      for i, stat in enumerate(("mean", "std"))),
    *((f"pooled_{m}", _pooled(m)) for m in aggregate.POOLED_METRICS),
    ("pooled_seeds", lambda r: " ".join(map(str, r.pooled.seeds)) if r.pooled else ""),
    ("pooled_examples", lambda r: len(r.pooled.ids) if r.pooled else ""),
    ("compared_with", lambda r: next((c.baseline for c in r.comparisons.values()), "")),
    ("test_train_ratio", _comparison("f1", lambda c: _num(c.difference.test_train_ratio))),
    ("diff_n", _comparison("f1", lambda c: c.difference.n)),
    *(column for m in aggregate.COMPARED_METRICS for column in (
        (f"diff_{m}_mean", _difference(m, "mean")),
        (f"diff_{m}_ci_low", _difference(m, "ci_low")),
        (f"diff_{m}_ci_high", _difference(m, "ci_high")),
        (f"diff_{m}_p", _difference(m, "p_value", _p)),
        (f"diff_{m}_p_holm", _comparison(m, lambda c: _p(c.p_holm))),
        (f"diff_{m}_mdd", _difference(m, "mdd")),
        (f"diff_{m}_p_worse", _bayes(m, "p_worse")),
        (f"diff_{m}_p_equivalent", _bayes(m, "p_equivalent")),
        (f"diff_{m}_p_better", _bayes(m, "p_better")))),
    ("rope", _comparison("f1", lambda c: "" if c.bayes is None else _num(c.bayes.rope, 2))),
    ("bootstrap_f1_diff", _bootstrap("observed")),
    ("bootstrap_ci_low", _bootstrap("ci_low")),
    ("bootstrap_ci_high", _bootstrap("ci_high")),
    ("bootstrap_p", lambda r: "" if r.bootstrap is None else _p(r.bootstrap.p_value)),
    ("bootstrap_samples", lambda r: r.bootstrap.samples if r.bootstrap else ""),
    ("paper_precision", _paper("precision")),
    ("paper_recall", _paper("recall")),
    ("paper_f1", _paper("f1")),
    ("paper_implied_f1", _paper("implied_f1")),
    ("paper_inconsistent", _paper("inconsistent", int)),
    ("test_positive_rate", lambda r: _num(r.test_positive_rate, 4)),
    ("paper_precision_impossible", lambda r: "" if r.paper is None
     else int(r.paper.precision_impossible(r.test_positive_rate))),
    ("delta_f1_vs_paper", lambda r: _num(r.delta_paper)),
    ("source_test_f1_mean", lambda r: _pct(r.source_f1[0])),
    ("source_test_f1_std", lambda r: _pct(r.source_f1[1])),
    ("mlm_steps", lambda r: " ".join(map(str, (r.mlm or {}).get("steps", [])))),
    ("mlm_loss_first20", _mlm("loss_first20")),
    ("mlm_loss_last20", _mlm("loss_last20")),
    ("wall_time_s", lambda r: round(provenance.wall_time(r.finished), 1)),
    ("notes", lambda r: "; ".join(r.notes)),
]


def csv_text(results, facts):
    """The CSV text: the facts as comments, then one line per result."""
    out = io.StringIO()
    for label, text in facts:
        out.write(f"# {label}: {text}\n")
    writer = csv.DictWriter(out, fieldnames=[name for name, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow({name: value(result) for name, value in COLUMNS})
    return out.getvalue()
