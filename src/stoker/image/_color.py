"""Colour ops: brightness, contrast, saturation, hue, HSV and greyscale, standardization.

tf.image computes these on float images in [0, 1]: an integer image is converted to
float32, adjusted, and converted back (truncating ``x * 255.5`` for uint8). Here a uint8
image takes a shortcut where the result depends on each value alone (brightness, and
contrast once the channel means are known): the float computation is done once for the 256
possible values and applied as a lookup table (OpenCV ``LUT``), which gives tf's values
exactly at a fraction of the cost. Saturation and hue mix the channels and go through
OpenCV's float32 HSV conversions; a uint8 image goes there unscaled (OpenCV's float HSV
takes V on any scale, S and H do not depend on it) and comes back in one pass that scales
and truncates as tf's conversion does, so one buffer serves the whole round trip.

The uint8 paths are also kept short in Python: inside a parallel ``map`` on threads, the
Python between OpenCV's calls holds the GIL, and it is what two threads cannot share.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from stoker.image._checks import as_image, check_channels
from stoker.image._cv import cv2
from stoker.image._dtype import (
    convert_image_dtype,
    float32_copy,
    from_float32,
    from_float32_inplace,
    to_float32,
)

__all__ = [
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "grayscale_to_rgb",
    "hsv_to_rgb",
    "per_image_standardization",
    "rgb_to_grayscale",
    "rgb_to_hsv",
]

_LEVELS = np.arange(256, dtype=np.uint8)
_LEVELS_F32 = np.tile(convert_image_dtype(_LEVELS, np.float32), (4, 1))  # one row per channel
_GRAY_WEIGHTS = np.array([[0.2989, 0.5870, 0.1140]], np.float32)  # tf's (ITU-R 601-2)


def _float_factor(value: Any, name: str) -> np.float32:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a number") from None
    out: np.float32 = np.float32(number)
    return out


_U8_SCALE = np.float32(255.5)  # tf's float -> uint8 conversion: trunc(x * (MAX + 0.5))
_U8_SCALE_255 = 255.5 / 255.0  # the same on the 0-255 scale


def _u8_table(levels: np.ndarray) -> np.ndarray:
    """tf's saturating float -> uint8 conversion of a small float32 table, in place: what
    ``convert_image_dtype(levels, uint8, saturate=True)`` gives, without its checks."""
    np.multiply(levels, _U8_SCALE, out=levels)
    np.maximum(levels, np.float32(0), out=levels)
    np.minimum(levels, np.float32(255), out=levels)
    return levels.astype(np.uint8)


_LEVELS_RGB = np.ascontiguousarray(np.repeat(_LEVELS[:, None], 3, axis=1).reshape(1, 256, 3))


def _per_level_u8(
    img: np.ndarray, lut: np.ndarray, scale: float, offsets: tuple[float, float, float]
) -> np.ndarray:
    """``lut[img]`` (per channel for a (256, C) ``lut``) for a uint8 image whose table is the
    affine ``trunc(level * scale + offset)``, saturated (brightness, contrast).

    For RGB, one OpenCV ``transform`` computes ``level * scale + offset - 0.5`` and rounds
    (a quarter of ``LUT``'s cost on 3 channels). Its float rounding may differ from tf's
    float32 arithmetic where a value lies within ~1e-5 of an integer, so it is first run on
    the 256 levels themselves and used only when it reproduces ``lut`` exactly (nearly
    always); otherwise, and for other channel counts, the table is applied with ``LUT``.
    Each output depends on its own input value alone, so the 256 levels check them all.
    """
    if img.shape[-1] == 3 and img.size:
        a, (b0, b1, b2) = scale, offsets
        m = np.array(((a, 0.0, 0.0, b0 - 0.5), (0.0, a, 0.0, b1 - 0.5), (0.0, 0.0, a, b2 - 0.5)))
        table = lut.reshape(1, 256, -1)
        if (cv2.transform(_LEVELS_RGB, m) == table).all():
            pixels = img.reshape(1, -1, 3) if img.flags.c_contiguous else img.copy()
            return np.asarray(cv2.transform(pixels.reshape(1, -1, 3), m)).reshape(img.shape)
    return _apply_lut(img, lut)


def _apply_lut(img: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[img]`` for uint8 ``img``; ``lut`` is (256,) or (256, channels)."""
    img = np.ascontiguousarray(img)
    if lut.ndim == 1:
        if not img.size:
            return np.array(img)
        # A (1, 256) table takes OpenCV's faster path than a (256,) one.
        return np.asarray(cv2.LUT(img.reshape(1, -1), lut.reshape(1, 256))).reshape(img.shape)
    channels = img.shape[-1]
    if channels <= 4:
        table = np.ascontiguousarray(lut.reshape(1, 256, channels))
        out = cv2.LUT(img.reshape(1, -1, channels), table)
        return np.asarray(out).reshape(img.shape)
    return np.asarray(lut[img, np.arange(channels)])


def adjust_brightness(image: Any, delta: float) -> np.ndarray:
    """Add ``delta`` to every value, in the [0, 1] scale of float images.

    Integer images are converted to float, shifted and converted back with saturation, as
    tf.image does; uint8 uses an exact lookup table. Float images are not clipped.

    Args:
        image: An image or batch of any shape.
        delta: The amount to add, in [0, 1] units (0.1 adds 25.5 levels to a uint8 image).

    Returns:
        An array of ``image``'s shape and dtype.

    Example::

        brighter = stoker.image.adjust_brightness(img, 0.2)
    """
    arr = as_image(image, min_rank=0)
    d = _float_factor(delta, "delta")
    if arr.dtype == np.uint8:
        lut = _u8_table(np.add(_LEVELS_F32[0], d))
        shift = 255.5 * float(d)
        return _per_level_u8(arr, lut, _U8_SCALE_255, (shift, shift, shift))
    flt = to_float32(arr)
    return from_float32(flt + flt.dtype.type(d), arr.dtype)


def _channel_means(flt: np.ndarray) -> np.ndarray:
    """Per-image, per-channel means of a float image or batch, shape (..., 1, 1, C)."""
    if flt.ndim == 3 and flt.shape[-1] <= 4 and flt.dtype == np.float32:
        m = cv2.mean(np.ascontiguousarray(flt))[: flt.shape[-1]]
        return np.asarray(m, np.float32).reshape(1, 1, -1)
    return np.asarray(flt.mean(axis=(-3, -2), keepdims=True, dtype=np.float64), np.float32)


def _contrast_u8(img: np.ndarray, f: np.float32) -> np.ndarray:
    c = img.shape[-1]
    raw = cv2.mean(img)[:c] if c <= 4 else img.mean(axis=(0, 1))
    means = (np.asarray(raw, np.float64) / 255).astype(np.float32)[:, None]
    # One row of 256 levels per channel: NumPy broadcasts along rows far faster than along
    # a last axis of 3.
    lut = np.subtract(_LEVELS_F32[:c] if c <= 4 else np.tile(_LEVELS_F32[0], (c, 1)), means)
    lut *= f
    lut += means
    table = _u8_table(lut).T
    if c != 3:
        return _apply_lut(img, table)
    f64 = float(f)
    k = (1.0 - f64) * 255.5
    m0, m1, m2 = means.ravel().tolist()
    return _per_level_u8(img, table, f64 * _U8_SCALE_255, (m0 * k, m1 * k, m2 * k))


def adjust_contrast(images: Any, contrast_factor: float) -> np.ndarray:
    """Scale each channel's distance from its mean: ``(x - mean) * contrast_factor + mean``.

    The mean is taken per image and per channel over height and width, as tf.image does.

    Args:
        images: An image ``(H, W, C)`` or batch ``(..., H, W, C)``.
        contrast_factor: The multiplier (1 leaves the image unchanged).

    Returns:
        An array of ``images``' shape and dtype (integers saturate).

    Raises:
        ValueError: ``images`` has fewer than 3 dimensions.

    Example::

        flat = stoker.image.adjust_contrast(img, 0.5)
    """
    arr = as_image(images, "images")
    f = _float_factor(contrast_factor, "contrast_factor")
    if arr.dtype == np.uint8:
        if arr.ndim == 3:
            return _contrast_u8(np.ascontiguousarray(arr), f)
        batch = arr.reshape((-1, *arr.shape[-3:]))
        out = np.empty_like(batch)
        for i, img in enumerate(batch):
            out[i] = _contrast_u8(np.ascontiguousarray(img), f)
        return out.reshape(arr.shape)
    flt = to_float32(arr)
    means = _channel_means(flt.astype(np.float32, copy=False))
    c = flt.shape[-1]
    if flt.ndim == 3 and flt.dtype == np.float32 and c <= 4:
        # One OpenCV pass: x * f + mean * (1 - f), per channel (an affine colour transform).
        m = means.reshape(c, 1).astype(np.float64)
        matrix = np.hstack([np.eye(c) * float(f), m - float(f) * m])
        res = cv2.transform(np.ascontiguousarray(flt), matrix)
        return from_float32(np.asarray(res).reshape(flt.shape), arr.dtype)
    adjusted = np.subtract(flt, means.astype(flt.dtype))
    adjusted *= flt.dtype.type(f)
    adjusted += means.astype(flt.dtype)
    return from_float32(adjusted, arr.dtype)


def _hsv_inplace(buf: np.ndarray) -> np.ndarray:
    """OpenCV's float HSV (H in degrees [0, 360), S and V in [0, 1]) of a float32 RGB
    buffer, computed in place; returned as shape (1, N, 3)."""
    pixels = buf.reshape(1, -1, 3)
    cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV, dst=pixels)
    return pixels


