"""``interleave(num_parallel_calls=...)``: inner datasets read ahead on the thread pool.

The order is the sequential interleave's (:mod:`stoker.ops.interleave`), which this
module replays step by step; only *where* elements come from changes. Each open input
(a *slot*) has a small buffer that a pool task fills from its inner iterator, and the
next ``cycle_length`` input elements are opened ahead (*futures*, as tf.data's parallel
interleave does): ``map_func`` runs on the pool and their first elements are read before
the cycle reaches them, so a new file's latency hides behind the current ones.

Threads: at most ``num_parallel_calls`` tasks run at once (each fills one buffer, up to
:data:`_BUFFER_MIN` elements or ``2 * block_length``, then ends). An inner iterator is only
touched by one task at a time, the outer input only by the consumer's thread. Inner
iterators are made on the consumer's thread in input order, so pass numbering (random
ops in inner datasets) matches the sequential op.

With ``num_parallel_calls=AUTOTUNE`` the limit on tasks at once starts at one and the
pipeline's controller (:mod:`stoker.autotune`) moves it; ``cycle_length`` is never changed
(the order depends on it).

``deterministic=False`` skips a slot whose buffer is empty for one that has elements;
each slot's own elements stay in order.

The cycle itself (futures, turns, blocks, the checkpoint state) is
:class:`~stoker.ops._interleave_cycle.ReadAheadCycle`, shared with the sequential and the
Ray interleave; this module supplies the slots: readers filled by pool tasks.

Checkpoints use the sequential op's format, plus a ``skip`` per slot: the inner
iterator's position as of its last *delivered* element is a snapshot plus ``skip``
pulls (:class:`~stoker.ops._parallel_common.InputCursor`); buffered elements and futures
are recomputed after a restore. A sequential ``interleave`` state restores here too.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
import weakref
from typing import Any

from stoker.autotune import Knob, Meter, tuner_for
from stoker.autotune._ram import RamLedger, element_bytes
from stoker.dataset import Dataset
from stoker.errors import CheckpointError
from stoker.exec._base import Failure
from stoker.exec.threads import POOL
from stoker.iterator import DatasetIterator, IterContext
from stoker.ops._common import annotate, call, func_name, stop_iteration_error
from stoker.ops._interleave_cycle import ENDED, NOT_READY, ReadAheadCycle
from stoker.ops._parallel_common import (
    END,
    ERROR,
    POLL_S,
    VALUE,
    InputCursor,
    ParallelIterator,
    pull_outcome,
)
from stoker.ops.interleave import InterleaveDataset, make_inner
from stoker.options import AUTOTUNE

__all__ = ["ParallelInterleaveIterator"]

#: Elements each slot's buffer holds (at least; ``2 * block_length`` if larger).
_BUFFER_MIN = 8
#: How long close() and set_state() wait for running tasks. [Unit: second]
_STOP_TIMEOUT_S = 5.0
_RESTORE_TIMEOUT_S = 300.0

_VALUE, _ERROR, _END = VALUE, ERROR, END


class _Tasks:
    """The run of one pass: what pool tasks hold (the condition, the count of running
    tasks, the stop flag, every live reader for cleanup) and the pool lease."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.running = 0
        self.stop = False
        # Weak: a strong set would keep the iterator alive (slot -> inner iterator -> its
        # IterContext -> every node) from the finalizer that is meant to notice it is gone.
        self.slots: weakref.WeakSet[_InnerReader] = weakref.WeakSet()
        self.lease: int | None = None
        self.meter: Meter | None = None  # AUTOTUNE: tasks add their times (under cond)

    def close(self, wait: bool = True) -> None:
        # A finalizer may run on any thread, inside anything: it signals, never waits.
        self.shutdown(_STOP_TIMEOUT_S if wait else 0.0)

    def release(self) -> None:
        self.close()

    def shutdown(self, timeout: float = _STOP_TIMEOUT_S) -> bool:
        """Stop tasks, close idle inner iterators, give the pool back. True if all stopped."""
        with self.cond:
            self.stop = True
            self.cond.notify_all()
            deadline = time.monotonic() + timeout
            while self.running and time.monotonic() < deadline:
                self.cond.wait(min(POLL_S, max(0.0, deadline - time.monotonic())))
            stopped = self.running == 0
            idle = [s for s in list(self.slots) if not s.busy]
            self.slots.clear()
        for slot in idle:
            slot.close()
        lease, self.lease = self.lease, None
        if lease is not None:
            POOL.release(lease, join=stopped)
        return stopped


