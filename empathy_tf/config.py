"""Experiment configuration: one frozen dataclass of sections, each a frozen dataclass of options.

    ExperimentConfig       name, method, seed, smoke
      data: DataConfig            what a model learns from and is tested on (tasks, caps, protocol)
      bert: BertConfig            the BERT encoder, its kernels included (BERT methods)
      glove: GloveConfig          the GloVe encoders (GloVe baselines)
      trainer: TrainerConfig      optimisation, batching and model selection
      distill: DistillConfig      teachers and λ annealing (kd)
      adaptation: AdaptationConfig  masked-LM pre-training and the target task (uda)
      numerics: NumericsConfig    precision and XLA: they change the numbers, so they are recorded
      execution: ExecutionConfig  strategy and checkpoint cadence: they never change the numbers

Every option is declared once, with `option(default, help, choices=...)`: its name is unique over
all sections, so it is also a flag (`--epochs=2`, see experiments/run.py) and a key for
`replace` (`config.replace(epochs=2)` or `config.replace(**{"trainer.epochs": 2})`). Which
sections define a run's result is a property of its method (`methods.Method.sections`), and each
section says which of its options matter for the rest of its values (`Section.identity`), so a
run's identity is derived, never listed by hand (see `runs.identity`).

Example:

    config = ExperimentConfig(name="kd_sst_emonet", method="kd",
                              data=DataConfig(aux_tasks=("sst2", "emotion")))
    config = config.replace(epochs=2, aux_cap=2000)
    config.trainer.epochs, config.data.aux_cap        # (2, 2000)
    config.smoked().bert.encoder                       # 'tiny': the whole path in seconds
"""

import dataclasses
import typing

from empathy_tf.errors import ConfigError
from empathy_tf.protocols import protocol_spec


