"""Random augmentations: tf.image's ``random_*`` ops with a ``seed=`` that reproduces.

``seed`` is one of:

* a NumPy ``Generator``: draws come from it. Inside ``Dataset.random_map(fn, seed=...)`` pass
  the ``rng`` it gives ``fn``: that generator is seeded from (seed, pass, element index),
  so the augmentations are the same on any number of threads or worker processes and after
  a checkpoint resume, and differ between elements and between passes;
* an int (or sequence of ints): a fresh ``np.random.default_rng(seed)`` per call, so the
  same int gives the same draw every time, like tf's ``stateless_random_*`` ops;
* None: a process-wide generator seeded from the OS (not reproducible).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from stoker.image._checks import as_image, check_rank
from stoker.image._color import adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation
from stoker.image._geometry import crop_to_size, flip_left_right, flip_mask, flip_up_down

__all__ = [
    "Seed",
    "random_brightness",
    "random_contrast",
    "random_crop",
    "random_flip_left_right",
    "random_flip_up_down",
    "random_hue",
    "random_saturation",
    "rng_from_seed",
]

Seed = Union[int, Sequence[int], np.random.Generator, None]

_GLOBAL_LOCK = threading.Lock()
_GLOBAL: list[np.random.Generator] = []


def rng_from_seed(seed: Seed) -> np.random.Generator:
    """The generator a random op draws from (see the module docstring)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        with _GLOBAL_LOCK:
            if not _GLOBAL:
                _GLOBAL.append(np.random.default_rng())
            return _GLOBAL[0]
    if isinstance(seed, bool) or isinstance(seed, float):
        raise TypeError(f"seed={seed!r} must be an int, a sequence of ints, a Generator or None")
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise TypeError(
            f"seed={seed!r} must be an int, a sequence of ints, a Generator or None"
        ) from None


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a number") from None


def _check_range(lower: Any, upper: Any) -> tuple[float, float]:
    lo, hi = _number(lower, "lower"), _number(upper, "upper")
    if hi <= lo:
        raise ValueError(f"upper={upper} must be > lower={lower}")
    if lo < 0:
        raise ValueError(f"lower={lower} must be non-negative")
    return lo, hi


def _random_flip(image: Any, seed: Seed, axis_from_end: int) -> np.ndarray:
    arr = as_image(image)
    check_rank(arr)
    rng = rng_from_seed(seed)
    flip = flip_left_right if axis_from_end == 2 else flip_up_down
    if arr.ndim == 3:
        return flip(arr) if rng.random() < 0.5 else arr
    return flip_mask(arr, np.asarray(rng.random(arr.shape[0]) < 0.5), axis_from_end)


def random_flip_left_right(image: Any, seed: Seed = None) -> np.ndarray:
    """Mirror left-right with probability 1/2 (each image of a batch on its own).

    Args:
        image: An image ``(H, W, C)`` or batch ``(N, H, W, C)``.
        seed: A ``Generator`` (e.g. ``random_map``'s ``rng``), an int, or None.

    Returns:
        The image, flipped or as it was (the input itself when not flipped).

    Example::

        ds.random_map(lambda x, rng: stoker.image.random_flip_left_right(x, seed=rng))
    """
    return _random_flip(image, seed, 2)


def random_flip_up_down(image: Any, seed: Seed = None) -> np.ndarray:
    """Mirror up-down with probability 1/2 (each image of a batch on its own).

    Args:
        image: An image ``(H, W, C)`` or batch ``(N, H, W, C)``.
        seed: A ``Generator``, an int, or None.

    Returns:
        The image, flipped or as it was.

    Example::

        ds.random_map(lambda x, rng: stoker.image.random_flip_up_down(x, seed=rng))
    """
    return _random_flip(image, seed, 3)


def random_brightness(image: Any, max_delta: float, seed: Seed = None) -> np.ndarray:
    """:func:`adjust_brightness` by a delta drawn uniformly from [-max_delta, max_delta).

    One delta for the whole input (a batch shares it), as in tf.image.

    Args:
        image: An image or batch.
        max_delta: Non-negative, in [0, 1] units.
        seed: A ``Generator``, an int, or None.

    Returns:
        An array of ``image``'s shape and dtype.

    Raises:
        ValueError: ``max_delta`` is negative.

    Example::

        ds.random_map(lambda x, rng: stoker.image.random_brightness(x, 0.2, seed=rng))
    """
    d = _number(max_delta, "max_delta")
    if d < 0:
        raise ValueError(f"max_delta={max_delta} must be non-negative")
    return adjust_brightness(image, rng_from_seed(seed).uniform(-d, d))


