"""TensorFlow's dtype names as NumPy dtypes: ``tf.float32`` is ``np.dtype("float32")``.

``tf.string`` is NumPy's ``object`` dtype, which is how stoker holds ``bytes`` values (and
what ``FixedLenFeature``/``TensorSpec`` read as "string"). ``bfloat16`` has no NumPy dtype
and is not served.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

__all__ = [
    "as_dtype",
    "bool",
    "complex64",
    "complex128",
    "double",
    "float16",
    "float32",
    "float64",
    "half",
    "int8",
    "int16",
    "int32",
    "int64",
    "string",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
]

bool: Final = np.dtype(np.bool_)
complex64: Final = np.dtype(np.complex64)
complex128: Final = np.dtype(np.complex128)
float16: Final = np.dtype(np.float16)
float32: Final = np.dtype(np.float32)
float64: Final = np.dtype(np.float64)
half: Final = float16
double: Final = float64
int8: Final = np.dtype(np.int8)
int16: Final = np.dtype(np.int16)
int32: Final = np.dtype(np.int32)
int64: Final = np.dtype(np.int64)
uint8: Final = np.dtype(np.uint8)
uint16: Final = np.dtype(np.uint16)
uint32: Final = np.dtype(np.uint32)
uint64: Final = np.dtype(np.uint64)
string: Final = np.dtype(object)


def as_dtype(dtype: Any) -> np.dtype[Any]:
    """The NumPy dtype for ``dtype``: a ``tf.*`` dtype, a NumPy dtype, or a name.

    Args:
        dtype: E.g. ``tf.float32``, ``np.uint8``, ``"int64"`` or ``"string"``.

    Returns:
        The NumPy dtype (``object`` for strings).

    Raises:
        TypeError: ``dtype`` names no dtype.

    Example::

        tf.as_dtype("float32")  # dtype('float32')
    """
    if isinstance(dtype, str) and dtype in ("string", "bytes", "str"):
        return string
    if dtype in (bytes, str):
        return string
    try:
        found: np.dtype[Any] = np.dtype(dtype)
        return found
    except TypeError:
        raise TypeError(f"dtype={dtype!r} is not a dtype; use e.g. tf.float32 or 'int64'") from None
