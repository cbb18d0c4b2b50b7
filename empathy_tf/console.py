"""The console: one clean line per event; TensorFlow's and TFDS's own chatter only on request.

Call `setup(verbosity)` once per process, before TensorFlow is imported (`experiments.run` does it
from `--verbosity`; a cell's own process does it too, see `runs.run_cell_in_own_process`):

- every log line reads `HH:MM:SS message` (`HH:MM:SS warning: message` for warnings and errors),
  the same in the parent and in child processes;
- at verbosity 0 (the default) TensorFlow's C++ log lines are off (`TF_CPP_MIN_LOG_LEVEL=3`,
  inherited by child processes: a failing op still raises its Python exception with the message;
  what the level hides is chatter logged at error level, such as the persistent XLA cache's
  loader reporting each reuse, two lines a compiled kernel, hundreds a table), the start-up banners TensorFlow writes before its logging is
  initialised (absl's `InitializeLog` notice, the oneDNN notice, `cuInit` failing on a machine
  without a GPU, oneDNN's once-per-process "supports DT_INT64 only on ...") are dropped while
  `load_tensorflow` imports it, TensorFlow/Keras/TFDS log records
  below error level are dropped, and TFDS shows no progress bars and prints no preparation notices;
- at `--verbosity=1` or more all of it comes back.

Example (the Python API):

    from empathy_tf import console
    console.setup(verbosity=0)
    tf = console.load_tensorflow()       # quiet; any later `import tensorflow` is too
    console.status("step 10/200")        # a transient line, only on a terminal
"""

import contextlib
import logging as py_logging
import os
import re
import sys
import tempfile
import time

from absl import logging

VERBOSITY_ENV = "EMPATHY_TF_VERBOSITY"   # children inherit the parent's verbosity through it
# Log records from these packages are dropped below error level at verbosity 0.
_LIBRARIES = tuple(os.sep + name + os.sep for name in
                   ("tensorflow", "tensorflow_datasets", "keras", "tf_keras", "tensorflow_text"))
# What TensorFlow's C++ code writes to stderr while it loads, before its logging is initialised:
# informational lines (I/W), absl's notice about that, and cuInit failing where there is no GPU.
_NATIVE_START_UP = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
                              r"[IW]\d{4} |E\d{4} .*(failed call to cuInit|oneDNN supports))")
_ERASE_LINE = "\r\033[K"

_state = {"verbosity": 0, "status": False}


def verbosity():
    """The verbosity `setup` was given (else $EMPATHY_TF_VERBOSITY, else 0)."""
    return _state["verbosity"]


def quiet():
    """Whether library chatter (TensorFlow, TFDS) is hidden: verbosity 0 or less."""
    return verbosity() < 1


