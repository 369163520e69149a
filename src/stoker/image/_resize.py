"""``resize``: tf.image's resampling on NumPy images, with tf's pixel-centre conventions.

tf.image (v2) samples output pixel ``x`` at input coordinate ``(x + 0.5) * in / out - 0.5``
("half-pixel centres"). Per method:

* ``bilinear``: OpenCV's ``INTER_LINEAR`` on float32 uses the same convention and the same
  edge clamping, so it is used directly.
* ``nearest``: the index ``floor((x + 0.5) * in / out)`` computed here (OpenCV's
  ``INTER_NEAREST`` uses ``floor(x * in / out)``, a different pixel).
* ``bicubic``: Keys' cubic with ``a = -0.5`` (OpenCV uses -0.75), taps outside the image
  dropped and the rest renormalised, tf's 1/1024 quantised offsets.
* ``area``: each output pixel averages the input box it covers, weighted by overlap; on
  float32 that is what OpenCV's ``INTER_AREA`` computes, up- and downsampling.
* ``antialias=True``: tf's ``scale_and_translate``: the kernel (triangle for bilinear, Keys
  cubic for bicubic) widened by the downscale factor.
* ``lanczos3``, ``lanczos5``, ``gaussian``, ``mitchellcubic``: always ``scale_and_translate``
  with that kernel (widened only with ``antialias``), as tf.

Bicubic, antialiased and the other kernels' resizing go through one separable
resampler: per output row (and column), a few input indices and weights, applied as one
NumPy gather and one batched matrix product per axis, width first, as tf does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stoker.image._checks import as_image, check_rank, to_numpy_dtype
from stoker.image._cv import cv2

__all__ = ["ResizeMethod", "resize"]


class ResizeMethod:
    """The method names ``resize`` accepts (tf.image.ResizeMethod's values)."""

    BILINEAR = "bilinear"
    NEAREST_NEIGHBOR = "nearest"
    BICUBIC = "bicubic"
    AREA = "area"
    LANCZOS3 = "lanczos3"
    LANCZOS5 = "lanczos5"
    GAUSSIAN = "gaussian"
    MITCHELLCUBIC = "mitchellcubic"


_METHODS = (
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
)
_KEYS_A = -0.5
_TABLE_SIZE = 1024  # tf's resize_bicubic quantises the sub-pixel offset to 1/1024


def _keys(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5), for |x| given."""
    a = _KEYS_A
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0)).astype(np.float32)


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(0.0, 1.0 - np.abs(x)), np.float32)


def _lanczos(radius: float) -> Callable[[np.ndarray], np.ndarray]:
    """sinc(x) * sinc(x / radius) inside the radius (1 at 0)."""

    def kernel(x: np.ndarray) -> np.ndarray:
        x = np.abs(x.astype(np.float64))
        safe = np.where(x <= 1e-3, 1.0, x)
        value = radius * np.sin(np.pi * safe) * np.sin(np.pi * safe / radius)
        value /= np.pi * np.pi * safe * safe
        return np.asarray(np.where(x <= 1e-3, 1.0, np.where(x > radius, 0.0, value)), np.float32)

    return kernel


def _gaussian(x: np.ndarray) -> np.ndarray:
    """exp(-x^2 / (2 sigma^2)) with tf's radius 1.5 and sigma = radius / 3."""
    x = np.abs(x.astype(np.float64))
    sigma = 0.5
    return np.asarray(np.where(x >= 1.5, 0.0, np.exp(-x * x / (2 * sigma * sigma))), np.float32)


def _mitchell(x: np.ndarray) -> np.ndarray:
    """Mitchell-Netravali cubic with B = C = 1/3."""
    x = np.abs(x.astype(np.float64))
    near = ((7.0 / 6.0) * x - 2.0) * x * x + 8.0 / 9.0
    far = (((-7.0 / 18.0) * x + 2.0) * x - 10.0 / 3.0) * x + 16.0 / 9.0
    return np.asarray(np.where(x >= 2, 0.0, np.where(x >= 1, far, near)), np.float32)


# scale_and_translate's kernels for the methods tf always resizes that way: (kernel, radius).
_SPAN_KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "lanczos3": (_lanczos(3.0), 3.0),
    "lanczos5": (_lanczos(5.0), 5.0),
    "gaussian": (_gaussian, 1.5),
    "mitchellcubic": (_mitchell, 2.0),
}


