"""tf.image's ``stateless_random_*`` ops: the same draw for the same ``seed``, every call.

tf takes a shape-[2] integer seed; here any int or sequence of ints (or a ``Generator``)
works. The draws are NumPy's, so the values differ from tf's for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stoker.image._random import (
    Seed,
    random_brightness,
    random_contrast,
    random_crop,
    random_flip_left_right,
    random_flip_up_down,
    random_hue,
    random_saturation,
)

__all__ = [
    "stateless_random_brightness",
    "stateless_random_contrast",
    "stateless_random_crop",
    "stateless_random_flip_left_right",
    "stateless_random_flip_up_down",
    "stateless_random_hue",
    "stateless_random_saturation",
]


def _required(seed: Seed) -> Seed:
    if seed is None:
        raise ValueError("seed=None: stateless ops need a seed (an int or a pair of ints)")
    return seed


def stateless_random_flip_left_right(image: Any, seed: Seed) -> np.ndarray:
    """:func:`random_flip_left_right` with a required seed.

    Args:
        image: An image ``(H, W, C)`` or batch ``(N, H, W, C)``.
        seed: An int or sequence of ints (e.g. tf's ``(1, 2)``), or a Generator.

    Returns:
        The image, flipped or not.

    Example::

        stoker.image.stateless_random_flip_left_right(img, seed=(1, 2))
    """
    return random_flip_left_right(image, seed=_required(seed))


def stateless_random_flip_up_down(image: Any, seed: Seed) -> np.ndarray:
    """:func:`random_flip_up_down` with a required seed.

    Args:
        image: An image ``(H, W, C)`` or batch ``(N, H, W, C)``.
        seed: An int or sequence of ints, or a Generator.

    Returns:
        The image, flipped or not.

    Example::

        stoker.image.stateless_random_flip_up_down(img, seed=(1, 2))
    """
    return random_flip_up_down(image, seed=_required(seed))


def stateless_random_brightness(image: Any, max_delta: float, seed: Seed) -> np.ndarray:
    """:func:`random_brightness` with a required seed.

    Args:
        image: An image or batch.
        max_delta: Non-negative, in [0, 1] units.
        seed: An int or sequence of ints, or a Generator.

    Returns:
        An array of ``image``'s shape and dtype.

    Example::

        stoker.image.stateless_random_brightness(img, 0.2, seed=(1, 2))
    """
    return random_brightness(image, max_delta, seed=_required(seed))


def stateless_random_contrast(image: Any, lower: float, upper: float, seed: Seed) -> np.ndarray:
    """:func:`random_contrast` with a required seed.

    Args:
        image: An image or batch.
        lower: Non-negative lower bound.
        upper: Upper bound, greater than ``lower``.
        seed: An int or sequence of ints, or a Generator.

    Returns:
        An array of ``image``'s shape and dtype.

    Example::

        stoker.image.stateless_random_contrast(img, 0.5, 1.5, seed=(1, 2))
    """
    return random_contrast(image, lower, upper, seed=_required(seed))


def stateless_random_saturation(image: Any, lower: float, upper: float, seed: Seed) -> np.ndarray:
    """:func:`random_saturation` with a required seed.

    Args:
        image: An RGB image or batch.
        lower: Non-negative lower bound.
        upper: Upper bound, greater than ``lower``.
        seed: An int or sequence of ints, or a Generator.

    Returns:
        An array of ``image``'s shape and dtype.

    Example::

        stoker.image.stateless_random_saturation(img, 0.5, 1.5, seed=(1, 2))
    """
    return random_saturation(image, lower, upper, seed=_required(seed))


def stateless_random_hue(image: Any, max_delta: float, seed: Seed) -> np.ndarray:
    """:func:`random_hue` with a required seed.

    Args:
        image: An RGB image or batch.
        max_delta: In [0, 0.5].
        seed: An int or sequence of ints, or a Generator.

    Returns:
        An array of ``image``'s shape and dtype.

    Example::

        stoker.image.stateless_random_hue(img, 0.1, seed=(1, 2))
    """
    return random_hue(image, max_delta, seed=_required(seed))


def stateless_random_crop(
    value: Any, size: Sequence[int], seed: Seed, name: str | None = None
) -> np.ndarray:
    """:func:`random_crop` with a required seed.

    Args:
        value: An array of any rank.
        size: The window's shape, one entry per dimension.
        seed: An int or sequence of ints, or a Generator.
        name: Unused.

    Returns:
        A contiguous array of shape ``size``.

    Example::

        stoker.image.stateless_random_crop(img, (224, 224, 3), seed=(1, 2))
    """
    del name
    return random_crop(value, size, seed=_required(seed))
