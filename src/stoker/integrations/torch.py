"""PyTorch: batches on the device before the training step asks, and a DataLoader adapter.

:func:`prefetch_to_device` turns a pipeline's NumPy elements into torch tensors on a
device, ``buffer_size`` batches ahead of the consumer, on a background thread named
``stoker-device-prefetch``:

* **NumPy to torch without a copy.** A writable array becomes a tensor with
  ``torch.from_numpy``, which shares its memory. Two cases copy, because torch cannot
  share them safely: a read-only array (``from_tensor_slices`` and ``cache()`` hand those
  out, so that nobody can change the data they keep; a torch tensor is always writable, so
  an in-place op on a shared one would silently change the cache) and an array with a
  negative stride (torch has none). ``batch()`` output is writable and contiguous, so the
  usual path does not copy.
* **CUDA.** Each array is copied once into page-locked (pinned) host memory taken from a
  pool that is reused batch after batch (keyed by shape and dtype; a new buffer is
  allocated only for a shape not seen recently), then to the device with
  ``non_blocking=True`` on a side CUDA stream, so the copy overlaps the training step
  running on the consumer's stream. The side stream records an event; when the consumer
  takes the batch its current stream waits on that event (device-side, the host does not
  block) and the tensors are marked with ``record_stream`` so the caching allocator does
  not hand their memory to the next copy while the step still reads it.
* **Without CUDA** (``device="cpu"``) the same call works: tensors share the arrays'
  memory and stay on the CPU; it logs once (``INFO`` on ``stoker.integrations.torch``) that
  it skipped pinning and the side stream. ``device=None`` picks CUDA when present, else the
  CPU, and then says so at ``WARNING``.

Dtypes are kept (``uint8`` stays ``uint8``: convert on the device, where it is cheap and
the copy is a quarter the size of than float32). Tuples stay tuples, namedtuples keep their type,
dicts keep their keys; NumPy scalars become 0-d tensors; leaves torch cannot hold
(``bytes``, strings, object arrays) pass through unchanged.

:class:`IterableDataset` serves a stoker dataset to ``torch.utils.data.DataLoader``: each
DataLoader worker of each rank gets a disjoint share, together every element exactly once.
"""

from __future__ import annotations

import collections
import importlib
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from stoker._structure import map_structure
from stoker.exec._shutdown import at_exit, is_finalizing

# IterableDataset is made by __getattr__ below, on first use.
__all__ = ["DevicePrefetcher", "IterableDataset", "PinnedPool", "prefetch_to_device", "to_torch"]  # noqa: F822

_LOG = logging.getLogger(__name__)

_INSTALL_HINT = (
    "stoker.torch needs PyTorch, which is not installed: pip install 'stoker[torch]' "
    "(or pip install torch)"
)
#: Longest single wait before checking again for a stop request or a dead thread.
_POLL_S = 0.1
#: How long close() waits for the background thread to finish its current batch.
_JOIN_TIMEOUT_S = 5.0
#: Dtype kinds torch has no tensor for: bytes, str, void, object, datetime, timedelta.
_NOT_NUMERIC = frozenset("SUVOMm")
#: Pinned buffers kept per (shape, dtype), and distinct (shape, dtype) keys kept.
_POOL_PER_KEY = 2
_POOL_KEYS = 64

_said: set[str] = set()


def _import_torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e


def _say_once(level: int, message: str) -> None:
    if message not in _said:
        _said.add(message)
        _LOG.log(level, message)


def _numeric_array(x: Any) -> np.ndarray | None:
    """``x`` as an ndarray when it is a NumPy array or scalar torch can hold, else None."""
    if isinstance(x, np.ndarray):
        return None if x.dtype.kind in _NOT_NUMERIC else x
    if isinstance(x, np.generic):
        return None if x.dtype.kind in _NOT_NUMERIC else np.array(x)  # a writable 0-d copy
    if isinstance(x, (bool, int, float)):
        return np.array(x)  # NumPy's dtypes (int64, float64), as stoker's elements have
    return None


