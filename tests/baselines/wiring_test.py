"""The baselines outside the library: wired in by the registry, counted in the code version."""

import pytest

from empathy_tf import methods, runs
from empathy_tf.errors import ConfigError
from experiments import registry  # noqa: F401 (wires in the baselines' methods)


def test_the_registry_wires_the_baselines_methods_in():
    assert methods.get("tfidf").__module__ == "baselines.sklearn_rows"
    assert methods.get("all_positive").__module__ == "baselines.sklearn_rows"
    assert type(methods.get("glove")).__module__ == "baselines.glove_method"
    assert {"glove", "tfidf", "all_positive"} <= set(methods.all_methods())


def test_register_module_refuses_a_second_home_for_a_name():
    methods.register_module("baselines.sklearn_rows", "tfidf")   # the same again: a no-op
    with pytest.raises(ConfigError, match="'tfidf' is already defined by baselines.sklearn_rows"):
        methods.register_module("somewhere.else", "tfidf")
    with pytest.raises(ConfigError, match="unknown method 'tfidf_lr'"):
        methods.get("tfidf_lr")


def test_code_version_hashes_the_baselines_sources_too():
    sources = [relative for _, relative in runs._result_sources()]
    assert "baselines/glove.py" in sources and "baselines/sklearn_rows.py" in sources
    assert "empathy_tf/runs.py" in sources and sources == sorted(sources)
