"""Table 7: unsupervised domain adaptation from news (NewsEmp) to health tweets (TwittEmp).

Rows (each for one or more seeds; a seed fixes the source and target splits and the fine-tuning):

- `source_only`: BERT fine-tuned on NewsEmp (epoch chosen on NewsEmp dev), tested on TwittEmp test.
- `pretrain_<corpus>`: the encoder first continues masked-LM pre-training on an unlabeled corpus, then
  as `source_only`. Offline corpora: `semeval_tweets`, `carer_tweets`; the paper's, which need files
  under `<data_dir>/corpora/` (data/README.md): `empatheticdialogues`, `dailydialog`, `goemotions`,
  `isear`, `health_tweets`. `--exp=pretrain --corpus=text:PATH` uses your own file (one document per
  line). The adapted encoder is shared by all seeds and rows of the same corpus and settings.
- `target_only`: the in-domain upper bound, i.e. the `bert` experiment on TwittEmp (same split).

Groups: `table7` (every row) and `table7_offline` (the rows whose corpora are built in). A group
writes `<output_dir>/tables/table7.md` (`table7-smoke.md` with --smoke); rows whose data is missing
are listed there with the reason.

    python -m experiments.domain_adaptation --exp=table7 --data_dir=../shared/data --seeds=0,1,2
    python -m experiments.domain_adaptation --exp=pretrain_semeval_tweets --mlm_only --mlm_steps=200
    python -m experiments.domain_adaptation --exp=pretrain --corpus=text:my_tweets.txt
    python -m experiments.domain_adaptation --exp=table7_offline --smoke   # seconds, tiny encoder

Example (library use):

    results = run_rows(["source_only", "target_only"], ctx, seeds=[0])
    write_table7(results, ctx.output_dir)
"""

import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags, logging

from empathy_tf import config as config_lib
from empathy_tf import domain_adaptation as da
from empathy_tf.errors import ConfigError, EmpathyTFError

OFFLINE_CORPORA = ("semeval_tweets", "carer_tweets")
PAPER_CORPORA = ("empatheticdialogues", "dailydialog", "goemotions", "isear", "health_tweets")
ROWS = ("source_only", *(f"pretrain_{c}" for c in OFFLINE_CORPORA + PAPER_CORPORA), "target_only")
GROUPS = {
    "table7": ROWS,
    "table7_offline": ("source_only", *(f"pretrain_{c}" for c in OFFLINE_CORPORA), "target_only"),
}
CORPUS_LABELS = {
    "semeval_tweets": "SemEval-2018 E-c tweets (train)", "carer_tweets": "CARER tweets (train)",
    "empatheticdialogues": "EmpatheticDialogues", "dailydialog": "DailyDialog",
    "goemotions": "GoEmotions", "isear": "ISEAR", "health_tweets": "Health News in Twitter",
}


def names():
    return [*ROWS, "pretrain", *GROUPS]


def expand(name):
    if name in GROUPS:
        return GROUPS[name]
    if name in ROWS or name == "pretrain":
        return (name,)
    raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(names())}")


@dataclasses.dataclass(frozen=True)
class Options:
    """What every row shares: datasets, base encoder, overrides, MLM settings, smoke."""
    source: str = "newsemp"
    target: str = "twittemp"
    encoder: str = "minilm"
    overrides: tuple = ()            # ExperimentConfig key=value for fine-tuning
    mlm: da.MlmSpec = da.MlmSpec()
    corpus: str = ""                 # for the generic `pretrain` row
    smoke: bool = False


def _finetune_config(options, dataset, seed):
    # The registry's `bert` row, so that source fine-tuning and target_only share its settings.
    from experiments import registry
    config = config_lib.apply_overrides(registry.get_config("bert"),
                                        {"dataset": dataset, "encoder": options.encoder})
    config = config_lib.apply_overrides(config, list(options.overrides))
    return dataclasses.replace(config, seed=seed).validate()


def row_corpus(row, options):
    if row == "pretrain":
        if not options.corpus:
            raise ConfigError("--exp=pretrain needs --corpus (a corpus name or text:PATH)")
        return options.corpus
    return row[len("pretrain_"):] if row.startswith("pretrain_") else ""


