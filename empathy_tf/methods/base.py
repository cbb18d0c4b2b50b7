"""The interface every method implements, and the registry that maps `--method` names to them.

A `Method` says which config sections define its results (`sections`: a run's identity is derived
from them, runs.py), which tasks it loads (`load_data`), and how it trains and evaluates one cell
(`run`). The run folder's lifecycle (lock, reuse, resume, move aside, atomic writes) is the same for
every method and lives in runs.py; a method only fills the folder it is given.

Example (registering a method; see baselines/sklearn_rows.py for a complete small one):

    @register
    class MajorityClass(Method):
        name = "majority"
        sections = ("data",)

        def run(self, config, datas, run_dir, ctx, run_cell):
            ...
            return {"dev": dev_metrics, "test": test_metrics}
"""

import dataclasses
import importlib

from empathy_tf import io_utils
from empathy_tf.data import tasks as tasks_lib
from empathy_tf.errors import ConfigError

METHODS = {}
# Examples per split of every task under --smoke.
SMOKE_SIZES = {"train": 48, "dev": 24, "test": 24}
AUX_CAP_SEED = 0  # auxiliary data does not depend on the run seed, so aux teachers are shared


def register(cls):
    """Class decorator: registers one instance of a Method subclass under its name."""
    if cls.name in METHODS:
        raise AssertionError(f"method {cls.name!r} registered twice")
    METHODS[cls.name] = cls()
    return cls


# Where each method is implemented; a module is imported (and registers its methods) only when
# one of its methods is asked for, so a TF-IDF run never loads TensorFlow's model code. Methods
# defined outside the library (the baselines/ package) are added by `register_module`.
MODULES = {"single": "empathy_tf.methods.bert_methods", "mt": "empathy_tf.methods.bert_methods",
           "kd": "empathy_tf.methods.distill.method",
           "uda": "empathy_tf.methods.domain_adaptation.uda"}


def register_module(module, *names):
    """Declares that the module `module` (a dotted name) defines the methods `names`.

    The module is imported when one of them is first asked for (`get`), and must `@register`
    them. This is how code outside the library adds methods: experiments/registry.py wires in
    the baselines' (`register_module("baselines.sklearn_rows", "tfidf", "all_positive")`).
    Declaring the same name and module again is a no-op; another module for a name is an error.
    """
    for name in names:
        if MODULES.get(name, module) != module:
            raise ConfigError(f"method {name!r} is already defined by {MODULES[name]}, "
                              f"not {module}")
        MODULES[name] = module


def get(name):
    if name not in MODULES:
        raise ConfigError(f"unknown method {name!r}; valid: {', '.join(sorted(MODULES))}")
    importlib.import_module(MODULES[name])
    if name not in METHODS:
        raise AssertionError(f"{MODULES[name]} registers no method {name!r}")
    return METHODS[name]


def all_methods():
    return {name: get(name) for name in MODULES}


class Method:
    """One way of turning task data into predictions.

    Attributes:
        name: The `ExperimentConfig.method` value.
        sections: Config sections whose options define this method's results.
        has_keras_model: Its run folder holds a Keras model (predict, export).
        uses_aux_tasks: It trains on auxiliary tasks as well (multi-task methods).
    """

    name = ""
    sections = ("data",)
    has_keras_model = False
    uses_aux_tasks = False

    def validate(self, config):
        """Method-specific checks of a config (raises ConfigError)."""
        if config.data.aux_tasks and not self.uses_aux_tasks:
            raise ConfigError(f"{config.name}: method {self.name} takes no aux_tasks "
                              f"(got {config.data.aux_tasks})")
        if self.uses_aux_tasks and not config.data.aux_tasks:
            raise ConfigError(f"{config.name}: method {self.name} needs aux_tasks")
        for name in config.data.task_names()[1:]:
            task = tasks_lib.get_task(name, **config.data.csv_options())
            if name == config.data.emotion_dataset and "emotion" in config.data.aux_tasks \
                    and task.role != "emotion":
                raise ConfigError(f"emotion_dataset={name!r} is not an emotion task; emotion "
                                  f"tasks: {', '.join(tasks_lib.tasks_with_role('emotion'))}")

    def check_resources(self, config):
        """Loads (so validates) what a cell reads besides its data, e.g. an encoder checkpoint or
        word vectors; called before the run folder is touched (ConfigError/DataError)."""

    def task_names(self, config):
        """Every task whose data the cell reads (target first)."""
        return config.data.task_names()

    def folder_dataset(self, config):
        """The dataset part of the cell's folder name."""
        return io_utils.path_slug(config.data.dataset)

    def data_fingerprint(self, config, ctx):
        """{task: hash of its source files and how they are read}: part of a cell's identity."""
        from empathy_tf.data import tfds_source  # TFDS: not needed to fail fast on a missing file
        csv_options = config.data.csv_options()
        return {name: tfds_source.fingerprint_of(tasks_lib.get_task(name, **csv_options).get_source(),
                                                 ctx.data_dir)
                for name in self.task_names(config)}

    def load_data(self, config, ctx):
        """The TaskData of the target task, then of each auxiliary task (see `load_tasks`)."""
        return load_tasks(config, ctx)

    def split_record(self, config, datas):
        """What split.json records: every task's grouping and the example ids of each split used
        (the training ids after `train_fraction`, `train_cap` and smoke caps)."""
        record = {d.task.name: d.split_record() for d in datas}
        record[datas[0].task.name]["train_fraction"] = config.data.train_fraction
        return record

    def run(self, config, datas, run_dir, ctx, run_cell):
        """Trains and evaluates one cell in `run_dir`; returns its metrics dict.

        Args:
            config: the resolved ExperimentConfig.
            datas: what `load_data` returned.
            run_dir: the cell's folder (locked; config.json and split.json written).
            ctx: the `runs.RunContext`.
            run_cell: `runs.run_cell`, for methods that need other cells (teachers).

        Returns:
            {"dev": metrics, "test": metrics, ...}: the target task's metrics on its dev and
            test splits (eval/metrics.py) and anything else worth keeping. The method also
            writes `predictions.npz` (ids, labels, probs of the target's test split).
        """
        raise NotImplementedError


def load_tasks(config, ctx):
    """The target task (split by the protocol and grouping, its training split subsampled by
    `train_fraction`) and the auxiliary tasks (official splits, capped)."""
    data = config.data
    datas = []
    for i, name in enumerate(data.task_names()):
        task = tasks_lib.get_task(name, **data.csv_options())
        if i == 0:
            loaded = tasks_lib.load_task_data(task, ctx.data_dir, data.protocol, config.seed,
                                              data.fold, ctx.tfds_dir, group_by=data.group_by)
            loaded = loaded.train_subsample(data.train_fraction, config.seed)
            if data.train_cap:
                loaded = loaded.capped(data.train_cap, AUX_CAP_SEED)
        else:
            loaded = tasks_lib.load_task_data(task, ctx.data_dir, "split", AUX_CAP_SEED,
                                              tfds_dir=ctx.tfds_dir)
            if data.aux_cap:
                loaded = loaded.capped(data.aux_cap, AUX_CAP_SEED)
        if config.smoke:
            loaded = dataclasses.replace(loaded, **{
                split: tasks_lib.cap_split(getattr(loaded, split), n, AUX_CAP_SEED)
                for split, n in SMOKE_SIZES.items()})
        datas.append(loaded)
    return datas