Taps = tuple[np.ndarray, np.ndarray]  # (indices (out, K) int64, weights (out, K) float32)


def _normalise(idx: np.ndarray, w: np.ndarray, valid: np.ndarray, size: int) -> Taps:
    w = np.where(valid, w, np.float32(0)).astype(np.float32)
    total = w.sum(axis=1, keepdims=True, dtype=np.float32)
    ok = np.abs(total) >= 1000.0 * np.finfo(np.float32).tiny
    w = np.where(ok, w * (np.float32(1) / np.where(ok, total, 1)), w).astype(np.float32)
    return np.clip(idx, 0, size - 1), w


def _bicubic_taps(size: int, out: int) -> Taps:
    scale = np.float32(size) / np.float32(out)
    x = np.arange(out, dtype=np.float32)
    loc_f = (x + np.float32(0.5)) * scale - np.float32(0.5)
    loc = np.floor(loc_f)
    q = np.rint((loc_f - loc) * _TABLE_SIZE).astype(np.float32) / _TABLE_SIZE
    dist = np.stack([1 + q, q, 1 - q, 2 - q], axis=1)
    idx = loc.astype(np.int64)[:, None] + np.arange(-1, 3)
    valid = (idx >= 0) & (idx < size)
    return _normalise(idx, _keys(dist), valid, size)


def _span_taps(
    size: int, out: int, kernel: Callable[[np.ndarray], np.ndarray], radius: float, antialias: bool
) -> Taps:
    """tf's scale_and_translate spans (translation 0)."""
    scale = np.float32(out) / np.float32(size)
    inv_scale = np.float32(1.0 / float(scale))
    kscale = max(float(inv_scale), 1.0) if antialias else 1.0
    span = min(2 * math.ceil(radius * kscale) + 1, size)
    sample = (np.arange(out, dtype=np.float32) + np.float32(0.5)) * inv_scale
    start = np.ceil(sample - np.float32(radius * kscale) - np.float32(0.5)).astype(np.int64)
    end = np.floor(sample + np.float32(radius * kscale) - np.float32(0.5)).astype(np.int64)
    start = np.clip(start, 0, size - 1)
    end = np.clip(end, 0, size - 1) + 1
    idx = start[:, None] + np.arange(span)
    pos = (idx.astype(np.float32) + np.float32(0.5) - sample[:, None]) * np.float32(1.0 / kscale)
    return _normalise(idx, kernel(pos), idx < end[:, None], size)


def _area_taps(size: int, out: int) -> Taps:
    """tf's resize_area: the overlap of [x, x + 1) * in / out with each input pixel."""
    scale = np.float32(size) / np.float32(out)
    x = np.arange(out, dtype=np.float32)
    lo, hi = x * scale, (x + 1) * scale
    first = np.floor(lo).astype(np.int64)
    k = int((np.ceil(hi).astype(np.int64) - first).max())
    idx = first[:, None] + np.arange(k)
    idx_f = idx.astype(np.float32)
    overlap = np.minimum(idx_f + 1, hi[:, None]) - np.maximum(idx_f, lo[:, None])
    valid = overlap > 0
    w = np.where(valid, overlap, 0).astype(np.float32) * np.float32(1.0 / float(scale))
    return np.minimum(idx, size - 1), w.astype(np.float32)


@functools.lru_cache(maxsize=64)
def _taps(method: str, size: int, out: int, antialias: bool) -> Taps:
    if method == "area":  # tf's area ignores antialias
        return _area_taps(size, out)
    if method in _SPAN_KERNELS:
        kernel, radius = _SPAN_KERNELS[method]
        return _span_taps(size, out, kernel, radius, antialias)
    if method == "bicubic":
        if antialias:
            return _span_taps(size, out, _keys, 2.0, True)
        return _bicubic_taps(size, out)
    return _span_taps(size, out, _triangle, 1.0, antialias)


