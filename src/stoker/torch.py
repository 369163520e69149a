"""PyTorch integration: :func:`prefetch_to_device` and :class:`IterableDataset`.

Importing this module does not import torch; the first call does, and raises an
``ImportError`` with the pip command when torch is missing. The implementation and its
documentation are in :mod:`stoker.integrations.torch`.

Example::

    import stoker.torch

    for images, labels in stoker.torch.prefetch_to_device(ds, "cuda"):
        ...
"""

from __future__ import annotations

from typing import Any

from stoker.integrations.torch import DevicePrefetcher, PinnedPool, prefetch_to_device, to_torch

# IterableDataset is made by __getattr__ below, on first use.
__all__ = ["DevicePrefetcher", "IterableDataset", "PinnedPool", "prefetch_to_device", "to_torch"]  # noqa: F822


def __getattr__(name: str) -> Any:
    # IterableDataset subclasses torch's class, so it exists only once torch is imported.
    if name == "IterableDataset":
        from stoker.integrations import torch as _torch_integration

        return _torch_integration.IterableDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
