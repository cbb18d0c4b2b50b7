"""Writes a table: Markdown, CSV and a chart (PNG and PDF) from the cells `experiments.run` asked
for, atomically, to `<output_dir>/tables/<table>[-<protocol>][-smoke].{md,csv,png,pdf}`.

The work is split by job:

- `aggregate`: cells → per-row numbers (means, pooled folds, comparisons with the baseline:
  corrected t interval, Holm-adjusted p, Bayesian probabilities with a ROPE, MDD; bootstrap);
- `provenance`: the header's facts (command, protocol, grouping, statistics, versions, ...);
- `markdown`, `csv_table`, `chart`: the three renderings;
- `stats`: the statistics themselves, `tables`: what a table and a protocol are.

Example:

    paths, markdown = write_table(registry.get_table("table4"),
                                  [("bert", config, run_dir), ...], "runs", failed={}, rope=1.0)
    paths["md"]   # runs/tables/table4-kfold10.md (also "csv", "png" and "pdf")
"""

import os

from empathy_tf import io_utils
from empathy_tf.eval import aggregate, chart, csv_table, markdown, provenance

BOOTSTRAP_SAMPLES = aggregate.BOOTSTRAP_SAMPLES


def table_paths(output_dir, table_name, smoke, protocol="split", group_by="auto"):
    """`tables/<table>[-<protocol>][-ungrouped|-by_<field>][-smoke].*`: a k-fold table never
    overwrites a split one, nor a table of by-example splits (`--group_by=none`) a grouped one."""
    suffix = "" if protocol == "split" else "-" + protocol.replace(":", "")
    suffix += {"auto": "", "none": "-ungrouped"}.get(group_by, f"-by_{group_by}")
    base = os.path.join(output_dir, "tables", table_name + suffix + ("-smoke" if smoke else ""))
    return {kind: f"{base}.{kind}" for kind in ("md", "csv", "png", "pdf")}


def write_table(table, cells, output_dir, failed=None, argv=None,
                bootstrap_samples=BOOTSTRAP_SAMPLES, rope=aggregate.ROPE):
    """Writes `<output_dir>/tables/<table>[-<protocol>][-ungrouped][-smoke].{md,csv,png,pdf}`
    atomically (`table_paths`).

    Args:
        table: a `tables.TableSpec`.
        cells: [(row name, ExperimentConfig, run_dir)] of every requested cell.
        output_dir: the --output_dir the cells were run into.
        failed: {run_dir: message} of cells that failed in this invocation.
        argv: the command line (default sys.argv), shown in the header.
        bootstrap_samples: resamples of the paired bootstrap over pooled predictions.
        rope: half-width of the region of practical equivalence, in points of F1 / macro-F1.

    Returns:
        ({"md", "csv", "png", "pdf": path}, the Markdown text).
    """
    results = aggregate.summarize(table, aggregate.group_cells(table, cells, failed),
                                  bootstrap_samples, rope)
    smoke = any(config.smoke for _, config, _ in cells)
    protocols = {config.data.protocol for _, config, _ in cells}
    groupings = {config.data.group_by for _, config, _ in cells}
    paths = table_paths(output_dir, table.name, smoke,
                        protocols.pop() if len(protocols) == 1 else "mixed",
                        groupings.pop() if len(groupings) == 1 else "mixed")
    facts = provenance.header_facts(results, output_dir, argv, rope)
    text = markdown.markdown(table, results, facts, os.path.basename(paths["png"]),
                             bootstrap_samples, rope)
    if table.is_curve:
        chart.plot_curve(table, results, paths, smoke)
    else:
        chart.plot_table(table, results, paths, smoke, rope)
    io_utils.atomic_write_text(paths["csv"], csv_table.csv_text(results, facts))
    io_utils.atomic_write_text(paths["md"], text)
    return paths, text
