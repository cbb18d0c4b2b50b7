"""Every named experiment and table: one config function per experiment, declared once.

An experiment is a function returning an `ExperimentConfig`; its docstring gives its command line.
`--smoke` shrinks any of them (`ExperimentConfig.smoked`); flags override any option. The names are
the paper's rows (Tables 4-7) plus rows beyond the paper (`tfidf_lr`, the floors `all_positive`
and `same_writer`) and the learning-curve table `curve`. "emonet" in a name means the emotion
slot, filled by `--emotion_dataset` (CARER by default; EmoNet itself was never released). A table
names its rows and datasets; its published numbers come from empathy_tf/eval/paper_tables.csv.

    python -m experiments.run --exp=kd_sst_emonet --dataset=newsemp --aux_cap=2000
    python -m experiments.run --exp=table4 --protocol=kfold:10 --aux_cap=2000
    python -m experiments.run --exp=curve --protocol=kfold:5 --seeds=0 --aux_cap=2000
    python -m experiments.run --list
"""

from empathy_tf import methods
from empathy_tf.config import (AdaptationConfig, DataConfig, ExperimentConfig, GloveConfig,
                               TrainerConfig)
from empathy_tf.errors import ConfigError
from empathy_tf.eval.tables import Row, TableSpec

# The baselines live outside the library (baselines/); their methods are wired in here, and their
# modules are imported only when a cell of theirs runs or is read.
methods.register_module("baselines.glove_method", "glove")
methods.register_module("baselines.sklearn_rows", "tfidf", "all_positive")
methods.register_module("baselines.same_writer", "same_writer")

EXPERIMENTS = {}


def experiment(fn):
    """Registers a config function under its name."""
    EXPERIMENTS[fn.__name__] = fn
    return fn


# BERT fine-tuning: 3 epochs, batch 16, peak 5e-5 with 10% warm-up, best dev epoch kept.
BERT_TRAINER = TrainerConfig(epochs=3, batch_size=16, learning_rate=5e-5)
# GloVe baselines (Kim 2014 style): Adam at 1e-3, no decay or warm-up, batch 32, 10 epochs.
GLOVE_TRAINER = TrainerConfig(epochs=10, batch_size=32, learning_rate=1e-3, weight_decay=0.0,
                              warmup_fraction=0.0, optimizer="adam", batching="pooled")


def _bert(name, method="single", aux=(), **sections):
    return ExperimentConfig(name=name, method=method, data=DataConfig(aux_tasks=aux),
                            trainer=BERT_TRAINER, **sections)


@experiment
def bert():
    """Single-task BERT: encoder, dropout, a linear layer on [CLS] (the paper's BERT row).

        python -m experiments.run --exp=bert --dataset=newsemp
    """
    return _bert("bert")


# The multi-task and distillation rows: (name, method, auxiliary tasks, what it is).
MULTI_TASK_ROWS = (
    ("mt_sst", "mt", ("sst2",), "Multi-task BERT, target + SST-2 mixed within minibatches, summed loss."),
    ("mt_emonet", "mt", ("emotion",), "Multi-task BERT, target + the emotion slot (--emotion_dataset, CARER by default)."),
    ("mt_sst_emonet", "mt", ("sst2", "emotion"), "Multi-task BERT, target + SST-2 + the emotion slot."),
    ("kd_sst", "kd", ("sst2",), "Distillation with teacher annealing from target and SST-2 teachers."),
    ("kd_emonet", "kd", ("emotion",), "Distillation with teacher annealing from target and emotion teachers."),
    ("kd_sst_emonet", "kd", ("sst2", "emotion"), "The paper's method: distillation from target, SST-2 and emotion teachers."),
)
# The GloVe baselines (Kim 2014 style training, GLOVE_TRAINER): (kind, what it is).
GLOVE_ROWS = (
    ("cnn", "Kim CNN (widths 3/4/5 × 100 maps) over GloVe 6B 50d, max-norm 3 head."),
    ("lstm", "128-unit LSTM over GloVe."),
    ("bilstm", "Bidirectional 128-unit LSTM over GloVe."),
    ("convlstm", "Conv(100, width 3) + max-pool(2) + 128-unit LSTM over GloVe (Khanpour et al. 2017)."),
)


def _declare(name, summary, make, extra_flags=""):
    """Registers a config function made from a row of one of the tables above."""
    make.__name__ = name
    make.__doc__ = f"""{summary}

        python -m experiments.run --exp={name} --dataset=newsemp{extra_flags}
    """
    return experiment(make)


