"""The header of a table: the facts behind its numbers, read from the cells' files.

Command, protocol, grouping, seeds and folds, the statistics used, encoders, precision, code
version, data, machine and compute; a value that differs between cells is listed with its rows
("0.1+old (rows bert, lstm); 0.1+new (row kd_sst)").

Example:

    facts = header_facts(results, "runs", argv=sys.argv, rope=1.0)
    dict(facts)["Grouping"]      # 'response_id' (from config.data.group_by), or 'none'
"""

import sys
import time

from empathy_tf import protocols
from empathy_tf.eval import format as fmt


def wall_time(finished):
    return sum(float(c.metrics.get("wall_time_s") or 0) for c in finished)


def _described(results):
    """The cells whose settings the header describes: the finished ones (whose numbers are
    shown), or every recorded one when none finished."""
    cells = [c for r in results for c in r.cells]
    return [c for c in cells if c.status == "finished"] or [c for c in cells if c.record]


def by_value(cells, value_fn, applies=lambda config: True):
    """'a' when every matching cell agrees, else 'a (rows x, y); b (row z)'; where one row has
    two values (a table over several datasets), 'a (dataset d); b (dataset e)'."""
    values = {}   # value -> {"row": [...], "dataset": [...]}, in order of appearance
    for cell in cells:
        if not cell.record or not applies(cell.record["config"]):
            continue
        value = value_fn(cell)
        if value is None:
            continue
        named = values.setdefault(str(value), {"row": [], "dataset": []})
        dataset = cell.record["config"]["data"]["dataset"]
        for kind, name in (("row", cell.row), ("dataset", dataset)):
            if name not in named[kind]:
                named[kind].append(name)
    if not values:
        return "n/a (no recorded cell uses it)"
    if len(values) == 1:
        return next(iter(values))
    kind = "row"
    for candidate in ("row", "dataset"):
        names = [name for named in values.values() for name in named[candidate]]
        if len(names) == len(set(names)):   # each row (else dataset) has one value
            kind = candidate
            break
    return "; ".join(f"{value} ({kind if len(named[kind]) == 1 else kind + 's'} "
                     f"{', '.join(named[kind])})" for value, named in values.items())


def grouping(cell):
    """The field the cell's splits keep together: split.json's record of the target task when it
    has one (null there: `auto` resolved to none, e.g. TwittEmp), else `config.data.group_by`;
    absent or empty: 'none'."""
    task = cell.record["config"]["data"]["dataset"]
    record = (cell.split or {}).get(task) or {}
    value = (record["group_by"] if "group_by" in record
             else cell.record["config"]["data"].get("group_by"))
    return value if value else "none"


def _encoder(cell):
    """The cell's encoder, from the sections its identity holds (None: a row without one)."""
    identity, config = cell.record.get("identity", {}), cell.record["config"]
    if "glove" in identity:
        path = config["glove"]["glove"]
        return f"GloVe {path}" if path else "GloVe 6B.50d (embedded)"
    return config["bert"]["encoder"] if "bert" in identity else None


def protocol_text(text):
    protocol = protocols.protocol_spec(text)
    k, r = protocol.folds, protocol.repeats
    return {"split": "split (one seeded train/dev/test split per seed)",
            "repeated": f"{text} ({r} seeded splits, seeds 0-{r - 1})",
            "kfold": f"{text} (stratified {k}-fold cross-validation: each fold is the test "
                     "split once)",
            "repeated_kfold": f"{text} ({r} seeds × stratified {k}-fold cross-validation: "
                              f"cells seed<r>/fold<f>, r < {r}, f < {k})"}[protocol.kind]