def option(default, help, choices=None, minimum=None):  # pylint: disable=redefined-builtin
    """A config option: its default, one line of help, and optionally its allowed values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices,
                                                        "minimum": minimum})


class Section:
    """Shared behaviour of the config sections (frozen dataclasses of `option`s)."""

    def validate(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            choices = field.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ConfigError(f"{field.name}={value!r}; expected one of {tuple(choices)}")
            minimum = field.metadata.get("minimum")
            if minimum is not None and value < minimum:
                raise ConfigError(f"{field.name} must be >= {minimum}, got {value!r}")
        return self

    def identity(self):
        """The options that define a result, as a dict (all of them unless a section says so)."""
        return dataclasses.asdict(self)

    def smoke(self):
        """The section shrunk for `--smoke` (a run of seconds); unchanged unless it says so."""
        return self


CSV_OPTIONS = ("text_column", "label_column", "id_column", "delimiter", "positive_label")
# Choice lists of options, declared here once; the code that acts on a value imports its list.
SAMPLING = ("proportional", "alpha", "uniform")          # data/batching.py
LAYOUTS = ("pooled", "packed")                            # data/batching.py
ANNEALING = ("linear", "none", "constant")                # methods/distill/annealing.py
XLA_MODES = ("off", "optimizer", "full")                  # training/loop.py
STRATEGIES = ("default", "mirrored", "multi_worker")      # training/strategy.py
OPTIMIZERS = ("adamw", "adam")                            # training/optimizer.py


@dataclasses.dataclass(frozen=True)
class DataConfig(Section):
    dataset: str = option("newsemp", "Target task: a task name (newsemp, twittemp, twittemp_seek, "
                          "twittemp_provide, ...; --list shows all) or csv:PATH.")
    aux_tasks: tuple = option((), "Auxiliary tasks of multi-task runs; 'emotion' means "
                              "--emotion_dataset.")
    emotion_dataset: str = option("carer", "The 'emotion' (EmoNet) slot: any task with the "
                                  "emotion role (--list shows them).")
    aux_cap: int = option(0, "At most this many training examples per auxiliary task (0 = all).",
                          minimum=0)
    train_cap: int = option(0, "At most this many training examples of the target task (0 = "
                            "all; stratified, seeded).", minimum=0)
    sampling: str = option("proportional", "How tasks are mixed in an epoch.",
                           choices=SAMPLING)
    sampling_alpha: float = option(0.75, "Exponent of --sampling=alpha (task size ** alpha).")
    protocol: str = option("split", "split (one seeded split per seed), kfold:K (stratified K "
                           "folds, each the test set once), repeated:N (N seeded splits) or "
                           "repeated_kfold:R:K (kfold:K with seeds 0..R-1).")
    fold: int = option(0, "Which fold is the test set (kfold protocols; set per cell).", minimum=0)
    group_by: str = option("auto", "Keep each group of examples (e.g. one writer's essays) inside "
                           "one of train/dev/test: a field of the dataset, auto (the grouping the "
                           "dataset declares: NewsEmp by writer, response_id; none for the others) "
                           "or none (split example by example).")
    train_fraction: float = option(1.0, "Train on this share of each cell's training split "
                                   "(seeded, stratified, whole groups, nested: the 10% sample is "
                                   "inside the 25% one); dev and test unchanged.")
    # How a csv:PATH dataset is read (empathy_tf/data/sources/user_csv.py); other tasks ignore them.
    text_column: str = option("text", "csv:PATH datasets: the header name of the text column.")
    label_column: str = option("label", "csv:PATH datasets: the header name of the label column.")
    id_column: str = option("", "csv:PATH datasets: the header name of an id column (empty: "
                            "ids are line-<N>).")
    delimiter: str = option("", "csv:PATH datasets: the field delimiter, one character or tab "
                            "(empty: comma for .csv, tab for .tsv).")
    positive_label: str = option("", "csv:PATH datasets with two labels: the one whose P/R/F1 "
                                 "are reported (empty: 1, true, yes, pos or positive; else none, "
                                 "and macro-F1 is reported).")

    def csv_options(self):
        """{option: value} of how csv:PATH tasks are read, for `tasks.get_task(name, **...)`."""
        return {name: getattr(self, name) for name in CSV_OPTIONS}

    def validate(self):
        super().validate()
        protocol = protocol_spec(self.protocol)
        if protocol.folds > 1 and self.fold >= protocol.folds:
            raise ConfigError(f"fold={self.fold} is out of range for protocol {self.protocol} "
                              f"(folds 0-{protocol.folds - 1})")
        if protocol.folds == 1 and self.fold != 0:
            raise ConfigError(f"fold={self.fold} needs a protocol with folds (kfold:K or "
                              f"repeated_kfold:R:K), not {self.protocol}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if not self.group_by.strip():
            raise ConfigError("group_by is empty; expected a field name, auto or none")
        return self

    def task_names(self):
        """Target first, then the auxiliary tasks, with 'emotion' resolved."""
        return (self.dataset, *(self.emotion_dataset if t == "emotion" else t
                                for t in self.aux_tasks))

    def group_field(self):
        """The field the target's splits are grouped by (`group_by` resolved), None: by example.

        Example:

            DataConfig(dataset="newsemp").group_field()                  # 'response_id'
            DataConfig(dataset="newsemp", group_by="none").group_field() # None
        """
        from empathy_tf.data import tasks  # the dataset declares its grouping (data/sources/)
        return tasks.group_field(tasks.get_task(self.dataset, **self.csv_options()), self.group_by)

    def identity(self):
        values = dataclasses.asdict(self)
        values["aux_tasks"] = list(self.task_names()[1:])   # the tasks, not how they were named
        values.pop("emotion_dataset")
        if not self.aux_tasks:
            for key in ("aux_cap", "sampling", "sampling_alpha"):
                values.pop(key)
        elif self.sampling != "alpha":
            values.pop("sampling_alpha")
        protocol = protocol_spec(self.protocol)
        if protocol.folds == 1:
            values.pop("fold")
        # repeated:N is N cells of split, repeated_kfold:R:K R seeds of kfold:K: the same cells.
        values["protocol"] = protocol.cell_protocol
        # The grouping as resolved (auto names the dataset's field); by-example splits and the
        # whole training split leave no key, so cells made before these options stay the same.
        group = self.group_field()
        if group is None:
            values.pop("group_by")
        else:
            values["group_by"] = group
        if self.train_fraction == 1.0:
            values.pop("train_fraction")
        csv = any(name.startswith("csv:") for name in self.task_names())
        default = DataConfig()
        for key in CSV_OPTIONS:   # only where a csv:PATH task reads them, and when set
            if not csv or values[key] == getattr(default, key):
                values.pop(key)
        return values


KERNEL_CHOICES = {"dropout_impl": ("hash", "keras"), "gelu_impl": ("fused", "keras"),
                  "bias_grad_impl": ("float32", "keras")}


@dataclasses.dataclass(frozen=True)
class BertConfig(Section):
    encoder: str = option("minilm", "minilm (embedded all-MiniLM-L6-v2), a keras-hub preset "
                          "name, a local HF/keras-hub folder, or tiny (random, for tests).")
    pooling: str = option("cls", "Text vector: the [CLS] state (paper), BERT's pooler, or the "
                          "masked mean.", choices=("cls", "pooler", "mean"))
    max_seq_length: int = option(256, "Longest sequence in wordpieces; batches pad to their own "
                                 "longest member.", minimum=8)
    dropout: float = option(0.1, "Dropout of the encoder and before each head.")
    # Kernels (docs/performance.md): 'auto' resolves per machine, see hardware.resolve_kernel.
    dropout_impl: str = option("auto", "Dropout masks: hash (one fused kernel) or keras.",
                               choices=("auto", *KERNEL_CHOICES["dropout_impl"]))
    gelu_impl: str = option("auto", "GELU: fused (one XLA kernel each way) or keras (op by op).",
                            choices=("auto", *KERNEL_CHOICES["gelu_impl"]))
    bias_grad_impl: str = option("auto", "Bias gradients under bfloat16: float32 (summed in "
                                 "float32) or keras (TensorFlow's kernel).",
                                 choices=("auto", *KERNEL_CHOICES["bias_grad_impl"]))

    def validate(self):
        super().validate()
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        return self

    def smoke(self):
        return dataclasses.replace(self, encoder="tiny", max_seq_length=64)


@dataclasses.dataclass(frozen=True)
class GloveConfig(Section):
    glove_kind: str = option("cnn", "GloVe encoder block.",
                             choices=("cnn", "lstm", "bilstm", "convlstm"))
    glove: str = option("", "GloVe/word2vec vector file (empty: the embedded GloVe 6B 50d).")
    trainable_embeddings: bool = option(False, "Fine-tune the word vectors.")
    hidden_units: int = option(128, "LSTM size.", minimum=1)
    glove_dropout: float = option(0.5, "Dropout on the pooled features and before the head.")
    max_words: int = option(400, "Words kept per text.", minimum=1)


@dataclasses.dataclass(frozen=True)
class TrainerConfig(Section):
    epochs: int = option(3, "Training epochs.", minimum=1)
    batch_size: int = option(16, "Global batch size (examples per optimizer step).", minimum=1)
    learning_rate: float = option(5e-5, "Peak learning rate.")
    warmup_fraction: float = option(0.1, "Share of steps with linear warm-up (then linear decay).")
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases, LayerNorm, heads).")
    optimizer: str = option("adamw", "adamw (BERT, warm-up + decay) or adam (constant rate).",
                            choices=OPTIMIZERS)
    selection: str = option("macro_f1", "Best dev epoch by macro_f1 (a constant predictor cannot "
                            "win it) or f1 (positive class, the paper's metric).",
                            choices=("macro_f1", "f1"))
    batching: str = option("auto", "pooled (length-sorted pools of one batch each), packed "
                           "(random minibatches, short texts packed into rows) or auto (packed "
                           "when several tasks are mixed).", choices=("auto", *LAYOUTS))
    early_stopping_patience: int = option(0, "Stop when the target task's dev --selection score "
                                          "has not improved for this many epochs (0 = off).",
                                          minimum=0)

    def validate(self):
        super().validate()
        if not 0.0 < self.learning_rate < 1.0:
            raise ConfigError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        return self

    def identity(self):
        values = dataclasses.asdict(self)
        if not self.early_stopping_patience:   # off: the identity of runs from before the option
            values.pop("early_stopping_patience")
        return values

    def layout(self, num_tasks):
        """The batch layout: `batching`, with auto = packed when tasks are mixed, else pooled."""
        if self.batching != "auto":
            return self.batching
        return "packed" if num_tasks > 1 else "pooled"

    def smoke(self):
        return dataclasses.replace(self, epochs=1, batch_size=8)


@dataclasses.dataclass(frozen=True)
class DistillConfig(Section):
    annealing: str = option("linear", "λ schedule: linear 0→1 (teacher annealing), none (pure "
                            "distillation, λ=0) or constant.", choices=ANNEALING)
    annealing_constant: float = option(0.5, "λ of --annealing=constant.")
    teacher_epochs: int = option(0, "Teacher epochs (0: the student's).", minimum=0)
    teacher_seed: int = option(0, "Seed of the auxiliary teachers (shared by every student "
                               "seed and fold).")
    target_teacher: str = option("bert", "Experiment whose cell of the same dataset, seed and "
                                 "fold is the target task's teacher when its settings match.")

    def identity(self):
        values = dataclasses.asdict(self)
        if self.annealing != "constant":
            values.pop("annealing_constant")
        return values


@dataclasses.dataclass(frozen=True)
class AdaptationConfig(Section):
    target: str = option("twittemp", "Domain adaptation: the task tested (only its test split "
                         "is used).")
    corpus: str = option("", "Masked-LM corpus (a corpus name or text:PATH); empty: none.")
    mlm_steps: int = option(300, "Masked-LM pre-training steps.", minimum=1)
    mlm_batch_size: int = option(32, "Masked-LM batch size.", minimum=1)
    mlm_max_seq_length: int = option(64, "Masked-LM longest text, in wordpieces.", minimum=8)
    mlm_learning_rate: float = option(1e-4, "Masked-LM peak learning rate.")
    mlm_max_texts: int = option(0, "Use at most this many corpus texts (0 = all).", minimum=0)
    mask_rate: float = option(0.15, "Share of wordpieces selected for prediction.")
    mask_token_rate: float = option(0.8, "Of those, the share replaced by [MASK].")
    random_token_rate: float = option(0.1, "Of those, the share replaced by a random wordpiece.")

    def validate(self):
        super().validate()
        if not 0.0 < self.mask_rate < 1.0:
            raise ConfigError(f"mask_rate must be in (0, 1), got {self.mask_rate}")
        if self.mask_token_rate + self.random_token_rate > 1.0:
            raise ConfigError("mask_token_rate + random_token_rate must be <= 1")
        if not 0.0 < self.mlm_learning_rate < 1.0:
            raise ConfigError(f"mlm_learning_rate must be in (0, 1), got {self.mlm_learning_rate}")
        return self

    def mlm_identity(self):
        """What an adapted encoder depends on besides its corpus and base encoder."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("target", "corpus")}

    def identity(self):
        values = dataclasses.asdict(self)
        if not self.corpus:
            values = {"target": self.target, "corpus": ""}
        return values

    def smoke(self):
        return dataclasses.replace(self, mlm_steps=min(self.mlm_steps, 6), mlm_batch_size=8,
                                   mlm_max_seq_length=32, mlm_max_texts=48, mlm_learning_rate=1e-3)