def to_torch(element: Any) -> Any:
    """``element`` with every NumPy leaf as a CPU torch tensor, sharing memory where it can.

    Writable arrays are shared (``torch.from_numpy``); read-only arrays and arrays with a
    negative stride are copied (see the module docstring for why); scalars become 0-d
    tensors; leaves torch cannot hold (bytes, strings, objects) and torch tensors are
    returned as they are.

    Example::

        x = np.arange(6, dtype=np.uint8)
        t = stoker.torch.to_torch({"image": x, "label": np.int64(3)})
        t["image"].data_ptr() == x.ctypes.data  # True: no copy
    """
    torch = _import_torch()

    def leaf(x: Any) -> Any:
        arr = _numeric_array(x)
        if arr is None:
            return x
        if not arr.flags.writeable or any(s < 0 for s in arr.strides):
            arr = arr.copy()
        return torch.from_numpy(arr)

    return map_structure(leaf, element)


class PinnedPool:
    """Reusable page-locked host buffers, keyed by shape and dtype.

    :meth:`take` returns a free buffer of that shape and dtype, allocating one only when
    none is free; :meth:`give` returns buffers once the copies out of them have finished.
    It keeps at most ``per_key`` free buffers per key and ``max_keys`` keys (the least
    recently used key goes first), so a ragged last batch does not grow it without bound.
    Used by one thread at a time.

    Args:
        pin: Allocate page-locked memory (needs CUDA). ``False`` gives plain host buffers,
            which is how the tests exercise the pool on a machine without CUDA.
        per_key: Free buffers kept per ``(shape, dtype)``.
        max_keys: Distinct ``(shape, dtype)`` keys kept.

    Example::

        pool = PinnedPool()
        buf = pool.take((64, 224, 224, 3), torch.uint8)
        ...  # fill it, copy it to the device, wait for the copy
        pool.give([buf])
    """

    def __init__(self, pin: bool = True, per_key: int = _POOL_PER_KEY, max_keys: int = _POOL_KEYS):
        self._torch = _import_torch()
        self._pin = pin
        self._per_key = per_key
        self._max_keys = max_keys
        self._free: collections.OrderedDict[tuple[Any, ...], list[Any]] = collections.OrderedDict()
        #: Buffers allocated so far (a test reads it to see that buffers are reused).
        self.allocations = 0

    def take(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A buffer of ``shape`` and torch ``dtype`` (contents undefined)."""
        key = (tuple(shape), dtype)
        free = self._free.get(key)
        if free:
            self._free.move_to_end(key)
            return free.pop()
        self.allocations += 1
        return self._torch.empty(key[0], dtype=dtype, pin_memory=self._pin)

    def give(self, buffers: Iterable[Any]) -> None:
        """Return ``buffers`` for reuse; nothing may still be reading or writing them."""
        for buf in buffers:
            key = (tuple(buf.shape), buf.dtype)
            free = self._free.setdefault(key, [])
            self._free.move_to_end(key)
            if len(free) < self._per_key:
                free.append(buf)
        while len(self._free) > self._max_keys:
            self._free.popitem(last=False)


class _CudaCopier:
    """Host batch → device batch through the pinned pool on a side stream (one thread)."""

    def __init__(self, torch: Any, device: Any):
        self._torch = torch
        self._device = device
        self._stream = torch.cuda.Stream(device=device)
        self._pool = PinnedPool(pin=True)
        self._dtypes: dict[np.dtype[Any], Any] = {}

    def _torch_dtype(self, dtype: np.dtype[Any]) -> Any:
        found = self._dtypes.get(dtype)
        if found is None:
            found = self._dtypes[dtype] = self._torch.from_numpy(np.empty(0, dtype)).dtype
        return found

    def __call__(self, element: Any) -> tuple[Any, Any]:
        torch, device, pool = self._torch, self._device, self._pool
        used: list[Any] = []

        def leaf(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                if x.device == device:
                    return x
                if x.device.type == "cpu" and not x.is_pinned():
                    host = pool.take(tuple(x.shape), x.dtype)
                    host.copy_(x)
                    used.append(host)
                    x = host
                return x.to(device, non_blocking=True)
            arr = _numeric_array(x)
            if arr is None:
                return x
            host = pool.take(arr.shape, self._torch_dtype(arr.dtype))
            np.copyto(host.numpy(), arr, casting="no")  # pageable → pinned: the one host copy
            used.append(host)
            return host.to(device, non_blocking=True)

        with torch.cuda.stream(self._stream):
            out = map_structure(leaf, element)
            event = torch.cuda.Event()
            event.record(self._stream)
        # Wait (this thread only) for the copies out of the pinned buffers, so they can
        # be reused for the next batch; the consumer's stream still waits on the event.
        event.synchronize()
        pool.give(used)
        return out, event


class _End:
    pass


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = _End()


class _Feeder:
    """What the background thread uses: no reference to the DevicePrefetcher itself."""

    def __init__(self, source: Iterator[Any], convert: Callable[[Any], Any], buffer_size: int):
        self.source = source
        self.convert = convert
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=buffer_size)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="stoker-device-prefetch", daemon=True)
        self._unregister = at_exit(self)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    element = next(self.source)
                except StopIteration:
                    break
                if not self._put(self.convert(element)):
                    return
            self._put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(_Failure(e))

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self.stop.set()
        self._unregister()
        while True:  # drain, so a producer blocked on a full queue sees the stop at once
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        if (
            self.thread.is_alive()
            and self.thread is not threading.current_thread()
            and not is_finalizing()
        ):
            self.thread.join(_JOIN_TIMEOUT_S)
        close = getattr(self.source, "close", None)
        if close is not None and not self.thread.is_alive():
            close()

    def stop_at_exit(self) -> None:
        self.close()


class DevicePrefetcher(Iterator[Any]):
    """One pass of :func:`prefetch_to_device`: an iterator of device batches.

    ``close()`` (or leaving a ``with`` block, or dropping it) stops the background thread
    and closes the source iterator. ``source`` is the iterator it reads, e.g. the stoker
    iterator whose ``stats()`` describe the pipeline.
    """

    def __init__(self, source: Iterator[Any], device: Any, buffer_size: int):
        torch = _import_torch()
        self._torch = torch
        self.source = source
        self.device = device
        self._cuda = device.type == "cuda"
        convert: Callable[[Any], Any]
        if self._cuda:
            convert = _CudaCopier(torch, device)
        elif device.type == "cpu":
            convert = _wrap_plain(to_torch)
        else:  # another accelerator (mps, xpu): no streams here, a plain copy

            def convert(element: Any) -> Any:
                moved = map_structure(
                    lambda t: t.to(device) if isinstance(t, torch.Tensor) else t,
                    to_torch(element),
                )
                return moved, None

        self._convert = convert
        self._feeder: _Feeder | None = None
        if buffer_size > 0:
            self._feeder = _Feeder(source, convert, buffer_size)
            self._finalizer = weakref.finalize(self, self._feeder.close)
            self._feeder.thread.start()

    def __next__(self) -> Any:
        feeder = self._feeder
        if feeder is None:
            out, event = self._convert(next(self.source))
        else:
            item = self._take(feeder)
            if isinstance(item, _End):
                feeder.queue.put_nowait(item)  # next() after the end raises again
                raise StopIteration
            if isinstance(item, _Failure):
                raise item.exc
            out, event = item
        if event is not None:
            stream = self._torch.cuda.current_stream(self.device)
            stream.wait_event(event)

            def mark(t: Any) -> Any:
                if isinstance(t, self._torch.Tensor) and t.is_cuda:
                    t.record_stream(stream)
                return t

            map_structure(mark, out)
        return out

    def _take(self, feeder: _Feeder) -> Any:
        while True:
            try:
                return feeder.queue.get(timeout=_POLL_S)
            except queue.Empty:
                if feeder.stop.is_set():
                    raise RuntimeError("prefetch_to_device: next() after close()") from None
                if not feeder.thread.is_alive() and feeder.queue.empty():
                    raise RuntimeError(
                        "prefetch_to_device: the background thread stopped without a result"
                    ) from None

    def stats(self) -> Any:
        """The source iterator's ``stats()`` report (its consumer is this object's thread).

        Raises:
            AttributeError: the source is not a stoker iterator.
        """
        return self.source.stats()  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop the background thread and close the source iterator (idempotent)."""
        if self._feeder is not None:
            self._finalizer()
        else:
            close = getattr(self.source, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> DevicePrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wrap_plain(fn: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, None]]:
    def convert(element: Any) -> tuple[Any, None]:
        return fn(element), None

    return convert


