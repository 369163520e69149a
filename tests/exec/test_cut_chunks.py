"""Cut chunks: a worker process stops a chunk whose elements suddenly take far longer
than the last ones did, and the stage computes the rest again (``Completion.rest``)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from stoker import AUTOTUNE, Dataset
from stoker.exec import _gil, auto
from stoker.exec._base import CUT_MIN_S, run_chunk
from stoker.testing import assert_checkpoint_roundtrip

# Elements from SLOW on take SLOW_S each: with cheap elements before them, a worker's
# chunks hold dozens of elements, and the first slow one ends past the chunk's cut.
SLOW = 300
SLOW_S = 0.05
N = 320


def _slows_down(x):
    if SLOW <= x < SLOW + 8:
        time.sleep(SLOW_S)
    return x * 3


def _random_slows_down(x, rng):
    if SLOW <= x < SLOW + 8:
        time.sleep(SLOW_S)
    return int(rng.integers(1 << 30)) + x


def test_run_chunk_cuts_after_the_element_that_ends_past_the_deadline():
    def fn(i, x):
        if i == 2:
            time.sleep(0.05)
        return x + 1

    items = [(i, 10 * i) for i in range(6)]
    done = run_chunk(fn, 7, items, time.thread_time, cut_s=0.02)
    assert done.tag == 7
    assert done.results == [1, 11, 21]  # the slow element finishes; nothing after it starts
    whole = run_chunk(fn, 8, items, time.thread_time)
    assert whole.results == [1, 11, 21, 31, 41, 51]
    # The last element is never "cut" off: a chunk that ends late is simply whole.
    last = run_chunk(fn, 9, items[:3], time.thread_time, cut_s=0.02)
    assert last.results == [1, 11, 21]


def test_process_chunks_cut_when_the_work_slows_down_and_every_element_comes_once():
    ds = Dataset.range(N).map(_slows_down, num_parallel_calls=2, executor="process")
    it = ds.iterator()
    out = [int(x) for x in it]
    assert out == [3 * x for x in range(N)]
    # Chunks of ~64 cheap elements are cut after their first 50 ms element (the cut is
    # CUT_FACTOR x the microseconds they used to take, and at least CUT_MIN_S).
    assert SLOW_S > 2 * CUT_MIN_S
    assert it.executor_info.get("cut_chunks", 0) >= 1, it.executor_info


def test_unordered_process_map_with_cuts_loses_and_repeats_nothing():
    ds = Dataset.range(N).map(
        _slows_down, num_parallel_calls=2, executor="process", deterministic=False
    )
    assert sorted(int(x) for x in ds) == [3 * x for x in range(N)]


def test_cut_chunks_keep_random_map_reproducible():
    def run(executor, parallel):
        ds = Dataset.range(N).random_map(
            _random_slows_down, num_parallel_calls=parallel, executor=executor, seed=5
        )
        it = ds.iterator()
        return [int(x) for x in it], it.executor_info

    on_processes, info = run("process", 2)
    assert info.get("cut_chunks", 0) >= 1, info
    on_threads, _ = run("thread", 8)
    assert on_processes == on_threads
    assert len(set(on_processes)) == N


def test_checkpoints_resume_exactly_across_cut_chunks():
    ds = Dataset.range(SLOW + 24).map(_slows_down, num_parallel_calls=2, executor="process")
    # States saved before, inside and after the slow stretch.
    assert assert_checkpoint_roundtrip(ds, max_elements=SLOW + 24, every=37) == SLOW + 24


def test_cut_chunks_hand_back_arrays_intact():
    def fn(x):
        if SLOW <= x < SLOW + 4:
            time.sleep(SLOW_S)
        return np.full(1 << 15, x, dtype=np.int32)  # through shared memory

    ds = Dataset.range(SLOW + 40).map(fn, num_parallel_calls=2, executor="process")
    it = ds.iterator()
    for i, a in enumerate(it):
        assert a.shape == (1 << 15,) and int(a[0]) == i == int(a[-1])
    assert i == SLOW + 39


@pytest.mark.parametrize("executor", ["thread", "auto"])
def test_executors_that_do_not_cut_report_no_cuts(executor):
    ds = Dataset.range(64).map(_slows_down, num_parallel_calls=2, executor=executor)
    it = ds.iterator()
    assert [int(x) for x in it] == [3 * x for x in range(64)]
    assert "cut_chunks" not in it.executor_info


def _python_work(x):
    # ~0.2 ms of GIL-holding Python, then 40x that from element HEAVY on: the work got
    # heavier but still burns CPU (it does not start to wait).
    s = 0
    for i in range(10_000 if x < HEAVY else 400_000):
        s += i
    return x


HEAVY = 3000


def test_a_chunk_cut_because_the_work_got_heavier_keeps_it_on_processes():
    ds = Dataset.range(HEAVY + 16).map(_python_work, num_parallel_calls=2)
    # executor="auto" as if its probe had chosen processes (it does for this function on
    # two free cores): what is tested is what happens after the cut.
    auto.remember(ds, _gil.Decision("process", "test", 2e-4, 1.0))
    it = ds.iterator()
    assert [int(x) for x in it] == list(range(HEAVY + 16))
    info = it.executor_info
    # Cut (the elements took 40x longer), judged on the time beyond the old elements':
    # CPU, so the work stays where CPU-bound Python belongs.
    assert info.get("cut_chunks", 0) >= 1, info
    assert info["executor"] == "process", info


def _python_then_sleep(x):
    if x >= HEAVY:
        time.sleep(0.02)  # the work turned into waiting
        return x
    s = 0
    for i in range(10_000):
        s += i
    return x


def test_a_chunk_cut_because_the_work_started_to_wait_moves_it_to_threads():
    ds = Dataset.range(HEAVY + 200).map(_python_then_sleep, num_parallel_calls=AUTOTUNE)
    auto.remember(ds, _gil.Decision("process", "test", 2e-4, 1.0))
    it = ds.iterator()
    assert [int(x) for x in it] == list(range(HEAVY + 200))
    info = it.executor_info
    assert info.get("cut_chunks", 0) >= 1, info
    assert info["executor"] == "thread" and "wait" in info["reason"], info


def _burn(x):
    s = 0
    for i in range(300_000):
        s += i
    return x


def test_worker_processes_report_their_waits_for_a_cpu(monkeypatch):
    # Three spinning processes beside the two workers on this machine's cores: the workers
    # wait for a CPU, and say how long (what keeps a preempted cut chunk on processes).
    import subprocess
    import sys

    from stoker.exec import processes

    seen = []
    pump = processes.ProcessExecutor._pump

    def spy(self, timeout, out):
        n = len(out)
        pump(self, timeout, out)
        seen.extend(c.delay_s for c in out[n:])

    monkeypatch.setattr(processes.ProcessExecutor, "_pump", spy)
    cores = len(os.sched_getaffinity(0))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores + 1)]
    try:
        out = list(Dataset.range(60).map(_burn, num_parallel_calls=2, executor="process"))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert [int(x) for x in out] == list(range(60))
    assert seen and all(d >= 0.0 for d in seen)
    if os.path.exists("/proc/self/schedstat"):
        assert sum(seen) > 0.0, seen