class _InnerReader:
    """One input element of the cycle (or ahead of it): ``map_func``'s dataset and
    its inner iterator once opened, a cursor over it, and the buffer a task fills."""

    __slots__ = (
        "__weakref__",
        "before",
        "buffer",
        "busy",
        "closed",
        "cursor",
        "dataset",
        "element",
        "ended",
        "error",
        "frontier",
        "it",
        "opened",
        "ordinal",
        "own_error",
        "queued",
    )

    def __init__(self, ordinal: int, element: Any, before: Any):
        self.ordinal = ordinal
        self.element = element
        self.before = before  # the outer input's snapshot before this element was pulled
        self.dataset: Any = None
        self.opened = False  # map_func has run (dataset or error set)
        self.error: BaseException | None = None
        self.own_error = False  # error is stoker's own (already names the stage)
        self.it: DatasetIterator | None = None
        self.cursor: InputCursor | None = None
        self.buffer: collections.deque[tuple[int, int, Any]] = collections.deque()
        self.busy = False  # a task owns the inner iterator
        self.queued = False
        self.ended = False  # the buffer holds (or held) the END item
        self.closed = False
        self.frontier = 0  # seq of the first element not delivered

    def close(self) -> None:
        self.closed = True
        it, self.it = self.it, None
        self.buffer.clear()
        if it is not None:
            it.close()


def _open_task(shared: _Tasks, slot: _InnerReader, fn: Any) -> None:
    it = None
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        if not shared.stop:
            try:
                slot.dataset = call(fn, slot.element)
            except BaseException as e:  # delivered to the consumer, never lost
                slot.error = e
    finally:
        with shared.cond:
            slot.opened = True
            slot.element = None
            it = _task_done(shared, slot)
            if shared.meter is not None:
                shared.meter.add_call(0, time.perf_counter() - t0, time.thread_time() - c0)
    if it is not None:
        it.close()


def _fill_task(
    shared: _Tasks, slot: _InnerReader, capacity: int, ram: RamLedger, stage: str
) -> None:
    cursor = slot.cursor
    it = None
    expect = 0
    t0, c0 = time.perf_counter(), time.thread_time()
    pulled = 0
    try:
        while cursor is not None and not shared.stop:
            # Options.ram_budget: a slot with an empty buffer always reads one element (the
            # consumer may be waiting for it); beyond that only while the ledger has room.
            if slot.buffer and not ram.fits(expect):
                return
            item, last = pull_outcome(cursor)
            expect = element_bytes(item[2]) if item[1] == _VALUE else 0
            pulled += 1
            with shared.cond:
                ram.reserve(stage, expect)
                slot.buffer.append(item)
                shared.cond.notify_all()
                if last:
                    slot.ended = True
                    return
                if len(slot.buffer) >= capacity:
                    return
            item = None  # type: ignore[assignment]
    finally:
        with shared.cond:
            it = _task_done(shared, slot)
            if shared.meter is not None:
                busy = time.perf_counter() - t0
                shared.meter.add_call(pulled, busy, time.thread_time() - c0)
        if it is not None:
            it.close()


def _task_done(shared: _Tasks, slot: _InnerReader) -> DatasetIterator | None:
    """Under ``shared.cond``: the task gives the slot back.

    Returns:
        The inner iterator, for the task to close (outside the lock), if the slot was
        retired or the iterator stopped while the task owned it.
    """
    slot.busy = False
    shared.running -= 1
    shared.cond.notify_all()
    if shared.stop or slot.closed:
        shared.slots.discard(slot)
        slot.closed = True
        it, slot.it = slot.it, None
        return it
    return None


