"""TFDS builders for every source, and `load`, the data layer's single entry point.

Each source gets one `tfds.core.GeneratorBasedBuilder` class (made here from the source, nothing to
declare per dataset) whose examples come from the source's strict reader, so a prepared TFDS copy
can only hold validated data. The raw files are never downloaded: TFDS gets the user's folder as
`manual_dir` and GCS is disabled.

The builder config name is ``src-<hash12>``, a hash of the source files' sha256 and of the source's
identity (label names, CSV options). A changed raw file therefore gets a freshly prepared copy,
while an unchanged one reuses the copy prepared earlier.

Example:

    from empathy_tf.data import sources, tfds_source
    splits = tfds_source.load(sources.get_source("sst2"), data_dir="/data", tfds_dir="/tmp/tfds")
    len(splits["train"]), splits["train"].labels[:3]     # (67349, array([0, 0, 1]))
"""

from __future__ import annotations

import dataclasses
import functools
import logging as py_logging
import os
import shutil
import types
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from empathy_tf import console
from empathy_tf.data.sources.base import RawExamples, check_unique_ids
from empathy_tf.errors import ConfigError, DataError
from empathy_tf.io_utils import file_sha256, fingerprint

# TFDS reserves the split name 'all' (union of all splits), so our 'all' is stored as 'full'.
_TFDS_SPLIT = {"all": "full"}


@dataclasses.dataclass(eq=False)
class SourceConfig(tfds.core.BuilderConfig):
    """Builder config carrying the source; its name encodes the source files' hash."""

    source: Any = None


