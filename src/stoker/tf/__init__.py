"""The input-pipeline part of TensorFlow, on NumPy: ``import stoker.tf as tf``.

Code written for tf.data runs with its import changed::

    import stoker.tf as tf                               # was: import tensorflow as tf
    from stoker.tf.data.experimental import AUTOTUNE     # was: from tensorflow.data...

    def augment(image, label):
        image = tf.image.random_flip_left_right(image)
        image = tf.image.resize(image, [224, 224])
        return tf.cast(image, tf.float32) / 255.0, label

    ds = tf.data.TFRecordDataset(files).map(parse).map(augment, num_parallel_calls=AUTOTUNE)

What is served:

- ``tf.data``: ``Dataset``, ``TFRecordDataset``, ``TextLineDataset``, ``Options``,
  ``AUTOTUNE``, ``INFINITE_CARDINALITY``, ``UNKNOWN_CARDINALITY``, ``experimental`` —
  stoker's own classes, not wrappers, so the pipeline costs what it costs through ``stoker``;
- ``tf.image``: every function of ``stoker.image`` (loaded on first use);
- ``tf.io``: ``parse_single_example``, ``parse_example``, ``FixedLenFeature``,
  ``VarLenFeature``, the image codecs, ``read_file``, ``TFRecordWriter``, ``TFRecordOptions``;
- dtypes as NumPy dtypes (``tf.float32``, ``tf.uint8``, ``tf.int64``, ``tf.string`` …),
  ``as_dtype`` and ``TensorSpec``;
- tensor helpers on NumPy: ``cast``, ``reshape``, ``expand_dims``, ``squeeze``, ``stack``,
  ``concat``, ``one_hot``, ``clip_by_value``, ``constant``, ``shape``, ``numpy_function``.

Any other name raises ``AttributeError`` naming it, saying that stoker serves only the input
pipeline, and pointing at the NumPy function to use where there is one (``tf.reduce_mean``:
``numpy.mean``). Nothing is silently stood in for.
"""

from __future__ import annotations

from typing import Any

from stoker.sources.generator import TensorSpec
from stoker.tf import data, image, io
from stoker.tf._dtypes import (
    as_dtype,
    bool,
    complex64,
    complex128,
    double,
    float16,
    float32,
    float64,
    half,
    int8,
    int16,
    int32,
    int64,
    string,
    uint8,
    uint16,
    uint32,
    uint64,
)
from stoker.tf._missing import missing
from stoker.tf._ops import (
    cast,
    clip_by_value,
    concat,
    constant,
    expand_dims,
    numpy_function,
    one_hot,
    reshape,
    shape,
    squeeze,
    stack,
)

__all__ = [
    "TensorSpec",
    "as_dtype",
    "bool",
    "cast",
    "clip_by_value",
    "complex128",
    "complex64",
    "concat",
    "constant",
    "data",
    "double",
    "expand_dims",
    "float16",
    "float32",
    "float64",
    "half",
    "image",
    "int16",
    "int32",
    "int64",
    "int8",
    "io",
    "numpy_function",
    "one_hot",
    "reshape",
    "shape",
    "squeeze",
    "stack",
    "string",
    "uint16",
    "uint32",
    "uint64",
    "uint8",
]


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing(__name__, name)