def _in_unit_range(arr: np.ndarray) -> bool:
    """Integer images convert to [0, 1], so their HSV round trip stays there."""
    return arr.dtype.kind in "ui"


def _rgb_inplace(hsv: np.ndarray) -> None:
    cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=hsv)


#: Largest float32 scratch buffer a thread keeps for the uint8 HSV round trip (a 512 x
#: 512 RGB image needs 0.8 M values); bigger inputs (batches) get a fresh array.
_SCRATCH_MAX = 1 << 21
_scratch = threading.local()


def _f32_scratch(n: int) -> np.ndarray:
    """A float32 array of ``n`` values for this thread's use until its next call: the
    saturation and hue round trips reuse one buffer instead of faulting in a fresh
    0.8 MB per image (inside a pipeline, fresh memory is what costs most)."""
    if n > _SCRATCH_MAX:
        return np.empty(n, np.float32)
    buf: np.ndarray | None = getattr(_scratch, "buf", None)
    if buf is None or buf.size < n:
        buf = _scratch.buf = np.empty(n, np.float32)
    return buf[:n]


def _hsv_u8(arr: np.ndarray) -> np.ndarray:
    """OpenCV's float HSV of a uint8 RGB image, shape (1, N, 3): H in degrees, S in [0, 1],
    V on the 0-255 scale (S and H are ratios, the same as on tf's [0, 1] scale). The
    result lives in this thread's scratch buffer: :func:`_rgb_u8` turns it into a new
    uint8 array before the next call."""
    pixels = _f32_scratch(arr.size).reshape(1, -1, 3)
    np.copyto(pixels, arr.reshape(1, -1, 3), casting="unsafe")
    cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV, dst=pixels)
    return pixels