def statistics_text(protocol_texts, rope, comparisons, requested=None, split_ratios=()):
    """How the differences to the baseline were tested, for the protocols in the table.
    `comparisons`: those with a p-value (Holm's family); `requested`: all the table asks for;
    `split_ratios`: the n_test/n_train of the rows made of seeded splits (0: none recorded)."""
    parsed = [protocols.protocol_spec(p) for p in protocol_texts]
    cv = [p for p in parsed if p.cross_validation]
    parts = []
    if cv:
        ratios = ", ".join(f"{p.text}: 1/{p.folds - 1} = {p.test_train_ratio:.3f}" for p in cv)
        parts.append("corrected resampled t-test (Nadeau & Bengio 2003; variance × (1/n + "
                     f"n_test/n_train), n_test/n_train = {ratios}) and the Bayesian correlated "
                     f"t-test (Benavoli et al. 2017, `baycomp`) with ROPE ±{rope:g} points")
    if len(cv) < len(parsed):
        known = sorted({round(r, 3) for r in split_ratios if r})
        if known:
            span = f"{known[0]:.3f}" + (f"-{known[-1]:.3f}" if len(known) > 1 else "")
            ratio = (f"n_test/n_train = {span} (the test split over dev and training, from the "
                     "cells' split.json)")
            parts.append(f"over seeded splits likewise, {ratio}: their training sets are drawn "
                         "from the same examples" if cv else
                         "corrected resampled t-test (Nadeau & Bengio 2003; variance × (1/n + "
                         f"n_test/n_train)) over seeded splits, whose training sets are drawn "
                         f"from the same examples: {ratio}")
        if not known or not all(split_ratios):
            parts.append("the plain paired t-test for seeded splits with no split.json")
    unfinished = (f" (of {requested} requested: the others have no cells yet)"
                  if requested is not None and requested > comparisons else "")
    parts.append(f"p adjusted by Holm over the table's {fmt.plural(comparisons, 'comparison')} "
                 f"with a p-value{unfinished} per metric; "
                 "MDD: the smallest true difference detected with 80% power at α = 0.05")
    return "; ".join(parts)


def header_facts(results, output_dir, argv=None, rope=1.0):
    """[(label, text)] of the settings a reader needs to interpret the numbers."""
    requested = [(c, config) for r in results for c, config in zip(r.cells, r.configs)]
    described = _described(results)
    finished = [c for c in described if c.status == "finished"]
    with_aux = lambda config: bool(config["data"]["aux_tasks"])  # noqa: E731
    protocol_texts = list(dict.fromkeys(config.data.protocol for _, config in requested))
    cross_validated = [p for p in protocol_texts if protocols.protocol_spec(p).cross_validation]
    requested_comparisons = sum(1 for r in results if r.comparisons)
    # Holm's family (per metric): the comparisons aggregate.summarize adjusted.
    comparisons = sum(1 for r in results
                      if any(c.p_holm is not None for c in r.comparisons.values()))
    facts = [
        ("Command", f"`{fmt.command(sys.argv if argv is None else argv)}`"),
        ("Protocol", "; ".join(protocol_text(p) for p in protocol_texts)),
        ("Grouping (examples sharing this field never straddle train/dev/test)",
         by_value(described, grouping)),
        ("Seeds", fmt.numbers(config.seed for _, config in requested)
         + " (mean ± sample std over finished cells, ddof=1; std 0.00 for a single cell)"),
    ]
    if cross_validated:
        facts.append(("Folds", fmt.numbers(config.data.fold for _, config in requested
                                           if config.data.protocol in cross_validated)))
    fractions = {r.row.train_fraction for r in results}
    if fractions != {1.0}:
        facts.append(("Training fractions", ", ".join(f"{f:g}" for f in sorted(fractions))
                      + " of each cell's training split (dev and test unchanged)"))
    facts += [
        ("Statistics", statistics_text(
            protocol_texts, rope, comparisons, requested_comparisons,
            [r.test_train_ratio for r in results
             if r.finished and not r.protocol.cross_validation])),
        ("Encoder(s)", by_value(described, _encoder)),
        ("Emotion dataset (rows with the emotion slot)",
         by_value(described, lambda c: c.record["config"]["data"]["emotion_dataset"],
                  lambda config: "emotion" in config["data"]["aux_tasks"])),
        ("Best-epoch selection",
         by_value(described, lambda c: "dev " + c.record["config"]["trainer"]["selection"]
                  if "trainer" in c.record.get("identity", {}) else None)),
        ("Aux cap (training examples per auxiliary task, 0 = all)",
         by_value(described, lambda c: c.record["config"]["data"]["aux_cap"], with_aux)),
        ("Numeric precision", by_value(finished, lambda c: c.metrics.get("precision"))
         if finished else "n/a (no finished cell)"),
        ("Code version(s)", by_value(described, lambda c: (c.metrics or {}).get("code_version")
                                     or c.record.get("code_version"))),
        ("Data", by_value(described, lambda c: c.record.get("data_dir"))),
        ("Machine(s)", by_value(described, lambda c: c.record.get("machine"))),
        ("Compute", f"{fmt.duration(wall_time(finished))} summed over {len(finished)} finished "
                    f"of {len(requested)} requested cells"),
        ("TensorBoard", f"`tensorboard --logdir {output_dir}`"),
    ]
    if any(config.smoke for _, config in requested):
        facts.append(("Smoke", "yes: tiny random encoder, a few dozen examples, one epoch; the "
                               "numbers only show that the pipeline runs"))
    facts.append(("Written", time.strftime("%Y-%m-%d %H:%M:%S")))
    return facts
