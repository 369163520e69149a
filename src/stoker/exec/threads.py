"""The shared thread pool and the thread executor.

One pool serves every parallel stage of every pipeline in the process, as tf.data's
inter-op pool does: stages share threads instead of each owning a fixed set. It is
*leased*: each running stage holds a lease, threads start on demand (a task is queued and
no thread is idle) up to the largest bound any lease asked for, and when the last lease
is released every thread stops. So an idle process has no stoker threads, and a dropped
iterator leaves none behind.

The bound a stage asks for is its CPU budget plus its I/O concurrency
(:class:`~stoker.Options`): threads that wait on I/O do not occupy a core, so the number
of *waiting* calls must not be capped at the core count, while each stage keeps its own
calls in flight at or below its ``num_parallel_calls``.

Threads are named ``stoker-thread-<generation>-<n>`` and are daemons; they are joined on
the last release and at interpreter exit (:mod:`stoker.exec._shutdown`).
"""

from __future__ import annotations

import collections
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import stoker.stats as _stats
from stoker.exec import _shutdown
from stoker.exec._base import (
    Completion,
    ElementFn,
    ElementFnSpec,
    Executor,
    run_chunk,
)
from stoker.exec._registry import register_executor
from stoker.stats import _trace

__all__ = ["POOL", "ThreadExecutor", "ThreadPool"]

_LOG = logging.getLogger(__name__)

# How long the last release waits for threads to finish their current task. Threads that
# run a long user function past it are daemons that exit when the call returns.
_JOIN_TIMEOUT_S = 5.0

Task = Callable[[], None]


class _Generation:
    """The threads started between two full stops of the pool, and their queue."""

    def __init__(self, number: int):
        self.number = number
        self.queue: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.idle = 0
        self.starting = 0  # threads created, not yet in their loop
        self.waiting = 0  # tasks queued and not yet taken by a thread


