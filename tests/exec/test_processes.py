"""Worker processes: start, compute, fail loudly, park between passes, stop."""

from __future__ import annotations

import functools
import gc
import os
import signal
import time

import cloudpickle
import numpy as np
import psutil
import pytest

from stoker.errors import WorkerError
from stoker.exec import Failure, live_worker_pids
from stoker.exec.processes import (
    ProcessExecutor,
    RemoteTraceback,
    WorkerGroup,
    describe_exit,
    park,
    take_parked,
)


class _Spec:
    def __init__(self, fn):
        self.fn = fn

    def element_fn(self, pass_id):
        fn = self.fn
        return lambda i, x: fn(x)


def _executor(fn, n=2):
    group = WorkerGroup(cloudpickle.dumps(_Spec(fn)), n, None, 1 << 28)
    return ProcessExecutor(group, "test[0]")


def _poll_all(ex, n, timeout=30.0):
    done = []
    deadline = time.monotonic() + timeout
    while len(done) < n:
        assert time.monotonic() < deadline, "no result in time"
        done.extend(ex.poll(0.1))
    return done


def _gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]:
            return True
        time.sleep(0.05)
    return False


def test_computes_chunks_with_arrays_and_failures():
    def fn(x):
        if x == 2:
            raise ValueError("two")
        return np.full((256, 256), x, dtype=np.float64)

    ex = _executor(fn)
    try:
        ex.submit(0, [0, 0], [(0, 0), (1, 1)])
        ex.submit(1, [0, 0], [(2, 2), (3, 3)])
        done = {c.tag: c for c in _poll_all(ex, 2)}
        assert done[0].results[1][0, 0] == 1.0
        failure = done[1].results[0]
        assert isinstance(failure, Failure) and isinstance(failure.exc, ValueError)
        assert isinstance(failure.exc.__cause__, RemoteTraceback)
        assert "in fn" in failure.exc.__cause__.text and "two" in failure.exc.__cause__.text
        assert done[1].results[1][0, 0] == 3.0
    finally:
        pids = ex.pids
        ex.close()
    assert _gone(pids)


def test_workers_are_separate_processes_started_by_spawn():
    ex = _executor(lambda x: os.getpid())
    try:
        for tag in range(6):
            ex.submit(tag, [0, 0], [(tag, tag)])
        pids = {r for c in _poll_all(ex, 6) for r in c.results}
        assert os.getpid() not in pids
        assert pids <= set(ex.pids)
        for pid in ex.pids:
            cmdline = psutil.Process(pid).cmdline()
            assert cmdline[1] == "-c" and "stoker.exec._worker" in cmdline[2]
    finally:
        ex.close()


@pytest.mark.parametrize(
    ("how", "expect"),
    [
        ("exit", "exited with code 3"),
        ("kill", "SIGKILL"),
        ("segv", "SIGSEGV"),
    ],
)
def test_a_dying_worker_raises_worker_error_within_seconds(how, expect):
    def fn(x):
        if how == "exit":
            os._exit(3)
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGSEGV)

    ex = _executor(fn)
    ex.wait_ready()
    pids = ex.pids
    start = time.monotonic()
    ex.submit(0, [0, 0], [(0, 0)])
    with pytest.raises(WorkerError, match=expect) as info:
        _poll_all(ex, 1)
    assert time.monotonic() - start < 10
    assert "test[0]" in str(info.value)
    assert _gone(pids), "the other workers must be stopped too"


def test_a_function_that_cannot_load_in_the_worker_is_a_worker_error():
    class Unloadable:
        def __reduce__(self):
            return (_raise_on_load, ())

    ex = ProcessExecutor(WorkerGroup(cloudpickle.dumps(Unloadable()), 1, None, 1 << 28), "s[1]")
    with pytest.raises(WorkerError, match="could not load"):
        ex.wait_ready()


def _raise_on_load():
    raise ImportError("no such module here")


def test_release_parks_and_take_parked_reuses_the_same_processes():
    class Owner:
        pass

    owner = Owner()
    ex = _executor(lambda x: x)
    ex.wait_ready()
    pids = ex.pids
    ex._on_release = functools.partial(park, owner, "k")
    ex.release()
    group = take_parked(owner, "k")
    assert group is not None and [w.pid for w in group.workers] == pids
    assert take_parked(owner, "k") is None
    assert park(owner, "k", group)
    del owner, group, ex
    gc.collect()
    assert _gone(pids), "a parked group stops when its owner is collected"
    assert not set(pids) & set(live_worker_pids())


def test_describe_exit():
    assert "code 2" in describe_exit(2)
    assert "OOM" in describe_exit(-signal.SIGKILL)
    assert "segmentation" in describe_exit(-signal.SIGSEGV)
    assert "still running" in describe_exit(None)


def test_workers_ignore_sigint():
    ex = _executor(lambda x: x * 2)
    try:
        ex.wait_ready()
        for pid in ex.pids:
            os.kill(pid, signal.SIGINT)
        ex.submit(0, [0, 0], [(0, 21)])
        assert _poll_all(ex, 1)[0].results == [42]
    finally:
        ex.close()
