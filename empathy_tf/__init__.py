"""empathy_tf: knowledge distillation for empathy detection, in Keras 3 / TensorFlow.

`empathy_tf.run(...)` and `empathy_tf.load_predictor(...)` are the Python API (api.py); they are
loaded on first use, so that `import empathy_tf.config` stays free of TensorFlow.
"""

__version__ = "0.2.0"

_API = ("run", "load_predictor")


def __getattr__(name):
    if name in _API:
        from empathy_tf import api
        return getattr(api, name)
    raise AttributeError(f"module 'empathy_tf' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
