"""Bridges between stoker and the Ray libraries: a ``ray.data.Dataset`` read as a stoker
dataset, and a stoker pipeline split across Ray Train workers.

* :func:`from_ray_data`: a stoker :class:`~stoker.Dataset` whose elements are the rows
  (or NumPy batches) of a ``ray.data.Dataset``. Ray Data executes it on the cluster; the
  stoker pipeline built on top runs in this process. Needs ``ray[data]`` (pandas and
  pyarrow), which ``pip install 'stoker[ray]'`` installs.
* :func:`shard_for_worker`: inside a Ray Train worker, this worker's shard of a stoker
  dataset (``ds.shard(world_size, rank)`` from ``ray.train.get_context()``), so each
  worker builds and runs its own pipeline and no element passes through the trainer's
  driver. Apply it to the list of files, before ``interleave``, so each worker opens only
  its own files.

docs/ray.md shows both with a whole pipeline.

Example::

    import ray, stoker.ray

    rows = ray.data.range(1000).map(lambda r: {"id": r["id"], "sq": r["id"] ** 2})
    ds = stoker.ray.from_ray_data(rows).map(lambda r: r["sq"]).batch(32)
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from stoker.dataset import Dataset
from stoker.errors import CheckpointError
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.options import UNKNOWN_CARDINALITY
from stoker.ray._cluster import import_ray

__all__ = ["RayDataDataset", "from_ray_data", "shard_for_worker"]


def _import_ray_data() -> Any:
    import_ray()  # the install hint when Ray itself is missing
    try:
        import ray.data
    except ImportError as e:
        raise ImportError(
            "stoker.ray.from_ray_data needs Ray Data (pandas and pyarrow): pip install "
            f"'stoker[ray]' (or pip install 'ray[data]'): {e}"
        ) from e
    return ray.data


def _to_numpy(value: Any) -> Any:
    """A row's value as NumPy: arrays as they are, scalars as NumPy scalars."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    arr = np.asarray(value)
    return arr[()] if arr.ndim == 0 else arr


