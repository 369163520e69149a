"""The shared thread pool and the thread executor."""

from __future__ import annotations

import threading
import time

import pytest

from stoker.exec import Failure
from stoker.exec.threads import POOL, ThreadExecutor, ThreadPool


class _Spec:
    def __init__(self, fn):
        self.fn = fn

    def element_fn(self, pass_id):
        return lambda i, x: self.fn(x)


def _poll_all(ex, n, timeout=10.0):
    done = []
    deadline = time.monotonic() + timeout
    while len(done) < n:
        assert time.monotonic() < deadline, "executor did not finish in time"
        done.extend(ex.poll(0.1))
    return done


def test_register_atexit_still_exists():
    # _shutdown relies on this private API (SPDL checks it the same way).
    assert callable(threading._register_atexit)


def test_threads_start_on_demand_are_named_and_stop_on_last_release():
    pool = ThreadPool("test-pool")
    lease = pool.lease(4)
    assert pool.threads() == []
    gate = threading.Event()
    for _ in range(3):
        pool.submit(gate.wait)
    threads = pool.threads()
    assert 1 <= len(threads) <= 4
    assert all(t.name.startswith("test-pool-") for t in threads)
    gate.set()
    pool.release(lease)
    assert all(not t.is_alive() for t in threads)
    assert pool.threads() == []


def test_pool_is_bounded_by_the_largest_lease():
    pool = ThreadPool("bounded")
    lease = pool.lease(2)
    gate = threading.Event()
    for _ in range(10):
        pool.submit(gate.wait)
    assert len(pool.threads()) == 2
    gate.set()
    pool.release(lease)


def test_pool_survives_until_every_lease_is_released():
    pool = ThreadPool("two-leases")
    a, b = pool.lease(2), pool.lease(2)
    done = threading.Event()
    pool.submit(done.set)
    assert done.wait(5)
    pool.release(a)
    assert pool.threads(), "threads must stay while a lease is held"
    pool.release(b)
    assert pool.threads() == []


def test_submit_without_lease_raises():
    with pytest.raises(RuntimeError, match="lease"):
        ThreadPool("none").submit(lambda: None)


@pytest.mark.parametrize("concurrency", [1, 2, 8])
def test_executor_computes_chunks_and_keeps_failures(concurrency):
    def fn(x):
        if x == 3:
            raise KeyError(x)
        return x * 10

    ex = ThreadExecutor(_Spec(fn), concurrency, max_threads=8)
    try:
        for tag in range(3):
            ex.submit(tag, [0, 0], [(i, tag * 2 + i) for i in range(2)])
        assert ex.in_flight == 3
        done = {c.tag: c for c in _poll_all(ex, 3)}
        assert ex.in_flight == 0
        assert done[0].results == [0, 10]
        assert done[2].results == [40, 50]
        first, second = done[1].results
        assert first == 20
        assert isinstance(second, Failure) and isinstance(second.exc, KeyError)
        assert all(c.busy_s >= 0 and c.cpu_s >= 0 for c in done.values())
    finally:
        ex.close()


def test_executor_close_drops_queued_work_and_releases_the_pool():
    gate = threading.Event()
    ran = []

    def fn(x):
        gate.wait(5)
        ran.append(x)
        return x

    ex = ThreadExecutor(_Spec(fn), 1, max_threads=1)
    for tag in range(5):
        ex.submit(tag, [0, 0], [(tag, tag)])
    gate.set()
    ex.close()
    assert len(ran) <= 2  # at most the running chunk (and one racing it) ran
    assert POOL.threads() == [] or all(not t.is_alive() for t in POOL.threads())


def test_executor_caps_running_chunks_and_starts_waiting_ones_itself():
    # More chunks than `concurrency` may be submitted (up to `capacity`): the extra ones
    # wait, at most `concurrency` run at once, and a pool thread that finishes a chunk
    # starts the next waiting one itself, without another submit() or poll().
    lock = threading.Lock()
    running, peak = [0], [0]
    gates = [threading.Event() for _ in range(6)]

    def fn(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gates[x].wait(10)
        with lock:
            running[0] -= 1
        return x

    ex = ThreadExecutor(_Spec(fn), 2, max_threads=8)
    try:
        assert ex.slots == 2 and ex.capacity == 4
        for tag in range(6):
            ex.submit(tag, [0, 0], [(tag, tag)])
        assert ex.in_flight == 6
        for gate in gates:
            gate.set()
        done = _poll_all(ex, 6)
        assert sorted(c.tag for c in done) == list(range(6))
        assert peak[0] <= 2
        # Raising the concurrency lets more run at once from the next submit on.
        ex.concurrency = 4
        assert ex.slots == 4 and ex.capacity == 8
        started = threading.Barrier(4, timeout=10)
        ex2_gate = threading.Event()

        def wide(x):
            started.wait()
            ex2_gate.wait(10)
            return x

        ex._spec = _Spec(wide)
        ex._fns.clear()
        for tag in range(4):
            ex.submit(10 + tag, [0, 0], [(tag, tag)])
        ex2_gate.set()
        wide_done = sorted(_poll_all(ex, 4), key=lambda c: c.tag)
        assert [c.tag for c in wide_done] == [10, 11, 12, 13]
        # The barrier (a Failure otherwise) passes only if all four ran at once.
        assert [c.results for c in wide_done] == [[0], [1], [2], [3]]
    finally:
        for gate in gates:
            gate.set()
        ex.close()
