"""``Dataset.prefetch``: a background thread keeps ``buffer_size`` elements ready.

While the consumer works on one element (a training step), a producer thread named
``stoker-prefetch-<stage>`` pulls the next ones from the input into a bounded buffer, so
the input's work overlaps the consumer's. The buffer holds ``buffer_size`` elements and
the producer at most one more, which it makes while the buffer is full. ``buffer_size=0``
adds no thread (elements pass straight through); ``AUTOTUNE`` starts at
:data:`AUTOTUNE_START`.

The thread starts on the first ``next()``. It holds only weak references to the buffer
and the input while it waits for room, so a dropped iterator is collected, and its
finalizer stops the thread. The input is touched by the producer thread alone while it
runs; ``get_state()`` reads the snapshots it leaves (an
:class:`~stoker.ops._parallel_common.InputCursor`), so saving a checkpoint never races
with the producer. The state is the input's position as of the first element not yet
delivered; buffered elements are recomputed after a restore.
"""

from __future__ import annotations

import collections
import threading
import time
import weakref
from typing import Any

from stoker.dataset import Dataset
from stoker.errors import CheckpointError
from stoker.exec._base import Failure
from stoker.iterator import DatasetIterator, IteratorState, IterContext, State
from stoker.ops._common import UnaryDataset
from stoker.ops._parallel_common import END, ERROR, VALUE, InputCursor, pull_outcome
from stoker.options import AUTOTUNE
from stoker.stats import Recorder, stats_for

__all__ = ["AUTOTUNE_START", "PrefetchDataset"]

#: Buffer size ``prefetch(AUTOTUNE)`` starts with (the tuner may change it).
AUTOTUNE_START = 2
#: Longest single wait before checking again (closing, a dead producer, Ctrl-C).
_POLL_S = 0.1
#: How long close() waits for the producer to finish the pull it is in. [Unit: second]
_JOIN_TIMEOUT_S = 5.0
#: set_state() must wait for it: the input cannot be repositioned mid-pull.
_RESTORE_JOIN_TIMEOUT_S = 300.0
_TIDY_EVERY = 64

_VALUE, _ERROR, _END = VALUE, ERROR, END


class PrefetchDataset(UnaryDataset):
    _op_name = "prefetch"

    def __init__(self, input_dataset: Dataset, buffer_size: int, name: str | None):
        super().__init__(input_dataset, name)
        if buffer_size != AUTOTUNE and (
            isinstance(buffer_size, bool)
            or not hasattr(buffer_size, "__index__")
            or int(buffer_size) < 0
        ):
            raise ValueError(f"prefetch(): buffer_size={buffer_size!r} must be >= 0 or AUTOTUNE")
        self._buffer_size = int(buffer_size)

    def _random_access(self) -> Any:
        return self._input._random_access()

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        if self._buffer_size == 0:
            return self._input._make_iterator(ctx)
        return _PrefetchIterator(ctx, self)


class _Sync:
    """What the producer thread holds strongly: a condition, flags and a count."""

    __slots__ = ("capacity", "cond", "running", "size", "stop")

    def __init__(self, capacity: int):
        self.cond = threading.Condition(threading.Lock())
        self.capacity = capacity
        self.size = 0
        self.stop = False
        self.running = True


#: The buffered ``(seq, kind, value)`` items (deques can be weakly referenced).
_Buffer = collections.deque[tuple[int, int, Any]]


def _produce(
    sync: _Sync,
    buffer_ref: weakref.ref[_Buffer],
    cursor_ref: weakref.ref[InputCursor],
    stats: Recorder,
) -> None:
    cond = sync.cond
    try:
        while not sync.stop:
            # Pull first, then wait for room (as a thread feeding a bounded queue does): the
            # next element is being made while the buffer is full, so at most
            # ``capacity + 1`` elements are ready or in hand.
            cursor = cursor_ref()
            if cursor is None:
                return
            start = time.perf_counter()
            item, last = pull_outcome(cursor)
            cursor = None
            stats.add(busy_s=time.perf_counter() - start)
            with cond:
                # An error is never held back: its traceback references the input, and a
                # thread holding it while it waits would keep a dropped iterator alive.
                while item[1] == _VALUE and sync.size >= sync.capacity and not sync.stop:
                    cond.wait(_POLL_S)
                buffer = buffer_ref()
                if sync.stop or buffer is None:
                    return
                buffer.append(item)
                sync.size += 1
                cond.notify_all()
            buffer = None
            if last:
                return
            item = None  # type: ignore[assignment]
    finally:
        with cond:
            sync.running = False
            cond.notify_all()