class RayDataDataset(Dataset):
    """The rows (or NumPy batches) of a ``ray.data.Dataset``; see :func:`from_ray_data`."""

    _op_name = "from_ray_data"

    def __init__(self, ray_ds: Any, batch_size: int | None, name: str | None):
        super().__init__((), name)
        self._ray_ds = ray_ds
        self._batch_size = batch_size

    def _cardinality(self) -> int:
        # Ray knows the count without executing anything for sources whose row count is
        # in their metadata (range, from_items, from_numpy, parquet, ...) followed by
        # row-preserving ops (map, map_batches without filtering); `count()` would run the
        # whole dataset otherwise. `_meta_count` is the method `count()` itself asks first.
        meta_count = getattr(self._ray_ds, "_meta_count", None)
        try:
            n = meta_count() if meta_count is not None else None
        except Exception:
            n = None
        if not isinstance(n, int) or n < 0:
            return UNKNOWN_CARDINALITY
        if self._batch_size is None:
            return n
        return -(-n // self._batch_size)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _RayDataIterator(ctx, self)


class _RayDataIterator(DatasetIterator):
    OP = "from_ray_data"

    def __init__(self, ctx: IterContext, ds: RayDataDataset):
        super().__init__(ctx, ds, ())
        self._ds = ds
        self._it: Any = None
        self._pos = 0  # rows (or batches) delivered in this pass
        self._skip = 0  # rows (or batches) still to drop after a restore

    def _open(self) -> Any:
        ray = import_ray()
        if not ray.is_initialized() and threading.current_thread() is not threading.main_thread():
            # Ray Data would start a local cluster here, on this thread; a driver started
            # off the main thread lost its cluster a minute later (Ray 2.60).
            raise RuntimeError(
                f"{self.stage}: Ray is not started yet, and this is not the main thread (a "
                "prefetch or interleave thread runs this stage). Call ray.init() or "
                "stoker.ray.connect(...) on the main thread before iterating."
            )
        ray_ds = self._ds._ray_ds
        if self._ds._batch_size is None:
            return iter(ray_ds.iter_rows())
        return iter(ray_ds.iter_batches(batch_size=self._ds._batch_size, batch_format="numpy"))

    def __next__(self) -> Any:
        if self._it is None:
            self._it = self._open()
            while self._skip:
                try:
                    next(self._it)
                except StopIteration:
                    raise CheckpointError(
                        f"{self.stage}: the state's position is {self._pos} "
                        f"{self._unit()}, but this pass of the Ray dataset ended after "
                        f"{self._pos - self._skip}: it is not the dataset the state was "
                        "saved from"
                    ) from None
                self._skip -= 1
        value = next(self._it)
        self._pos += 1
        if self._ds._batch_size is None:
            return {k: _to_numpy(v) for k, v in value.items()}
        return value

    def _unit(self) -> str:
        return "rows" if self._ds._batch_size is None else "batches"

    def _get_state(self) -> State:
        options = getattr(getattr(self._ds._ray_ds, "context", None), "execution_options", None)
        if not getattr(options, "preserve_order", False):
            raise CheckpointError(
                f"{self.stage}: a position in a Ray dataset is a count of {self._unit()}, "
                "restored by reading that many again, which is the same place only if every "
                "pass delivers them in the same order; Ray Data does that only with "
                "ray_ds.context.execution_options.preserve_order = True (and nothing "
                "unseeded-random in it). Set it before iterating, or cache() the rows."
            )
        return {"index": self._pos}

    def _set_state(self, state: State) -> None:
        pos = int(state["index"])
        if pos < 0:
            raise ValueError(f"index {pos} is negative")
        self._close()
        self._pos = self._skip = pos

    def _close(self) -> None:
        close = getattr(self._it, "close", None)
        self._it = None
        if close is not None:
            close()


def from_ray_data(ds: Any, *, batch_size: int | None = None, name: str | None = None) -> Dataset:
    """A stoker dataset of the rows of the ``ray.data.Dataset`` ``ds``.

    Each element is a row as a dict of NumPy values (column name → scalar or array); with
    ``batch_size``, a dict of NumPy arrays of ``batch_size`` rows each (the last may be
    shorter), from ``ds.iter_batches(batch_format="numpy")``. Every pass (``iter()``)
    executes ``ds`` again, on the Ray cluster. The cardinality is known when Ray knows the
    row count without executing (row-count metadata of the source, then only
    row-preserving ops), else ``UNKNOWN_CARDINALITY``.

    Checkpoints: a position is the count of rows (or batches) delivered; a restore reads
    that many again and drops them. That is the same place only if every pass delivers
    rows in the same order, so ``get_state()`` raises :class:`~stoker.errors.CheckpointError`
    unless ``ds.context.execution_options.preserve_order`` is True.

    Ray must be started on the main thread before a prefetch or interleave thread first
    iterates this source (``ray.init()`` or :func:`stoker.ray.connect`); otherwise Ray Data
    starts a local cluster on first use, as it does on its own.

    Args:
        ds: A ``ray.data.Dataset``.
        batch_size: Rows per element, or ``None`` for one row per element.
        name: The stage's name in stats and errors.

    Raises:
        TypeError: ``ds`` is not a ``ray.data.Dataset``, or ``batch_size`` not an int.
        ValueError: ``batch_size`` is not positive.
        ImportError: Ray Data is not installed (with the pip command).

    Example::

        import ray, stoker.ray

        ray_ds = ray.data.from_items([{"x": i} for i in range(100)])
        ds = stoker.ray.from_ray_data(ray_ds).map(lambda r: r["x"] * 2)
    """
    ray_data = _import_ray_data()
    if not isinstance(ds, ray_data.Dataset):
        raise TypeError(f"from_ray_data(): ds must be a ray.data.Dataset, got {type(ds).__name__}")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(
                f"from_ray_data(): batch_size must be an int or None, got {batch_size!r}"
            )
        if batch_size <= 0:
            raise ValueError(f"from_ray_data(): batch_size must be positive, got {batch_size}")
        batch_size = int(batch_size)
    return RayDataDataset(ds, batch_size, name)


def shard_for_worker(ds: Dataset, *, context: Any = None) -> Dataset:
    """This Ray Train worker's shard of ``ds``: ``ds.shard(world_size, world_rank)``.

    Call it inside ``train_loop_per_worker``; the ranks come from
    ``ray.train.get_context()`` (or ``context``: anything with ``get_world_size()`` and
    ``get_world_rank()``). Every worker gets a disjoint share, together all of ``ds``,
    each in ``ds``'s order. Shard the cheap part (the list of files, before
    ``interleave``): ``shard`` reads and drops the other workers' elements.

    Args:
        ds: A stoker dataset.
        context: The Train context; default ``ray.train.get_context()``.

    Raises:
        ValueError: The context's world size or rank is out of range.
        ImportError: ``context`` is None and Ray Train is not installed.

    Example::

        def train_loop_per_worker(config):
            files = stoker.ray.shard_for_worker(stoker.Dataset.from_tensor_slices(paths))
            for batch in files.interleave(read_shard, cycle_length=4).batch(256):
                ...
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"shard_for_worker(): ds must be a stoker Dataset, got {type(ds).__name__}")
    if context is None:
        import_ray()
        try:
            import ray.train
        except ImportError as e:
            raise ImportError(
                "stoker.ray.shard_for_worker needs Ray Train: pip install 'ray[train]' "
                f"({e}); or pass context= with get_world_size() and get_world_rank()"
            ) from e
        context = ray.train.get_context()
    world = int(context.get_world_size())
    rank = int(context.get_world_rank())
    if world < 1 or not 0 <= rank < world:
        raise ValueError(
            f"shard_for_worker(): the Train context says rank {rank} of world size {world}"
        )
    return ds.shard(world, rank, name=f"shard_for_worker_{rank}_of_{world}")
