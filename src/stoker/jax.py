"""JAX integration: :func:`prefetch_to_device` and :func:`shard_for_process`.

Importing this module does not import jax; the first call does, and raises an
``ImportError`` with the pip command when jax is missing. The implementation and its
documentation (what per-process sharding means) are in :mod:`stoker.integrations.jax`.

Example::

    import stoker.jax

    for batch in stoker.jax.prefetch_to_device(ds, size=2):
        state = train_step(state, batch)
"""

from __future__ import annotations

from stoker.integrations.jax import prefetch_to_device, shard_for_process

__all__ = ["prefetch_to_device", "shard_for_process"]