for _name, _method, _aux, _summary in MULTI_TASK_ROWS:
    _declare(_name, _summary, lambda n=_name, m=_method, a=_aux: _bert(n, m, a), " --aux_cap=2000")

for _kind, _summary in GLOVE_ROWS:
    _declare(_kind, _summary, lambda k=_kind: ExperimentConfig(
        name=k, method="glove", glove=GloveConfig(glove_kind=k), trainer=GLOVE_TRAINER))


@experiment
def tfidf_lr():
    """Beyond the paper: TF-IDF (word 1-2 grams) + logistic regression, C chosen on dev.

        python -m experiments.run --exp=tfidf_lr --dataset=newsemp
    """
    return ExperimentConfig(name="tfidf_lr", method="tfidf")


@experiment
def all_positive():
    """Beyond the paper: predict the positive class for every text (the trivial floor).

        python -m experiments.run --exp=all_positive --dataset=newsemp
    """
    return ExperimentConfig(name="all_positive", method="all_positive")


@experiment
def same_writer():
    """Beyond the paper: each essay gets its writer's majority training label (the writer leak).

        python -m experiments.run --exp=same_writer --dataset=newsemp --group_by=none
    """
    return ExperimentConfig(name="same_writer", method="same_writer")


# Domain adaptation (Table 7): fine-tune on NewsEmp, test on TwittEmp.
PAPER_CORPORA = ("empatheticdialogues", "dailydialog", "goemotions", "isear", "health_tweets")
# Unlabeled tweets inside datasets the suite reads anyway (no extra download; not in the paper).
OFFLINE_CORPORA = ("semeval_tweets", "carer_tweets")


@experiment
def source_only():
    """Table 7: BERT fine-tuned on NewsEmp, tested on TwittEmp, no adaptation.

        python -m experiments.run --exp=source_only
    """
    return _bert("source_only", "uda", adaptation=AdaptationConfig(target="twittemp"))


for _corpus in PAPER_CORPORA + OFFLINE_CORPORA:
    _declare(f"pretrain_{_corpus}", f"Table 7: masked-LM pre-training on {_corpus}, then as "
             "source_only.", lambda c=_corpus: _bert(
                 f"pretrain_{c}", "uda", adaptation=AdaptationConfig(target="twittemp", corpus=c)))


@experiment
def pretrain():
    """Table 7 with your own corpus: masked-LM pre-training on --corpus, then as source_only.

        python -m experiments.run --exp=pretrain --corpus=text:my_tweets.txt
    """
    return _bert("pretrain", "uda", adaptation=AdaptationConfig(target="twittemp"))


PAPER_ROWS = ("cnn", "lstm", "bilstm", "convlstm", "bert", "mt_sst", "mt_emonet", "mt_sst_emonet",
              "kd_sst", "kd_emonet", "kd_sst_emonet")
TABLE_ROWS = (*(Row(name) for name in PAPER_ROWS), Row("tfidf_lr", in_paper=False),
              Row("all_positive", in_paper=False, floor=True))
# NewsEmp only: each essay's label from its writer's training essays (the leak, or the floor).
TABLE4_ROWS = TABLE_ROWS + (Row("same_writer", in_paper=False, floor=True),)
TABLE7_ROWS = (Row("source_only", dataset="newsemp"),
               *(Row(f"pretrain_{c}", dataset="newsemp", in_paper=c in PAPER_CORPORA)
                 for c in PAPER_CORPORA + OFFLINE_CORPORA),
               Row("target_only", experiment="bert", dataset="twittemp"),
               # The floor: the positive class for every one of the same TwittEmp test tweets.
               Row("all_positive", dataset="twittemp", in_paper=False, floor=True))

# The learning curve (beyond the paper): each row at a fraction of every cell's training split,
# compared with `bert` at the same fraction. Run it with --protocol=kfold:5 (the same folds at
# every fraction).
CURVE_EXPERIMENTS = ("bert", "kd_sst_emonet", "mt_sst_emonet", "tfidf_lr")
CURVE_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
CURVE_ROWS = tuple(
    Row(f"{experiment}_{round(100 * fraction)}", experiment=experiment, in_paper=False,
        overrides=(("train_fraction", fraction),), compare_to=f"bert_{round(100 * fraction)}")
    for experiment in CURVE_EXPERIMENTS for fraction in CURVE_FRACTIONS)

