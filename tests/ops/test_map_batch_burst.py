"""A sequential ``batch(n)`` over a parallel map: the map keeps the next batch submitted
(``ParallelMapIterator.set_burst``) so that its workers compute while the consumer stacks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from stoker import AUTOTUNE, Dataset, Options
from stoker.exec.threads import ThreadExecutor
from stoker.testing import assert_checkpoint_roundtrip

BATCH = 16


def _sleepy(x):
    # Waits, so chunks stay one element (the chunk size follows compute time; waiting
    # counts a quarter: 2 ms of sleep > the thread executor's 0.2 ms per chunk).
    time.sleep(0.002)
    return x * x


class _Counter:
    """Counts the calls of the map's function (threads call it)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = 0

    def __call__(self, x):
        with self.lock:
            self.calls += 1
        return _sleepy(x)


def _pulled(it):
    return it._input._cursor.seq  # input elements the map has pulled (and submitted)


@pytest.mark.parametrize("executor", ["thread", "auto"])
def test_the_map_submits_the_next_batch_before_the_batch_asks(executor):
    ds = Dataset.range(10_000).map(_sleepy, num_parallel_calls=2, executor=executor).batch(BATCH)
    it = iter(ds)
    try:
        for k in range(1, 4):
            next(it)
            # Pulled: the k batches delivered plus at least one more batch, submitted
            # (the window without bursts: 2 * 2 calls * 1 element).
            assert _pulled(it) >= (k + 1) * BATCH, (k, _pulled(it))
        assert it._input._run.in_flight >= BATCH - 1
        assert it._input.stage_info()["capacity"] >= BATCH
    finally:
        it.close()


def test_the_workers_compute_the_next_batch_while_the_consumer_is_away():
    fn = _Counter()
    ds = Dataset.range(10_000).map(fn, num_parallel_calls=2, executor="thread").batch(BATCH)
    it = iter(ds)
    try:
        next(it)
        deadline = time.monotonic() + 30  # a margin for a loaded machine, not a timing
        while fn.calls < 2 * BATCH and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fn.calls >= 2 * BATCH
        # ... and no more than the window: the burst does not pull without bound.
        time.sleep(0.1)
        assert fn.calls <= BATCH + BATCH + 2 + 2
    finally:
        it.close()


def test_calls_at_once_stay_the_maps_num_parallel_calls():
    running = 0
    most = 0
    lock = threading.Lock()

    def fn(x):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.003)
        with lock:
            running -= 1
        return x

    ds = Dataset.range(200).map(fn, num_parallel_calls=2, executor="thread").batch(BATCH)
    assert [b.tolist() for b in ds] == [
        list(range(i, min(i + BATCH, 200))) for i in range(0, 200, BATCH)
    ]
    assert most <= 2


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("npc", [2, AUTOTUNE])
def test_order_and_elements_match_the_sequential_pipeline(npc, deterministic):
    ds = Dataset.range(300).map(
        _sleepy, num_parallel_calls=npc, executor="auto", deterministic=deterministic
    )
    got = [b.tolist() for b in ds.batch(BATCH)]
    want = [b.tolist() for b in Dataset.range(300).map(_sleepy).batch(BATCH)]
    if deterministic:
        assert got == want
    else:
        assert sorted(x for b in got for x in b) == sorted(x for b in want for x in b)
        assert [len(b) for b in got] == [len(b) for b in want]


def test_checkpoint_roundtrip():
    ds = Dataset.range(100).map(_sleepy, num_parallel_calls=2, executor="thread").batch(7)
    assert assert_checkpoint_roundtrip(ds) == 15


def test_ram_budget_still_bounds_the_burst():
    def big(x):
        return np.full(100_000, x, np.uint8)  # 100 kB

    ds = (
        Dataset.range(1000)
        .map(big, num_parallel_calls=2, executor="thread")
        .batch(64)
        .with_options(Options(ram_budget=2_000_000))
    )
    it = iter(ds)
    try:
        next(it)
        ahead = _pulled(it) - 64
        assert ahead < 64, ahead  # a batch's worth (6.4 MB) is over the 2 MB budget
    finally:
        it.close()


def test_thread_executor_capacity_follows_the_burst():
    ex = ThreadExecutor(_Spec(), 2, 4)  # type: ignore[arg-type]
    try:
        assert ex.capacity == 4
        ex.burst = 20
        assert ex.capacity == 20 and ex.concurrency == 2
        ex.burst = 1
        assert ex.capacity == 4
    finally:
        ex.close()


class _Spec:
    def element_fn(self, pass_id):
        return lambda i, x: x
