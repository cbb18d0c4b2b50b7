"""Dataset characteristics, as in the paper's Tables 2-3 and Figure 2.

`analyze(name, data_dir, output_dir)` reads every split of a dataset's source (through
`tfds_source.load`, so exactly the texts training sees, TwittEmp placeholders included) and
writes into `<output_dir>/analysis/<source>/`:

- `stats.json`: examples per split and per class; length in words and sentences (mean, median,
  max, min) overall and per class; the 20 most frequent word 4-grams overall and per class.
- `report.md`: the same as Markdown tables, with the histograms embedded.
- `length_words.png`, `length_sentences.png`: length histograms, overall and per class.

Definitions (simple on purpose, and the same for every dataset): a word is a run of letters or
digits, possibly joined by apostrophes (`don't`, `it's`); a sentence is a piece of text holding a
word, after splitting on `.`, `!` or `?` followed by whitespace and on line breaks; 4-grams are
taken over the lowercased words of a text. A multi-label dataset counts an example once per label
it carries (plus a `(no label)` row). A task name stands for its source (`twittemp_seek` reads
TwittEmp, with its three classes). Every file is written atomically.

Example:

    stats = analyze("newsemp", data_dir="../shared/data", output_dir="runs")
    stats["classes"]["empathy"]["examples"], stats["length"]["all"]["words"]["mean"]
"""

import collections
import os
import re
import sys

import numpy as np

from empathy_tf import io_utils
from empathy_tf.errors import ConfigError, EmpathyTFError
from empathy_tf.eval import format as fmt

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|[\r\n]+")
TOP_NGRAMS = 20
NGRAM = 4
ALL = "all"
NO_LABEL = "(no label)"


def words(text):
    return WORD_RE.findall(text)


def sentences(text):
    """Sentences holding at least one word (see the module docstring)."""
    return [s for s in SENTENCE_SPLIT_RE.split(text) if WORD_RE.search(s)]


def ngrams(tokens, n=NGRAM):
    return zip(*(tokens[i:] for i in range(n)))


def resolve_source(name):
    """The source a dataset name (`sources.SOURCES`, csv:PATH) or a task name stands for.

        resolve_source("twittemp_seek").name   # 'twittemp'
    """
    from empathy_tf.data import sources, tasks
    if name in sources.SOURCES:
        return sources.get_source(name)
    return tasks.get_task(name).get_source()   # a task name or csv:PATH


def _describe(values):
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"mean": 0.0, "median": 0.0, "max": 0, "min": 0}
    return {"mean": round(float(values.mean()), 2), "median": float(np.median(values)),
            "max": int(values.max()), "min": int(values.min())}


def _top_ngrams(token_lists, k=TOP_NGRAMS):
    counts = collections.Counter()
    for tokens in token_lists:
        counts.update(ngrams(tokens))
    # Ties by the n-gram itself, so the report is the same on every run.
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [{"ngram": " ".join(g), "count": c} for g, c in top]


def _class_members(labels, label_names, multi_label):
    """{class name: boolean mask over examples} (plus NO_LABEL for multi-label data)."""
    labels = np.asarray(labels)
    if multi_label:
        members = {name: labels[:, k] == 1 for k, name in enumerate(label_names)}
        members[NO_LABEL] = labels.sum(axis=1) == 0
        return members
    return {name: labels == k for k, name in enumerate(label_names)}


def compute_stats(texts, labels, label_names, multi_label=False, split_sizes=None):
    """Characteristics of one dataset (texts of all splits, their labels); see the module doc.

    The result also holds `_lengths` (numpy arrays for the plots), dropped before writing JSON.
    """
    word_lists = [words(t) for t in texts]
    n_words = np.asarray([len(w) for w in word_lists])
    n_sents = np.asarray([len(sentences(t)) for t in texts])
    lowered = [[w.lower() for w in ws] for ws in word_lists]
    groups = {ALL: np.ones(len(texts), bool),
              **_class_members(labels, label_names, multi_label)}
    total = len(texts)
    return {
        "examples": total,
        "splits": dict(split_sizes or {}),
        "multi_label": bool(multi_label),
        "classes": {name: {"examples": int(mask.sum()),
                           "share": round(float(mask.sum()) / max(total, 1), 4)}
                    for name, mask in groups.items() if name != ALL},
        "length": {name: {"examples": int(mask.sum()), "words": _describe(n_words[mask]),
                          "sentences": _describe(n_sents[mask])}
                   for name, mask in groups.items()},
        "top_4grams": {name: _top_ngrams([lowered[i] for i in np.flatnonzero(mask)])
                       for name, mask in groups.items()},
        "_lengths": {"words": n_words, "sentences": n_sents, "groups": groups},
    }


# ---------------------------------------------------------------------------------------------
# Output.

