"""Nothing outlives its iterator: threads, worker processes, shared memory.

After ``close()``, ``del it; gc.collect()``, a ``break``, Ctrl-C, an error or interpreter
exit, no stoker thread, worker process or ``/dev/shm`` entry may remain.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import numpy as np
import psutil
import pytest

import stoker.exec
from stoker import Dataset, WorkerError
from stoker.exec import live_worker_pids


def _stoker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("stoker-")]


def _children():
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _shm():
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.fixture
def clean():
    """Start from nothing; after the test, assert nothing is left (within seconds)."""
    stoker.exec.shutdown()
    gc.collect()
    shm = _shm()
    yield
    deadline = time.monotonic() + 10
    while True:
        gc.collect()
        left = (_stoker_threads(), live_worker_pids(), _children(), _shm() - shm)
        if not any(left):
            return
        assert time.monotonic() < deadline, f"left behind: {left}"
        time.sleep(0.05)


def _big(x):
    return np.full((512, 512), x, dtype=np.float32)


def _pipelines():
    return {
        "map-thread": lambda: Dataset.range(10_000).map(
            _big, num_parallel_calls=4, executor="thread"
        ),
        "map-process": lambda: Dataset.range(10_000).map(
            _big, num_parallel_calls=2, executor="process"
        ),
        "interleave": lambda: Dataset.range(100).interleave(
            lambda x: Dataset.range(100).map(_big), cycle_length=4, num_parallel_calls=4
        ),
        "prefetch": lambda: Dataset.range(10_000).map(_big).prefetch(4),
        "stacked": lambda: (
            Dataset.range(100)
            .interleave(lambda x: Dataset.range(50), cycle_length=2, num_parallel_calls=2)
            .map(_big, num_parallel_calls=2, executor="process")
            .prefetch(2)
            .map(lambda a: a.sum(), num_parallel_calls=3, executor="thread")
            .prefetch(1)
        ),
    }


PIPELINES = list(_pipelines())


@pytest.mark.parametrize("name", PIPELINES)
def test_dropping_a_running_iterator(clean, name):
    it = iter(_pipelines()[name]())
    for _ in range(5):
        next(it)
    del it


@pytest.mark.parametrize("name", PIPELINES)
def test_breaking_out_of_a_loop(clean, name):
    for i, _ in enumerate(_pipelines()[name]()):
        if i == 3:
            break


@pytest.mark.parametrize("name", PIPELINES)
def test_close(clean, name):
    it = iter(_pipelines()[name]())
    next(it)
    it.close()
    assert not live_worker_pids()


def test_exhausted_pipeline_and_dataset_dropped(clean):
    ds = Dataset.range(20).map(_big, num_parallel_calls=2, executor="process").prefetch(2)
    assert len(list(ds)) == 20
    assert len(list(ds)) == 20  # second epoch: parked workers
    del ds


def test_keyboard_interrupt_in_a_function_closes_the_iterator(clean):
    def fn(x):
        if x == 10:
            raise KeyboardInterrupt
        return x

    it = iter(Dataset.range(100).map(fn, num_parallel_calls=2, executor="thread").prefetch(2))
    with pytest.raises(KeyboardInterrupt):
        for _ in it:
            pass
    it.close()


def test_worker_death_leaves_nothing(clean):
    def fn(x):
        if x == 3:
            os._exit(1)
        return x

    with pytest.raises(WorkerError):
        list(Dataset.range(10).map(fn, num_parallel_calls=2, executor="process"))


_SCRIPT = """
import os, sys, time
import numpy as np
import stoker as sk
from stoker.exec import live_worker_pids

ds = (
    sk.Dataset.range(1_000_000)
    .map(lambda x: np.full((256, 256), x), num_parallel_calls=2, executor="process")
    .prefetch(2)
    .map(lambda a: a + 1, num_parallel_calls=2, executor="thread")
)
it = iter(ds)
next(it)
print(" ".join(map(str, live_worker_pids())), flush=True)
if sys.argv[1] == "wait":
    for x in it:
        time.sleep(0.01)
"""


def _run_script(mode):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _all_gone(pids, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def test_interpreter_exit_stops_workers():
    proc = _run_script("exit")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    pids = [int(p) for p in out.split()]
    assert len(pids) == 2
    assert _all_gone(pids)


def test_killed_parent_leaves_no_workers():
    proc = _run_script("wait")
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2, proc.stderr.read()
    proc.kill()  # SIGKILL: no atexit, no finalizers; workers see their socket close
    proc.communicate(timeout=60)
    assert _all_gone(pids)


def test_ctrl_c_stops_workers():
    proc = _run_script("wait")
    line = proc.stdout.readline()
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2, proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    _, err = proc.communicate(timeout=60)
    assert "KeyboardInterrupt" in err
    assert _all_gone(pids)


def _fails_at_5(x):
    if x == 5:
        raise ValueError("bad element")
    return x


def _inner_fails(x):
    if x == 3:
        raise ValueError("bad element")
    return Dataset.range(3)


def _failing_pipelines():
    return {
        "map-thread": lambda: Dataset.range(100).map(
            _fails_at_5, num_parallel_calls=2, executor="thread"
        ),
        "map-process": lambda: Dataset.range(100).map(
            _fails_at_5, num_parallel_calls=2, executor="process"
        ),
        "map-auto": lambda: Dataset.range(100).map(_fails_at_5, num_parallel_calls=2),
        "map-process-input-error": lambda: (
            Dataset.range(100).map(_fails_at_5).map(_big, num_parallel_calls=2, executor="process")
        ),
        "interleave-map-func": lambda: Dataset.range(100).interleave(
            _inner_fails, cycle_length=2, num_parallel_calls=2
        ),
        "interleave-inner": lambda: Dataset.range(100).interleave(
            lambda x: Dataset.range(10).map(_fails_at_5), cycle_length=2, num_parallel_calls=2
        ),
        "batch": lambda: Dataset.range(100).map(_fails_at_5).batch(2, num_parallel_calls=2),
        "prefetch": lambda: Dataset.range(100).map(_fails_at_5).prefetch(2),
    }


@pytest.mark.parametrize("name", list(_failing_pipelines()))
def test_a_failed_pipeline_ends_without_the_garbage_collector(clean, name):
    # The exception's traceback holds the stage's frames (``self``: the iterator); any
    # reference from there back to the exception made a cycle, and the workers of three
    # failed pipelines piled up (2 -> 4 -> 6) until the collector happened to run.
    make = _failing_pipelines()[name]
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            it = iter(make())
            alive = weakref.ref(it)
            with pytest.raises(ValueError, match="bad element"):
                for _ in it:
                    pass
            del it
            assert alive() is None, "the failed iterator is only freed by the garbage collector"
            assert not live_worker_pids()
            assert not _children()
    finally:
        gc.enable()


def test_kept_results_outlive_their_workers_and_stay_intact(clean):
    # Process results are zero-copy views of the workers' rings: keeping all of them
    # makes the rings grow (never reuse live space), and they stay valid after the
    # workers are gone.
    ds = Dataset.range(40).map(_big, num_parallel_calls=2, executor="process")
    kept = list(ds)
    stoker.exec.shutdown()
    assert not live_worker_pids()
    for i, a in enumerate(kept):
        assert a[0, 0] == i and a[-1, -1] == i and float(a.mean()) == i
    del kept, a
