"""Seeds and per-pass counters for random ops."""

from __future__ import annotations

import numpy as np

from stoker.dataset import Dataset

__all__ = ["resolve_seed", "seed_is_fixed"]


def resolve_seed(seed: int | None, input_dataset: Dataset | None) -> int:
    """``seed``, else the pipeline's ``Options.seed``, else fresh entropy fixed for this dataset."""
    if seed is not None:
        if isinstance(seed, bool) or not hasattr(seed, "__index__"):
            raise TypeError(f"seed={seed!r} must be an int or None")
        return int(seed)
    if input_dataset is not None and input_dataset.options().seed is not None:
        return int(input_dataset.options().seed)  # type: ignore[arg-type]
    return int(np.random.SeedSequence().entropy % (1 << 63))  # type: ignore[operator]


def seed_is_fixed(seed: int | None, input_dataset: Dataset | None) -> bool:
    """Whether :func:`resolve_seed` gives the same seed in every process (not fresh entropy).

    Ops set ``_seed_fixed`` from it, so a checkpoint's parameter check compares their seed.
    """
    if seed is not None:
        return True
    return input_dataset is not None and input_dataset.options().seed is not None