_CHUNK_BYTES = 256 << 10  # gather at most this much at once: small buffers get reused


def _resample_rows(x: np.ndarray, taps: Taps) -> np.ndarray:
    """Resample axis 1 of ``x`` (B, L, M): gather the K taps of each output row and combine
    them with one batched (1 x K) @ (K x M) product per row (no per-tap temporaries).

    Output rows go in chunks so that the gathered taps stay small: large fresh temporaries
    cost page faults on every call where the allocator returns them to the OS."""
    idx, w = taps
    b, _, m = x.shape
    n_out, k = idx.shape
    out = np.empty((b, n_out, m), np.float32)
    step = max(1, _CHUNK_BYTES // max(1, b * k * m * 4))
    for start in range(0, n_out, step):
        sl = slice(start, start + step)
        gathered = x[:, idx[sl]]  # (B, rows, K, M)
        np.matmul(w[sl, None, :], gathered, out=out[:, sl, None, :])
    return out


def _resample(arr: np.ndarray, taps_h: Taps, taps_w: Taps) -> np.ndarray:
    """Separable resampling of (..., H, W, C) float32: width first, as tf does."""
    h, w, c = arr.shape[-3:]
    oh, ow = taps_h[0].shape[0], taps_w[0].shape[0]
    x = arr.reshape(-1, h, w, c)
    b = x.shape[0]
    # Intermediates are dropped as soon as they are used, so fewer large buffers are alive
    # at once (and freed memory is reused rather than returned to the OS and faulted in).
    by_col = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(b, w, h * c)
    cols = _resample_rows(by_col, taps_w).reshape(b, ow, h, c)
    del by_col
    rows = np.ascontiguousarray(cols.transpose(0, 2, 1, 3)).reshape(b, h, ow * c)
    del cols
    out = _resample_rows(rows, taps_h).reshape(b, oh, ow, c)
    return out.reshape((*arr.shape[:-3], oh, ow, c))


def _nearest(arr: np.ndarray, oh: int, ow: int) -> np.ndarray:
    h, w = arr.shape[-3], arr.shape[-2]

    def index(size: int, out: int) -> np.ndarray:
        scale = np.float32(size) / np.float32(out)
        pos = np.floor((np.arange(out, dtype=np.float32) + np.float32(0.5)) * scale)
        return np.asarray(np.clip(pos.astype(np.int64), 0, size - 1))

    iy, ix = index(h, oh), index(w, ow)
    remappable = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
    if arr.ndim == 3 and arr.shape[-1] <= 4 and arr.dtype in remappable and arr.size:
        # OpenCV's remap with integer-valued maps is an exact gather, and much faster than
        # NumPy's fancy indexing on the width axis.
        map_x = np.broadcast_to(ix.astype(np.float32)[None, :], (oh, ow))
        map_y = np.broadcast_to(iy.astype(np.float32)[:, None], (oh, ow))
        res = cv2.remap(
            np.ascontiguousarray(arr),
            np.ascontiguousarray(map_x),
            np.ascontiguousarray(map_y),
            cv2.INTER_NEAREST,
        )
        return np.asarray(res).reshape(oh, ow, arr.shape[-1])
    return np.take(np.take(arr, iy, axis=-3), ix, axis=-2)


def _cv_each(arr: np.ndarray, oh: int, ow: int, interpolation: int) -> np.ndarray:
    """``cv2.resize`` over each image of a batch (OpenCV drops a last dimension of 1)."""
    if arr.ndim == 3:
        res = cv2.resize(np.ascontiguousarray(arr), (ow, oh), interpolation=interpolation)
        return np.asarray(res).reshape(oh, ow, arr.shape[-1])
    batch = arr.reshape((-1, *arr.shape[-3:]))
    out = np.empty((batch.shape[0], oh, ow, arr.shape[-1]), arr.dtype)
    for i, img in enumerate(batch):
        res = cv2.resize(np.ascontiguousarray(img), (ow, oh), interpolation=interpolation)
        out[i] = np.asarray(res).reshape(oh, ow, -1)
    return out.reshape((*arr.shape[:-3], oh, ow, arr.shape[-1]))


def _target_size(size: Any, h: int, w: int, preserve_aspect_ratio: bool) -> tuple[int, int]:
    try:
        oh, ow = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size={size!r} must be a sequence of two ints: (height, width)") from None
    if oh <= 0 or ow <= 0:
        raise ValueError(f"size={size!r} must be positive")
    if preserve_aspect_ratio:
        factor = min(np.float32(oh) / np.float32(h), np.float32(ow) / np.float32(w))
        oh = int(np.round(factor * np.float32(h)))
        ow = int(np.round(factor * np.float32(w)))
    return oh, ow


def _cast_out(res: np.ndarray, out: np.dtype[Any]) -> np.ndarray:
    if res.dtype == out:
        return res
    if out.kind in "ui":
        info = np.iinfo(out)
        return np.asarray(np.clip(np.rint(res), info.min, info.max).astype(out))
    return res.astype(out)


def resize(
    images: Any,
    size: Sequence[int],
    method: str = ResizeMethod.BILINEAR,
    preserve_aspect_ratio: bool = False,
    antialias: bool = False,
    name: str | None = None,
    *,
    dtype: Any = None,
) -> np.ndarray:
    """Resize an image or batch to ``size = (height, width)`` as tf.image.resize does.

    Values stay on the input's scale (a uint8 image gives float32 values in [0, 255]).

    Args:
        images: An image ``(H, W, C)`` or batch ``(N, H, W, C)``.
        size: ``(new_height, new_width)``.
        method: ``"bilinear"``, ``"nearest"``, ``"bicubic"``, ``"area"``, ``"lanczos3"``,
            ``"lanczos5"``, ``"gaussian"`` or ``"mitchellcubic"``.
        preserve_aspect_ratio: Fit within ``size`` keeping the aspect ratio.
        antialias: Widen the filter when downsampling (bilinear and bicubic), as tf does.
        name: Unused.
        dtype: stoker extension. None gives tf's types: float32, or the input's dtype for
            ``"nearest"``. ``np.uint8`` on a uint8 image keeps it uint8 all the way (OpenCV's
            fixed-point resampling for bilinear without antialias and for area downsampling,
            otherwise the float result rounded): a quarter of the bytes for the next ops, values
            within 1 of tf's rounded. Any other dtype casts the result (integers round).

    Returns:
        The resized array.

    Raises:
        ValueError: ``images`` is not 3-D or 4-D, ``size`` is not two positive ints, or
            ``method`` is unknown.

    Example::

        small = stoker.image.resize(img, (224, 224))  # float32
        small_u8 = stoker.image.resize(img, (224, 224), dtype=np.uint8)
    """
    del name
    arr = as_image(images, "images")
    check_rank(arr, "images")
    method = str(getattr(method, "value", method)).lower()
    if method not in _METHODS:
        raise ValueError(f"method={method!r} must be one of {_METHODS}")
    h, w = arr.shape[-3], arr.shape[-2]
    oh, ow = _target_size(size, h, w, preserve_aspect_ratio)
    out_dtype = None if dtype is None else to_numpy_dtype(dtype)
    if method == "nearest":
        res = _nearest(arr, oh, ow)
        return res if out_dtype is None else _cast_out(res, out_dtype)
    if out_dtype == np.uint8 and arr.dtype == np.uint8 and arr.shape[-1] <= 4:
        if method == "bilinear" and not antialias:
            return _cv_each(arr, oh, ow, cv2.INTER_LINEAR)
        if method == "area" and oh <= h and ow <= w:
            return _cv_each(arr, oh, ow, cv2.INTER_AREA)
    cv_method: int = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}.get(method, -1)
    fast = cv_method >= 0 and (not antialias or method == "area")
    if fast and arr.shape[-1] <= 4 and h * w > 0:
        res = _cv_each(arr.astype(np.float32, copy=False), oh, ow, cv_method)
    else:
        flt = arr.astype(np.float32, copy=False)
        res = _resample(flt, _taps(method, h, oh, antialias), _taps(method, w, ow, antialias))
    return res if out_dtype is None else _cast_out(res, out_dtype)
