"""Datasets that TensorFlow Datasets prepared, read without TensorFlow.

``import stoker.tfds as tfds`` in place of ``import tensorflow_datasets as tfds``: ``load``,
``builder``, ``Split``, ``ReadConfig``, ``as_numpy``, ``decode`` and ``features`` read what
TFDS wrote to ``data_dir`` (``dataset_info.json``, ``features.json``, ``*.labels.txt`` and
the TFRecord shards) and decode the examples as TFDS does, into NumPy. Nothing is
downloaded: a dataset that is not prepared raises ``FileNotFoundError`` saying where stoker
looked.

Example::

    import stoker.tfds as tfds

    ds, info = tfds.load("cats_vs_dogs", split=tfds.Split.TRAIN, with_info=True)
    names = info.features["label"].names
"""

from stoker.tfds import decode, features
from stoker.tfds._info import DatasetInfo, SplitInfo
from stoker.tfds._load import Builder, ReadConfig, as_numpy, builder, load
from stoker.tfds._splits import Split

__all__ = [
    "Builder",
    "DatasetInfo",
    "ReadConfig",
    "Split",
    "SplitInfo",
    "as_numpy",
    "builder",
    "decode",
    "features",
    "load",
]
