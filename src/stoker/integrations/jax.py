"""JAX: batches put on the device ``size`` steps ahead of the training step.

:func:`prefetch_to_device` calls ``jax.device_put`` on each element's NumPy leaves ``size``
elements before the consumer asks for them. ``device_put`` only starts the host-to-device
transfer and returns, so the transfers run while the previous steps compute; no thread is
needed (the stoker pipeline's own ``prefetch`` keeps the host side ahead).

**Sharding.** ``sharding=None`` puts each array on JAX's default device. A
``jax.sharding.Sharding`` (e.g. a ``NamedSharding`` over a mesh, batch axis split across
devices) or a single ``jax.Device`` places it as ``device_put`` does.

**Several processes** (multi-host training, ``jax.process_count() > 1``). Each process runs
its own stoker pipeline, reads its own part of the data and feeds only its local devices.
"Per-process" means: process ``jax.process_index()`` of ``jax.process_count()`` reads shard
``process_index`` of the dataset (:func:`shard_for_process` applies ``Dataset.shard`` with
those numbers; shard the file list instead when reading dominates), and its batches are the
process-local rows of the global batch. With a sharding that spans processes,
``prefetch_to_device`` assembles each global array with
``jax.make_array_from_process_local_data(sharding, local_rows)``: the global batch is the
processes' local batches concatenated along axis 0 in process order, so a local batch of
``B`` rows on each of ``P`` processes is a global batch of ``P * B`` rows.

Leaves JAX cannot hold (bytes, strings, object arrays) pass through unchanged; tuples,
namedtuples and dicts keep their structure; dtypes are kept as JAX allows (64-bit types
become 32-bit unless ``jax_enable_x64`` is set, as ``device_put`` always does).
"""

from __future__ import annotations

import collections
import importlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from stoker._structure import map_structure

__all__ = ["prefetch_to_device", "shard_for_process"]

_INSTALL_HINT = (
    "stoker.jax needs JAX, which is not installed: pip install 'stoker[jax]' (or pip install jax)"
)
#: Dtype kinds JAX has no array for: bytes, str, void, object, datetime, timedelta.
_NOT_NUMERIC = frozenset("SUVOMm")


def _import_jax() -> Any:
    try:
        return importlib.import_module("jax")
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e


def shard_for_process(dataset: Any) -> Any:
    """This process's share of ``dataset``: shard ``jax.process_index()`` of ``process_count()``.

    With one process it returns ``dataset`` unchanged.

    Example::

        ds = stoker.jax.shard_for_process(Dataset.list_files("train-*", shuffle=False))
        ds = ds.interleave(TFRecordDataset).map(parse).batch(per_process_batch)
    """
    jax = _import_jax()
    count, index = int(jax.process_count()), int(jax.process_index())
    return dataset if count == 1 else dataset.shard(count, index)


class _Putter:
    def __init__(self, jax: Any, sharding: Any):
        self._jax = jax
        self._sharding = sharding
        # A sharding whose devices are not all this process's: build the global array
        # from this process's rows.
        addressable = getattr(sharding, "is_fully_addressable", True)
        self._global = sharding is not None and not addressable

    def __call__(self, element: Any) -> Any:
        jax = self._jax

        def leaf(x: Any) -> Any:
            if isinstance(x, (np.ndarray, np.generic)):
                if x.dtype.kind in _NOT_NUMERIC:
                    return x
            elif not isinstance(x, (bool, int, float)):
                return x
            if self._global:
                return jax.make_array_from_process_local_data(self._sharding, np.asarray(x))
            return jax.device_put(x, self._sharding)

        return map_structure(leaf, element)


class _JaxIterable(Iterable[Any]):
    def __init__(self, dataset: Iterable[Any], size: int, putter: _Putter):
        self._dataset = dataset
        self._size = size
        self._put = putter

    def __iter__(self) -> Iterator[Any]:
        source = iter(self._dataset)
        ahead: collections.deque[Any] = collections.deque()
        try:
            for element in source:
                ahead.append(self._put(element))
                if len(ahead) >= self._size:
                    yield ahead.popleft()
            while ahead:
                yield ahead.popleft()
        finally:
            ahead.clear()
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __repr__(self) -> str:
        return f"stoker.jax.prefetch_to_device({self._dataset!r}, size={self._size})"


def prefetch_to_device(
    dataset: Iterable[Any], size: int = 2, sharding: Any = None
) -> Iterable[Any]:
    """Iterate ``dataset`` as JAX arrays, ``size`` elements already sent to the device.

    Args:
        dataset: A stoker ``Dataset`` or any iterable of nested NumPy elements.
        size: Elements whose transfer has started before the consumer takes the oldest
            (``1``: the next one only; ``size`` elements are alive on the device at once).
        sharding: ``None`` (the default device), a ``jax.Device``, or a
            ``jax.sharding.Sharding``; one spanning several processes takes this
            process's rows (see the module docstring).

    Returns:
        An iterable; each ``iter()`` is a new pass over ``dataset``.

    Raises:
        ImportError: jax is not installed (the message gives the pip command).
        ValueError: ``size`` is not a positive int.

    Example::

        mesh = jax.sharding.Mesh(jax.devices(), ("batch",))
        spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
        for batch in stoker.jax.prefetch_to_device(ds, size=2, sharding=spec):
            state = train_step(state, batch)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"prefetch_to_device: size={size!r} must be an int >= 1")
    jax = _import_jax()
    return _JaxIterable(dataset, size, _Putter(jax, sharding))