class ThreadPool:
    """A process-wide, bounded, leased pool of named daemon threads."""

    def __init__(self, name: str = "stoker-thread"):
        self._name = name
        # Reentrant, and sections count their depth: a finalizer that the garbage
        # collector runs *inside* a section of this thread (gc triggers on any allocation)
        # may release a lease; it must neither deadlock nor change state under the
        # section, so such releases are deferred to the section's end.
        self._lock = threading.RLock()
        self._depth = 0
        self._deferred: list[int] = []
        self._leases: dict[int, int] = {}  # lease id -> thread bound it asked for
        self._next_lease = 0
        self._gen_count = 0
        self._gen: _Generation | None = None
        self._unregister: Callable[[], None] | None = None

    # -- leases --------------------------------------------------------------------------

    def lease(self, max_threads: int) -> int:
        """Start using the pool with at most ``max_threads`` threads; returns a lease id."""
        with self._lock:
            self._depth += 1
            try:
                self._next_lease += 1
                lease = self._next_lease
                self._leases[lease] = max(1, int(max_threads))
                if self._unregister is None:
                    self._unregister = _shutdown.at_exit(self)
            finally:
                self._depth -= 1
        self._run_deferred()
        return lease

    def _run_deferred(self) -> None:
        while self._deferred:
            with self._lock:
                if self._depth or not self._deferred:
                    return
                lease = self._deferred.pop()
            self.release(lease)

    def release(self, lease: int, join: bool = True) -> None:
        """Stop using the pool; the last release stops every thread.

        Args:
            lease: What :meth:`lease` returned. Releasing twice is harmless.
            join: Wait (a few seconds at most) for the threads to exit.
        """
        with self._lock:
            if self._depth:  # called by a finalizer inside one of our sections
                self._deferred.append(lease)
                return
            if self._leases.pop(lease, None) is None or self._leases:
                return
            gen, self._gen = self._gen, None
            unregister, self._unregister = self._unregister, None
        if unregister is not None:
            unregister()
        if gen is not None:
            self._stop(gen, join)

    @property
    def max_threads(self) -> int:
        with self._lock:
            return max(self._leases.values(), default=0)

    def threads(self) -> list[threading.Thread]:
        """The pool's live threads (for tests and stats)."""
        with self._lock:
            gen = self._gen
            return [t for t in gen.threads if t.is_alive()] if gen is not None else []

    # -- tasks ---------------------------------------------------------------------------

    def submit(self, task: Task) -> None:
        """Run ``task()`` on a pool thread. Exceptions it lets escape are logged, not lost."""
        thread = None
        with self._lock:
            self._depth += 1
            try:
                if not self._leases:
                    raise RuntimeError("stoker thread pool: submit() without a lease")
                gen = self._gen
                if gen is None:
                    self._gen_count += 1
                    gen = self._gen = _Generation(self._gen_count)
                gen.waiting += 1
                bound = max(self._leases.values())
                if gen.waiting > gen.idle + gen.starting and len(gen.threads) < bound:
                    thread = threading.Thread(
                        target=_worker,
                        args=(gen, self._lock),
                        name=f"{self._name}-{gen.number}-{len(gen.threads)}",
                        daemon=True,
                    )
                    gen.threads.append(thread)
                    gen.starting += 1
            finally:
                self._depth -= 1
        gen.queue.put(task)
        if thread is not None:
            # Started outside the lock: start() waits for the new thread, and a finalizer
            # the gc runs in that thread may need the lock (a deadlock we have seen).
            thread.start()
        if self._deferred:
            self._run_deferred()

    def stop_at_exit(self) -> None:
        with self._lock:
            self._deferred.clear()
            self._leases.clear()
            gen, self._gen = self._gen, None
            self._unregister = None
        if gen is not None:
            self._stop(gen, join=True)

    def _stop(self, gen: _Generation, join: bool) -> None:
        for _ in gen.threads:
            gen.queue.put(None)
        if not join or _shutdown.is_finalizing():
            return
        me = threading.current_thread()
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        for thread in gen.threads:
            if thread is not me and thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))


def _worker(gen: _Generation, lock: threading.RLock) -> None:
    get = gen.queue.get
    with lock:
        gen.starting -= 1
    while True:
        with lock:
            gen.idle += 1
        task = get()
        with lock:
            gen.idle -= 1
            gen.waiting -= 1
        if task is None:
            return
        try:
            task()
        except BaseException:  # a task's own bug must not kill the thread silently
            _LOG.exception("stoker: uncaught error in a pool task")
        task = None  # drop references (the task's closure) before blocking again


#: The process-wide pool.
POOL = ThreadPool()


class _Backlog:
    """A thread executor's queue of chunks and of completions, shared with its tasks
    (tasks never reference the executor).

    At most ``limit`` chunks run at once. Chunks submitted beyond that wait in
    ``backlog``, and a pool thread that finishes a chunk takes the next one itself, so a
    freed call slot is refilled at once, not after the consumer wakes up and submits.
    """

    __slots__ = ("backlog", "cancelled", "done", "label", "limit", "lock", "running")

    def __init__(self, limit: int) -> None:
        self.done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self.cancelled = False
        # Reentrant: a finalizer the gc runs inside a section may close the executor.
        self.lock = threading.RLock()
        self.backlog: collections.deque[_Job] = collections.deque()
        self.running = 0  # runner tasks started and not yet finished
        self.limit = limit
        self.label = ""  # the stage's name in a trace (stoker.trace's worker tracks)


_Job = tuple[ElementFn, int, list[tuple[int, Any]]]


