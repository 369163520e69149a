"""``load``: find a prepared dataset on disk and build the pipeline TFDS builds over it.

TFDS reads a split as: the selected ``(file, skip, take)`` reads, shuffled when
``shuffle_files``, interleaved 16 files at a time, 16 records from each in turn (its
``ReadConfig`` defaults), then decoded by a parallel ``map``. This module builds the same
graph from stoker ops, so the element order is TFDS's and the iterator checkpoints like any
other stoker pipeline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from stoker.dataset import Dataset
from stoker.io.example import parse_example
from stoker.options import AUTOTUNE, Options
from stoker.sources.files import TFRecordDataset
from stoker.tfds import _splits
from stoker.tfds import decode as decode_lib
from stoker.tfds import features as features_lib
from stoker.tfds._info import DatasetInfo, read_info

__all__ = ["Builder", "ReadConfig", "as_numpy", "builder", "load"]

_VERSION_RE: Final = re.compile(r"^\d+\.\d+\.\d+$")
# TFDS's ReadConfig defaults (tensorflow_datasets/core/utils/read_config.py).
_CYCLE_LENGTH: Final = 16
_BLOCK_LENGTH: Final = 16


@dataclass(frozen=True)
class ReadConfig:
    """How splits are read, with TFDS's ``tfds.ReadConfig`` names and defaults.

    Args:
        shuffle_seed: Seed of the file-order shuffle when ``shuffle_files=True``; ``None``
            draws a fresh order each time.
        shuffle_reshuffle_each_iteration: A new file order each epoch.
        interleave_cycle_length: Files read at once; ``None`` is 16, or 1 for datasets that
            disable shuffling.
        interleave_block_length: Records taken from a file before moving to the next.
        num_parallel_calls_for_decode: Parallelism of the decoding ``map``.
        num_parallel_calls_for_interleave_files: Parallelism of the file ``interleave``
            (``None``: read inline, which is fastest for local files).
        options: ``stoker.Options`` applied to the returned dataset.
    """

    shuffle_seed: int | None = None
    shuffle_reshuffle_each_iteration: bool = True
    interleave_cycle_length: int | None = None
    interleave_block_length: int = _BLOCK_LENGTH
    num_parallel_calls_for_decode: int | None = AUTOTUNE
    num_parallel_calls_for_interleave_files: int | None = None
    options: Options | None = None


def _default_data_dir() -> str:
    return os.environ.get("TFDS_DATA_DIR") or os.path.join("~", "tensorflow_datasets")


def _parse_name(name: str) -> tuple[str, str | None, str | None]:
    """``"name[/config][:version]"`` -> (name, config, version)."""
    base, _, version = name.partition(":")
    dataset, _, config = base.partition("/")
    if not dataset or not re.match(r"^[\w.-]+$", dataset) or (config and "/" in config):
        raise ValueError(
            f"name={name!r} is not a dataset name; write 'name', 'name/config' or "
            "'name/config:1.2.3'"
        )
    return dataset, config or None, version or None


def _versions(directory: str) -> list[str]:
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [
        e
        for e in entries
        if _VERSION_RE.match(e) and os.path.isfile(os.path.join(directory, e, "dataset_info.json"))
    ]
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")))


def _not_prepared(name: str, looked: str, why: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"dataset {name!r} is not prepared: {why} (looked in {looked}). stoker reads datasets "
        "that TensorFlow Datasets has already prepared on disk and cannot download or "
        "prepare one itself: run tfds.load or `tfds build` once with tensorflow-datasets "
        "(for this data_dir), then load it here; or pass data_dir= where it was prepared "
        "(the default is $TFDS_DATA_DIR, else ~/tensorflow_datasets)"
    )


def _find(name: str, data_dir: str | os.PathLike[str] | None) -> tuple[str, str | None]:
    """Returns (version directory, config name) of the prepared dataset."""
    dataset, config, version = _parse_name(name)
    root = os.path.expanduser(os.fspath(data_dir if data_dir is not None else _default_data_dir()))
    base = os.path.join(root, dataset)
    if not os.path.isdir(base):
        raise _not_prepared(name, root, f"there is no directory {base}")
    if config is None and not _versions(base):
        configs = sorted(c for c in os.listdir(base) if _versions(os.path.join(base, c)))
        if len(configs) == 1:
            config = configs[0]
        elif configs:
            raise ValueError(
                f"dataset {name!r} is prepared in several configs {configs} under {base}; "
                f"name one, e.g. '{dataset}/{configs[0]}'"
            )
    directory = os.path.join(base, config) if config else base
    versions = _versions(directory)
    if version is not None:
        if version not in versions:
            raise _not_prepared(
                name, directory, f"version {version} is not there (prepared: {versions or 'none'})"
            )
        return os.path.join(directory, version), config
    if not versions:
        raise _not_prepared(name, directory, "no version directory holds a dataset_info.json")
    return os.path.join(directory, versions[-1]), config


class _Decode:
    """The decoding ``map`` function: record bytes -> element (a class so it pickles)."""

    def __init__(self, features: features_lib.FeaturesDict, supervised: Any) -> None:
        self._features = features
        self._supervised = supervised

    def __call__(self, record: bytes) -> Any:
        element = self._features.decode_example(parse_example(record))
        if self._supervised is None:
            return element
        return _pick(element, self._supervised)


def _pick(element: dict[str, Any], keys: Any) -> Any:
    if isinstance(keys, str):
        value: Any = element
        for part in keys.split("/"):
            value = value[part]
        return value
    if isinstance(keys, dict):
        return {k: _pick(element, v) for k, v in keys.items()}
    return tuple(_pick(element, k) for k in keys)


def _read_shard(read: Mapping[str, Any]) -> Dataset:
    """One ``FileRead`` (as the dict element of the file-list dataset) -> its records."""
    ds: Dataset = TFRecordDataset(str(read["path"]))
    skip, take = int(read["skip"]), int(read["take"])
    if skip:
        ds = ds.skip(skip)
    if take >= 0:
        ds = ds.take(take)
    return ds


def _split_dataset(
    info: DatasetInfo,
    split: str,
    shuffle_files: bool,
    as_supervised: bool,
    read_config: ReadConfig,
    batch_size: int | None,
    decoders: Mapping[str, Any] | None = None,
) -> Dataset:
    reads = _splits.file_reads(split, info.split_shards())
    if not reads:
        raise ValueError(
            f"split {split!r} selects no examples of {info.name!r} (splits: "
            f"{ {k: v.num_examples for k, v in info.splits.items()} })"
        )
    supervised = None
    if as_supervised:
        if info.supervised_keys is None:
            raise ValueError(
                f"as_supervised=True but dataset {info.name!r} defines no supervised_keys; "
                f"pick the features yourself from {list(info.features.keys())}"
            )
        supervised = info.supervised_keys
    files = Dataset.from_tensor_slices(
        {
            "path": np.array([r.path for r in reads], dtype=str),
            "skip": np.array([r.skip for r in reads], dtype=np.int64),
            "take": np.array([r.take for r in reads], dtype=np.int64),
        }
    )
    if shuffle_files and len(reads) > 1:
        files = files.shuffle(
            len(reads),
            seed=read_config.shuffle_seed,
            reshuffle_each_iteration=read_config.shuffle_reshuffle_each_iteration,
        )
    cycle_length = read_config.interleave_cycle_length
    if cycle_length is None:
        cycle_length = 1 if info.metadata.get("disableShuffling") else _CYCLE_LENGTH
    records = files.interleave(
        _read_shard,
        cycle_length=cycle_length,
        block_length=read_config.interleave_block_length,
        num_parallel_calls=read_config.num_parallel_calls_for_interleave_files,
        name=f"tfds-{info.name}-{split}-read",
    )
    features = info.features if not decoders else decode_lib.apply(info.features, decoders)
    ds = records.map(
        _Decode(features, supervised),
        num_parallel_calls=read_config.num_parallel_calls_for_decode,
        name=f"tfds-{info.name}-{split}-decode",
    )
    if batch_size is not None:
        if batch_size <= 0:
            raise ValueError(
                f"batch_size={batch_size}: stoker batches with a positive size; for the "
                "whole split at once, pass info.splits[split].num_examples"
            )
        ds = ds.batch(batch_size)
    if read_config.options is not None:
        ds = ds.with_options(read_config.options)
    return ds


def load(
    name: str,
    *,
    split: Any = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    shuffle_files: bool = False,
    download: bool = True,
    as_supervised: bool = False,
    decoders: Any = None,
    read_config: ReadConfig | None = None,
    with_info: bool = False,
) -> Any:
    """Reads a dataset that TensorFlow Datasets prepared, as ``tfds.load`` does.

    Nothing is downloaded or prepared: the dataset must already be on disk, as
    ``tfds.load`` or ``tfds build`` left it (``<data_dir>/<name>/<version>/`` with
    ``dataset_info.json``, ``features.json`` and TFRecord shards).

    Args:
        name: ``"name"``, ``"name/config"`` or ``"name:1.0.0"``; without a version the
            newest prepared one is read.
        split: A split spec (``"train"``, ``tfds.Split.TRAIN``, ``"train[:10%]"``,
            ``"train[100:200]+test"``), a list of specs (a list of datasets is returned),
            or ``None`` for a dict of every split.
        data_dir: Where datasets are prepared; default ``$TFDS_DATA_DIR``, else
            ``~/tensorflow_datasets``.
        batch_size: Batch the examples (``None``: one example per element).
        shuffle_files: Shuffle the order of the shard files (seed: ``read_config``).
        download: Accepted for compatibility; stoker never downloads.
        as_supervised: Elements are the ``(input, target)`` tuple of the dataset's
            ``supervised_keys`` instead of the feature dict.
        decoders: Features to leave encoded: ``{"image": tfds.decode.SkipDecoding()}``
            gives that ``Image`` feature as its encoded ``bytes`` (nested dicts for nested
            features).
        read_config: A ``ReadConfig`` (file shuffle seed, interleave, parallelism).
        with_info: Also return the ``DatasetInfo``.

    Returns:
        The dataset (or list/dict of them), and ``(ds, info)`` with ``with_info=True``.

    Raises:
        FileNotFoundError: The dataset is not prepared under ``data_dir`` (the message says
            where stoker looked).
        ValueError: An unreadable split spec, an unknown split, or a dataset format stoker
            does not read.

    Example::

        ds, info = tfds.load("mnist", split="train[:10%]", as_supervised=True, with_info=True)
        ds = ds.shuffle(1024).batch(128).prefetch(tf.data.AUTOTUNE)
    """
    del download  # stoker reads what is on disk; a missing dataset raises either way
    b = builder(name, data_dir=data_dir)
    ds = b.as_dataset(
        split=split,
        batch_size=batch_size,
        shuffle_files=shuffle_files,
        read_config=read_config,
        as_supervised=as_supervised,
        decoders=decoders,
    )
    return (ds, b.info) if with_info else ds


class Builder:
    """A prepared dataset on disk: its ``info`` and ``as_dataset``, as a TFDS builder.

    Attributes:
        info: The dataset's ``DatasetInfo``.
        data_dir: Its version directory.
    """

    def __init__(self, name: str, data_dir: str | os.PathLike[str] | None = None) -> None:
        directory, config = _find(name, data_dir)
        self.name = name
        self.data_dir = directory
        self.info = read_info(directory, config)

    def download_and_prepare(self, **kwargs: Any) -> None:
        """Does nothing: the dataset is already prepared (else ``builder()`` raised)."""
        del kwargs

    def as_dataset(
        self,
        split: Any = None,
        *,
        batch_size: int | None = None,
        shuffle_files: bool = False,
        read_config: ReadConfig | None = None,
        as_supervised: bool = False,
        decoders: Mapping[str, Any] | None = None,
    ) -> Any:
        """The split(s) as stoker datasets; arguments as in ``load``.

        Example::

            ds = tfds.builder("mnist").as_dataset(split="test")
        """
        config = read_config or ReadConfig()
        if split is None:
            return {
                name: _split_dataset(
                    self.info, name, shuffle_files, as_supervised, config, batch_size, decoders
                )
                for name in self.info.splits
            }
        if isinstance(split, (list, tuple)):
            return [
                _split_dataset(
                    self.info, str(s), shuffle_files, as_supervised, config, batch_size, decoders
                )
                for s in split
            ]
        return _split_dataset(
            self.info, str(split), shuffle_files, as_supervised, config, batch_size, decoders
        )

    def __repr__(self) -> str:
        return f"Builder({self.info.full_name!r}, data_dir={self.data_dir!r})"


def builder(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> Builder:
    """The prepared dataset ``name`` under ``data_dir``, as ``tfds.builder`` gives it.

    Raises:
        FileNotFoundError: It is not prepared there (stoker cannot prepare it).

    Example::

        info = tfds.builder("mnist").info
        info.features["label"].names
    """
    return Builder(name, data_dir)


def as_numpy(dataset: Any) -> Any:
    """Returns ``dataset`` as is: stoker elements are NumPy already (``tfds.as_numpy``).

    Example::

        for example in tfds.as_numpy(ds):
            ...
    """
    return dataset
