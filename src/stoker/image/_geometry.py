"""Flips and crops: HWC images and NHWC batches, any dtype."""

from __future__ import annotations

from typing import Any

import numpy as np

from stoker.image._checks import as_image, check_rank
from stoker.image._cv import cv2

__all__ = ["central_crop", "crop_to_size", "flip_left_right", "flip_up_down", "flip_mask"]


def _flip(image: Any, axis_from_end: int, cv_code: int) -> np.ndarray:
    arr = as_image(image)
    check_rank(arr)
    if arr.ndim == 3 and arr.shape[-1] <= 4 and arr.size and arr.dtype != np.float16:
        return np.asarray(cv2.flip(np.ascontiguousarray(arr), cv_code)).reshape(arr.shape)
    return np.ascontiguousarray(np.flip(arr, axis=arr.ndim - axis_from_end))


def flip_left_right(image: Any) -> np.ndarray:
    """Mirror along the width axis.

    Args:
        image: An image ``(H, W, C)`` or batch ``(N, H, W, C)``.

    Returns:
        A new array of the same shape and dtype.

    Raises:
        ValueError: ``image`` is not 3-D or 4-D.

    Example::

        mirrored = stoker.image.flip_left_right(img)
    """
    return _flip(image, 2, 1)


def flip_up_down(image: Any) -> np.ndarray:
    """Mirror along the height axis.

    Args:
        image: An image ``(H, W, C)`` or batch ``(N, H, W, C)``.

    Returns:
        A new array of the same shape and dtype.

    Raises:
        ValueError: ``image`` is not 3-D or 4-D.

    Example::

        upside_down = stoker.image.flip_up_down(img)
    """
    return _flip(image, 3, 0)


def flip_mask(arr: np.ndarray, mask: np.ndarray, axis_from_end: int) -> np.ndarray:
    """A batch with the images where ``mask`` is True flipped along one axis."""
    out = np.array(arr)
    if mask.any():
        out[mask] = np.flip(arr[mask], axis=arr.ndim - axis_from_end)
    return out


def central_crop(image: Any, central_fraction: float) -> np.ndarray:
    """Keep the central ``central_fraction`` of the height and width.

    The offsets are tf.image's: ``int((size - size * central_fraction) / 2)`` on each side.

    Args:
        image: An image ``(H, W, C)`` or batch ``(N, H, W, C)``.
        central_fraction: In (0, 1].

    Returns:
        The cropped array (a new, contiguous array).

    Raises:
        ValueError: ``central_fraction`` is outside (0, 1], or ``image`` is not 3-D or 4-D.

    Example::

        middle = stoker.image.central_crop(img, 0.5)
    """
    arr = as_image(image)
    try:
        frac = float(central_fraction)
    except (TypeError, ValueError):
        raise TypeError(f"central_fraction={central_fraction!r} must be a number") from None
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"central_fraction={central_fraction} must be within (0, 1]")
    check_rank(arr)
    if frac == 1.0:
        return arr
    h, w = arr.shape[-3], arr.shape[-2]
    top = int((float(h) - float(h) * frac) / 2)
    left = int((float(w) - float(w) * frac) / 2)
    return np.ascontiguousarray(arr[..., top : h - top, left : w - left, :])


def crop_to_size(arr: np.ndarray, offsets: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """``arr[offsets : offsets + size]`` over every dimension, as a contiguous copy."""
    index = tuple(slice(int(o), int(o) + s) for o, s in zip(offsets, size, strict=True))
    return np.ascontiguousarray(arr[index])