def row_name(row, options):
    return f"pretrain_{da.corpus_slug(options.corpus)}" if row == "pretrain" else row


def make_config(row, options, seed):
    """An `ExperimentConfig` (target_only) or a `UdaConfig` (every other row)."""
    from empathy_tf import runner
    if row == "target_only":
        config = _finetune_config(options, options.target, seed)
        return runner.smoke_config(config).validate() if options.smoke else config
    finetune = _finetune_config(options, options.source, seed)
    config = da.UdaConfig(name=row_name(row, options), finetune=finetune, target=options.target,
                          corpus=row_corpus(row, options), mlm=options.mlm)
    return (da.smoke_uda_config(config) if options.smoke else config).validate()


def run_cell(config, ctx):
    from empathy_tf import runner
    if isinstance(config, da.UdaConfig):
        return da.run_uda(config, ctx), da.run_dir_for(config, ctx)
    return runner.run_experiment(config, ctx), runner.run_dir_for(config, ctx)


def run_rows(rows, ctx, seeds=(0,), options=Options(), keep_going=False):
    """Runs rows × seeds; returns {row: {"metrics": [...], "error": str | None}} in row order.

    With `keep_going`, a row whose data is missing (or that fails with a user-facing error) is
    recorded with its error and the others still run; otherwise the error propagates.
    """
    results = {}
    for row in rows:
        name = row_name(row, options)
        results[name] = {"row": row, "metrics": [], "error": None,
                         "corpus": row_corpus(row, options) if row != "target_only" else ""}
        for seed in seeds:
            try:
                config = make_config(row, options, seed)
                metrics, run_dir = run_cell(config, ctx)
            except EmpathyTFError as e:
                if not keep_going:
                    raise
                logging.error("%s seed %d: %s", name, seed, e)
                results[name]["error"] = str(e)
                break
            results[name]["metrics"].append(metrics)
            print(summary_line(name, seed, metrics, run_dir), flush=True)
    return results


def summary_line(name, seed, metrics, run_dir):
    test = metrics["test"]
    parts = [f"{k}={test[k]:.4f}" for k in ("precision", "recall", "f1", "accuracy", "macro_f1")
             if k in test]
    source = metrics.get("source")
    extra = f" | source {source['task']} test f1={source['test']['f1']:.4f}" if source else ""
    mlm = metrics.get("mlm")
    if mlm:
        extra += (f" | MLM {mlm['steps']} steps, loss {mlm['loss_first20']:.3f}->"
                  f"{mlm['loss_last20']:.3f}{' (reused)' if mlm['reused'] else ''}")
    return (f"{name} seed={seed}: target {metrics['dataset']} test " + " ".join(parts) + extra +
            f"  ({metrics.get('wall_time_s', 0):.0f}s, {run_dir})")


# ---------------------------------------------------------------------------------------------
# The table.

def _pct_pm(values):
    """Mean ± sample std in %, like tables 4-6 (empathy_tf.reporting)."""
    from empathy_tf import reporting
    mean, std = reporting.mean_std([v for v in values if v is not None])
    return reporting.NOT_AVAILABLE if mean is None else f"{100 * mean:.2f} ± {100 * std:.2f}"


def _row_label(row, corpus):
    if row == "source_only":
        return "BERT, source only (no adaptation)", "—"
    if row == "target_only":
        return "BERT, target only (in-domain upper bound)", "—"
    return "BERT + MLM pre-training, then source", CORPUS_LABELS.get(corpus, f"`{corpus}`")