def _stop_producer(sync: _Sync, thread: threading.Thread, timeout: float) -> bool:
    """Stop and join the producer; True if it has exited."""
    with sync.cond:
        sync.stop = True
        sync.cond.notify_all()
    if thread is threading.current_thread():
        return False
    if thread.is_alive():
        thread.join(timeout)
    return not thread.is_alive()


class _PrefetchIterator(DatasetIterator):
    OP = "prefetch"

    def __init__(self, ctx: IterContext, ds: PrefetchDataset):
        self._input = ds._input._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))
        size = ds._buffer_size
        self._capacity = AUTOTUNE_START if size == AUTOTUNE else size
        self._cursor = InputCursor(self._input)
        self._buffer = _Buffer()
        self._sync = _Sync(self._capacity)
        self._thread: threading.Thread | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._frontier = 0  # seq of the first element not delivered
        self._done = False
        self._delivered = 0
        self.stats = stats_for(ctx.options, self.stage)

    @property
    def buffer_size(self) -> int:
        """Elements the buffer may hold."""
        return self._capacity

    def _start(self) -> None:
        self.lifecycle = IteratorState.RUNNING
        if self._done:
            return
        self._cursor.mark()  # before the thread owns the input: get_state() needs a mark
        sync = self._sync = _Sync(self._capacity)
        self._buffer.clear()
        thread = threading.Thread(
            target=_produce,
            args=(sync, weakref.ref(self._buffer), weakref.ref(self._cursor), self.stats),
            name=f"stoker-prefetch-{self.stage}",
            daemon=True,
        )
        self._thread = thread
        # A finalizer may run on any thread, inside anything: it signals, never waits.
        self._finalizer = weakref.finalize(self, _stop_producer, sync, thread, 0.0)
        thread.start()

    def __next__(self) -> Any:
        if self.lifecycle is not IteratorState.RUNNING:
            if self.lifecycle is IteratorState.CLOSED:
                raise StopIteration
            self._start()
        if self._done:
            raise StopIteration
        buffer, sync = self._buffer, self._sync
        try:
            with sync.cond:
                if not buffer:
                    start = time.perf_counter()
                    while not buffer and sync.running:
                        sync.cond.wait(_POLL_S)
                    self.stats.add_wait(time.perf_counter() - start)
                    if not buffer:
                        raise RuntimeError(f"{self.stage}: the prefetch thread stopped early")
                seq, kind, value = buffer.popleft()
                sync.size -= 1
                sync.cond.notify()
        except KeyboardInterrupt:
            self.close()
            raise
        self._delivered += 1
        if self._delivered % _TIDY_EVERY == 0:
            self._cursor.forget_before(seq)
        if kind == _END:
            self._frontier = seq
            self._done = True
            self._join(_JOIN_TIMEOUT_S)
            raise StopIteration
        self._frontier = seq + 1
        if kind == _ERROR:
            if isinstance(value, KeyboardInterrupt):
                self.close()  # from below: stop everything
            failure, value = Failure(value), None  # no local may hold it (see throw())
            failure.throw(self.stage)
        self.stats.add(elements=1)
        return value

    def _join(self, timeout: float) -> bool:
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        thread = self._thread
        if thread is None:
            return True
        stopped = _stop_producer(self._sync, thread, timeout)
        if stopped:
            self._thread = None
        return stopped

    def _get_state(self) -> State:
        input_state, skip = self._cursor.position(self._frontier)
        return {"input": input_state, "skip": skip}

    def _set_state(self, state: State) -> None:
        skip = int(state.get("skip", 0))
        if not self._join(_RESTORE_JOIN_TIMEOUT_S):
            raise CheckpointError(
                f"{self.stage}: the prefetch thread is still inside its input after "
                f"{_RESTORE_JOIN_TIMEOUT_S:.0f} s; cannot reposition the input under it"
            )
        self._cursor.restore(state["input"], skip)
        self._buffer.clear()
        self._frontier = 0
        self._done = False
        if self.lifecycle is IteratorState.RUNNING:
            self.lifecycle = IteratorState.NOT_STARTED

    def _close(self) -> None:
        self._join(_JOIN_TIMEOUT_S)
        self._buffer.clear()