class _DeviceIterable(Iterable[Any]):
    def __init__(self, dataset: Iterable[Any], device: Any, buffer_size: int):
        self._dataset = dataset
        self._device = device
        self._buffer_size = buffer_size

    def __iter__(self) -> DevicePrefetcher:
        return DevicePrefetcher(iter(self._dataset), self._device, self._buffer_size)

    def __repr__(self) -> str:
        return f"prefetch_to_device({self._dataset!r}, {self._device}, {self._buffer_size})"


def _resolve_device(torch: Any, device: Any) -> Any:
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        _say_once(
            logging.WARNING,
            "stoker.torch.prefetch_to_device(device=None): no CUDA device, batches stay on "
            "the CPU (no pinned memory, no side-stream copies)",
        )
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(
            f"prefetch_to_device: device={device!r} is not a torch device: {e}"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"prefetch_to_device: device={device!r} but CUDA is not available here; "
                "pass device='cpu', or None for the best device present"
            )
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    elif dev.type == "cpu":
        _say_once(
            logging.INFO,
            "stoker.torch.prefetch_to_device: device 'cpu', so no pinned memory, side stream "
            "or host-to-device copy: tensors share the NumPy arrays' memory",
        )
    return dev


def prefetch_to_device(dataset: Iterable[Any], device: Any, buffer_size: int = 2) -> Iterable[Any]:
    """Iterate ``dataset`` as torch tensors on ``device``, ``buffer_size`` batches ahead.

    Each pass (each ``iter()``) starts a background thread that pulls elements from
    ``dataset``, converts their NumPy leaves to tensors and, on CUDA, copies them to the
    device through reused pinned buffers on a side stream (see the module docstring).
    Up to ``buffer_size`` converted batches wait for the consumer, and the thread prepares
    one more. Errors raised by the pipeline are raised by ``next()`` in their place.

    Args:
        dataset: A stoker ``Dataset`` or any iterable of nested NumPy elements.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``, a ``torch.device``, or ``None`` for
            CUDA when present, else the CPU.
        buffer_size: Batches kept ready on the device. ``0`` converts on the consumer's
            thread when it asks, with no background thread.

    Returns:
        An iterable; each ``iter()`` gives a :class:`DevicePrefetcher` (close it, or use
        it in a ``with`` block, to stop its thread early).

    Raises:
        ImportError: torch is not installed (the message gives the pip command).
        ValueError: ``device`` is not a device, or is CUDA on a machine without it;
            ``buffer_size`` is negative.

    Example::

        for images, labels in stoker.torch.prefetch_to_device(ds, "cuda"):
            images = images.permute(0, 3, 1, 2).float().div_(255)  # uint8 → float on GPU
            loss = model(images, labels)
    """
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 0:
        raise ValueError(f"prefetch_to_device: buffer_size={buffer_size!r} must be an int >= 0")
    torch = _import_torch()
    return _DeviceIterable(dataset, _resolve_device(torch, device), buffer_size)