def format_table7(results, source="newsemp", target="twittemp", seeds=None):
    """Markdown in the layout of the paper's Table 7 (one row per setting, target-test P/R/F1)."""
    lines = [
        f"# Table 7: unsupervised domain adaptation, {source} → {target}",
        "",
        f"Target metrics (%) are on the {target} test split (the seeded split of each seed, the "
        f"same as `target_only`'s). Source-only and MLM rows train on the {source} train split "
        f"and select the epoch on the {source} dev split: no {target} label is used before "
        "testing. Values: mean ± sample std over seeds.",
        "",
        "| Setting | MLM corpus | P | R | F1 | Acc | Macro-F1 | Source test F1 | MLM steps "
        "(loss first→last 20) | Seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for name, entry in results.items():
        label, corpus = _row_label(entry["row"], entry["corpus"])
        ms = entry["metrics"]
        asked = len(seeds) if seeds else len(ms)
        if entry["error"]:
            notes.append(f"{name}: {entry['error']}")
            if not ms:
                lines.append(f"| {label} | {corpus} | n/a [{len(notes)}] |  |  |  |  |  |  | "
                             f"0/{asked} |")
                continue
            label += f" [{len(notes)}]"  # some seeds ran, a later one failed
        cells = [_pct_pm([m["test"].get(k) for m in ms])
                 for k in ("precision", "recall", "f1", "accuracy", "macro_f1")]
        source_f1 = _pct_pm([m["source"]["test"]["f1"] for m in ms if m.get("source")])
        mlm = next((m["mlm"] for m in ms if m.get("mlm")), None)
        mlm_cell = (f"{mlm['steps']} ({mlm['loss_first20']:.2f}→{mlm['loss_last20']:.2f})"
                    if mlm else "—")
        done = ",".join(str(m["seed"]) for m in ms)
        lines.append(f"| {label} | {corpus} | " + " | ".join(cells) +
                     f" | {source_f1} | {mlm_cell} | {len(ms)}/{asked} ({done}) |")
    if notes:
        lines += ["", "Rows (or seeds) not run:", ""]
        lines += [f"{i}. {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines) + "\n"


def write_table7(results, output_dir, source="newsemp", target="twittemp", seeds=None,
                 smoke=False):
    """Writes `<output_dir>/tables/table7[-smoke].md` atomically; returns its path."""
    from empathy_tf import io_utils, reporting
    path = reporting.table_paths(output_dir, "table7", smoke)["md"]
    io_utils.atomic_write_text(path, format_table7(results, source, target, seeds))
    return path


# ---------------------------------------------------------------------------------------------
# Command line.

def define_flags():
    """Flags are defined here, not at import, so that the module imports next to experiments.run."""
    flags.DEFINE_string("exp", "table7_offline", f"Row or group: {', '.join(names())}.")
    flags.DEFINE_string("source", "newsemp", "Labelled source task.")
    flags.DEFINE_string("target", "twittemp", "Target task (only its test split is used, except "
                        "by target_only).")
    flags.DEFINE_string("corpus", "", "MLM corpus for --exp=pretrain: a corpus name or text:PATH.")
    flags.DEFINE_string("data_dir", os.environ.get("EMPATHY_DATA_DIR", "./data"),
                        "Folder laid out like data/README.md (default: $EMPATHY_DATA_DIR, else ./data).")
    flags.DEFINE_string("output_dir", "./runs", "Run folders, adapted encoders, tables.")
    flags.DEFINE_string("tfds_dir", None, "TFDS prepared-data folder.")
    flags.DEFINE_string("encoder", "minilm", "Base encoder: minilm, a keras-hub preset, a folder, tiny.")
    flags.DEFINE_integer("seed", 0, "Seed of the splits and of fine-tuning.")
    flags.DEFINE_list("seeds", None, "Several seeds, e.g. 0,1,2 (overrides --seed).")
    flags.DEFINE_bool("smoke", False, "Tiny encoder, a few dozen examples and texts, a few MLM steps.")
    flags.DEFINE_bool("overwrite", False, "Redo finished cells (old folders are moved aside).")
    flags.DEFINE_bool("mlm_only", False, "Only (re)use the MLM-adapted encoder of each pretrain_* "
                      "row; no fine-tuning (needs no source or target data).")
    flags.DEFINE_multi_string("override", [], "Fine-tuning config field as key=value (repeatable).")
    defaults = da.MlmSpec()
    flags.DEFINE_integer("mlm_steps", defaults.steps, "MLM pre-training steps.")
    flags.DEFINE_integer("mlm_batch_size", defaults.batch_size, "MLM batch size.")
    flags.DEFINE_integer("mlm_max_seq_length", defaults.max_seq_length, "MLM max wordpieces.")
    flags.DEFINE_float("mlm_learning_rate", defaults.learning_rate, "MLM peak learning rate.")
    flags.DEFINE_integer("mlm_max_texts", defaults.max_texts, "Use at most this many corpus texts "
                         "(0 = all).")
    flags.DEFINE_string("mlm_precision", defaults.precision, "auto, float32 or mixed_bfloat16.")
    flags.DEFINE_string("mlm_bias_grad_impl", defaults.bias_grad_impl, "float32 (bias gradients "
                        "summed in float32) or keras (TensorFlow's kernel: bfloat16 sums on CPU).")


def options_from_flags(FLAGS):
    mlm = da.MlmSpec(steps=FLAGS.mlm_steps, batch_size=FLAGS.mlm_batch_size,
                     max_seq_length=FLAGS.mlm_max_seq_length,
                     learning_rate=FLAGS.mlm_learning_rate, max_texts=FLAGS.mlm_max_texts,
                     precision=FLAGS.mlm_precision,
                     bias_grad_impl=FLAGS.mlm_bias_grad_impl).validate()
    return Options(source=FLAGS.source, target=FLAGS.target, encoder=FLAGS.encoder,
                   overrides=tuple(FLAGS.override), mlm=mlm, corpus=FLAGS.corpus, smoke=FLAGS.smoke)


def run_mlm_only(rows, ctx, options):
    """Adapts (or finds) the encoder of each pretrain row; returns the number of failed rows."""
    failed = 0
    for row in rows:
        corpus = row_corpus(row, options) if row != "target_only" else ""
        if not corpus:
            continue
        spec = da.smoke_mlm_spec(options.mlm) if options.smoke else options.mlm
        encoder = "tiny" if options.smoke else options.encoder
        start = time.time()
        try:
            adapted = da.adapt_encoder(corpus, ctx, spec, encoder=encoder)
        except EmpathyTFError as e:
            if len(rows) == 1:
                raise
            print(f"error: {row_name(row, options)}: {e}", file=sys.stderr)
            failed += 1
            continue
        info = adapted.info
        reused = f" (reused; this call {time.time() - start:.0f}s)" if adapted.reused else ""
        print(f"{row_name(row, options)}: MLM on {corpus} ({info['texts']} texts), "
              f"{info['steps']} steps x {info['spec']['batch_size']}: "
              f"loss {info['loss_first20']:.3f} (first 20) -> {info['loss_last20']:.3f} (last 20), "
              f"accuracy {info['accuracy_last20']:.3f}, {info['selected_fraction']:.3f} of "
              f"wordpieces selected, train {info['train_time_s']:.0f}s, wall {info['wall_time_s']:.0f}s"
              f"{reused} -> {adapted.folder}", flush=True)
    return failed


def main(argv):
    del argv
    from empathy_tf import runner
    FLAGS = flags.FLAGS
    try:
        options = options_from_flags(FLAGS)
        rows = expand(FLAGS.exp)
        seeds = [int(s) for s in FLAGS.seeds] if FLAGS.seeds else [FLAGS.seed]
        ctx = runner.RunContext(FLAGS.data_dir, FLAGS.output_dir, FLAGS.tfds_dir, FLAGS.overwrite)
        if FLAGS.mlm_only:
            return 2 if run_mlm_only(rows, ctx, options) else 0
        group = FLAGS.exp in GROUPS
        results = run_rows(rows, ctx, seeds, options, keep_going=group)
        if group:
            path = write_table7(results, FLAGS.output_dir, options.source, options.target,
                                seeds, options.smoke)
            print(f"wrote {path}")
            failed = [n for n, r in results.items() if r["error"]]
            if failed:
                print(f"error: rows not run: {', '.join(failed)} (reasons in {path})",
                      file=sys.stderr)
            if all(not r["metrics"] for r in results.values()):
                return 2
        return 0
    except EmpathyTFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    define_flags()
    app.run(lambda argv: sys.exit(main(argv)))