class _SourceBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared implementation; `builder_class` makes one subclass per source.

    Builders are never looked up by name through TFDS's registry (the config is built at run
    time), so all of them skip registration: re-importing this module can never collide.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS uses the builder's source path only to find URL checksum files; nothing is
        # downloaded here. Its default implementation imports the `importlib_resources` backport,
        # which TFDS 4.9.10 does not declare and which is not in requirements.txt.
        return None

    @property
    def source(self):
        return self.builder_config.source

    def _info(self):
        source = self.source
        if source.multi_label:
            label = tfds.features.Tensor(shape=(len(source.label_names),), dtype=np.int64)
        else:
            label = tfds.features.Scalar(dtype=np.int64)
        features = {
            "id": tfds.features.Text(),
            "text": tfds.features.Text(),
            "label": label,
            # File order is part of the contract (ids like train-<line> aside); keep it explicit.
            "row": tfds.features.Scalar(dtype=np.int64),
        }
        for field, (kind, shape) in source.extras.items():
            if kind == "str":
                features[field] = tfds.features.Text()
            else:
                dtype = np.int64 if kind == "int" else np.float64
                # tf.train.FloatList is float32: store float64 as raw bytes to keep every digit.
                encoding = (tfds.features.Encoding.BYTES if kind == "float"
                            else tfds.features.Encoding.NONE)
                features[field] = tfds.features.Tensor(shape=shape, dtype=dtype, encoding=encoding)
        return self.dataset_info_from_configs(
            description=f"{source.name} (empathy_tf). {source.how_to_obtain}.",
            features=tfds.features.FeaturesDict(features),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        manual_dir = os.fspath(dl_manager.manual_dir)
        return {_TFDS_SPLIT.get(s, s): self._generate_examples(manual_dir, s)
                for s in self.source.splits}

    def _generate_examples(self, manual_dir, split):
        ex = self.source.read_split(manual_dir, split)
        extras = list(ex.extras.items())
        for i, (example_id, text) in enumerate(zip(ex.ids, ex.texts)):
            example = {"id": example_id, "text": text, "row": i, "label": ex.labels[i]}
            for field, values in extras:
                example[field] = values[i]
            yield i, example


@functools.lru_cache(maxsize=None)
def builder_class(builder_name, instructions):
    """One TFDS builder class per source (TFDS keys prepared data by the class's `name`)."""
    class_name = "EmpathyTf" + "".join(part.capitalize() for part in builder_name.split("_"))
    return types.new_class(class_name, (_SourceBuilder,), {"skip_registration": True},
                           lambda ns: ns.update(name=f"empathy_tf_{builder_name}",
                                                MANUAL_DOWNLOAD_INSTRUCTIONS=instructions,
                                                __module__=__name__))


@functools.lru_cache(maxsize=256)
def _file_digest(path, size, mtime_ns):
    del size, mtime_ns  # cache key only: an edited file is hashed again
    return file_sha256(path)


def _digests(source, src_dir):
    files, digests = [], []
    for split in source.splits:
        for path in source.split_paths(src_dir, split):
            # The basename, not the full path: moving a folder must not force a rebuild.
            files.append(f"{split}:{os.path.basename(path)}")
            st = os.stat(path)
            digests.append(_file_digest(path, st.st_size, st.st_mtime_ns))
    return files, digests


def _src_dir(source, data_dir):
    return os.path.abspath(os.path.expanduser(getattr(source, "data_dir", None) or data_dir))


def fingerprint_of(source, data_dir):
    """A hash of a source's files (sha256) and of how they are read; DataError if one is missing."""
    src_dir = _src_dir(source, data_dir)
    source.check_files(src_dir)
    files, digests = _digests(source, src_dir)
    return fingerprint(files, digests, source.identity())[:12]


def _source_config(source, src_dir):
    """Config named after the content of the source files (and how they are read)."""
    files, digests = _digests(source, src_dir)
    h = fingerprint(files, digests, source.identity())[:12]
    return SourceConfig(name=f"src-{h}", description=f"{source.name} from files with sha256 "
                        f"{', '.join(f'{f}={d}' for f, d in zip(files, digests))}", source=source)


class _DropExpectedTfdsWarnings(py_logging.Filter):
    """Drops two TFDS warnings that every load triggers by design, so real warnings stand out."""

    _EXPECTED = ("Using custom data configuration: SourceConfig(",  # our per-file-hash configs
                 "`FeatureConnector.dtype` is deprecated")  # TFDS-internal, for BYTES tensors

    def filter(self, record):
        message = record.getMessage()
        return not any(e in message for e in self._EXPECTED)


py_logging.getLogger("absl").addFilter(_DropExpectedTfdsWarnings())


def _find_data_error(exc):
    """The DataError that caused `exc`, if TFDS wrapped one."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DataError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _decode(values):
    return [v.decode("utf-8") for v in values.tolist()]


def _read_prepared(builder, source, split) -> RawExamples:
    data = tfds.as_numpy(builder.as_dataset(split=_TFDS_SPLIT.get(split, split), batch_size=-1,
                                            shuffle_files=False))
    order = np.argsort(data["row"], kind="stable")
    if not np.array_equal(data["row"][order], np.arange(len(order))):
        raise DataError(f"{builder.data_dir}: the prepared copy of split {split!r} is incomplete "
                        "or corrupted; delete this folder to rebuild it")
    extras = {}
    for field, (kind, _) in source.extras.items():
        values = data[field][order]
        if kind == "str":
            extras[field] = np.array(_decode(values), dtype=object)
        else:
            extras[field] = values.astype(np.int64 if kind == "int" else np.float64)
    return RawExamples(ids=_decode(data["id"][order]), texts=_decode(data["text"][order]),
                       labels=data["label"][order].astype(np.int64), extras=extras)


def load(source, data_dir, tfds_dir=None) -> dict[str, RawExamples]:
    """A source's splits through TFDS, preparing them first if its files are new or changed.

    Args:
        source: A `Source` (see `sources.get_source`).
        data_dir: Folder laid out as in data/README.md (user CSV sources carry their own path).
        tfds_dir: Where prepared copies live; default env TFDS_DATA_DIR, else
            ~/tensorflow_datasets.

    Returns:
        {split: RawExamples} with examples in file order.

    Raises:
        DataError: a missing or malformed source file (raised before TFDS touches anything
            when a file is missing).
    """
    if not hasattr(source, "read"):
        raise ConfigError(f"expected a Source, got {source!r}")
    src_dir = _src_dir(source, data_dir)
    source.check_files(src_dir)
    tfds_dir = os.path.abspath(os.path.expanduser(
        tfds_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"))
    builder_cls = builder_class(getattr(source, "builder_name", source.name),
                                f"Place the files under --data_dir: {source.how_to_obtain}.")
    with console.tfds_output():   # no progress bars or notices unless --verbosity >= 1
        builder = _prepared(builder_cls, tfds_dir, source, src_dir)
        try:
            splits = {split: _read_prepared(builder, source, split) for split in source.splits}
        except (tf.errors.OpError, DataError) as e:
            # A truncated or damaged prepared copy (the raw files are fine: they were just
            # hashed). It is derived data: rebuild it from the raw files.
            logging.warning("the prepared copy %s of %s is damaged (%s: %s); rebuilding it",
                            builder.data_dir, source.name, type(e).__name__,
                            str(e).strip().splitlines()[0] if str(e).strip() else "")
            shutil.rmtree(builder.data_dir, ignore_errors=True)
            builder = _prepared(builder_cls, tfds_dir, source, src_dir)
            splits = {split: _read_prepared(builder, source, split) for split in source.splits}
    check_unique_ids(source, splits)
    return splits


def _prepared(builder_cls, tfds_dir, source, src_dir):
    """The source's builder with its copy prepared (from the raw files, if not done yet)."""
    builder = builder_cls(data_dir=tfds_dir, config=_source_config(source, src_dir))
    download_config = tfds.download.DownloadConfig(
        manual_dir=src_dir, try_download_gcs=False,
        compute_stats=tfds.download.ComputeStatsMode.SKIP)
    try:
        builder.download_and_prepare(download_config=download_config)
    except DataError:
        raise
    except Exception as e:  # TFDS may wrap errors raised inside the example generator.
        if (cause := _find_data_error(e)) is not None:
            raise cause from None
        raise
    return builder
