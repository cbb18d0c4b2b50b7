"""The console: one format for every log line; TensorFlow and TFDS quiet unless --verbosity >= 1."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A fresh process: load TensorFlow, prepare a TFDS copy of the synthetic NewsEmp, log two lines.
SCRIPT = """
import logging, sys
from absl import logging as absl_logging
from empathy_tf import console
console.setup(int(sys.argv[1]))
if len(sys.argv) > 4:   # a persistent XLA cache: what the first process compiles, the next loads
    import os
    from empathy_tf import hardware
    os.environ["EMPATHY_TF_XLA_CACHE"] = sys.argv[4]
    hardware.enable_persistent_xla_cache()   # before TensorFlow runs its first op
tf = console.load_tensorflow()
from empathy_tf.data import sources, tfds_source
tfds_source.load(sources.get_source("newsemp"), sys.argv[2], tfds_dir=sys.argv[3])
if len(sys.argv) > 4:
    tf.function(lambda x: tf.nn.softmax(x * 2.0), jit_compile=True)(tf.ones([4, 8])).numpy()
absl_logging.info("hello")
logging.getLogger("anything").warning("careful")
"""
LINE = r"\d\d:\d\d:\d\d "


def _run(verbosity, data_dir, tfds_dir, *xla_cache):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_XLA_FLAGS")}
    return subprocess.run([sys.executable, "-c", SCRIPT, str(verbosity), data_dir, tfds_dir,
                           *xla_cache],
                          cwd=ROOT, env=dict(env, PYTHONPATH=ROOT), capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("verbosity", [0, 1])
def test_quiet_by_default_and_everything_at_verbosity_1(verbosity, synthetic_data_dir, tmp_path):
    out = _run(verbosity, synthetic_data_dir, str(tmp_path / "tfds"))
    assert out.returncode == 0, out.stderr[-3000:]
    ours = [re.compile(LINE + "hello$"), re.compile(LINE + "warning: careful$")]
    lines = out.stderr.splitlines()
    for pattern in ours:
        assert any(pattern.match(line) for line in lines), out.stderr[-3000:]
    if verbosity == 0:
        # No C++ banner, no TFDS notice or progress bar, no escape code: just the two lines.
        assert len(lines) == 2, out.stderr[-3000:]
        assert out.stdout == ""
    else:
        assert "downloaded and prepared" in out.stdout      # TFDS' own notice is back
        assert len(lines) > 2                                 # and TFDS' (and TF's) logs


def test_quiet_when_the_persistent_xla_cache_is_reused(synthetic_data_dir, tmp_path):
    """XLA's cache loader logs two error-level lines per kernel it reuses; at verbosity 0 a
    cell that reuses compiled kernels prints only its own lines."""
    cache = str(tmp_path / "xla")
    for run in range(2):   # the first compiles into the cache, the second loads from it
        out = _run(0, synthetic_data_dir, str(tmp_path / "tfds"), cache)
        assert out.returncode == 0, out.stderr[-3000:]
        assert len(out.stderr.splitlines()) == 2, out.stderr[-3000:]
    assert os.listdir(cache)   # the kernel was cached, so the second run did load it
