"""A table's charts, PNG and PDF, drawn from what the README argues from.

- A table (`plot_table`): per dataset, left the test macro-F1 and F1 of every row (mean with its
  95% interval over cells, corrected under k-fold; the paper's F1 as a diamond), right each
  row's difference to the baseline in macro-F1 and F1 with its corrected 95% interval and the
  ROPE shaded. Rows are named as in the paper; a row without finished cells is drawn as missing
  (its label says so), never as zero. Axes are zoomed to the trained rows (and the paper's
  values): a floor row beyond them (`same_writer`'s F1 of 0, `all_positive`'s macro-F1 of 33) is
  a triangle at the axis edge labelled with its value, so it does not squeeze the rows compared.
- A learning curve (`plot_curve`): per dataset, macro-F1 and F1 against the number of training
  examples (log axis), one line per experiment, with corrected 95% intervals.

Example:

    plot_table(spec, results, {"png": "t4.png", "pdf": "t4.pdf"}, rope=1.0)
"""

import numpy as np

from empathy_tf.eval import aggregate
from empathy_tf.eval import format as fmt
from empathy_tf.eval import paper as paper_lib

SCORE_BOUNDS = (0.0, 100.0)
DIFFERENCE_BOUNDS = (-100.0, 100.0)
METRIC_STYLE = {"macro_f1": ("Macro-F1", "o", "tab:blue"), "f1": ("F1", "s", "tab:orange")}
METRIC_OFFSET = {"macro_f1": 0.15, "f1": -0.15}   # a row's two metrics side by side


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # no display; must precede pyplot
    from matplotlib import pyplot as plt
    return plt


def _label(result):
    name = paper_lib.display_name(result.row.name)
    if not result.in_paper:
        name += "*"
    if result.row.floor:
        name += " (floor)"
    if not result.finished:
        return f"{name} (no finished cell)"
    if not result.complete:
        return f"{name} ({len(result.finished)}/{len(result.cells)} cells)"
    return name


def _zoom(ax, values, axis, bounds, pad_fraction=0.08):
    """Limits of `axis` around the finite values, padded, within `bounds` (an interval from two
    cells can be far wider than anything a score can be)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return
    low, high = max(min(finite), bounds[0]), min(max(finite), bounds[1])
    pad = max((high - low) * pad_fraction, 0.5)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(low - pad, high + pad)


def _zoom_values(rows, per_row):
    """The values an axis is zoomed to: the trained rows' (floors only when nothing else is);
    of a row with cells still missing only the mean (an interval from two cells can span the
    whole scale: its whiskers run off the axis)."""
    def values(r, means_and_ends):
        return means_and_ends if r.complete else means_and_ends[::3]
    trained = [v for r, row_values in zip(rows, per_row) if not r.row.floor
               for v in values(r, row_values)]
    return trained or [v for r, row_values in zip(rows, per_row) for v in values(r, row_values)]


def _mark_beyond(ax, positions, intervals, color):
    """Means beyond the x-axis limits: a triangle at the edge, labelled with the value."""
    low, high = ax.get_xlim()
    for y, (mean, _, _) in zip(positions, intervals):
        if mean is None or low <= mean <= high:
            continue
        left = mean < low
        edge = low if left else high
        ax.plot([edge], [y], marker="<" if left else ">", color=color, linestyle="none",
                clip_on=False, zorder=4)
        ax.annotate(f"{mean:.1f}", (edge, y), xytext=(7 if left else -7, 0),
                    textcoords="offset points", ha="left" if left else "right", va="center",
                    fontsize=7, color=color)


def _draw_rows(ax, rows, y, intervals, label, bounds, extra=()):
    """Each metric's (mean, low, high) per row as points with whiskers (`label` formatted with
    the metric's name), the x-axis zoomed to the trained rows and `extra`, values beyond it
    marked at its edge."""
    per_row = [[] for _ in rows]
    for metric, (name, marker, color) in METRIC_STYLE.items():
        for values, interval in zip(per_row, intervals[metric]):
            values += interval
        _errorbar(ax, y + METRIC_OFFSET[metric], intervals[metric], True, marker=marker,
                  color=color, label=label.format(name))
    _zoom(ax, list(extra) + _zoom_values(rows, per_row), "x", bounds)
    for metric, (_, _, color) in METRIC_STYLE.items():
        _mark_beyond(ax, y + METRIC_OFFSET[metric], intervals[metric], color)


def _difference(result, metric):
    """(mean, low, high) of a row's difference to the baseline; Nones where there is none."""
    comparison = result.comparisons.get(metric)
    d = comparison.difference if comparison else None
    return (None, None, None) if d is None or d.mean is None else (d.mean, d.ci_low, d.ci_high)


def _errorbar(ax, positions, intervals, horizontal, **style):
    """Points with interval whiskers; None entries are skipped (missing, not zero)."""
    shown = [(p, i) for p, i in zip(positions, intervals) if i[0] is not None]
    if not shown:
        return
    pos = np.array([p for p, _ in shown], dtype=float)
    mean = np.array([i[0] for _, i in shown], dtype=float)
    low = np.array([i[0] if i[1] is None else i[1] for _, i in shown], dtype=float)
    high = np.array([i[0] if i[2] is None else i[2] for _, i in shown], dtype=float)
    err = np.vstack([mean - low, high - mean])
    if horizontal:
        ax.errorbar(mean, pos, xerr=err, fmt=style.pop("marker", "o"), capsize=3,
                    linestyle="none", **style)
    else:
        ax.errorbar(pos, mean, yerr=err, fmt=style.pop("marker", "o") + "-", capsize=3, **style)


