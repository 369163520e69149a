"""RayExecutor through the Executor interface: chunks, calls, faults, credit."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from stoker.errors import WorkerError
from stoker.exec import Completion, Failure

pytest.importorskip("ray")

from stoker.ray import RayExecutor

_DEADLINE_S = 60.0


class _Spec:
    """element_fn of a stage: ``x * 10``; 7 raises; ``size`` > 0 returns arrays."""

    def __init__(self, sleep_s: float = 0.0, size: int = 0):
        self.sleep_s = sleep_s
        self.size = size

    def element_fn(self, pass_id: list[int]) -> Any:
        sleep_s, size = self.sleep_s, self.size

        def fn(index: int, x: int) -> Any:
            if sleep_s:
                time.sleep(sleep_s)
            if x == 7:
                raise ValueError(f"seven at index {index}")
            if size:
                return np.full(size, x % 251, dtype=np.uint8)
            return x * 10

        return fn


def _drain(ex: RayExecutor, seen: dict[int, list[Any]], on_poll: Any = None) -> None:
    deadline = time.monotonic() + _DEADLINE_S
    while ex.in_flight:
        assert time.monotonic() < deadline, f"no progress: {ex!r}"
        for c in ex.poll(0.5):
            assert isinstance(c, Completion)
            assert c.tag not in seen, f"chunk {c.tag} delivered twice"
            seen[c.tag] = c.results
        if on_poll is not None:
            on_poll()


def test_chunks_come_back_complete_with_failures_in_place() -> None:
    ex = RayExecutor(_Spec(), actors=2, num_cpus=0)
    try:
        for tag in range(6):
            ex.submit(tag, [0], [(tag * 4 + j, tag * 4 + j) for j in range(4)])
        seen: dict[int, list[Any]] = {}
        _drain(ex, seen)
    finally:
        ex.close()
    assert sorted(seen) == list(range(6))
    for tag, results in seen.items():
        for j, r in enumerate(results):
            x = tag * 4 + j
            if x == 7:
                assert type(r) is Failure and isinstance(r.exc, ValueError)
                assert "seven at index 7" in str(r.exc)
                assert "in fn" in str(r.exc.__cause__)  # the actor's traceback
            else:
                assert r == x * 10


def test_calls_grow_to_the_work_and_coalesce_small_chunks() -> None:
    # 2 ms elements: a call of ~30 ms holds ~15 of them, so 200 one-element chunks take
    # far fewer than 200 calls once the first have been timed.
    ex = RayExecutor(_Spec(sleep_s=0.002), actors=1, num_cpus=0)
    try:
        tag = 0
        seen: dict[int, list[Any]] = {}
        deadline = time.monotonic() + _DEADLINE_S
        while tag < 200 or ex.in_flight:
            assert time.monotonic() < deadline
            while tag < 200 and ex.accepting():
                ex.submit(tag, [0], [(tag + 100, tag + 100)])
                tag += 1
            for c in ex.poll(0.5):
                seen[c.tag] = c.results
        assert ex.chunk_size(0.0, 0.0) > 4
        assert ex.calls < 100, ex.calls
    finally:
        ex.close()
    assert sorted(seen) == list(range(200))
    assert all(seen[t] == [(t + 100) * 10] for t in seen)


def test_fixed_chunk_size_and_validation() -> None:
    with pytest.raises(ValueError, match="in_flight_per_actor"):
        RayExecutor(_Spec(), in_flight_per_actor=0)
    with pytest.raises(ValueError, match="actors"):
        RayExecutor(_Spec(), actors=(3, 2))
    with pytest.raises(TypeError, match="cloudpickle"):
        RayExecutor(_Unpicklable())
    ex = RayExecutor(_Spec(), actors=1, chunk_size=5, num_cpus=0)
    try:
        assert ex.chunk_size(1.0, 0.0) == 5
    finally:
        ex.close()


class _Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("not this one")

    def element_fn(self, pass_id: list[int]) -> Any:
        return lambda i, x: x


def test_a_killed_actor_is_replaced_and_no_chunk_is_lost_or_repeated(ray_cluster: Any) -> None:
    ex = RayExecutor(_Spec(sleep_s=0.01), actors=2, chunk_size=2, num_cpus=0)
    seen: dict[int, list[Any]] = {}
    killed = []

    def kill_once() -> None:
        if not killed and len(seen) >= 10:
            victim = max(ex._actors, key=lambda a: a.outstanding)
            assert victim.outstanding > 0  # it has calls in flight
            ray_cluster.kill(victim.handle)
            killed.append(victim.index)

    try:
        for tag in range(120):
            ex.submit(tag, [0], [(tag, tag)])
        _drain(ex, seen, kill_once)
        assert killed and ex.restarts >= 1
        assert ex.actors == 2
    finally:
        ex.close()
    assert sorted(seen) == list(range(120))
    assert [seen[t][0] for t in range(120) if t != 7] == [t * 10 for t in range(120) if t != 7]


class _Crash:
    def element_fn(self, pass_id: list[int]) -> Any:
        def fn(index: int, x: int) -> int:
            if x == 3:
                import os

                os._exit(3)  # kills the actor's process, every time
            return x

        return fn


def test_an_element_that_kills_every_actor_is_raised_not_retried_forever() -> None:
    ex = RayExecutor(_Crash(), actors=1, chunk_size=1, num_cpus=0)
    try:
        for tag in range(5):
            ex.submit(tag, [0], [(tag, tag)])
        with pytest.raises(WorkerError, match=r"died 3 times while computing elements 3\.\.3 "):
            _drain(ex, {})
    finally:
        ex.close()


def _boom() -> None:
    raise ImportError("module_only_on_the_laptop")


class _Unloadable:
    def __reduce__(self) -> Any:
        return (_boom, ())


class _UnloadableSpec:
    def __init__(self) -> None:
        self.part = _Unloadable()

    def element_fn(self, pass_id: list[int]) -> Any:
        return lambda i, x: x


def test_an_actor_that_cannot_load_the_function_is_an_error_at_once() -> None:
    ex = RayExecutor(_UnloadableSpec(), actors=1, num_cpus=0)
    start = time.monotonic()
    try:
        ex.submit(0, [0], [(0, 0)])
        with pytest.raises(WorkerError, match=r"(?s)could not start.*module_only_on_the_laptop"):
            _drain(ex, {})
    finally:
        ex.close()
    assert time.monotonic() - start < 30


def test_bytes_in_flight_stay_within_the_credit() -> None:
    # 256 kB results, 1 MB of credit: at most ~4 elements' worth in flight (one call always
    # goes), however many chunks wait.
    credit = 1 << 20
    ex = RayExecutor(_Spec(size=256 << 10), actors=1, max_bytes_in_flight=credit, num_cpus=0)
    peak = [0]

    def watch() -> None:
        peak[0] = max(peak[0], ex.bytes_in_flight)
        assert ex.bytes_in_flight <= credit + ex.chunk_size(0, 0) * (256 << 10)

    try:
        for tag in range(60):
            ex.submit(tag, [0], [(tag, tag)])
        seen: dict[int, list[Any]] = {}
        _drain(ex, seen, watch)
    finally:
        ex.close()
    assert 0 < peak[0] <= 2 * credit
    arr = seen[10][0]
    assert arr.shape == (256 << 10,) and arr[0] == 10
    assert not arr.flags.writeable  # read straight from the object store


def test_close_stops_the_actors_and_never_the_cluster(
    ray_cluster: Any, assert_stopped: Any
) -> None:
    import stoker.ray

    ex = RayExecutor(_Spec(), actors=1, num_cpus=0)
    ex.submit(0, [0], [(0, 1)])
    _drain(ex, {})
    handles = ex.actor_handles
    ex.close()
    ex.close()  # idempotent
    for h in handles:
        assert_stopped(h)
    stoker.ray.shutdown()
    assert ray_cluster.is_initialized()  # stoker did not start it: still running
    assert not stoker.ray.owns_cluster()


def test_actors_grow_to_max_while_calls_wait() -> None:
    ex = RayExecutor(_Spec(sleep_s=0.01), actors=(1, 2), chunk_size=1, num_cpus=0)
    try:
        assert ex.actors == 1
        seen: dict[int, list[Any]] = {}
        tag = 0
        deadline = time.monotonic() + _DEADLINE_S
        while ex.actors < 2:
            assert time.monotonic() < deadline, "never grew"
            while ex.accepting():
                ex.submit(tag, [0], [(tag, tag)])
                tag += 1
            for c in ex.poll(0.2):
                seen[c.tag] = c.results
        _drain(ex, seen)
    finally:
        ex.close()
    assert sorted(seen) == list(range(tag))