@dataclasses.dataclass(frozen=True)
class NumericsConfig(Section):
    precision: str = option("auto", "auto (see hardware.resolve_precision), float32, "
                            "mixed_bfloat16 or mixed_float16.",
                            choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"))
    xla: str = option("auto", "XLA: auto, off, optimizer (the AdamW update fused) or full (the "
                      "whole step).", choices=("auto", *XLA_MODES))
    deterministic: bool = option(False, "TensorFlow op determinism (slower).")


@dataclasses.dataclass(frozen=True)
class ExecutionConfig(Section):
    strategy: str = option("default", "default (one device), mirrored (all local GPUs) or "
                           "multi_worker (TF_CONFIG).", choices=STRATEGIES)
    checkpoint_every: int = option(0, "Steps between mid-epoch checkpoints (0: by time).",
                                   minimum=0)
    checkpoint_seconds: int = option(120, "With checkpoint_every=0: at most this long between "
                                     "checkpoints (and one each epoch).", minimum=0)
    eval_aux: bool = option(False, "Also evaluate the auxiliary tasks: their dev sets after every "
                            "epoch and their test sets at the end (the target task's always are: "
                            "its dev set selects the epoch).")


# Options whose default changed what a run does when they were added: a config recorded before
# them (no key) did this. Splits were by example before `group_by` (its default, auto, groups
# NewsEmp by writer).
RECORDED_BEFORE = {"data": {"group_by": "none"}}

SECTIONS = {"data": DataConfig, "bert": BertConfig, "glove": GloveConfig,
            "trainer": TrainerConfig, "distill": DistillConfig, "adaptation": AdaptationConfig,
            "numerics": NumericsConfig, "execution": ExecutionConfig}
TOP_LEVEL = ("name", "method", "seed", "smoke")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    name: str = option("bert", "Experiment name (the run folder's first part).")
    method: str = option("single", "Method: single, mt, kd, glove, tfidf, all_positive, "
                         "same_writer, uda.")
    seed: int = option(0, "Seed of the split and of training.")
    smoke: bool = option(False, "Shrink the run: tiny random encoder, a few dozen examples, one "
                         "epoch.")
    data: DataConfig = DataConfig()
    bert: BertConfig = BertConfig()
    glove: GloveConfig = GloveConfig()
    trainer: TrainerConfig = TrainerConfig()
    distill: DistillConfig = DistillConfig()
    adaptation: AdaptationConfig = AdaptationConfig()
    numerics: NumericsConfig = NumericsConfig()
    execution: ExecutionConfig = ExecutionConfig()

    def validate(self):
        for section in SECTIONS:
            getattr(self, section).validate()
        return self

    def replace(self, **changes):
        """A copy with options changed, by option name (`epochs=2`) or path (`trainer.epochs`)."""
        top, nested = {}, {}
        for key, value in changes.items():
            section, leaf = locate(key)
            if section is None:
                top[leaf] = value
            else:
                nested.setdefault(section, {})[leaf] = coerce(section, leaf, value)
        for section, values in nested.items():
            top[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **top)

    def resolved(self):
        """Every machine-dependent `auto` replaced by its value here (hardware.py states the rules).

        (`batching=auto` stays: it depends only on the number of tasks, see
        `TrainerConfig.layout`, so it means the same on every machine.)
        """
        from empathy_tf import hardware
        precision = hardware.resolve_precision(self.numerics.precision)
        numerics = dataclasses.replace(
            self.numerics, precision=precision,
            xla=hardware.resolve_xla(self.numerics.xla, self.execution.strategy))
        bert = dataclasses.replace(self.bert, **{
            name: hardware.resolve_kernel(name, getattr(self.bert, name), precision)
            for name in KERNEL_CHOICES})
        return dataclasses.replace(self, numerics=numerics, bert=bert)

    def smoked(self):
        """The same experiment, every section shrunk to run in seconds."""
        return dataclasses.replace(self, smoke=True, **{
            section: getattr(self, section).smoke() for section in SECTIONS})

    def to_dict(self):
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(values):
        """Inverse of `to_dict` (lists back to tuples); unknown keys are a ConfigError.

        An option missing from a recorded config takes the value that reproduces what the
        recording code did (`RECORDED_BEFORE`), not today's default.
        """
        top = {}
        for key, value in values.items():
            if key in SECTIONS:
                value = {**RECORDED_BEFORE.get(key, {}), **value}
                cls = SECTIONS[key]
                known = {f.name for f in dataclasses.fields(cls)}
                unknown = sorted(set(value) - known)
                if unknown:
                    raise ConfigError(f"config section {key!r} has unknown options {unknown}")
                top[key] = cls(**{k: coerce(key, k, v) for k, v in value.items()})
            elif key in TOP_LEVEL:
                top[key] = value
            else:
                raise ConfigError(f"unknown config key {key!r}")
        return ExperimentConfig(**top)


def leaves():
    """(section or None, field) of every option, top-level ones first."""
    out = [(None, f) for f in dataclasses.fields(ExperimentConfig) if f.name in TOP_LEVEL]
    for name, cls in SECTIONS.items():
        out += [(name, f) for f in dataclasses.fields(cls)]
    return out


def _leaf_index():
    index = {}
    for section, field in leaves():
        if field.name in index:
            raise AssertionError(f"option name {field.name!r} is declared twice")
        index[field.name] = section
    return index


LEAF_SECTION = _leaf_index()   # option name -> its section (None: top level); names are unique


def locate(key):
    """(section, option) of `epochs` or `trainer.epochs`; ConfigError for unknown keys."""
    section, dot, leaf = key.rpartition(".")
    if dot:
        if section not in SECTIONS or leaf not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
            raise ConfigError(f"unknown config option {key!r}")
        return section, leaf
    if leaf not in LEAF_SECTION:
        raise ConfigError(f"unknown config option {key!r}; options: {', '.join(sorted(LEAF_SECTION))}")
    return LEAF_SECTION[leaf], leaf


def option_type(section, leaf):
    cls = ExperimentConfig if section is None else SECTIONS[section]
    return typing.get_type_hints(cls)[leaf]


def coerce(section, leaf, value):
    """JSON values back to the option's type (lists to tuples, ints to floats)."""
    kind = option_type(section, leaf)
    if kind is tuple and isinstance(value, list):
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