def plot_histograms(stats, kind, path, title):
    """Two panels: all examples, then each class (density, so small classes stay visible)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    lengths = stats["_lengths"][kind]
    groups = stats["_lengths"]["groups"]
    top = max(int(lengths.max()) if lengths.size else 1, 1)
    bins = np.linspace(0, top + 1, min(top + 2, 51))
    fig, (ax_all, ax_cls) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax_all.hist(lengths, bins=bins, color="#4477aa")
    ax_all.set(title=f"{title}: all ({len(lengths)})", xlabel=f"length in {kind}",
               ylabel="examples")
    for name, mask in groups.items():
        if name == ALL or not mask.any():
            continue
        ax_cls.hist(lengths[mask], bins=bins, histtype="step", density=True, linewidth=1.5,
                    label=f"{name} ({int(mask.sum())})")
    ax_cls.set(title=f"{title}: per class", xlabel=f"length in {kind}", ylabel="density")
    ax_cls.legend(fontsize=8)
    try:
        fmt.save_figure(fig, path)
    finally:
        plt.close(fig)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(stats, dataset):
    """The Markdown report (also what the CLI prints)."""
    out = [f"# Dataset characteristics: {dataset}", "",
           f"{stats['examples']} examples"
           + (" (" + ", ".join(f"{s}: {n}" for s, n in stats["splits"].items()) + ")"
              if stats["splits"] else "") + ".", "",
           "## Size per class", "",
           _table(["class", "examples", "share"],
                  [[c, v["examples"], f"{100 * v['share']:.1f}%"]
                   for c, v in stats["classes"].items()]),
           "", "## Length", "",
           _table(["", "examples", "words: mean", "median", "max", "sentences: mean", "median",
                   "max"],
                  [[name, v["examples"], f"{v['words']['mean']:.1f}", v["words"]["median"],
                    v["words"]["max"], f"{v['sentences']['mean']:.2f}", v["sentences"]["median"],
                    v["sentences"]["max"]] for name, v in stats["length"].items()]),
           "", "![length in words](length_words.png)", "",
           "![length in sentences](length_sentences.png)", "",
           f"## Most frequent word {NGRAM}-grams", ""]
    for name, top in stats["top_4grams"].items():
        out += [f"### {name}", "",
                _table(["rank", f"{NGRAM}-gram", "count"],
                       [[i + 1, g["ngram"], g["count"]] for i, g in enumerate(top)]) if top
                else "(none)", ""]
    out.append("Words: letters/digits joined by apostrophes; sentences: split after . ! ? and "
               "at line breaks (see empathy_tf/eval/analysis.py).")
    return "\n".join(out) + "\n"


def analyze(name, data_dir, output_dir="runs", tfds_dir=None):
    """Computes and writes a dataset's characteristics; returns the stats (as in stats.json).

    Args:
        name: a source, a task (its source is analysed) or csv:PATH.
        data_dir: folder laid out as in data/README.md.
        output_dir: the report goes to `<output_dir>/analysis/<source>/`.
        tfds_dir: TFDS prepared-data folder (see `tfds_source.load`).

    Raises:
        EmpathyTFError: an unknown name, a missing or malformed file, an empty dataset.
    """
    source = resolve_source(name)  # before TensorFlow loads: a wrong name fails in a second
    from empathy_tf import runs
    from empathy_tf.data import tfds_source
    splits = tfds_source.load(source, data_dir, tfds_dir)
    texts = [t for s in splits.values() for t in s.texts]
    if not texts:
        raise ConfigError(f"dataset {source.name!r} has no examples")
    labels = np.concatenate([np.asarray(s.labels) for s in splits.values()])
    stats = compute_stats(texts, labels, source.label_names, source.multi_label,
                          {split: len(s) for split, s in splits.items()})
    out_dir = os.path.join(output_dir, "analysis", runs.dataset_slug(source.name))
    os.makedirs(out_dir, exist_ok=True)
    plot_histograms(stats, "words", os.path.join(out_dir, "length_words.png"), source.name)
    plot_histograms(stats, "sentences", os.path.join(out_dir, "length_sentences.png"),
                    source.name)
    stats.pop("_lengths")
    stats["dataset"] = source.name
    stats["data_dir"] = os.path.abspath(data_dir)
    io_utils.atomic_write_text(os.path.join(out_dir, "report.md"),
                               report_markdown(stats, source.name))
    io_utils.atomic_write_json(os.path.join(out_dir, "stats.json"), stats)
    stats["output_dir"] = out_dir
    return stats


def run_cli(name, data_dir, output_dir, tfds_dir=None):
    """What `python -m experiments.analyze` does; returns the exit code (2 for user errors)."""
    try:
        stats = analyze(name, data_dir, output_dir, tfds_dir)
    except EmpathyTFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report_markdown(stats, stats["dataset"]), end="")
    print(f"\nwritten to {stats['output_dir']}")
    return 0
