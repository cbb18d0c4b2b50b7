"""Atomic file writes, content fingerprints and run-folder locks.

Everything the suite persists (metrics, caches, split ids) goes through these helpers so that an
interrupted process never leaves a half-written file that looks complete.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile

import numpy as np

from empathy_tf.errors import EmpathyTFError


_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic_replace(path, write_fn, mode):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give results the usual mode
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    _atomic_replace(path, lambda f: f.write(text), "w")


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save_npz(path, **arrays):
    _atomic_replace(path, lambda f: np.savez(f, **arrays), "wb")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_roundtrip(obj):
    """The value as it would read back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def read_json(path):
    with open(path) as f:
        return json.load(f)


def fingerprint(*parts):
    """Stable short hash of JSON-able parts, numpy arrays and strings."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode())
            h.update(str(part.shape).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, (list, tuple)) and part and all(isinstance(p, str) for p in part):
            for p in part:
                h.update(p.encode("utf-8", "surrogatepass"))
                h.update(b"\x00")
        else:
            h.update(json.dumps(part, sort_keys=True, default=_json_default).encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def file_sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class FolderLockedError(EmpathyTFError):
    pass


@contextlib.contextmanager
def folder_lock(directory):
    """Exclusive, non-blocking lock on a run or cache folder; released when the process dies."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, ".lock")
    f = open(path, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The folder may have been moved aside (--overwrite) between open and flock: then this
        # lock guards the moved folder, not `directory`.
        if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        f.close()
        raise FolderLockedError(
            f"{directory} is in use by another empathy_tf process (lock {path}); wait for it to "
            "finish or choose another --output_dir")
    try:
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


def path_slug(name):
    """A folder-safe name: `csv:/a/My data.tsv` -> `csv-My_data`; other names unchanged."""
    scheme, colon, path = name.partition(":")
    if not colon or not path:
        return name
    stem = os.path.splitext(os.path.basename(path))[0]
    return f"{scheme}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
