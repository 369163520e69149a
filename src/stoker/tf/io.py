"""``tf.io`` under its TensorFlow name: Example parsing, image codecs, TFRecord writing, files.

``parse_single_example`` and ``parse_example`` are ``stoker.io.parse_example`` (one record,
or a 1-D batch of records); ``FixedLenFeature`` and ``VarLenFeature`` are stoker's; the image
codecs are ``stoker.image``'s (loaded on first use, so importing this module does not import
OpenCV). What differs from TensorFlow: ``VarLenFeature`` values come back as a dense 1-D
array (TensorFlow gives a ``SparseTensor`` of the same values), so a batch with a
``VarLenFeature`` is refused (it has no NumPy form: parse each example before ``batch``, or
use ``padded_batch``); a scalar string feature is ``bytes``; the ``example_names`` and
``name`` arguments are not taken.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from stoker.io.example import FixedLenFeature, VarLenFeature
from stoker.io.example import parse_example as _parse_example
from stoker.io.tfrecord import TFRecordWriter as _Writer
from stoker.tf._dtypes import as_dtype
from stoker.tf._missing import missing

__all__ = [
    "FixedLenFeature",
    "TFRecordOptions",
    "TFRecordWriter",
    "VarLenFeature",
    "decode_image",  # noqa: F822 - loaded on first use, by __getattr__
    "decode_jpeg",  # noqa: F822 - loaded on first use, by __getattr__
    "decode_png",  # noqa: F822 - loaded on first use, by __getattr__
    "decode_raw",
    "encode_jpeg",  # noqa: F822 - loaded on first use, by __getattr__
    "encode_png",  # noqa: F822 - loaded on first use, by __getattr__
    "parse_example",
    "parse_single_example",
    "read_file",
]

_CODECS: Final = ("decode_image", "decode_jpeg", "decode_png", "encode_jpeg", "encode_png")
_SERVED: Final = (
    "stoker.tf.io serves parse_single_example, parse_example, FixedLenFeature, "
    "VarLenFeature, decode_jpeg, decode_png, decode_image, encode_jpeg, encode_png, "
    "decode_raw, read_file, TFRecordWriter and TFRecordOptions"
)
_INSTEAD: Final = {
    "gfile": "open(), glob.glob, os.path and os.listdir",
    "write_file": "open(path, 'wb').write(data)",
    "serialize_tensor": "numpy.save to a BytesIO",
    "FixedLenSequenceFeature": "VarLenFeature (stoker gives it as a dense 1-D array)",
}


# TensorFlow's two names for one job: stoker.io.parse_example parses a record (bytes) or a
# 1-D batch of them, with TensorFlow's shapes, so both names are that function itself.
parse_single_example = _parse_example
parse_example = _parse_example


def decode_raw(
    input_bytes: Any,
    out_type: Any,
    little_endian: bool = True,
    fixed_length: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """The bytes reinterpreted as an array of ``out_type``, like ``tf.io.decode_raw``.

    A ``bytes`` value gives a 1-D array; a batch (an array or list of ``bytes`` of one
    length) gives one row per value. ``fixed_length`` keeps the first ``fixed_length``
    bytes of each value, padding shorter ones with zeros, as TensorFlow does.

    Example::

        pixels = tf.reshape(tf.io.decode_raw(example["raw"], tf.uint8), [32, 32, 3])
    """
    del name
    dtype = as_dtype(out_type)
    if dtype.kind not in "biufc":
        raise TypeError(f"decode_raw: out_type={out_type!r} is not a numeric dtype")
    dtype = dtype.newbyteorder("<" if little_endian else ">") if dtype.itemsize > 1 else dtype

    def one(value: Any) -> np.ndarray:
        data = bytes(value)
        if fixed_length is not None:
            data = data[:fixed_length].ljust(fixed_length, b"\0")
        if len(data) % dtype.itemsize:
            raise ValueError(
                f"decode_raw: {len(data)} bytes are not a whole number of {dtype.name} "
                f"values ({dtype.itemsize} bytes each)"
            )
        return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)

    if isinstance(input_bytes, (bytes, bytearray, memoryview)):
        return one(input_bytes)
    rows = [one(v) for v in np.asarray(input_bytes, dtype=object).ravel().tolist()]
    if len({r.size for r in rows}) > 1:
        raise ValueError(
            "decode_raw: the values of a batch have different lengths; pass fixed_length"
        )
    shape = np.shape(np.asarray(input_bytes, dtype=object))
    if not rows:
        return np.empty((*shape, 0), dtype=dtype.newbyteorder("="))
    return np.stack(rows).reshape((*shape, rows[0].size))


def read_file(filename: str | os.PathLike[str], name: str | None = None) -> bytes:
    """The whole file's bytes, like ``tf.io.read_file``.

    Example::

        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    """
    del name
    with open(os.fspath(filename), "rb") as f:
        return f.read()


@dataclass(frozen=True)
class TFRecordOptions:
    """TFRecord writing options, like ``tf.io.TFRecordOptions``; only the compression type.

    Args:
        compression_type: ``None``/``""``, ``"GZIP"`` or ``"ZLIB"``.
        compression_level, flush_mode, input_buffer_size, output_buffer_size, window_bits,
        compression_method, mem_level, compression_strategy: Must stay ``None``: stoker's
            writer uses zlib's defaults (a value raises ``ValueError`` rather than being
            ignored).
    """

    compression_type: str | None = None
    flush_mode: Any = None
    input_buffer_size: Any = None
    output_buffer_size: Any = None
    window_bits: Any = None
    compression_level: Any = None
    compression_method: Any = None
    mem_level: Any = None
    compression_strategy: Any = None

    def __post_init__(self) -> None:
        given = [k for k, v in vars(self).items() if k != "compression_type" and v is not None]
        if given:
            raise ValueError(
                f"TFRecordOptions: {given} are not supported by stoker's writer (it uses "
                "zlib's defaults); leave them None"
            )


class TFRecordWriter(_Writer):
    """Writes a TFRecord file, like ``tf.io.TFRecordWriter``: ``write``, ``flush``, ``close``.

    Args:
        path: The file to write.
        options: A ``TFRecordOptions`` or a compression type (``"GZIP"``, ``"ZLIB"``, ``""``).

    Example::

        with tf.io.TFRecordWriter("train.tfrecord", options="GZIP") as writer:
            writer.write(record)
    """

    def __init__(
        self, path: str | os.PathLike[str], options: TFRecordOptions | str | None = None
    ) -> None:
        if isinstance(options, TFRecordOptions):
            compression = options.compression_type
        elif options is None or isinstance(options, str):
            compression = options
        else:
            raise TypeError(
                f"options={options!r} must be a TFRecordOptions or a compression type string"
            )
        super().__init__(path, compression_type=compression or None)


def __getattr__(name: str) -> Any:
    if name in _CODECS:
        value = getattr(importlib.import_module("stoker.image"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing(__name__, name, _SERVED, instead=_INSTEAD.get(name))