def _distributed_rank_world(torch: Any) -> tuple[int, int]:
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return 0, 1


def _make_iterable_dataset_class() -> type:
    torch = _import_torch()

    base: type = torch.utils.data.IterableDataset

    class IterableDataset(base):  # type: ignore[misc]
        """A stoker dataset for ``torch.utils.data.DataLoader``, split over workers and ranks.

        With ``num_workers=W`` and ``world_size=R``, the DataLoader worker ``w`` of rank
        ``r`` iterates shard ``r * W + w`` of ``R * W`` (``Dataset.shard``): every element
        exactly once across all workers of all ranks, each worker's share in the dataset's
        order. ``Dataset.shard`` reads every element and keeps its share, so when reading
        is the cost, pass a function instead of a dataset: ``dataset(num_shards, index)``
        returns the shard, e.g. by sharding the file list before ``interleave``.

        The dataset yields what the pipeline yields; stoker already batches, so pass
        ``batch_size=None`` to the DataLoader (its ``default_convert`` then turns NumPy
        arrays into tensors). For one process, :func:`prefetch_to_device` alone is faster:
        it needs no worker processes and no pickling between them.

        Args:
            dataset: A stoker ``Dataset`` (picklable, as DataLoader workers need), or a
                function ``(num_shards, index) -> Dataset``.
            rank: This process's rank. Default: ``torch.distributed.get_rank()`` when
                ``torch.distributed`` is initialised, else 0.
            world_size: Number of ranks. Default: ``torch.distributed.get_world_size()``
                when initialised, else 1. Give both or neither.

        Example::

            loader = torch.utils.data.DataLoader(
                stoker.torch.IterableDataset(ds), batch_size=None, num_workers=2
            )
        """

        def __init__(self, dataset: Any, rank: int | None = None, world_size: int | None = None):
            super().__init__()
            if (rank is None) != (world_size is None):
                raise ValueError(
                    f"IterableDataset: give both rank and world_size or neither "
                    f"(got rank={rank!r}, world_size={world_size!r})"
                )
            if rank is None or world_size is None:
                # Read here, in the main process: worker processes have no process group.
                rank, world_size = _distributed_rank_world(torch)
            if not isinstance(world_size, int) or world_size < 1:
                raise ValueError(f"IterableDataset: world_size={world_size!r} must be an int >= 1")
            if not isinstance(rank, int) or not 0 <= rank < world_size:
                raise ValueError(
                    f"IterableDataset: rank={rank!r} must be an int in [0, {world_size})"
                )
            self.dataset = dataset
            self.rank = rank
            self.world_size = world_size

        def shard_index(self) -> tuple[int, int]:
            """``(num_shards, index)`` of the calling worker (the main process is worker 0)."""
            info = torch.utils.data.get_worker_info()
            workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
            return self.world_size * workers, self.rank * workers + worker

        def __iter__(self) -> Iterator[Any]:
            num_shards, index = self.shard_index()
            if callable(self.dataset) and not hasattr(self.dataset, "shard"):
                ds = self.dataset(num_shards, index)
            elif num_shards == 1:
                ds = self.dataset
            else:
                ds = self.dataset.shard(num_shards, index)
            it = iter(ds)
            try:
                yield from it
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    close()

        def __repr__(self) -> str:
            return (
                f"stoker.torch.IterableDataset({self.dataset!r}, rank={self.rank}, "
                f"world_size={self.world_size})"
            )

    # Pickled by reference (DataLoader workers started with spawn or forkserver unpickle
    # it): this module's __getattr__ makes the class again on the other side.
    IterableDataset.__module__ = __name__
    IterableDataset.__qualname__ = "IterableDataset"
    return IterableDataset


def __getattr__(name: str) -> Any:
    # IterableDataset subclasses torch's, so it is made when first asked for: importing
    # this module must work without torch installed.
    if name == "IterableDataset":
        cls = _make_iterable_dataset_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