def plot_table(table, results, paths, smoke=False, rope=aggregate.ROPE):
    """Per dataset: scores and differences to the baseline (see the module docstring)."""
    plt = _pyplot()
    _save(plt, table_figure(plt, table, results, smoke, rope), paths)


def table_figure(plt, table, results, smoke=False, rope=aggregate.ROPE):
    """The figure `plot_table` saves (the caller closes it)."""
    datasets = [d for d in table.datasets if any(r.dataset == d for r in results)] or \
        list(table.datasets[:1])
    height = max(2.5, 0.38 * max(len(table.rows), 1) + 1.4)
    fig, axes = plt.subplots(len(datasets), 2, squeeze=False,
                             figsize=(12, height * len(datasets)),
                             gridspec_kw={"width_ratios": [1, 1]})
    for (score_ax, diff_ax), dataset in zip(axes, datasets):
        rows = [r for r in results if r.dataset == dataset]
        y = np.arange(len(rows))[::-1]          # first row on top
        published = [(yy, r.paper.f1) for yy, r in zip(y, rows) if r.paper is not None]
        _draw_rows(score_ax, rows, y, {m: [r.interval(m) for r in rows] for m in METRIC_STYLE},
                   "{} (mean, 95% CI)", SCORE_BOUNDS, extra=[v for _, v in published])
        if published:
            score_ax.scatter([v for _, v in published], [yy - 0.35 for yy, _ in published],
                             marker="D", color="tab:red", zorder=3, label="paper F1")
        score_ax.set_yticks(y)
        score_ax.set_yticklabels([_label(r) for r in rows])
        score_ax.set_xlabel("test score (%)")
        score_ax.set_title(f"{table.title.split(':')[0]} — {dataset}"
                           + (" (smoke)" if smoke else ""))
        score_ax.grid(axis="x", alpha=0.3)
        score_ax.legend(loc="best", fontsize=7)

        _draw_rows(diff_ax, rows, y, {m: [_difference(r, m) for r in rows] for m in METRIC_STYLE},
                   "Δ {} (95% CI, corrected)", DIFFERENCE_BOUNDS, extra=[0.0, -rope, rope])
        diff_ax.axvspan(-rope, rope, color="0.85", zorder=0, label=f"ROPE ±{rope:g}")
        diff_ax.axvline(0, color="black", linewidth=0.8)
        diff_ax.set_yticks(y)
        diff_ax.set_yticklabels([])
        diff_ax.set_ylim(score_ax.get_ylim())
        diff_ax.set_xlabel(f"difference to {paper_lib.display_name(table.baseline)} (points)")
        diff_ax.grid(axis="x", alpha=0.3)
        diff_ax.legend(loc="best", fontsize=7)
    fig.text(0.01, 0.002, "* not in the paper. Intervals: 95% t, corrected for the cells' "
             "overlapping training sets (folds or seeded splits; Nadeau & Bengio).", fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def plot_curve(table, results, paths, smoke=False):
    """Per dataset: macro-F1 and F1 against the training examples, a line per experiment."""
    plt = _pyplot()
    _save(plt, curve_figure(plt, table, results, smoke), paths)


def curve_figure(plt, table, results, smoke=False):
    """The figure `plot_curve` saves (the caller closes it). Only rows with finished cells are
    placed (and ticked) on the x axis: a fraction not run yet has no number of examples."""
    datasets = [d for d in table.datasets if any(r.dataset == d for r in results)] or \
        list(table.datasets[:1])
    fig, axes = plt.subplots(len(datasets), 2, squeeze=False,
                             figsize=(11, 3.8 * len(datasets)))
    by_examples = all(r.train_examples is not None for r in results if r.finished)
    for row_axes, dataset in zip(axes, datasets):
        rows = [r for r in results if r.dataset == dataset]
        experiments = list(dict.fromkeys(r.row.experiment for r in rows))
        for ax, metric in zip(row_axes, aggregate.COMPARED_METRICS):
            values = []
            ticks = set()
            for i, experiment in enumerate(experiments):
                points = [r for r in rows if r.row.experiment == experiment and r.finished]
                x = [(r.train_examples if by_examples and r.train_examples is not None
                      else 100.0 * r.row.train_fraction) for r in points]
                ticks.update(x)
                intervals = [r.interval(metric) for r in points]
                values += [v for iv in intervals for v in iv]
                # Each experiment a little to the side, so that the intervals do not overlap.
                dodge = 1.0 + 0.025 * (i - (len(experiments) - 1) / 2)
                _errorbar(ax, [v * dodge for v in x], intervals, False, marker="os^Dv"[i % 5],
                          color=f"C{i}", label=paper_lib.display_name(experiment))
            ax.set_xscale("log")
            ax.set_xticks(sorted(ticks))
            ax.set_xticklabels([f"{v:.0f}" for v in sorted(ticks)])
            ax.minorticks_off()
            ax.set_xlabel("training examples" if by_examples else "% of the training split")
            ax.set_ylabel(f"test {METRIC_STYLE[metric][0]} (%)")
            _zoom(ax, values, "y", SCORE_BOUNDS)
            ax.set_title(f"{dataset}: {METRIC_STYLE[metric][0]}" + (" (smoke)" if smoke else ""))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.text(0.01, 0.002, "Mean over cells with its 95% t interval, corrected for overlapping "
             "training sets (Nadeau & Bengio); missing points are not drawn.", fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def _save(plt, fig, paths):
    try:
        for kind in ("png", "pdf"):
            fmt.save_figure(fig, paths[kind])
    finally:
        plt.close(fig)