TABLES = {
    "table4": TableSpec("table4", "Table 4: NewsEmp", ("newsemp",), TABLE4_ROWS),
    "table5": TableSpec("table5", "Table 5: TwittEmp (empathy vs none)", ("twittemp",), TABLE_ROWS),
    "table6": TableSpec("table6", "Table 6: TwittEmp, seeking and providing empathy",
                        ("twittemp_seek", "twittemp_provide"), TABLE_ROWS,
                        note="Both views come from one model family trained per view: every row "
                             "is trained once on seeking and once on providing (as in the "
                             "paper), on the same folds."),
    "table7": TableSpec("table7", "Table 7: unsupervised domain adaptation, NewsEmp → TwittEmp",
                        ("newsemp_to_twittemp",), TABLE7_ROWS),
    "table7_offline": TableSpec(
        "table7_offline", "Table 7 (corpora available offline): NewsEmp → TwittEmp",
        ("newsemp_to_twittemp",),
        tuple(r for r in TABLE7_ROWS if r.name in ("source_only", "target_only", "all_positive")
              or r.name.removeprefix("pretrain_") in OFFLINE_CORPORA), paper_table="table7"),
    "curve": TableSpec("curve", "Learning curve (beyond the paper): macro-F1 and F1 against the "
                       "training data", ("newsemp", "twittemp"), CURVE_ROWS,
                       baseline="bert_100"),
}

GROUPS = {"baselines": ("cnn", "lstm", "bilstm", "convlstm", "tfidf_lr")}
# The seeds a table covers unless told otherwise.
DEFAULT_TABLE_SEEDS = (0, 1, 2)


def names():
    return sorted(EXPERIMENTS) + sorted(GROUPS) + sorted(TABLES)


def get_table(name):
    """The TableSpec of a table name, or None when `name` is not a table."""
    return TABLES.get(name)


def get_config(name):
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(names())}")
    return EXPERIMENTS[name]()


def expand(name, dataset):
    """[(experiment, dataset or None)] that a name (experiment, group or table) stands for.

    None means "the --dataset flag"; tables name their datasets.
    """
    if name in EXPERIMENTS:
        return [(name, None)]
    if name in GROUPS:
        return [(n, None) for n in GROUPS[name]]
    if name in TABLES:
        return [(row.experiment, row.dataset_for(d)) for d in TABLES[name].datasets
                for row in TABLES[name].rows]
    raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(names())}")


def cells(name, options=None, seeds=None):
    """(table spec or None, [(row name, config)]) of every cell a name stands for.

    What `python -m experiments.run` and `empathy_tf.run` run.

    Args:
        name: an experiment, group or table.
        options: {option name: value} overriding every experiment's (as the flags do); `smoke`
            shrinks each experiment first, so that other options still win; `seed` is the one
            seed when `seeds` is not given; `fold` keeps that fold only; `dataset` keeps that
            section of a table (`TableSpec.only`).
        seeds: the seeds (default: 0, 1, 2 for a table, else the `seed` option or 0). Under
            `kfold:K` each seed stands for K cells.
    """
    from empathy_tf.data import splits
    table = get_table(name)
    options = dict(options or {})
    seed = options.pop("seed", None)
    fold = options.pop("fold", None)
    if table is not None and "dataset" in options:
        table = table.only(options.pop("dataset"))   # one section of the table
    if seeds:
        seeds = [int(s) for s in seeds]
    else:
        seeds = list(DEFAULT_TABLE_SEEDS) if table is not None else [seed or 0]
    rows = ([(row.name, row.experiment, row.dataset_for(d), row.options) for d in table.datasets
             for row in table.rows] if table is not None else
            [(experiment, experiment, None, {}) for experiment, _ in expand(name, None)])
    out = []
    for row_name, experiment, dataset, row_options in rows:
        config = get_config(experiment)
        if options.get("smoke"):  # first, so that explicit options (epochs=3) still win
            config = config.smoked()
        # A row's own options define it (the curve's train_fraction): they win over the flags.
        config = config.replace(**{**options, **row_options})
        if dataset:
            config = config.replace(dataset=dataset)
        config.validate()
        if fold is not None:   # --fold=12 under kfold:10 is an error, not zero cells
            config.replace(fold=fold).validate()
        for cell_seed, cell_fold in splits.cells(config.data.protocol, seeds):
            if fold is not None and fold != cell_fold:
                continue
            out.append((row_name, config.replace(seed=cell_seed, fold=cell_fold)))
    return table, out
