"""``Dataset.prefetch``: a background thread keeps ``buffer_size`` elements ready.

While the consumer works on one element (a training step), a producer thread named
``stoker-prefetch-<stage>`` pulls the next ones from the input into a bounded buffer, so
the input's work overlaps the consumer's. The buffer holds ``buffer_size`` elements and
the producer at most one more, which it makes while the buffer is full. ``buffer_size=0``
adds no thread (elements pass straight through); ``AUTOTUNE`` starts at
:data:`AUTOTUNE_START`.

With ``AUTOTUNE`` the pipeline's controller (:mod:`stoker.autotune`) grows the buffer
while the consumer waits at times and the producer at others (bursts); ``next()`` applies
a new size.

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

from stoker.autotune import Knob, Meter, tuner_for
from stoker.autotune._ram import RamLedger, element_bytes
from stoker.autotune._tuner import MAX_BUFFER
from stoker.dataset import Dataset
from stoker.errors import CheckpointError
from stoker.exec._base import Failure
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset
from stoker.ops._parallel_common import (
    END,
    ERROR,
    POLL_S,
    VALUE,
    InputCursor,
    ParallelIterator,
    pull_outcome,
)
from stoker.options import AUTOTUNE
from stoker.stats import Recorder

__all__ = ["AUTOTUNE_START", "PrefetchDataset"]

#: Buffer size ``prefetch(AUTOTUNE)`` starts with (the tuner may change it).
AUTOTUNE_START = 2
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
    ram: RamLedger,
    stage: str,
    meter: Meter | None,
) -> None:
    cond = sync.cond
    expect = 0  # bytes of the last element: pull the next only once it fits the budget
    clock = time.thread_time
    try:
        while not sync.stop:
            while not ram.wait_room(stage, expect, POLL_S):  # Options.ram_budget
                if sync.stop:
                    return
            # Pull first, then wait for room (as a thread feeding a bounded queue does): the
            # next element is being made while the buffer is full, so at most
            # ``capacity + 1`` elements are ready or in hand.
            cursor = cursor_ref()
            if cursor is None:
                return
            start = time.perf_counter()
            cpu = clock() if meter is not None else 0.0
            item, last = pull_outcome(cursor)
            cursor = None
            busy = time.perf_counter() - start
            stats.add(busy_s=busy)
            if meter is not None:
                meter.add_call(1, busy, clock() - cpu)
            expect = element_bytes(item[2]) if item[1] == _VALUE else 0
            ram.reserve(stage, expect)  # in hand counts: released when delivered
            with cond:
                # An error is never held back: its traceback references the input, and a
                # thread holding it while it waits would keep a dropped iterator alive.
                if item[1] == _VALUE and sync.size >= sync.capacity and meter is not None:
                    full = time.perf_counter()
                    while sync.size >= sync.capacity and not sync.stop:
                        cond.wait(POLL_S)
                    meter.full_s += time.perf_counter() - full
                while item[1] == _VALUE and sync.size >= sync.capacity and not sync.stop:
                    cond.wait(POLL_S)
                buffer = buffer_ref()
                if sync.stop or buffer is None:
                    ram.release(stage, expect)
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


class _Producer:
    """The run of one pass: the producer thread and what it shares with the consumer."""

    __slots__ = ("sync", "thread")

    def __init__(self, sync: _Sync, thread: threading.Thread):
        self.sync = sync
        self.thread = thread

    def stop(self, timeout: float) -> bool:
        """Stop the producer, waiting up to ``timeout``; True if it has exited."""
        return _stop_producer(self.sync, self.thread, timeout)

    def close(self, wait: bool = True) -> None:
        # A finalizer may run on any thread, inside anything: it signals, never waits.
        self.stop(_JOIN_TIMEOUT_S if wait else 0.0)

    def release(self) -> None:
        self.close()


class _PrefetchIterator(ParallelIterator):
    OP = "prefetch"
    _run: _Producer | None

    def __init__(self, ctx: IterContext, ds: PrefetchDataset):
        super().__init__(ctx, ds)
        size = ds._buffer_size
        self._capacity = AUTOTUNE_START if size == AUTOTUNE else size
        self._cursor = InputCursor(self._input)
        self._buffer = _Buffer()
        self._sync = _Sync(self._capacity)
        self._frontier = 0  # seq of the first element not delivered
        self._done = False
        self._delivered = 0
        # AUTOTUNE (stoker.autotune): the tuner sets the buffer size, next() applies it.
        self._tuner = tuner_for(ctx) if size == AUTOTUNE else None
        self._knob: Knob | None = None
        if self._tuner is not None:
            self._knob = self._tuner.add(
                Knob(self, "buffer", self._capacity, True, MAX_BUFFER, key=ds)
            )

    @property
    def buffer_size(self) -> int:
        """Elements the buffer may hold."""
        return self._capacity

    def _new_run(self) -> _Producer | None:
        if self._done:
            return None
        self._cursor.mark()  # before the thread owns the input: get_state() needs a mark
        sync = self._sync = _Sync(self._capacity)
        self._buffer.clear()
        thread = threading.Thread(
            target=_produce,
            args=(
                sync,
                weakref.ref(self._buffer),
                weakref.ref(self._cursor),
                self.stats,
                self._ram.ledger,
                self.stage,
                self._knob.meter if self._knob is not None else None,
            ),
            name=f"stoker-prefetch-{self.stage}",
            daemon=True,
        )
        run = _Producer(sync, thread)
        thread.start()
        if self._tuner is not None:
            self._tuner.wake()
        return run

    def _next(self) -> Any:
        if self._done:
            raise StopIteration
        buffer, sync = self._buffer, self._sync
        knob = self._knob
        with sync.cond:
            if knob is not None and knob.value != sync.capacity:
                self._capacity = sync.capacity = knob.value
                sync.cond.notify_all()
            if not buffer:
                start = time.perf_counter()
                while not buffer and sync.running:
                    sync.cond.wait(POLL_S)
                waited = time.perf_counter() - start
                self.stats.add_wait(waited)
                if knob is not None:
                    knob.meter.wait_s += waited
                if not buffer:
                    raise RuntimeError(f"{self.stage}: the prefetch thread stopped early")
            seq, kind, value = buffer.popleft()
            sync.size -= 1
            sync.cond.notify()
        if kind == _VALUE:
            self._ram.ledger.release(self.stage, element_bytes(value))
        self._delivered += 1
        if self._delivered % _TIDY_EVERY == 0:
            self._cursor.forget_before(seq)
        if kind == _END:
            self._frontier = seq
            self._done = True
            self._release_run()
            raise StopIteration
        self._frontier = seq + 1
        if kind == _ERROR:
            if isinstance(value, KeyboardInterrupt):
                self.close()  # from below: stop everything
            failure, value = Failure(value), None  # no local may hold it (see throw())
            failure.throw(self.stage)
        self.stats.add(elements=1)
        return value

    def _get_state(self) -> State:
        input_state, skip = self._cursor.position(self._frontier)
        return {"input": input_state, "skip": skip}

    def _quiesce(self, run: _Producer) -> None:
        if not run.stop(_RESTORE_JOIN_TIMEOUT_S):
            raise CheckpointError(
                f"{self.stage}: the prefetch thread is still inside its input after "
                f"{_RESTORE_JOIN_TIMEOUT_S:.0f} s; cannot reposition the input under it"
            )

    def _restore(self, state: State) -> None:
        skip = int(state.get("skip", 0))
        self._cursor.restore(state["input"], skip)
        self._buffer.clear()
        self._ram.clear()
        self._frontier = 0
        self._done = False

    def _close(self) -> None:
        super()._close()
        self._buffer.clear()
        self._ram.clear()

    def stage_info(self) -> dict[str, Any]:
        sync = self._sync
        running = self._run is not None and sync.running
        return {
            "parallelism": 1,
            "executor": "thread",
            "buffered": sync.size,
            "in_flight": int(running and sync.size < sync.capacity),
            "capacity": self._capacity,
            **({"autotune": self._knob.info()} if self._knob is not None else {}),
        }
