"""Argument and shape checks shared by the image ops (errors name the argument)."""

from __future__ import annotations

from typing import Any

import numpy as np

from stoker.image._cv import pipeline_threads

__all__ = ["as_image", "check_channels", "check_rank", "is_float", "to_numpy_dtype"]


def as_image(image: Any, name: str = "image", min_rank: int = 3) -> np.ndarray:
    """``image`` as a NumPy array of at least ``min_rank`` dimensions (HWC or NHWC...)."""
    pipeline_threads()  # every op starts here: OpenCV to one thread on pipeline workers
    arr = np.asarray(image)
    if arr.dtype.kind not in "uif":
        raise TypeError(f"{name} must be an integer or float array, got dtype {arr.dtype}")
    if arr.ndim < min_rank:
        raise ValueError(
            f"{name} must be at least {min_rank}-D (height, width, channels), got shape {arr.shape}"
        )
    return arr


def check_rank(arr: np.ndarray, name: str = "image", ranks: tuple[int, ...] = (3, 4)) -> None:
    """Raise ``ValueError`` unless ``arr.ndim`` is one of ``ranks``."""
    if arr.ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name} must be {want}-D (HWC or NHWC), got shape {arr.shape}")


def check_channels(arr: np.ndarray, channels: int, name: str = "image") -> None:
    """Raise ``ValueError`` unless the last dimension is ``channels`` (e.g. 3 for RGB)."""
    if arr.shape[-1] != channels:
        raise ValueError(
            f"{name} must have {channels} channels in its last dimension, got shape {arr.shape}"
        )


def is_float(arr: np.ndarray) -> bool:
    return arr.dtype.kind == "f"


def to_numpy_dtype(dtype: Any) -> np.dtype[Any]:
    """A NumPy dtype from a NumPy dtype-like or a ``tf.DType`` (``.as_numpy_dtype``)."""
    as_np = getattr(dtype, "as_numpy_dtype", None)
    if as_np is not None:
        dtype = as_np
    try:
        out: np.dtype[Any] = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype={dtype!r} is not a NumPy dtype") from None
    if out.kind not in "uif":
        raise TypeError(f"dtype={dtype!r} must be an integer or floating type")
    return out
