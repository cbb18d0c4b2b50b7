"""Experiment configuration: one validated dataclass, overridable by flags and `key=value` strings.

Example:

    config = ExperimentConfig(name="kd_sst_emonet", method="kd", aux_tasks=("sst2", "emotion"))
    config = apply_overrides(config, ["epochs=2", "aux_cap=2000"])
"""

import dataclasses
import typing

from empathy_tf.errors import ConfigError

BERT_METHODS = ("single", "mt", "kd")  # methods with a BERT encoder
METHODS = (*BERT_METHODS, "glove", "tfidf", "all_positive")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
BIAS_GRAD_IMPLS = ("float32", "keras")   # see bias.py


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    name: str = "bert"
    method: str = "single"          # single | mt | kd | glove | tfidf | all_positive
    dataset: str = "newsemp"        # the target (empathy) task
    aux_tasks: tuple = ()           # auxiliary tasks; "emotion" means `emotion_dataset`
    emotion_dataset: str = "carer"  # carer | semeval2018_ec | emonet (EmoNet was never released)
    # Encoder (BERT methods).
    encoder: str = "minilm"         # minilm | keras-hub preset | local folder | tiny
    pooling: str = "cls"            # cls (paper) | pooler | mean
    max_seq_length: int = 256
    dropout: float = 0.1
    dropout_impl: str = "hash"      # hash (one fused XLA kernel, see dropout.py) | keras
    gelu_impl: str = "fused"        # fused (one XLA kernel each way, see gelu.py) | keras
    bias_grad_impl: str = "float32" # float32 (bias gradients summed in float32, see bias.py) | keras
    # GloVe baselines.
    glove_kind: str = ""            # cnn | lstm | bilstm | convlstm
    glove_path: str = ""            # empty: embedded GloVe 6B 50d
    trainable_embeddings: bool = False
    hidden_units: int = 128
    # Optimisation.
    epochs: int = 4
    batch_size: int = 16            # global batch; per replica = batch_size / replicas
    learning_rate: float = 5e-5
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    selection: str = "f1"           # best dev epoch by positive-class F1 (paper) or macro_f1
    # Multi-task mixing and distillation.
    aux_cap: int = 0                # max training examples per auxiliary task (0 = all)
    sampling: str = "proportional"  # proportional | alpha | uniform
    sampling_alpha: float = 0.75
    annealing: str = "linear"       # linear (teacher annealing) | none (pure KD) | constant
    annealing_constant: float = 0.5
    teacher_epochs: int = 0         # 0: same as epochs
    teacher_seed: int = 0           # teachers are shared by student seeds where their data allow
    # Execution.
    precision: str = "auto"         # auto (bf16 where native, see resolve_precision) | float32 | ...
    xla: str = "auto"               # auto (see resolve_xla) | off | optimizer | full
    strategy: str = "default"       # default | mirrored | multi_worker
    seed: int = 0
    deterministic: bool = False     # TF op determinism (slower)
    checkpoint_every: int = 0       # steps between mid-epoch checkpoints; 0: by time (also every epoch)
    checkpoint_seconds: int = 120   # with checkpoint_every=0: at most this long between checkpoints
    smoke: bool = False             # tiny encoder, a few dozen examples, one epoch

    def validate(self):
        def one_of(field, options):
            if getattr(self, field) not in options:
                raise ConfigError(f"{field}={getattr(self, field)!r}; expected one of {options}")
        one_of("method", METHODS)
        one_of("precision", PRECISIONS)
        one_of("selection", ("f1", "macro_f1"))
        one_of("pooling", ("cls", "pooler", "mean"))
        one_of("sampling", ("proportional", "alpha", "uniform"))
        one_of("annealing", ("linear", "none", "constant"))
        one_of("strategy", ("default", "mirrored", "multi_worker"))
        one_of("xla", XLA_CHOICES)
        one_of("dropout_impl", ("hash", "keras"))
        one_of("gelu_impl", ("fused", "keras"))
        one_of("bias_grad_impl", BIAS_GRAD_IMPLS)
        one_of("emotion_dataset", ("carer", "semeval2018_ec", "emonet"))
        if self.method == "glove":
            one_of("glove_kind", ("cnn", "lstm", "bilstm", "convlstm"))
        if self.method in ("mt", "kd") and not self.aux_tasks:
            raise ConfigError(f"{self.name}: method {self.method} needs aux_tasks")
        for field in ("epochs", "batch_size", "max_seq_length"):
            if getattr(self, field) < 1:
                raise ConfigError(f"{field} must be >= 1, got {getattr(self, field)}")
        for field in ("checkpoint_every", "checkpoint_seconds"):
            if getattr(self, field) < 0:
                raise ConfigError(f"{field} must be >= 0, got {getattr(self, field)}")
        if self.max_seq_length < 8:
            raise ConfigError("max_seq_length must be >= 8")
        if not 0.0 < self.learning_rate < 1.0:
            raise ConfigError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        return self

    def normalized(self):
        """The same experiment with fields that do not apply to its method reset to defaults.

        So that e.g. `--aux_cap` given to a whole table does not make its single-task cells
        differ from the same cells run on their own (and so be refused as another config).
        """
        defaults = ExperimentConfig()
        keep = set(field_names())
        if not self.aux_tasks:
            keep -= {"aux_cap", "sampling", "sampling_alpha"}
        if "emotion" not in self.aux_tasks:
            keep -= {"emotion_dataset"}
        if self.method != "kd":
            keep -= {"annealing", "annealing_constant", "teacher_epochs", "teacher_seed"}
        if self.method != "glove":
            keep -= {"glove_kind", "glove_path", "trainable_embeddings", "hidden_units"}
        if self.method not in BERT_METHODS:
            keep -= {"encoder", "pooling", "max_seq_length", "dropout_impl", "gelu_impl",
                     "bias_grad_impl"}
        if self.method in ("tfidf", "all_positive"):
            keep -= {"dropout", "epochs", "batch_size", "learning_rate", "warmup_fraction",
                     "weight_decay", "selection", "precision", "strategy", "deterministic", "xla",
                     "checkpoint_every", "checkpoint_seconds"}
        return dataclasses.replace(self, **{f: getattr(defaults, f) for f in field_names()
                                             if f not in keep})

    def resolved_aux_tasks(self):
        return tuple(self.emotion_dataset if t == "emotion" else t for t in self.aux_tasks)


