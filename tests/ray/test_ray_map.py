"""``map(..., executor="ray")``: the stage's semantics hold on Ray actors."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stoker
from stoker import Dataset

pytest.importorskip("ray")

import stoker.ray  # registers executor="ray"


def _square(x: int) -> int:
    return x * x


def _fails_at_5(x: int) -> int:
    if x == 5:
        raise KeyError(f"bad element {x}")
    return x + 1


# Datasets shared by several tests: a dataset's next pass takes back the actors its last
# pass kept, so these tests start two actors each, not two per test.
_SQUARES = Dataset.range(300).map(_square, num_parallel_calls=2, executor="ray")
_FAILING = Dataset.range(20).map(_fails_at_5, num_parallel_calls=2, executor="ray")


def test_order_and_values_as_serial() -> None:
    it = _SQUARES.iterator()
    assert list(it) == [x * x for x in range(300)]
    assert it.executor_info["executor"] == "ray"


def test_deterministic_false_does_not_wait_for_a_slow_element(tmp_path: Path) -> None:
    # Element 0 waits until the consumer has received 30 others: in input order that
    # could never happen (it would wait its 60 s out), in completion order it must.
    flag = str(tmp_path / "go")

    def fn(x: int) -> int:
        if x == 0:
            deadline = time.monotonic() + 60
            while not os.path.exists(flag) and time.monotonic() < deadline:
                time.sleep(0.01)
        return x

    ds = Dataset.range(200).map(fn, num_parallel_calls=2, deterministic=False, executor="ray")
    out = []
    for x in ds:
        out.append(x)
        if len(out) == 30:
            Path(flag).touch()
    assert 0 not in out[:30]
    assert sorted(out) == list(range(200))


def test_errors_keep_the_users_traceback_and_position() -> None:
    it = iter(_FAILING)
    assert [next(it) for _ in range(5)] == [1, 2, 3, 4, 5]
    with pytest.raises(KeyError, match="bad element 5") as info:
        next(it)
    assert "_fails_at_5" in str(info.value.__cause__)  # the traceback from the actor
    assert any("map" in n for n in getattr(info.value, "__notes__", []))
    assert list(it) == [x + 1 for x in range(6, 20)]


def test_ignore_errors_drops_only_the_failing_element() -> None:
    assert list(_FAILING.ignore_errors()) == [x + 1 for x in range(20) if x != 5]


def test_random_map_draws_the_same_as_threads() -> None:
    def noisy(x: int, rng: np.random.Generator) -> float:
        return float(x + rng.random())

    def run(executor: str) -> list[float]:
        ds = Dataset.range(50).random_map(noisy, seed=3, num_parallel_calls=2, executor=executor)
        return list(ds)

    assert run("ray") == run("thread")


def test_arrays_arrive_read_only_from_the_object_store() -> None:
    ds = Dataset.range(8).map(
        lambda x: np.full(300_000, x, np.uint8), num_parallel_calls=2, executor="ray"
    )
    out = list(ds)
    assert [int(a[0]) for a in out] == list(range(8))
    assert not out[0].flags.writeable


def test_the_input_is_pulled_a_bounded_window_ahead() -> None:
    pulled = [0]

    def source() -> Any:
        for i in range(100_000):
            pulled[0] += 1
            yield i

    def ms(x: int) -> int:
        time.sleep(0.001)
        return x

    # ~1 ms elements: calls of ~30 elements, 2 actors x 2 calls in flight, one more call
    # each waiting: a window of a few hundred elements.
    ds = Dataset.from_generator(source).map(ms, num_parallel_calls=2, executor="ray")
    it = iter(ds)
    for _ in range(300):
        next(it)
    time.sleep(0.5)  # the stage pulls nothing while nobody asks
    ahead = pulled[0] - 300
    assert ahead <= 2 * it._run.slots * it._run.chunk_size(0, 0) + 2 * 64, ahead
    assert ahead < 5_000, ahead
    it.close()


def test_a_killed_actor_loses_and_repeats_nothing(ray_cluster: Any) -> None:
    def slow(x: int) -> int:
        time.sleep(0.005)
        return x

    ds = Dataset.range(400).map(slow, num_parallel_calls=2, executor="ray")
    it = ds.iterator()
    out = [next(it) for _ in range(40)]
    ex = it._run
    ray_cluster.kill(ex.actor_handles[0])
    out.extend(it)
    assert out == list(range(400))
    assert ex.restarts >= 1


def test_checkpoint_restores_on_ray_and_passes_reuse_the_actors(assert_stopped: Any) -> None:
    it = _SQUARES.iterator()
    head = [next(it) for _ in range(13)]
    handles = it._run.actor_handles
    assert it._run.restarts == 0 and len(handles) == 2
    info = it.stage_info()
    assert info["executor"] == "ray" and info["parallelism"] == 2 and info["capacity"] > 0
    state = it.get_state()
    rest = list(it)  # the pass ends: its actors are kept for the next one
    restored = _SQUARES.iterator(state)
    assert list(restored) == rest
    assert head + rest == [x * x for x in range(300)]
    again = _SQUARES.iterator()
    assert next(again) == 0
    assert again._run.actor_handles == handles  # the same actors, not new ones
    again.close()  # mid-pass: the actors stop
    for h in handles:
        assert_stopped(h)


def test_configure_rejects_unknown_settings() -> None:
    with pytest.raises(TypeError, match="unknown setting"):
        stoker.ray.configure(adress="auto")


def test_options_executor_sends_every_auto_map_to_ray() -> None:
    ds = Dataset.range(10).map(_square, num_parallel_calls=2)  # executor="auto"
    ds = ds.with_options(stoker.Options(executor="ray"))
    it = ds.iterator()
    assert list(it) == [x * x for x in range(10)]
    assert it.executor_info["executor"] == "ray"
    thread = Dataset.range(10).map(_square, num_parallel_calls=2, executor="thread")
    it = thread.with_options(stoker.Options(executor="ray")).iterator()
    assert list(it) == [x * x for x in range(10)]
    assert it.executor_info["executor"] == "thread"  # named on the map: kept
    with pytest.raises(ValueError, match="executor"):
        stoker.Options(executor="")


def test_a_dropped_iterator_stops_its_actors(assert_stopped: Any) -> None:
    import gc

    ds = Dataset.range(1000).map(_square, num_parallel_calls=1, executor="ray")
    it = ds.iterator()
    next(it)
    handles = it._run.actor_handles
    del it
    gc.collect()
    for h in handles:
        assert_stopped(h)


def test_a_result_ray_cannot_send_fails_only_its_element() -> None:
    import threading

    ds = Dataset.range(8).map(
        lambda x: threading.Lock() if x == 3 else int(x), num_parallel_calls=1, executor="ray"
    )
    it = iter(ds)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(TypeError, match="lock that cannot be sent back from the Ray actor"):
        next(it)
    assert list(it) == [4, 5, 6, 7]


def test_under_prefetch_the_stage_runs_from_prefetchs_thread() -> None:
    # Ray is already connected (on the main thread), so the stage may start on another.
    assert list(_SQUARES.prefetch(4)) == [x * x for x in range(300)]
