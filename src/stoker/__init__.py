"""stoker: an input pipeline that keeps accelerators fed.

tf.data's model with NumPy elements: build a :class:`Dataset`, iterate it.

Example::

    import stoker as sk

    ds = sk.Dataset.range(100).shuffle(10, seed=0).map(lambda x: x * 2).batch(8)
    for batch in ds:
        ...
"""

from stoker import errors, stats
from stoker.cache import CacheInfo, cache_info
from stoker.dataset import Dataset
from stoker.errors import (
    CacheError,
    CheckpointError,
    DataLossError,
    InvalidElementError,
    StokerError,
    WorkerError,
)
from stoker.iterator import DatasetIterator
from stoker.options import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Options
from stoker.sources.files import TextLineDataset, TFRecordDataset
from stoker.sources.generator import TensorSpec
from stoker.stats import trace

__version__ = "0.1.0"

__all__ = [
    "AUTOTUNE",
    "CacheError",
    "CacheInfo",
    "CheckpointError",
    "DataLossError",
    "Dataset",
    "DatasetIterator",
    "INFINITE_CARDINALITY",
    "InvalidElementError",
    "Options",
    "StokerError",
    "TFRecordDataset",
    "TensorSpec",
    "TextLineDataset",
    "UNKNOWN_CARDINALITY",
    "WorkerError",
    "cache_info",
    "errors",
    "stats",
    "trace",
]
