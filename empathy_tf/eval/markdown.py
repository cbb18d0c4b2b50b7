"""A table's results as Markdown: the header facts, how to read it, and per dataset our numbers,
the comparisons with the baseline (macro-F1 and F1) and the paper's numbers.

Example:

    text = markdown(spec, results, facts, "table4-kfold10.png", rope=1.0)
"""

from empathy_tf.eval import aggregate
from empathy_tf.eval import format as fmt
from empathy_tf.eval import paper as paper_lib

LABELS = {"precision": "P", "recall": "R", "f1": "F1", "accuracy": "Acc", "macro_f1": "Macro-F1"}
INCONSISTENT_MARK = "†"
IMPOSSIBLE_PRECISION_MARK = "‡"

HOW_TO_READ = (
    "P, R and F1 are those of the positive class (empathy, seeking or providing), as in the "
    "paper; Acc and Macro-F1 (the mean F1 of both classes) are extra. Values are test-split "
    "percentages: mean ± sample std over the finished cells (the Cells column says how many of "
    "the requested ones that is). {floors}*Pooled* (k-fold only): "
    "all folds' test predictions of a seed taken together, so every example is predicted exactly "
    "once, and the metrics computed once over them (mean over seeds when several). "
    "*Δ vs {baseline}*: the mean over cells paired by seed and fold of (row − {baseline}), in "
    "points, with its 95% interval; under k-fold the folds' training sets overlap, so the "
    "interval and p use the corrected resampled t-test (variance × (1/n + n_test/n_train)), "
    "wider than the plain one. *p (Holm)*: p adjusted for the table's several comparisons with "
    "{baseline}. *P(worse) / P(≈) / P(better)*: the Bayesian correlated t-test's posterior "
    "probability that the row is worse than {baseline} by more than {rope:g} points, within "
    "±{rope:g} points (practically equivalent), or better by more than {rope:g} points. *MDD*: "
    "the smallest true difference this protocol and row detect with 80% power (α = 0.05): a "
    "smaller difference can be real yet not significant. *Bootstrap*: the F1 difference on the "
    "pooled predictions, resampling the examples {samples} times (the same resample for both "
    "rows); its 95% percentile interval says how much the difference depends on which examples "
    "were tested. Δ F1 vs paper: our mean − the published F1. {na}: not available.")

# What each floor row predicts; the reading guide names only the floors a table has.
FLOORS = {
    "all_positive": ("the positive class for every text: recall 100%, an F1 set by how common the "
                     "positive class is, and a low Macro-F1"),
    "same_writer": "each essay's label from its writer's training essays: the leak a "
                   "writer-grouped split closes",
}


def _floors_text(table):
    names = sorted({r.experiment for r in table.rows if r.floor})
    if not names:
        return ""
    described = "; ".join(f"`{n}`: {FLOORS[n]}" if n in FLOORS else f"`{n}`" for n in names)
    return f"Floor rows ({described}) show what a trained model must beat. "


def row_label(result):
    """'`bert`', '`tfidf_lr` (not in paper)', '`same_writer` (not in paper; floor)'."""
    marks = ([] if result.in_paper else ["not in paper"]) + (["floor"] if result.row.floor else [])
    return f"`{result.row.name}`" + (f" ({'; '.join(marks)})" if marks else "")


