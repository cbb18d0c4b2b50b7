"""What `python -m experiments.run` does with its flags, kept out of the entry point."""

import dataclasses
import json
import sys
import time

from absl import logging

from empathy_tf import config as config_lib
from empathy_tf.errors import EmpathyTFError


def configs_from_flags(FLAGS, field_flags):
    from experiments import registry
    from empathy_tf import runner
    seeds = [int(s) for s in FLAGS.seeds] if FLAGS.seeds else [FLAGS.seed]
    configs = []
    for name in registry.expand(FLAGS.exp):
        base = registry.get_config(name)
        overrides = {"dataset": FLAGS.dataset}
        overrides.update({field: getattr(FLAGS, flag) for flag, field in field_flags.items()
                          if getattr(FLAGS, flag) is not None})
        config = config_lib.apply_overrides(base, overrides)
        config = config_lib.apply_overrides(config, FLAGS.override)
        if FLAGS.smoke:
            config = runner.smoke_config(config)
        for seed in seeds:
            configs.append(dataclasses.replace(config, seed=seed).validate())
    return configs


def run_from_flags(FLAGS, field_flags):
    from empathy_tf import runner
    try:
        configs = configs_from_flags(FLAGS, field_flags)
        ctx = runner.RunContext(FLAGS.data_dir, FLAGS.output_dir, FLAGS.tfds_dir, FLAGS.overwrite)
        start = time.time()
        results = []
        for i, config in enumerate(configs):
            if len(configs) > 1:
                done = time.time() - start
                eta = done / i * (len(configs) - i) if i else float("nan")
                logging.info("cell %d/%d: %s %s seed %d (elapsed %.0fs, ~%.0fs left)", i + 1,
                             len(configs), config.name, config.dataset, config.seed, done, eta)
            metrics = runner.run_experiment(config, ctx)
            results.append((config, metrics))
            print(_summary_line(config, metrics, runner.run_dir_for(config, ctx)), flush=True)
        return 0
    except EmpathyTFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _summary_line(config, metrics, run_dir):
    test = metrics["test"]
    parts = [f"{k}={test[k]:.4f}" for k in ("precision", "recall", "f1", "accuracy", "macro_f1")
             if k in test]
    return f"{config.name} {config.dataset} seed={config.seed}: test " + " ".join(parts) + \
        f"  ({metrics.get('wall_time_s', 0):.0f}s, {run_dir})"
