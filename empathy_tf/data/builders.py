"""TFDS builders for every dataset, and `load_dataset`, the single entry point of the data layer.

Each dataset has one `tfds.core.GeneratorBasedBuilder` whose examples come from the strict
readers in `empathy_tf.data.readers`, so a prepared TFDS copy can only hold validated data. The
raw files are never downloaded: TFDS gets the user's folder as `manual_dir` and GCS is disabled.

The builder config name is ``src-<hash12>``, a hash of the source files' sha256 (and of the CSV
options for user files). A changed raw file therefore gets a freshly prepared copy, while an
unchanged one reuses the copy prepared earlier.

Example:
    >>> from empathy_tf.data import builders
    >>> spec, splits = builders.load_dataset("sst2", data_dir="/data", tfds_dir="/tmp/tfds")
    >>> spec.splits, len(splits["train"]), splits["train"].labels[:3]
    (('train', 'validation', 'test'), 67349, array([0, 0, 1]))
    >>> spec, splits = builders.load_dataset("csv:my.tsv", data_dir=".", text_column="tweet")
"""

from __future__ import annotations

import dataclasses
import logging as py_logging
import os
import types
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from empathy_tf.data import readers
from empathy_tf.data.readers import DatasetSpec, RawExamples
from empathy_tf.errors import ConfigError, DataError
from empathy_tf.io_utils import file_sha256, fingerprint

# TFDS reserves the split name 'all' (union of all splits), so our 'all' is stored as 'full'.
_TFDS_SPLIT = {"all": "full"}


@dataclasses.dataclass(eq=False)
class SourceConfig(tfds.core.BuilderConfig):
    """Builder config carrying the dataset spec; its name encodes the source files' hash."""

    spec: Any = None


