"""Every dataset the suite reads, one module each; importing this package registers them all.

Adding a dataset: write `data/sources/<name>.py` (a `Source` subclass with its files, label names,
strict reader and tasks; see base.py) and add its module name to `_MODULES` below. Tasks, TFDS
builders, `--dataset` choices and the emotion slot's choices all derive from the registry.
"""

import importlib

from empathy_tf.data.sources.base import SOURCES, RawExamples, Source  # noqa: F401
from empathy_tf.errors import ConfigError

_MODULES = ("newsemp", "twittemp", "sst2", "carer", "semeval2018_ec", "goemotions", "emonet")

for _module in _MODULES:
    importlib.import_module(f"{__name__}.{_module}")


def get_source(name):
    """A registered source by name, or the source of a `csv:PATH` file."""
    if name.startswith("csv:"):
        from empathy_tf.data.sources import user_csv
        return user_csv.source_for(name)
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}; valid: {', '.join(sorted(SOURCES))} or "
                          "csv:PATH")
    return SOURCES[name]