def _table(header, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"] + \
        ["| " + " | ".join(row) + " |" for row in rows]


def _mlm_text(mlm):
    if not mlm:
        return fmt.NA
    steps = "/".join(map(str, mlm["steps"])) or "?"
    losses = ("" if mlm["loss_first20"] is None or mlm["loss_last20"] is None
              else f" ({mlm['loss_first20']:.2f}→{mlm['loss_last20']:.2f})")
    return steps + losses


def difference_text(diff):
    """'+1.23 [-0.50, +2.96] (n=10)'."""
    if diff is None:
        return fmt.NA
    if diff.mean is None:
        return f"{fmt.NA} ({diff.note})"
    text = fmt.points(diff.mean, signed=True)
    if diff.ci_low is not None:
        text += f" {fmt.interval(diff.ci_low, diff.ci_high)}"
    return text + f" (n={diff.n}{'; ' + diff.note if diff.note else ''})"


def probability(p):
    return fmt.NA if p is None else f"{p:.2f}"


def _bootstrap_text(boot):
    if boot is None:
        return fmt.NA
    return (f"{fmt.points(100 * boot.observed, signed=True)} "
            f"{fmt.interval(100 * boot.ci_low, 100 * boot.ci_high)}")


def _paper_f1_text(result):
    if result.paper is None:
        return fmt.NA
    return fmt.points(result.paper.f1) + (INCONSISTENT_MARK if result.paper.inconsistent else "")


def _pooled_text(pooled, metric):
    """'63.79' for one seed's pooled predictions, '63.79 ± 0.40' over several seeds."""
    if pooled is None or metric not in pooled.metrics:
        return fmt.NA
    mean, std = pooled.metrics[metric]
    return fmt.percent_pm(mean, std) if len(pooled.seeds) > 1 else fmt.percent(mean)


def _any_cross_validated(results):
    return any(r.protocol.cross_validation for r in results)


def _ours_table(results):
    cv = _any_cross_validated(results)
    source = any(r.source_f1[0] is not None for r in results)
    mlm = any(r.mlm for r in results)
    sizes = any(r.train_examples is not None for r in results)
    header = ["Row", "Cells", *(LABELS[m] for m in aggregate.METRICS)]
    header += [f"Pooled {LABELS[m]}" for m in aggregate.POOLED_METRICS] if cv else []
    header += ["Train examples"] if sizes else []
    header += ["Source test F1"] if source else []
    header += ["MLM steps (loss first→last 20)"] if mlm else []
    rows = []
    for r in results:
        row = [row_label(r), aggregate.cells_text(r),
               *(fmt.percent_pm(*r.test[m]) for m in aggregate.METRICS)]
        row += [_pooled_text(r.pooled, m) for m in aggregate.POOLED_METRICS] if cv else []
        row += [fmt.NA if r.train_examples is None else f"{r.train_examples:.0f}"] if sizes else []
        row += [fmt.percent_pm(*r.source_f1)] if source else []
        row += [_mlm_text(r.mlm)] if mlm else []
        rows.append(row)
    return _table(header, rows)


def comparison_cells(comparison):
    """[Δ [CI], p, p (Holm), P(worse), P(≈), P(better), MDD] of one Comparison."""
    if comparison is None:
        return [fmt.NA] * 7
    diff, bayes = comparison.difference, comparison.bayes
    return [difference_text(diff), fmt.p_value(diff.p_value), fmt.p_value(comparison.p_holm),
            *(probability(getattr(bayes, f, None))
              for f in ("p_worse", "p_equivalent", "p_better")),
            fmt.points(diff.mdd)]


def _compared_table(table, results, metric):
    cv = _any_cross_validated(results)
    bootstrap = cv and metric == "f1"
    several = len({table.baseline_of(r.row) for r in results} - {None}) > 1
    header = ["Row"] + (["vs"] if several else [])
    header += ["Δ [95% CI]", "p", "p (Holm)", "P(worse)", "P(≈)", "P(better)", "MDD"]
    header += ["Bootstrap Δ pooled F1 [95% CI]", "p (bootstrap)"] if bootstrap else []
    rows = []
    for r in results:
        name = table.baseline_of(r.row)
        row = [row_label(r)] + ([f"`{name}`" if name else fmt.NA] if several else [])
        if name is None:
            row += ["(baseline)"] + [fmt.NA] * 6 + (["(baseline)", fmt.NA] if bootstrap else [])
        else:
            row += comparison_cells(r.comparisons.get(metric))
            if bootstrap:
                row += [_bootstrap_text(r.bootstrap),
                        fmt.p_value(r.bootstrap.p_value if r.bootstrap else None)]
        rows.append(row)
    return _table(header, rows)


def _paper_table(results):
    header = ["Row", "Paper P", "Paper R", "Paper F1", "Δ F1 vs paper"]
    rows = []
    for r in results:
        if r.paper is None:
            rows.append([row_label(r), fmt.NA if r.in_paper else "not in paper", fmt.NA, fmt.NA,
                         fmt.NA])
        else:
            impossible = r.paper.precision_impossible(r.test_positive_rate)
            rows.append([row_label(r), fmt.points(r.paper.precision)
                         + (IMPOSSIBLE_PRECISION_MARK if impossible else ""),
                         fmt.points(r.paper.recall), _paper_f1_text(r),
                         fmt.points(r.delta_paper, signed=True)])
    return _table(header, rows)


def _curve_tables(table, results):
    """Per experiment compared with another: its difference per training fraction."""
    lines = []
    experiments = list(dict.fromkeys(r.row.experiment for r in results
                                     if table.baseline_of(r.row)))
    for experiment in experiments:
        rows_of = [r for r in results if r.row.experiment == experiment]
        base = next((r.row.experiment for r in results
                     if r.row.name == table.baseline_of(rows_of[0].row)), "?")
        header = ["Training fraction", "Train examples"]
        for metric in aggregate.COMPARED_METRICS:
            header += [f"Δ {LABELS[metric]} [95% CI]", "p (Holm)", "P(worse)", "P(≈)",
                       "P(better)"]
        rows = []
        for r in rows_of:
            row = [f"{r.row.train_fraction:g}",
                   fmt.NA if r.train_examples is None else f"{r.train_examples:.0f}"]
            for metric in aggregate.COMPARED_METRICS:
                cells = comparison_cells(r.comparisons.get(metric))
                row += [cells[0], cells[2], *cells[3:6]]
            rows.append(row)
        lines += ["", f"`{experiment}` − `{base}` at the same training fraction (points):", ""]
        lines += _table(header, rows)
    return lines


def markdown(table, results, facts, figure_name, bootstrap_samples=aggregate.BOOTSTRAP_SAMPLES,
             rope=aggregate.ROPE):
    smoke = any(label == "Smoke" for label, _ in facts)
    lines = [f"# {table.title}" + (" (smoke)" if smoke else ""), ""]
    if table.note:
        lines += [f"*{table.note}*", ""]
    lines += [f"- **{label}:** {text}" for label, text in facts]
    lines += ["", "## How to read it", "",
              HOW_TO_READ.format(baseline=f"`{table.baseline}`", samples=bootstrap_samples,
                                 na=fmt.NA, rope=rope, floors=_floors_text(table))]
    for dataset in table.datasets:
        section = [r for r in results if r.dataset == dataset]
        if not section:
            continue
        lines += ["", f"## {dataset}", "", "Ours (test split, %):", ""]
        lines += _ours_table(section)
        if table.is_curve:
            lines += _curve_tables(table, section)
        else:
            for metric in aggregate.COMPARED_METRICS:
                lines += ["", f"Against `{table.baseline}` in {LABELS[metric]} (points):", ""]
                lines += _compared_table(table, section, metric)
        if any(r.in_paper for r in section):
            lines += ["", f"The paper ({table.paper_table}, %):", ""]
            lines += _paper_table(section)
        notes = [f"- `{r.row.name}`: {note}" for r in section for note in r.notes]
        if notes:
            lines += ["", "Notes:", ""] + notes
    marked = [r for r in results if r.paper is not None and r.paper.inconsistent]
    if marked:
        lines += ["", f"{INCONSISTENT_MARK} The published F1 differs from 2PR/(P+R) of the "
                      f"published P and R by more than {paper_lib.INCONSISTENT_POINTS} points "
                      "(shown as published):", ""]
        lines += [f"- {r.dataset} `{r.row.name}`: P {fmt.points(r.paper.precision)}, R "
                  f"{fmt.points(r.paper.recall)} imply F1 {fmt.points(r.paper.implied_f1)}; "
                  f"published {fmt.points(r.paper.f1)}" for r in marked]
    impossible = [r for r in results if r.paper is not None
                  and r.paper.precision_impossible(r.test_positive_rate)]
    if impossible:
        lines += ["", f"{IMPOSSIBLE_PRECISION_MARK} The published precision is below what the "
                      "published recall allows at the class balance of the test split (ours, "
                      "from the same file): even with every negative predicted positive, "
                      "precision is at least R·π / (R·π + 1 − π), π the share of positives:", ""]
        lines += [f"- {r.dataset} `{r.row.name}`: R {fmt.points(r.paper.recall)} at π = "
                  f"{fmt.points(100 * r.test_positive_rate)}% needs P ≥ "
                  f"{fmt.points(r.paper.least_precision(r.test_positive_rate))}; published "
                  f"{fmt.points(r.paper.precision)}" for r in impossible]
    errors = [(r, c) for r in results for c in r.cells if c.status == "failed"]
    if errors:
        lines += ["", "## Failed cells", ""]
        lines += [f"- `{r.row.name}` {r.dataset} {aggregate.cell_name(c, r.protocol)}: {c.error}"
                  for r, c in errors]
    lines += ["", f"![{table.title}]({figure_name})"]
    return "\n".join(lines) + "\n"