def random_contrast(image: Any, lower: float, upper: float, seed: Seed = None) -> np.ndarray:
    """:func:`adjust_contrast` by a factor drawn uniformly from [lower, upper).

    Args:
        image: An image or batch (at least 3-D).
        lower: Non-negative lower bound.
        upper: Upper bound, greater than ``lower``.
        seed: A ``Generator``, an int, or None.

    Returns:
        An array of ``image``'s shape and dtype.

    Raises:
        ValueError: ``upper <= lower`` or ``lower < 0``.

    Example::

        ds.random_map(lambda x, rng: stoker.image.random_contrast(x, 0.8, 1.2, seed=rng))
    """
    lo, hi = _check_range(lower, upper)
    return adjust_contrast(image, rng_from_seed(seed).uniform(lo, hi))


def random_saturation(image: Any, lower: float, upper: float, seed: Seed = None) -> np.ndarray:
    """:func:`adjust_saturation` by a factor drawn uniformly from [lower, upper).

    Args:
        image: An RGB image or batch.
        lower: Non-negative lower bound.
        upper: Upper bound, greater than ``lower``.
        seed: A ``Generator``, an int, or None.

    Returns:
        An array of ``image``'s shape and dtype.

    Raises:
        ValueError: ``upper <= lower``, ``lower < 0``, or ``image`` is not RGB.

    Example::

        ds.random_map(lambda x, rng: stoker.image.random_saturation(x, 0.8, 1.2, seed=rng))
    """
    lo, hi = _check_range(lower, upper)
    return adjust_saturation(image, rng_from_seed(seed).uniform(lo, hi))


def random_hue(image: Any, max_delta: float, seed: Seed = None) -> np.ndarray:
    """:func:`adjust_hue` by a delta drawn uniformly from [-max_delta, max_delta).

    Args:
        image: An RGB image or batch.
        max_delta: In [0, 0.5].
        seed: A ``Generator``, an int, or None.

    Returns:
        An array of ``image``'s shape and dtype.

    Raises:
        ValueError: ``max_delta`` is outside [0, 0.5], or ``image`` is not RGB.

    Example::

        ds.random_map(lambda x, rng: stoker.image.random_hue(x, 0.1, seed=rng))
    """
    d = _number(max_delta, "max_delta")
    if d > 0.5:
        raise ValueError(f"max_delta={max_delta} must be <= 0.5")
    if d < 0:
        raise ValueError(f"max_delta={max_delta} must be non-negative")
    return adjust_hue(image, rng_from_seed(seed).uniform(-d, d))


def random_crop(value: Any, size: Sequence[int], seed: Seed = None) -> np.ndarray:
    """Crop a random window of ``size`` (one entry per dimension of ``value``).

    Args:
        value: An array of any rank, e.g. ``(H, W, C)``.
        size: The window's shape, ``len(size) == value.ndim`` and ``size <= value.shape``.
        seed: A ``Generator``, an int, or None.

    Returns:
        A contiguous array of shape ``size``.

    Raises:
        ValueError: ``size`` has the wrong length or exceeds ``value.shape``.

    Example::

        ds.random_map(lambda x, rng: stoker.image.random_crop(x, (224, 224, 3), seed=rng))
    """
    arr = np.asarray(value)
    try:
        want = tuple(int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size={size!r} must be a sequence of ints") from None
    if len(want) != arr.ndim:
        raise ValueError(f"size={size!r} must have one entry per dimension of {arr.shape}")
    if any(s < 0 or s > d for s, d in zip(want, arr.shape, strict=True)):
        raise ValueError(f"size={size!r} must be within value's shape {arr.shape}")
    limit = np.array(arr.shape, np.int64) - np.array(want, np.int64) + 1
    offsets = rng_from_seed(seed).integers(0, limit)
    return crop_to_size(arr, offsets, want)
