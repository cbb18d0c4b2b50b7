"""What this machine computes natively, and the per-machine rules that resolve `auto` options.

Every `auto` in a config is resolved here, once, by a stated rule; the resolved value is what a run
records and what its identity holds (a cell trained in bfloat16 is never reused as a float32 one).

- precision: `mixed_bfloat16` where bfloat16 matrix products are native (a GPU of compute
  capability >= 8.0, or a CPU with `avx512_bf16` or `amx_bf16`), else `float32`. Without those
  instructions oneDNN emulates bfloat16 about 60x slower than float32 (docs/performance.md).
- xla: `optimizer` (only the AdamW update compiled) on one replica, `off` across replicas.
- kernels (docs/performance.md, "Kernels"): each is on where `benchmarks/throughput.py` measured it
  faster at that precision (see `resolve_kernel`); `bias_grad_impl` only matters for 16-bit compute.
- compiled XLA kernels persist on disk (`enable_persistent_xla_cache`): a cell process loads the
  kernels an earlier one compiled (the same HLO, the same machine code) instead of compiling again.

Example:

    resolve_precision("auto")       # 'mixed_bfloat16' on a CPU with avx512_bf16
    describe()                      # 'AMD EPYC (family 26, avx512_bf16), 2 logical CPUs'
"""

import functools
import hashlib
import importlib.metadata
import os

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


# Space-separated CPU flags to use instead of /proc/cpuinfo's: what `auto` would resolve to on
# another CPU kind (e.g. EMPATHY_TF_CPU_FLAGS="avx2 fma" for a CPU without AVX-512). It changes the
# rules' inputs only, not the instructions TensorFlow uses.
CPU_FLAGS_ENV = "EMPATHY_TF_CPU_FLAGS"

# Folder of the persistent XLA cache: a path, "off", or unset (the default folder below).
XLA_CACHE_ENV = "EMPATHY_TF_XLA_CACHE"
_XLA_CACHE_FLAG = "--tf_xla_persistent_cache_directory"


@functools.lru_cache(maxsize=1)
def cpu_info():
    """{'flags': set, 'model': str, 'family': str} of the first CPU in /proc/cpuinfo."""
    info = {"flags": set(), "model": "unknown CPU", "family": "?"}
    if os.environ.get(CPU_FLAGS_ENV) is not None:
        return {"flags": set(os.environ[CPU_FLAGS_ENV].split()),
                "model": f"{CPU_FLAGS_ENV}={os.environ[CPU_FLAGS_ENV]!r}", "family": "?"}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return info
    for line in text.split("\n"):
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "flags" and not info["flags"]:
            info["flags"] = set(value.split())
        elif key == "model name" and info["model"] == "unknown CPU":
            info["model"] = value
        elif key == "cpu family" and info["family"] == "?":
            info["family"] = value
    return info


def cpu_has_native_bf16():
    return any(flag in cpu_info()["flags"] for flag in BF16_CPU_FLAGS)


def cpu_kind():
    """A short name of this CPU kind, for records and benchmark lines."""
    info = cpu_info()
    bf16 = "avx512_bf16" if cpu_has_native_bf16() else (
        "avx512, no bf16" if "avx512f" in info["flags"] else "no avx512")
    return f"{info['model']} (family {info['family']}, {bf16})"


def describe():
    return f"{cpu_kind()}, {os.cpu_count()} logical CPUs"


@functools.lru_cache(maxsize=1)
def _gpu_compute_capability():
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))


def resolve_precision(precision):
    if precision != "auto":
        return precision
    capability = _gpu_compute_capability()
    if capability is not None:
        return "mixed_bfloat16" if capability >= (8, 0) else "float32"
    return "mixed_bfloat16" if cpu_has_native_bf16() else "float32"


def resolve_xla(xla, strategy="default"):
    """`auto`: the AdamW update compiled on one replica (its element-wise ops fuse into one loop
    per variable, 1.1-1.3x per step); off under tf.distribute, whose cross-replica update path
    stays unfused."""
    if xla != "auto":
        return xla
    return "optimizer" if strategy == "default" else "off"


def resolve_kernel(name, value, precision):
    """The kernel `name` ('dropout_impl', 'gelu_impl', 'bias_grad_impl') for a resolved precision.

    Rules from `benchmarks/throughput.py --only=kernels` (docs/performance.md, measured per
    precision): hash dropout was faster in float32 and bfloat16 (1.07x, 1.15x per training step);
    fused GELU was faster in bfloat16 (1.06x) and slower in float32 (0.98x), so it is on for 16-bit
    compute only; float32 bias sums are needed only for 16-bit compute (TensorFlow's CPU kernel sums
    bfloat16 gradients in bfloat16) and change nothing in float32, so they resolve to TensorFlow's
    kernel there.
    """
    if value != "auto":
        return value
    sixteen_bit = precision in ("mixed_bfloat16", "mixed_float16")
    return {"dropout_impl": "hash", "gelu_impl": "fused" if sixteen_bit else "keras",
            "bias_grad_impl": "float32" if sixteen_bit else "keras"}[name]


def xla_cache_directory():
    """The persistent XLA cache folder of this TensorFlow and CPU kind, or None where turned off.

    Default `~/.cache/empathy_tf/xla/tf<version>-<hash of the CPU flags>`: compiled code is specific
    to the compiler and the instructions it targets, so each pair gets its own folder.
    """
    value = os.environ.get(XLA_CACHE_ENV, "")
    if value == "off":
        return None
    if value:
        return value
    version = importlib.metadata.version("tensorflow")
    flags = hashlib.sha1(" ".join(sorted(cpu_info()["flags"])).encode()).hexdigest()[:12]
    return os.path.join(os.path.expanduser("~/.cache/empathy_tf/xla"), f"tf{version}-{flags}")


def enable_persistent_xla_cache():
    """Lets XLA keep what it compiles on disk and load it in later processes; returns the folder.

    Every cell is a fresh process, which otherwise compiles the optimizer update and every size
    bucket of the dropout-mask and GELU kernels again (docs/performance.md, "Warm-up"). TensorFlow
    reads `TF_XLA_FLAGS` once, when it runs its first op, so call this before that (processes
    started later, e.g. spawned cells, inherit the variable). A `TF_XLA_FLAGS` that already names
    a cache folder is left as it is.

    Example:

        hardware.enable_persistent_xla_cache()   # '~/.cache/empathy_tf/xla/tf2.21.0-3f2a...'
    """
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if _XLA_CACHE_FLAG in flags:
        return flags.split(_XLA_CACHE_FLAG + "=", 1)[-1].split()[0]
    directory = xla_cache_directory()
    if directory is None:
        return None
    os.makedirs(directory, exist_ok=True)
    os.environ["TF_XLA_FLAGS"] = f"{flags} {_XLA_CACHE_FLAG}={directory}".strip()
    return directory