class _EmpathyTfBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared implementation; subclasses only name their dataset.

    Builders are never looked up by name through TFDS's registry (the config is built at run
    time), so all of them skip registration: re-importing this module can never collide.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    DATASET = None  # key of readers.DATASETS

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS uses the builder's source path only to find URL checksum files; nothing is
        # downloaded here. Its default implementation imports the `importlib_resources` backport,
        # which TFDS 4.9.10 does not declare and which is not in requirements.txt.
        return None

    @property
    def spec(self) -> DatasetSpec:
        return self.builder_config.spec

    def _info(self):
        spec = self.spec
        if spec.multi_label:
            label = tfds.features.Tensor(shape=(len(spec.label_names),), dtype=np.int64)
        elif isinstance(spec, readers.CsvDatasetSpec):
            # User label names come from the file, so store the raw string and map it on load.
            label = tfds.features.Text()
        else:
            label = tfds.features.ClassLabel(names=list(spec.label_names))
        features = {
            "id": tfds.features.Text(),
            "text": tfds.features.Text(),
            "label": label,
            # File order is part of the contract (ids like train-<line> aside); keep it explicit.
            "row": tfds.features.Scalar(dtype=np.int64),
        }
        for field, (kind, shape) in _extra_fields(spec).items():
            if kind == "str":
                features[field] = tfds.features.Text()
            else:
                dtype = np.int64 if kind == "int" else np.float64
                # tf.train.FloatList is float32: store float64 as raw bytes to keep every digit.
                encoding = (tfds.features.Encoding.BYTES if kind == "float"
                            else tfds.features.Encoding.NONE)
                features[field] = tfds.features.Tensor(shape=shape, dtype=dtype, encoding=encoding)
        return self.dataset_info_from_configs(
            description=f"{spec.name} (empathy_tf). {spec.how_to_obtain}.",
            features=tfds.features.FeaturesDict(features),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        manual_dir = os.fspath(dl_manager.manual_dir)
        return {_TFDS_SPLIT.get(s, s): self._generate_examples(manual_dir, s)
                for s in self.spec.splits}

    def _generate_examples(self, manual_dir, split):
        spec = self.spec
        ex = readers.read_split(spec, manual_dir, split)
        is_csv = isinstance(spec, readers.CsvDatasetSpec)
        extras = list(ex.extras.items())
        for i, (example_id, text) in enumerate(zip(ex.ids, ex.texts)):
            label = ex.labels[i]
            example = {"id": example_id, "text": text, "row": i,
                       "label": spec.label_names[label] if is_csv else label}
            for field, values in extras:
                example[field] = values[i]
            yield i, example


def _builder_class(dataset):
    """One TFDS builder class per dataset (TFDS keys prepared data by the class's `name`)."""
    if dataset == "csv":
        instructions = "Pass csv:PATH with a header holding the text and label columns."
    else:
        spec = readers.DATASETS[dataset]
        files = ", ".join(f for paths in spec.files.values() for f in paths)
        instructions = f"Place {files} under --data_dir: {spec.how_to_obtain}."
    class_name = "EmpathyTf" + "".join(part.capitalize() for part in dataset.split("_"))
    return types.new_class(class_name, (_EmpathyTfBuilder,), {"skip_registration": True},
                           lambda ns: ns.update(name=f"empathy_tf_{dataset}", DATASET=dataset,
                                                MANUAL_DOWNLOAD_INSTRUCTIONS=instructions,
                                                __module__=__name__))


BUILDERS = {name: _builder_class(name) for name in (*readers.DATASETS, "csv")}


def _extra_fields(spec):
    key = "csv" if isinstance(spec, readers.CsvDatasetSpec) else spec.name
    return readers.EXTRA_FIELDS[key]


def describe() -> str:
    """One line per dataset: name, splits, labels and where to get the files."""
    lines = [f"{n}: splits {list(s.splits)}, labels {list(s.label_names)}"
             f"{' (multi-label)' if s.multi_label else ''}. {s.how_to_obtain}."
             for n, s in readers.DATASETS.items()]
    lines.append("csv:PATH: your own CSV/TSV file (options text_column, label_column, id_column, "
                 "delimiter); single split 'all'.")
    return "\n".join(lines)


def _source_config(spec, src_dir):
    """Config named after the content of the source files (and how they are read)."""
    files, digests = [], []
    for split in spec.splits:
        for path in readers.split_paths(spec, src_dir, split):
            # The basename, not the full path: moving a folder must not force a rebuild.
            files.append(f"{split}:{os.path.basename(path)}")
            digests.append(file_sha256(path))
    options = spec.csv_options if isinstance(spec, readers.CsvDatasetSpec) else {}
    h = fingerprint(files, digests, options, list(spec.label_names))[:12]
    return SourceConfig(name=f"src-{h}", description=f"{spec.name} from files with sha256 "
                        f"{', '.join(f'{f}={d}' for f, d in zip(files, digests))}", spec=spec)


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


def _read_prepared(builder, spec, split) -> RawExamples:
    data = tfds.as_numpy(builder.as_dataset(split=_TFDS_SPLIT.get(split, split), batch_size=-1,
                                            shuffle_files=False))
    order = np.argsort(data["row"], kind="stable")
    if not np.array_equal(data["row"][order], np.arange(len(order))):
        raise DataError(f"{builder.data_dir}: the prepared copy of split {split!r} is incomplete "
                        "or corrupted; delete this folder to rebuild it")
    labels = data["label"][order]
    if isinstance(spec, readers.CsvDatasetSpec):
        index = {n: i for i, n in enumerate(spec.label_names)}
        labels = np.array([index[s] for s in _decode(labels)], dtype=np.int64)
    extras = {}
    for field, (kind, _) in _extra_fields(spec).items():
        values = data[field][order]
        if kind == "str":
            extras[field] = np.array(_decode(values), dtype=object)
        else:
            extras[field] = values.astype(np.int64 if kind == "int" else np.float64)
    return RawExamples(ids=_decode(data["id"][order]), texts=_decode(data["text"][order]),
                       labels=labels.astype(np.int64), extras=extras)


def load_dataset(name: str, data_dir: str, tfds_dir: str | None = None,
                 **csv_options) -> tuple[DatasetSpec, dict[str, RawExamples]]:
    """Loads a dataset through TFDS, preparing it first if its source files are new or changed.

    Args:
        name: A key of `readers.DATASETS`, or ``csv:PATH`` (PATH absolute or relative to cwd).
        data_dir: Folder laid out as described in data/README.md (ignored for ``csv:PATH``).
        tfds_dir: Where prepared copies live; default env TFDS_DATA_DIR, else
            ~/tensorflow_datasets.
        **csv_options: For ``csv:PATH`` only: text_column, label_column, id_column, delimiter.

    Returns:
        (spec, {split: RawExamples}) with examples in file order.

    Raises:
        ConfigError: unknown dataset name or option.
        DataError: a missing or malformed source file (raised before TFDS touches anything
            when a file is missing).
    """
    if not isinstance(name, str):
        raise ConfigError(f"dataset name must be a string, got {name!r}")
    spec = readers.get_spec(name, **csv_options)
    if isinstance(spec, readers.CsvDatasetSpec):
        builder_cls = BUILDERS["csv"]
        src_dir = os.path.dirname(spec.files["all"][0])
    else:
        builder_cls = BUILDERS[spec.name]
        src_dir = os.path.abspath(os.path.expanduser(data_dir))
        readers.check_files(spec, src_dir)
    tfds_dir = os.path.abspath(os.path.expanduser(
        tfds_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"))

    builder = builder_cls(data_dir=tfds_dir, config=_source_config(spec, src_dir))
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

    splits = {split: _read_prepared(builder, spec, split) for split in spec.splits}
    readers.check_unique_ids(spec, splits)
    return spec, splits