def is_terminal(stream=None):
    """Whether `stream` (default stderr) is an interactive terminal (progress lines go there)."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class _LineFormatter(py_logging.Formatter):
    """`HH:MM:SS message`, warnings and errors named; clears a pending status line first."""

    def format(self, record):
        level = "" if record.levelno < py_logging.WARNING else record.levelname.lower() + ": "
        text = f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {level}" \
               f"{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if _state["status"]:
            _state["status"] = False
            text = _ERASE_LINE + text
        return text


class _StderrHandler(py_logging.StreamHandler):
    """A StreamHandler on whatever `sys.stderr` is at each write (tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        del value


class _LibraryChatter(py_logging.Filter):
    """Drops TensorFlow's, Keras' and TFDS's records below error level while `quiet()`."""

    def filter(self, record):
        if not quiet() or record.levelno >= py_logging.ERROR:
            return True
        return not any(part in record.pathname for part in _LIBRARIES)


_HANDLER_NAME = "empathy_tf.console"


def setup(verbosity=None):  # pylint: disable=redefined-outer-name
    """Configures the console of this process (see the module docstring); safe to call again.

    Args:
        verbosity: 0 (default: the suite's own lines only) or 1 and more (TensorFlow's and TFDS's
            logs and progress bars too; absl's `--verbosity`). None: $EMPATHY_TF_VERBOSITY or 0.
    """
    if verbosity is None:
        verbosity = int(os.environ.get(VERBOSITY_ENV, "0") or 0)
    _state["verbosity"] = verbosity = int(verbosity)
    os.environ[VERBOSITY_ENV] = str(verbosity)
    # Read by TensorFlow when it loads (here and in every child process, which inherits it).
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3" if verbosity < 1 else "0"
    logging.set_verbosity(verbosity)   # absl's scale: 0 INFO, 1 DEBUG, -1 WARNING
    # One handler on the root logger, the same in every process (absl's own handler prefixes
    # thread ids and file names, and is not installed in child processes at all).
    root = py_logging.getLogger()
    for handler in list(root.handlers):
        if _writes_to_console(handler):   # absl's, basicConfig's; files and captures stay
            root.removeHandler(handler)
    if not any(getattr(h, "name", None) == _HANDLER_NAME for h in root.handlers):
        handler = _StderrHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(_LineFormatter())
        handler.addFilter(_LibraryChatter())
        root.addHandler(handler)
    # TensorFlow's Python logger may carry a handler of its own.
    py_logging.getLogger("tensorflow").setLevel(py_logging.ERROR if verbosity < 1
                                                else py_logging.NOTSET)


def _writes_to_console(handler):
    if getattr(handler, "name", None) == _HANDLER_NAME:
        return False
    if handler is logging.get_absl_handler():
        return True
    return type(handler) is py_logging.StreamHandler and \
        getattr(handler, "stream", None) in (sys.stderr, sys.__stderr__, sys.stdout, sys.__stdout__)


@contextlib.contextmanager
def _native_stderr_filtered():
    """Captures what C++ code writes to file descriptor 2 and replays all but start-up noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = [line for line in lines if not (quiet() and _NATIVE_START_UP.match(line))]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def load_tensorflow():
    """Imports TensorFlow (and finds its devices) quietly at verbosity 0; returns the module.

    TensorFlow's start-up banners are written before its log level is read, so they are caught
    on file descriptor 2 while it loads; anything else written meanwhile is passed on.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _native_stderr_filtered():
        import tensorflow as tf
        tf.config.list_physical_devices()   # initialises the devices (cuInit) now
        _say_once_notices_now(tf)
    return tf


def _say_once_notices_now(tf):
    """Triggers TensorFlow's once-per-process oneDNN notices while stderr is filtered.

    On CPUs whose oneDNN lacks a type, the first graph transposing it logs (at error level)
    "oneDNN supports DT_INT64 only on platforms with AVX-512" — once per type and process, so
    once per cell; a transpose of each type here says it inside the quiet window instead.
    """
    @tf.function(autograph=False)
    def transpose_each(tensors):
        return [tf.transpose(t) for t in tensors]

    transpose_each([tf.zeros([1, 2], dtype) for dtype in (tf.int64, tf.int32, tf.bool,
                                                            tf.float16, tf.bfloat16, tf.float64)])


@contextlib.contextmanager
def tfds_output():
    """Around TFDS calls: no progress bars and no printed notices while `quiet()`.

    TFDS prints its preparation notices to stdout (termcolor) and draws tqdm bars on stderr,
    escape codes included, whether or not stderr is a terminal.
    """
    import tensorflow_datasets as tfds
    if not quiet():
        tfds.enable_progress_bar()
        yield
        return
    tfds.disable_progress_bar()
    with open(os.devnull, "w", encoding="utf-8") as devnull, \
            contextlib.redirect_stdout(devnull):
        yield


def status(text):
    """A transient progress line, rewritten in place on a terminal; nothing elsewhere.

    The next log line replaces it, so a log never holds escape codes or half-written lines.
    """
    if not is_terminal():
        return
    sys.stderr.write(_ERASE_LINE + text)
    sys.stderr.flush()
    _state["status"] = True


_state["verbosity"] = int(os.environ.get(VERBOSITY_ENV, "0") or 0)


def metrics_text(metrics):
    """`precision=0.6610 recall=... f1=... accuracy=... macro_f1=...` of a metrics dict.

    P/R/F1 are shown only where they are a positive class's; elsewhere "f1" is macro-F1 (more
    than two classes) or micro-F1 (multi-label), shown once under that name.
    """
    if "precision" in metrics:
        keys = ("precision", "recall", "f1", "accuracy", "macro_f1")
    else:
        keys = ("accuracy", "micro_f1", "macro_f1")
    return " ".join(f"{key}={metrics[key]:.4f}" for key in keys if key in metrics)