class ThreadExecutor(Executor):
    """Runs chunks on :data:`POOL`.

    Args:
        spec: Makes the element function of each pass.
        concurrency: Chunks computed at once (the stage's ``num_parallel_calls``); more
            may be submitted, up to :attr:`capacity`: they wait, and a thread that
            finishes a chunk starts the next one itself.
        burst: Chunks the stage wants submitted at once (:attr:`burst`).
        max_threads: Bound this stage asks of the pool (CPU budget + I/O concurrency).
        pool: The pool (tests pass their own).
    """

    kind = "thread"
    chunk_s = 200e-6

    def __init__(
        self,
        spec: ElementFnSpec,
        concurrency: int,
        max_threads: int,
        pool: ThreadPool | None = None,
        burst: int = 0,
    ):
        super().__init__()
        #: Chunks the stage wants submitted at once: its consumer takes many elements per
        #: call (a sequential ``batch``) and computes on its own thread meanwhile, so the
        #: threads need that much work queued not to idle. :attr:`capacity` is at least
        #: this; the calls computed at once stay :attr:`concurrency`.
        self.burst = burst
        self._spec = spec
        self._shared = _Backlog(max(1, concurrency))
        self._shared.label = _trace.spec_label(spec)
        self._pool = pool or POOL
        self._lease: int | None = self._pool.lease(max(max_threads, self.concurrency))
        self._fns: dict[tuple[int, ...], ElementFn] = {}

    @property
    def concurrency(self) -> int:
        """Chunks computed at once; more may be submitted (they wait their turn)."""
        return self._shared.limit

    @concurrency.setter
    def concurrency(self, value: int) -> None:
        self._shared.limit = max(1, int(value))

    @property
    def slots(self) -> int:
        return self._shared.limit

    @property
    def capacity(self) -> int:
        # One waiting chunk per running one: a call that ends starts the next at once;
        # more for a stage whose consumer takes a burst of elements at a time.
        return max(2 * self._shared.limit, self.burst)

    def submit(self, tag: int, pass_id: list[int], items: list[tuple[int, Any]]) -> None:
        if self._lease is None:
            raise RuntimeError("ThreadExecutor.submit() after close()")
        key = tuple(pass_id)
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = self._spec.element_fn(list(pass_id))
        shared = self._shared
        job: _Job = (fn, tag, items)
        start: list[_Job] = []
        with shared.lock:
            shared.backlog.append(job)
            while shared.backlog and shared.running < shared.limit:
                shared.running += 1
                start.append(shared.backlog.popleft())
        self.in_flight += 1
        for first in start:
            self._pool.submit(functools.partial(_runner, shared, first))

    def poll(self, timeout: float) -> list[Completion]:
        done = self._shared.done
        out: list[Completion] = []
        try:
            out.append(done.get(timeout=timeout) if timeout > 0 else done.get_nowait())
            while True:
                out.append(done.get_nowait())
        except queue.Empty:
            pass
        self.in_flight -= len(out)
        return out

    def close(self, wait: bool = True) -> None:
        shared = self._shared
        with shared.lock:
            shared.cancelled = True
            shared.backlog.clear()
        lease, self._lease = self._lease, None
        self.in_flight = 0
        if lease is not None:
            self._pool.release(lease, join=wait)


def _runner(shared: _Backlog, job: _Job | None) -> None:
    """Compute ``job``, then the backlog's next chunks while a call slot is free."""
    try:
        while job is not None:
            if shared.cancelled:
                break
            fn, tag, items = job
            done = run_chunk(fn, tag, items, time.thread_time)
            if _stats.tracer is not None:  # this thread's track in stoker.trace
                _trace.record_worker(shared.label, done.start, done.busy_s, len(items))
            shared.done.put(done)
            del done
            job = None
            with shared.lock:
                if shared.backlog and not shared.cancelled and shared.running <= shared.limit:
                    job = shared.backlog.popleft()
                else:
                    shared.running -= 1
                    return
    except BaseException:
        with shared.lock:
            shared.running -= 1
        raise
    with shared.lock:
        shared.running -= 1


register_executor(
    "thread",
    lambda request: ThreadExecutor(request.spec, request.concurrency, request.max_threads),
)
