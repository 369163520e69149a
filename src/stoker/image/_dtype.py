"""``convert_image_dtype``: tf.image's scaling between integer and float images.

Integers span ``[0, MAX]`` of their type, floats ``[0, 1]``. Integer to float multiplies by
``1 / MAX`` in the target type; float to integer multiplies by ``MAX + 0.5`` and truncates
(so 1.0 maps to MAX); integer to integer shifts by the ratio of the ranges.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stoker.image._checks import to_numpy_dtype

__all__ = [
    "convert_image_dtype",
    "float32_copy",
    "from_float32",
    "from_float32_inplace",
    "to_float32",
]


def convert_image_dtype(
    image: Any, dtype: Any, saturate: bool = False, name: str | None = None
) -> np.ndarray:
    """Convert ``image`` to ``dtype``, scaling values as tf.image does.

    Args:
        image: An image or batch (any shape), integer or float.
        dtype: The target dtype (NumPy dtype-like, or a ``tf.DType``).
        saturate: Clip integer results to the target's range before casting. Float to
            integer results are always clipped here (tf.image leaves out-of-range values to
            the C cast, which is undefined; see docs/image.md).
        name: Unused; kept for tf.image's signature.

    Returns:
        A new array of ``dtype`` (``image`` itself when it already has ``dtype``).

    Example::

        convert_image_dtype(np.array([[[0, 128, 255]]], np.uint8), np.float32)
        # [[[0.0, 0.50196, 1.0]]]
    """
    del name
    arr = np.asarray(image)
    out = to_numpy_dtype(dtype)
    if arr.dtype.kind not in "uif":
        raise TypeError(f"image must be an integer or float array, got dtype {arr.dtype}")
    if arr.dtype == out:
        return arr
    if arr.dtype.kind in "ui" and out.kind in "ui":
        max_in, max_out = int(np.iinfo(arr.dtype).max), int(np.iinfo(out).max)
        if max_in > max_out:
            scaled = arr // ((max_in + 1) // (max_out + 1))
            if saturate:
                scaled = np.clip(scaled, np.iinfo(out).min, max_out)
            return np.asarray(scaled.astype(out))
        if saturate:
            arr = np.clip(arr, max(np.iinfo(out).min, np.iinfo(arr.dtype).min), max_in)
        return np.asarray(arr.astype(out) * out.type((max_out + 1) // (max_in + 1)))
    if arr.dtype.kind == "f" and out.kind == "f":
        return arr.astype(out)
    if arr.dtype.kind in "ui":
        return np.asarray(np.multiply(arr, out.type(1.0 / int(np.iinfo(arr.dtype).max)), dtype=out))
    info = np.iinfo(out)
    scaled = np.multiply(arr, arr.dtype.type(int(info.max) + 0.5))
    # tf saturate_casts with saturate=True; without it the C cast of an out-of-range float
    # is undefined, so clipping is the defined version of the same values in range.
    np.clip(scaled, info.min, info.max, out=scaled)
    return np.asarray(scaled.astype(out))


def to_float32(arr: np.ndarray) -> np.ndarray:
    """The float image tf.image's colour ops compute on: float16/32 kept, others converted."""
    if arr.dtype in (np.float32, np.float16):
        return arr
    return convert_image_dtype(arr, np.float32)


def from_float32(flt: np.ndarray, dtype: np.dtype[Any], saturate: bool = True) -> np.ndarray:
    """Back to the input's dtype after a colour op."""
    if flt.dtype == dtype:
        return flt
    return convert_image_dtype(flt, dtype, saturate=saturate)


def float32_copy(arr: np.ndarray) -> np.ndarray:
    """A float32 copy of ``arr`` in tf's [0, 1] scale that the caller may overwrite."""
    if arr.dtype.kind == "f":
        return np.array(arr, np.float32, order="C")
    return np.ascontiguousarray(convert_image_dtype(arr, np.float32))


def from_float32_inplace(
    buf: np.ndarray, dtype: np.dtype[Any], in_unit_range: bool = False
) -> np.ndarray:
    """``from_float32`` that may scale ``buf`` (float32, owned by the caller) in place.

    Saves the intermediate arrays: on machines where fresh memory is costly to fault in
    (VMs with free-page reporting), each avoided allocation is measurable. With
    ``in_unit_range`` the caller guarantees values in [0, 1] up to rounding (HSV results),
    so the clip is skipped: ``x * (MAX + 0.5)`` then lies in (-1, MAX + 1) and the cast
    truncates it to what the clipped cast gives.
    """
    if dtype.kind == "f":
        return buf if buf.dtype == dtype else buf.astype(dtype)
    info = np.iinfo(dtype)
    np.multiply(buf, np.float32(int(info.max) + 0.5), out=buf)
    if not in_unit_range:
        np.clip(buf, info.min, info.max, out=buf)
    return buf.astype(dtype)
