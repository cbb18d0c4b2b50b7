"""Every dataset the suite reads, one module each; importing this package registers them all.

Adding a dataset: write `data/sources/<name>.py` (a `Source` subclass with its files, label names,
strict reader and tasks; see base.py) and add its module name to `_MODULES` below. Tasks, TFDS
builders, `--dataset` choices and the emotion slot's choices all derive from the registry.

A user's own file (`--dataset=csv:PATH`, user_csv.py) is not registered: its one entry point is
`empathy_tf.data.tasks.get_task("csv:PATH")`, whose task reads it.
"""

import importlib

from empathy_tf.data.sources.base import SOURCES, RawExamples, Source, get_source  # noqa: F401

_MODULES = ("newsemp", "twittemp", "sst2", "carer", "semeval2018_ec", "goemotions", "emonet")

for _module in _MODULES:
    importlib.import_module(f"{__name__}.{_module}")