class ParallelInterleaveIterator(ReadAheadCycle[_InnerReader], ParallelIterator):
    """See the module docstring: the cycle's slots read by pool tasks."""

    OP = "parallel_interleave"
    _run: _Tasks | None

    def __init__(self, ctx: IterContext, ds: InterleaveDataset):
        super().__init__(ctx, ds)
        self._ctx_ = ctx
        self._init_cycle(ds)
        opts = ctx.options
        npc = ds._num_parallel_calls
        cycle = ds._cycle_length
        autotune = npc is None or npc == AUTOTUNE
        self._limit = cycle if autotune else max(1, int(npc))  # type: ignore[arg-type]
        # AUTOTUNE (stoker.autotune): the tuner sets knob.value, _dispatch applies it.
        self._tuner = tuner_for(ctx)
        self._knob: Knob | None = None
        if self._tuner is not None:
            if autotune:
                self._limit = 1
            self._knob = self._tuner.add(
                Knob(self, "parallelism", self._limit, autotune, hi=2 * cycle, key=ds)
            )
        self._capacity = max(_BUFFER_MIN, 2 * ds._block_length)
        assert opts.cpu_budget is not None and opts.io_concurrency is not None
        self._max_threads = opts.cpu_budget + opts.io_concurrency
        self._made = 0  # futures from the left whose iterator is made (or failed)
        self._wanted: collections.deque[_InnerReader] = collections.deque()

    @property
    def _shared(self) -> _Tasks:
        run = self._run
        assert run is not None, "used before the run started"
        return run

    # -- scheduling ------------------------------------------------------------------------

    def _new_run(self) -> _Tasks:
        tasks = _Tasks()
        tasks.lease = POOL.lease(max(self._max_threads, self._limit))
        for slot in self._slots:  # restored by set_state()
            if slot is not None:
                tasks.slots.add(slot)
        if self._tuner is not None:
            assert self._knob is not None
            tasks.meter = self._knob.meter
            self._tuner.wake()
        return tasks

    def _waited(self, seconds: float) -> None:
        self.stats.add_wait(seconds)
        if self._knob is not None:
            self._knob.meter.wait_s += seconds

    def _dispatch(self) -> None:
        """Under the condition: start queued work while fewer than the limit run."""
        shared = self._shared
        wanted = self._wanted
        if self._knob is not None:
            self._limit = self._knob.value
        while wanted and shared.running < self._limit:
            slot = wanted.popleft()
            slot.queued = False
            if slot.closed or slot.busy or shared.stop:
                continue
            if slot.it is None:
                if slot.opened:
                    continue
                task: Any = (_open_task, shared, slot, self._ds._fn)
            elif slot.ended or len(slot.buffer) >= self._capacity:
                continue
            else:
                task = (_fill_task, shared, slot, self._capacity, self._ram.ledger, self.stage)
            slot.busy = True
            shared.running += 1
            POOL.submit(functools.partial(*task))

    def _want(self, slot: _InnerReader, urgent: bool = False) -> None:
        if slot.queued or slot.busy or slot.closed or slot.ended:
            return
        if slot.it is not None and len(slot.buffer) > self._capacity // 2:
            return
        slot.queued = True
        if urgent:
            self._wanted.appendleft(slot)
        else:
            self._wanted.append(slot)

    # -- the cycle's hooks (stoker.ops._interleave_cycle) ---------------------------------

    def _new_slot(self, ordinal: int, element: Any, before: Any) -> _InnerReader:
        return _InnerReader(ordinal, element, before)

    def _read_future(self, slot: _InnerReader) -> None:
        """Queue the new future's opening on the pool."""
        with self._shared.cond:
            self._shared.slots.add(slot)
            self._want(slot)

    def _read_ahead(self) -> None:
        self._top_up_futures()
        self._make_ready_iterators()

    def _make_ready_iterators(self) -> None:
        """Make inner iterators for opened futures, in input order (consumer thread)."""
        futures = self._futures
        while self._made < len(futures):
            slot = futures[self._made]
            if slot.it is None and slot.error is None and not slot.opened:
                return
            self._made += 1
            if slot.it is not None or slot.error is not None:
                continue
            inner = slot.dataset
            slot.dataset = None
            if not isinstance(inner, Dataset):
                slot.error = TypeError(
                    f"{self.stage}: {func_name(self._ds._fn)}() must return a stoker Dataset, "
                    f"got {type(inner).__name__} for input element {slot.ordinal}"
                )
                slot.own_error = True
                continue
            try:
                it = inner._make_iterator(self._ctx_)
            except Exception as e:
                slot.error = e
                continue
            self._attach(slot, it)
            with self._shared.cond:
                self._want(slot)

    def _attach(self, slot: _InnerReader, it: DatasetIterator) -> None:
        slot.it = it
        slot.cursor = InputCursor(it)
        slot.cursor.mark()  # get_state() must never need the iterator itself

    def _take(self, slot: _InnerReader) -> Any:
        item = self._take_item(slot)
        if item is None:  # deterministic=False: not ready, try the next slot
            return NOT_READY
        seq, kind, value = item
        if kind == _END:
            return ENDED
        slot.frontier = seq + 1
        if slot.cursor is not None:
            slot.cursor.forget_before(seq + 1)
        if kind == _ERROR:
            if isinstance(value, KeyboardInterrupt):
                self.close()  # from below: stop everything
            failure, value, item = Failure(value), None, None  # see Failure.throw()
            failure.throw(self.stage)
        return value

    def _take_item(self, slot: _InnerReader) -> tuple[int, int, Any] | None:
        """The slot's next item, waiting for it; with deterministic=False, None if it has
        none yet and other slots have not all been tried since the last delivery."""
        cond = self._shared.cond
        with cond:
            if not slot.buffer and not self._deterministic:
                self._want(slot, urgent=True)
                self._dispatch()
                if self._skips < len(self._slots):
                    self._skips += 1
                    return None
                # A full round found nothing ready: wait for any buffer to change.
                self._skips = 0
                start = time.perf_counter()
                cond.wait(POLL_S)
                self._waited(time.perf_counter() - start)
                if not slot.buffer:
                    return None
            self._wait_for(slot)
            self._skips = 0
            item = slot.buffer.popleft()
            if item[1] == _VALUE:
                self._ram.ledger.release(self.stage, element_bytes(item[2]))
            self._want(slot, urgent=True)
            self._dispatch()
            return item

    def _wait_for(self, slot: _InnerReader) -> None:
        """Under the condition: block until ``slot`` has an item."""
        if slot.buffer:
            return
        start = time.perf_counter()
        while not slot.buffer:
            self._want(slot, urgent=True)
            self._dispatch()
            self._shared.cond.wait(POLL_S)
        self._waited(time.perf_counter() - start)

    def _await_future(self, slot: _InnerReader) -> None:
        """Wait for ``map_func`` to have run for ``slot`` and its iterator to be made."""
        if slot.it is None and slot.error is None:
            cond = self._shared.cond
            start = time.perf_counter()
            while True:
                with cond:
                    if slot.opened:
                        break
                    self._want(slot, urgent=True)
                    self._dispatch()
                    cond.wait(POLL_S)
            self._make_ready_iterators()
            self._waited(time.perf_counter() - start)

    def _admit(self, slot: _InnerReader) -> None:
        """Raise ``map_func``'s error (or a dataset that was none) at its turn."""
        self._made = max(0, self._made - 1)
        if slot.error is not None:
            with self._shared.cond:
                self._shared.slots.discard(slot)
            slot.close()
            failure, slot.error = Failure(slot.error), None
            if isinstance(failure.exc, StopIteration):
                failure.exc = None
                raise stop_iteration_error(self.stage, self._ds._fn) from None
            if not slot.own_error:
                annotate(failure.exc, self.stage, self._ds._fn, slot.ordinal)  # type: ignore[arg-type]
            failure.throw(self.stage, slot.ordinal)

    def _drop(self, slot: _InnerReader) -> None:
        with self._shared.cond:
            slot.closed = True
            self._shared.slots.discard(slot)
            own = not slot.busy
        if own:
            slot.close()

    # -- state -----------------------------------------------------------------------------

    def _slot_state(self, slot: _InnerReader) -> dict[str, Any]:
        assert slot.cursor is not None
        inner, skip = slot.cursor.position(slot.frontier)
        return {"ordinal": slot.ordinal, "state": inner, "skip": skip}

    def _quiesce(self, run: _Tasks) -> None:
        if not run.shutdown(_RESTORE_TIMEOUT_S):
            raise CheckpointError(
                f"{self.stage}: interleave tasks still running after "
                f"{_RESTORE_TIMEOUT_S:.0f} s; cannot reposition inner iterators under them"
            )

    def _clear_slots(self) -> None:
        self._close_readers()
        self._made = 0
        self._wanted.clear()

    def _restored_slot(
        self, ordinal: int, element: Any, before: Any, slot_state: dict[str, Any]
    ) -> _InnerReader:
        it = make_inner(self._ctx_, self._ds, element, ordinal, self.stage)
        slot = _InnerReader(ordinal, None, before)
        slot.opened = True
        cursor = InputCursor(it)
        cursor.restore(slot_state["state"], int(slot_state.get("skip", 0)))
        slot.it, slot.cursor = it, cursor
        cursor.mark()
        return slot

    def _close_readers(self) -> None:
        """Close the inner iterators no task owns (the run, if any, is stopped)."""
        for slot in [*self._slots, *self._futures]:
            if slot is not None and not slot.busy:
                slot.close()

    def _close(self) -> None:
        super()._close()
        self._close_readers()

    def stage_info(self) -> dict[str, Any]:
        run = self._run
        try:
            readers = [s for s in list(self._slots) if s is not None] + list(self._futures)
        except RuntimeError:  # changed under us: the consumer thread is at work
            readers = []
        return {
            "parallelism": self._limit,
            "executor": "thread",
            "buffered": sum(len(s.buffer) for s in readers),
            "in_flight": run.running if run is not None else 0,
            "capacity": self._capacity * 2 * len(self._slots),
            **({"autotune": self._knob.info()} if self._knob is not None else {}),
        }
