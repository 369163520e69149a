"""File formats: TFRecord (TensorFlow-compatible), ``tf.train.Example`` protos, text lines.

These are the low-level readers and writers; ``TFRecordDataset`` and ``TextLineDataset``
build on them. Every reader exposes ``offset``, the position of the next element in the
uncompressed stream, so a checkpoint can store ``(path, offset)`` and resume exactly.
"""

from stoker.io.example import FixedLenFeature, VarLenFeature, make_example, parse_example
from stoker.io.text import TextLineReader
from stoker.io.tfrecord import TFRecordReader, TFRecordWriter, masked_crc32c

__all__ = [
    "FixedLenFeature",
    "TFRecordReader",
    "TFRecordWriter",
    "TextLineReader",
    "VarLenFeature",
    "make_example",
    "masked_crc32c",
    "parse_example",
]
