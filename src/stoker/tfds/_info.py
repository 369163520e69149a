"""``dataset_info.json`` and ``features.json``: what a prepared TFDS dataset says about itself.

Both are protobuf messages written as JSON (proto3's JSON form: camelCase names, int64 as
strings, empty fields left out), so they are read with ``json`` alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from stoker.tfds import features as features_lib
from stoker.tfds._json import from_json

__all__ = ["DatasetInfo", "SplitInfo", "read_info"]

_DEFAULT_TEMPLATE: Final = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
_FILE_FORMATS: Final = ("tfrecord",)


@dataclass(frozen=True)
class SplitInfo:
    """One split of a prepared dataset.

    Attributes:
        name: The split name, e.g. ``"train"``.
        shard_lengths: Examples in each shard file, in order.
        filenames: The shard files' names, in order.
        num_bytes: Total bytes of the shards, as TFDS recorded it.
    """

    name: str
    shard_lengths: tuple[int, ...]
    filenames: tuple[str, ...]
    num_bytes: int = 0

    @property
    def num_examples(self) -> int:
        """Examples in the split."""
        return sum(self.shard_lengths)

    @property
    def num_shards(self) -> int:
        """Shard files in the split."""
        return len(self.shard_lengths)


@dataclass(frozen=True)
class DatasetInfo:
    """What ``tfds.load(..., with_info=True)`` returns beside the dataset.

    Attributes:
        name: The dataset name.
        version: The version directory read, e.g. ``"1.0.0"``.
        config_name: The builder config, or ``None``.
        data_dir: The directory holding the files that were read.
        features: The element's features; ``info.features["label"].names`` gives class names.
        splits: Split name to ``SplitInfo``; ``info.splits["train"].num_examples``.
        supervised_keys: The ``(input, target)`` feature names ``as_supervised`` picks, or
            ``None``.
        description, homepage, citation: As the builder wrote them.
        file_format: The record file format (``"tfrecord"``).
    """

    name: str
    version: str
    config_name: str | None
    data_dir: str
    features: features_lib.FeaturesDict
    splits: Mapping[str, SplitInfo]
    supervised_keys: tuple[Any, ...] | None
    description: str = ""
    homepage: str = ""
    citation: str = ""
    file_format: str = "tfrecord"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        """``name/config/version`` (``name/version`` without a config)."""
        parts = [self.name, self.config_name, self.version]
        return "/".join(p for p in parts if p)

    def split_shards(self) -> dict[str, tuple[list[str], list[int]]]:
        """Split name to (shard paths, examples per shard)."""
        return {
            name: ([os.path.join(self.data_dir, f) for f in s.filenames], list(s.shard_lengths))
            for name, s in self.splits.items()
        }


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); the dataset is damaged") from None


def _filenames(
    template: str, dataset: str, split: str, file_format: str, n: int
) -> tuple[str, ...]:
    names = []
    for i in range(n):
        names.append(
            template.replace("{DATASET}", dataset)
            .replace("{SPLIT}", split)
            .replace("{FILEFORMAT}", file_format)
            .replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{n:05d}")
            .replace("{SHARD_INDEX}", f"{i:05d}")
            .replace("{NUM_SHARDS}", f"{n:05d}")
        )
    return tuple(names)


def _supervised_keys(proto: Any) -> Any:
    """Reads a SupervisedKeys.Nest (tuple / dict / featureKey); old files use input/output."""
    if not proto:
        return None
    if "featureKey" in proto:
        return proto["featureKey"]
    if "tuple" in proto:
        return tuple(_supervised_keys(item) for item in proto["tuple"].get("items", []))
    if "dict" in proto:
        return {k: _supervised_keys(v) for k, v in proto["dict"].get("dict", {}).items()}
    if "input" in proto and "output" in proto:
        return (proto["input"], proto["output"])
    return None


def read_info(data_dir: str, config_name: str | None = None) -> DatasetInfo:
    """Reads a prepared dataset's info from its version directory.

    Args:
        data_dir: The version directory, ``<data_dir>/<name>[/<config>]/<version>``.
        config_name: The builder config the directory belongs to, if any.

    Returns:
        The dataset's info, its features loaded with their class names.

    Raises:
        ValueError: The files are damaged or describe a format stoker does not read.
    """
    info_path = os.path.join(data_dir, "dataset_info.json")
    info = _read_json(info_path)
    name = info.get("name", os.path.basename(os.path.dirname(data_dir)))
    file_format = info.get("fileFormat", "tfrecord") or "tfrecord"
    if file_format not in _FILE_FORMATS:
        raise ValueError(
            f"{info_path}: the dataset was written as {file_format!r}; stoker reads TFRecord "
            "datasets (prepare it with file_format='tfrecord')"
        )
    splits = {}
    for split in info.get("splits", []):
        split_name = split["name"]
        lengths = tuple(int(n) for n in split.get("shardLengths", []))
        if not lengths and int(split.get("numShards", 0) or 0):
            raise ValueError(
                f"{info_path}: split {split_name!r} records no shardLengths (an old TFDS "
                "format); prepare the dataset again with tensorflow-datasets >= 4"
            )
        template = split.get("filepathTemplate") or _DEFAULT_TEMPLATE
        splits[split_name] = SplitInfo(
            split_name,
            lengths,
            _filenames(template, name, split_name, file_format, len(lengths)),
            int(split.get("numBytes", 0) or 0),
        )
    features_path = os.path.join(data_dir, "features.json")
    try:
        features_json = _read_json(features_path)
    except FileNotFoundError:
        raise ValueError(
            f"{features_path} is missing; the dataset was prepared without its features "
            "description, which stoker needs to decode the records"
        ) from None
    features = from_json(features_json)
    if not isinstance(features, features_lib.FeaturesDict):
        raise ValueError(
            f"{features_path}: the top-level feature is a {type(features).__name__}; stoker "
            "reads datasets whose features are a FeaturesDict"
        )
    features.load_metadata(data_dir, "")
    return DatasetInfo(
        name=name,
        version=info.get("version", os.path.basename(data_dir)),
        config_name=config_name or info.get("configName") or None,
        data_dir=data_dir,
        features=features,
        splits=splits,
        supervised_keys=_supervised_keys(info.get("supervisedKeys")),
        description=info.get("description", ""),
        homepage=info.get("location", {}).get("urls", [""])[0] if info.get("location") else "",
        citation=info.get("citation", ""),
        file_format=file_format,
        metadata=info,
    )