# What a run recorded before a field existed was made with, where that differs from the field's
# default: such runs used Keras' dropout and GELU and TensorFlow's bias gradients (so they are not
# reused as runs with the fused kernels or float32-summed bias gradients).
BEFORE_FIELD_EXISTED = {"dropout_impl": "keras", "gelu_impl": "keras", "bias_grad_impl": "keras"}


def values_before_fields_existed(method):
    """Config values implied by a recorded run of `method` that lacks the newer fields."""
    return dict(BEFORE_FIELD_EXISTED) if method in BERT_METHODS else {}


def resolve_precision(precision):
    """`auto`: mixed_bfloat16 where the hardware computes bf16 natively, else float32.

    Measured here (2-core Zen 4 with avx512_bf16): bf16 trains MiniLM 1.48x faster than float32
    and reached the same NewsEmp F1 range (BUILD.md). GPUs qualify from compute capability 8.0.
    """
    if precision != "auto":
        return precision
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "mixed_bfloat16" if details.get("compute_capability", (0, 0)) >= (8, 0) else "float32"
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return "float32"
    return "mixed_bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


XLA_MODES = ("off", "optimizer", "full")    # what training.make_train_step accepts
XLA_CHOICES = ("auto", *XLA_MODES)


def resolve_xla(xla, strategy="default"):
    """`auto`: XLA for the optimizer update only, on one replica; off across replicas.

    Measured here (benchmarks/throughput.py, MiniLM, bf16): fusing the AdamW update makes student
    steps 1.10x faster (1.33x for 16 x 16-token batches); compiling the whole step is 0.66x
    (XLA's CPU matmuls are slower than oneDNN's) and recompiles per batch shape. Under
    tf.distribute the update goes through the strategy's cross-replica path, which stays unfused.
    """
    if xla != "auto":
        return xla
    return "optimizer" if strategy == "default" else "off"


def field_names():
    return [f.name for f in dataclasses.fields(ExperimentConfig)]


def _parse(field, text):
    hint = typing.get_type_hints(ExperimentConfig)[field.name]
    if hint is bool:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ConfigError(f"{field.name}={text!r}: expected true or false")
    if hint is tuple:
        return tuple(t for t in text.split(",") if t)
    try:
        return hint(text)
    except ValueError:
        raise ConfigError(f"{field.name}={text!r}: expected a {hint.__name__}") from None


def apply_overrides(config, overrides):
    """Applies `key=value` strings (or a dict of typed values); an unknown key is an error."""
    fields = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    changes = {}
    items = overrides.items() if isinstance(overrides, dict) else (
        o.split("=", 1) if "=" in o else (o, None) for o in overrides)
    for key, value in items:
        key = key.strip()
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(fields)}")
        if value is None:
            raise ConfigError(f"override {key!r} needs the form key=value")
        changes[key] = _parse(fields[key], value) if isinstance(value, str) else value
    return dataclasses.replace(config, **changes).validate()


def to_dict(config):
    return dataclasses.asdict(config)