def _rgb_u8(hsv: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Back from :func:`_hsv_u8`'s HSV to uint8 as tf converts: ``trunc(x * 255.5)`` of the
    [0, 1] value, here ``round(y * 255.5 / 255 - 0.5)`` of the 0-255 one in one OpenCV pass
    (the two differ only where the product is an exact integer; the values are >= 0, so
    OpenCV's absolute value changes nothing)."""
    cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=hsv)
    return np.asarray(cv2.convertScaleAbs(hsv, alpha=_U8_SCALE_255, beta=-0.5)).reshape(shape)


def _rgb_input(image: Any, name: str = "image") -> np.ndarray:
    arr = as_image(image, name)
    check_channels(arr, 3, name)
    return arr


def adjust_saturation(image: Any, saturation_factor: float, name: str | None = None) -> np.ndarray:
    """Multiply the saturation (HSV's S, clipped to [0, 1]) by ``saturation_factor``.

    Args:
        image: An RGB image ``(H, W, 3)`` or batch ``(..., H, W, 3)``.
        saturation_factor: The multiplier (0 gives grey, 1 leaves the image unchanged).
        name: Unused.

    Returns:
        An array of ``image``'s shape and dtype.

    Raises:
        ValueError: ``image`` has fewer than 3 dimensions or not 3 channels.

    Example::

        vivid = stoker.image.adjust_saturation(img, 2.0)
    """
    del name
    arr = _rgb_input(image)
    k = _float_factor(saturation_factor, "saturation_factor")
    if arr.size == 0:
        return np.array(arr)
    if arr.dtype == np.uint8:
        hsv = _hsv_u8(arr)
        s = hsv[..., 1]
        np.multiply(s, k, out=s)
        if k > 1:  # S in [0, 1] already; only a factor above 1 can push it over
            np.minimum(s, np.float32(1), out=s)
        elif k < 0:
            np.clip(s, np.float32(0), np.float32(1), out=s)
        return _rgb_u8(hsv, arr.shape)
    buf = float32_copy(arr)
    hsv = _hsv_inplace(buf)
    s = hsv[..., 1]
    np.multiply(s, k, out=s)
    if k >= 0:  # S >= 0 already
        np.minimum(s, np.float32(1), out=s)
    else:
        np.clip(s, np.float32(0), np.float32(1), out=s)
    _rgb_inplace(hsv)
    return from_float32_inplace(buf, arr.dtype, in_unit_range=_in_unit_range(arr))


def adjust_hue(image: Any, delta: float, name: str | None = None) -> np.ndarray:
    """Rotate the hue (HSV's H, in turns) by ``delta`` in [-1, 1].

    Args:
        image: An RGB image ``(H, W, 3)`` or batch ``(..., H, W, 3)``.
        delta: The rotation in turns (0.5 is half-way round the colour wheel).
        name: Unused.

    Returns:
        An array of ``image``'s shape and dtype.

    Raises:
        ValueError: ``image`` has fewer than 3 dimensions or not 3 channels, or ``delta`` is
            outside [-1, 1].

    Example::

        shifted = stoker.image.adjust_hue(img, 0.1)
    """
    del name
    arr = _rgb_input(image)
    d = _float_factor(delta, "delta")
    if not -1.0 <= d <= 1.0:
        raise ValueError(f"delta={delta} must be in the interval [-1, 1]")
    if arr.size == 0:
        return np.array(arr)
    # OpenCV's HSV->RGB wraps a hue in [360, 720) back into [0, 360) itself (not a negative
    # one), so shifting by a turn more for negative deltas saves a modulo pass.
    shift = np.float32(d * 360.0 + (360.0 if d < 0 else 0.0))
    if arr.dtype == np.uint8:
        hsv = _hsv_u8(arr)
        h = hsv[..., 0]
        np.add(h, shift, out=h)
        return _rgb_u8(hsv, arr.shape)
    buf = float32_copy(arr)
    hsv = _hsv_inplace(buf)
    h = hsv[..., 0]
    np.add(h, shift, out=h)
    _rgb_inplace(hsv)
    return from_float32_inplace(buf, arr.dtype, in_unit_range=_in_unit_range(arr))


def _float_only(arr: np.ndarray, fn: str) -> None:
    if arr.dtype.kind != "f":
        raise TypeError(
            f"{fn}: images must be float (tf.image accepts only float types), got {arr.dtype}; "
            "convert with convert_image_dtype first"
        )


def rgb_to_hsv(images: Any, name: str | None = None) -> np.ndarray:
    """Convert float RGB in [0, 1] to HSV, all three in [0, 1] (hue in turns).

    Args:
        images: A float array whose last dimension is 3.
        name: Unused.

    Returns:
        An array of the same shape and dtype (computed in float32).

    Example::

        hsv = stoker.image.rgb_to_hsv(stoker.image.convert_image_dtype(img, np.float32))
    """
    del name
    arr = as_image(images, "images", min_rank=1)
    check_channels(arr, 3, "images")
    _float_only(arr, "rgb_to_hsv")
    if arr.size == 0:
        return np.array(arr)
    buf = np.array(arr, np.float32, order="C")
    hsv = _hsv_inplace(buf)
    hsv[..., 0] *= np.float32(1.0 / 360.0)
    return buf.astype(arr.dtype, copy=False)


def hsv_to_rgb(images: Any, name: str | None = None) -> np.ndarray:
    """Convert HSV (all in [0, 1], hue in turns) to RGB in [0, 1].

    Args:
        images: A float array whose last dimension is 3.
        name: Unused.

    Returns:
        An array of the same shape and dtype (computed in float32).

    Example::

        rgb = stoker.image.hsv_to_rgb(hsv)
    """
    del name
    arr = as_image(images, "images", min_rank=1)
    check_channels(arr, 3, "images")
    _float_only(arr, "hsv_to_rgb")
    if arr.size == 0:
        return np.array(arr)
    buf = np.array(arr, np.float32, order="C")
    hsv = buf.reshape(1, -1, 3)
    hsv[..., 0] *= np.float32(360.0)
    _rgb_inplace(hsv)
    return buf.astype(arr.dtype, copy=False)


def rgb_to_grayscale(images: Any, name: str | None = None) -> np.ndarray:
    """Weighted sum of R, G, B (0.2989, 0.5870, 0.1140), keeping a last dimension of 1.

    Args:
        images: An array whose last dimension is 3.
        name: Unused.

    Returns:
        An array of shape ``(..., 1)`` and ``images``' dtype.

    Example::

        grey = stoker.image.rgb_to_grayscale(img)  # (H, W, 1)
    """
    del name
    arr = as_image(images, "images", min_rank=1)
    check_channels(arr, 3, "images")
    flt = convert_image_dtype(arr, np.float32)
    if arr.size == 0:
        return np.zeros((*arr.shape[:-1], 1), arr.dtype)
    pixels = np.ascontiguousarray(flt).reshape(1, -1, 3)
    gray = np.asarray(cv2.transform(pixels, _GRAY_WEIGHTS)).reshape((*arr.shape[:-1], 1))
    return convert_image_dtype(gray, arr.dtype)


def grayscale_to_rgb(images: Any, name: str | None = None) -> np.ndarray:
    """Repeat a single channel three times.

    Args:
        images: An array whose last dimension is 1.
        name: Unused.

    Returns:
        An array of shape ``(..., 3)``.

    Example::

        rgb = stoker.image.grayscale_to_rgb(grey)
    """
    del name
    arr = as_image(images, "images", min_rank=1)
    check_channels(arr, 1, "images")
    return np.repeat(arr, 3, axis=-1)


def per_image_standardization(image: Any) -> np.ndarray:
    """Scale each image to mean 0 and variance 1 (float32; values are not scaled first).

    The divisor is ``max(stddev, 1 / sqrt(num_elements))``, so a constant image gives 0s.

    Args:
        image: An image ``(H, W, C)`` or batch ``(..., H, W, C)``.

    Returns:
        A float32 array of ``image``'s shape.

    Example::

        x = stoker.image.per_image_standardization(img)
    """
    arr = as_image(image)
    flt = np.array(arr, np.float32, order="C")
    n = int(np.prod(arr.shape[-3:]))
    per_image = flt.reshape(-1, max(n, 1)) if n else flt.reshape(-1, 0)
    for img in per_image:
        # One float64 pass for mean and standard deviation (OpenCV), then in place.
        mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(img.reshape(1, -1))) if n else (0, 0)
        img -= np.float32(mean)
        img *= np.float32(1.0 / max(std, 1.0 / np.sqrt(max(n, 1))))
    return flt
