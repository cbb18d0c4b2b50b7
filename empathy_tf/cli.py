"""What `python -m experiments.run` does with its flags, kept out of the entry point.

`--exp` names one experiment, a group, or a table (`table4`...). Every (experiment, dataset,
seed) cell runs in turn; a finished cell is reused. A cell failing with an EmpathyTFError is
reported and skipped, the others still run, and the exit code is 2 at the end. For a table, the
datasets come from the table (not --dataset), the seeds default to 0,1,2, and the table is
written to `<output_dir>/tables/` (see reporting.py) once every cell has been tried.
"""

import dataclasses
import math
import os
import sys
import time

from absl import logging

from empathy_tf import config as config_lib
from empathy_tf.errors import EmpathyTFError


def _seeds(FLAGS, table):
    if FLAGS.seeds:
        return [int(s) for s in FLAGS.seeds]
    if table is not None:
        from experiments import registry
        return list(registry.DEFAULT_TABLE_SEEDS)
    return [FLAGS.seed]


def configs_from_flags(FLAGS, field_flags):
    from experiments import registry
    from empathy_tf import runner
    table = registry.get_table(FLAGS.exp)
    seeds = _seeds(FLAGS, table)
    datasets = table.datasets if table is not None else (FLAGS.dataset,)
    configs = []
    for dataset in datasets:
        for name in registry.expand(FLAGS.exp):
            config = registry.get_config(name)
            if FLAGS.smoke:  # first, so that explicit flags (--override=epochs=3) still win
                config = runner.smoke_config(config)
            overrides = {"dataset": dataset}
            overrides.update({field: getattr(FLAGS, flag) for flag, field in field_flags.items()
                              if getattr(FLAGS, flag) is not None})
            config = config_lib.apply_overrides(config, overrides)
            config = config_lib.apply_overrides(config, FLAGS.override)
            for seed in seeds:
                configs.append(dataclasses.replace(config, seed=seed).normalized().validate())
    return configs


class _Progress:
    """Logs "cell i of n", elapsed time and an estimate of the rest.

    The estimate is (seconds per trained cell so far) × (cells still to train): cells that were
    finished before this invocation are reused in no time and count in neither.
    """

    def __init__(self, configs, ctx):
        from empathy_tf import runner
        self.total = len(configs)
        self.finished_before = [
            not ctx.overwrite and os.path.exists(os.path.join(runner.run_dir_for(c, ctx),
                                                              "metrics.json"))
            for c in configs]
        self.start = time.time()
        self.train_seconds = 0.0
        self.trained = self.reused = self.failed = 0

    def begin(self, i, config):
        from empathy_tf import reporting
        self.cell_start = time.time()
        if self.total < 2:
            return
        to_train = sum(not f for f in self.finished_before[i:])
        rate = self.train_seconds / self.trained if self.trained else math.nan
        eta = ("0s" if not to_train else "?" if math.isnan(rate)
               else reporting.format_duration(rate * to_train))
        reusing = " [finished, reusing]" if self.finished_before[i] else ""
        logging.info("cell %d/%d: %s %s seed %d%s (elapsed %s; %d trained, %d reused, %d failed; "
                     "~%s left for %d cells to train)", i + 1, self.total, config.name,
                     config.dataset, config.seed, reusing,
                     reporting.format_duration(time.time() - self.start), self.trained,
                     self.reused, self.failed, eta, to_train)

    def end(self, i, ok):
        if not ok:
            self.failed += 1
        elif self.finished_before[i]:
            self.reused += 1
        else:
            self.trained += 1
            self.train_seconds += time.time() - self.cell_start


def _flag_present(FLAGS, name):
    try:
        return bool(FLAGS[name].present)
    except (TypeError, KeyError, AttributeError):  # a plain namespace (tests)
        return False


def run_from_flags(FLAGS, field_flags):
    from experiments import registry
    from empathy_tf import reporting, runner, training
    try:
        configs = configs_from_flags(FLAGS, field_flags)
        ctx = runner.RunContext(FLAGS.data_dir, FLAGS.output_dir, FLAGS.tfds_dir, FLAGS.overwrite)
        if any(c.strategy == "multi_worker" for c in configs):
            # Collective ops must be configured before TensorFlow runs any op, and reading the
            # data runs some; the runner's later make_strategy calls reuse this configuration.
            training.make_strategy("multi_worker")
    except EmpathyTFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = registry.get_table(FLAGS.exp)
    if table is not None and _flag_present(FLAGS, "dataset"):
        logging.warning("--dataset=%s is ignored: %s runs on %s", FLAGS.dataset, FLAGS.exp,
                        ", ".join(table.datasets))
    chief = training.is_chief_process()
    table = table if chief else None
    progress = _Progress(configs, ctx)
    failed = {}
    try:
        for i, config in enumerate(configs):
            progress.begin(i, config)
            run_dir = runner.run_dir_for(config, ctx)
            try:
                metrics = runner.run_experiment(config, ctx)
            except EmpathyTFError as e:
                # One bad cell must not cost the others; it is reported here, in the table and
                # in the exit code.
                failed[(config.dataset, config.name, config.seed)] = str(e)
                progress.end(i, ok=False)
                print(f"error: {config.name} {config.dataset} seed {config.seed}: {e}",
                      file=sys.stderr, flush=True)
                continue
            progress.end(i, ok=True)
            if chief:  # multi-worker: one process writes logs and tables
                reporting.log_final_metrics(config, run_dir, metrics)
            print(_summary_line(config, metrics, run_dir), flush=True)
    except BaseException:
        if table is not None:  # interrupted or crashed: still leave the partial table behind
            try:
                _write_table(FLAGS, table, failed)
            except Exception as e:  # noqa: BLE001 - never mask the original exception
                logging.error("could not write the partial table: %s", e)
        raise
    if table is not None:
        _write_table(FLAGS, table, failed)
    if failed:
        print(f"error: {len(failed)} of {len(configs)} cells failed: " + ", ".join(
            f"{name} {dataset} seed {seed}" for dataset, name, seed in failed), file=sys.stderr)
        return 2
    return 0


def _write_table(FLAGS, table, failed):
    from empathy_tf import reporting
    paths, summaries = reporting.make_table(FLAGS.output_dir, table.name,
                                            _seeds(FLAGS, table), FLAGS.smoke, failed)
    incomplete = [s for s in summaries if len(s["done"]) < len(s["seeds"])]
    with open(paths["md"]) as f:
        print(f.read(), flush=True)
    print(f"{table.name}: {paths['md']}, {paths['csv']}, {paths['png']}"
          + (f" ({len(incomplete)} of {len(summaries)} rows incomplete)" if incomplete else ""),
          flush=True)


def _summary_line(config, metrics, run_dir):
    test = metrics["test"]
    parts = [f"{k}={test[k]:.4f}" for k in ("precision", "recall", "f1", "accuracy", "macro_f1")
             if k in test]
    return f"{config.name} {config.dataset} seed={config.seed}: test " + " ".join(parts) + \
        f"  ({metrics.get('wall_time_s', 0):.0f}s, {run_dir})"
