"""``interleave(..., executor="ray")``: tf.data's order, errors and faults on Ray actors.

Every expectation is the local interleave's own output on the same pipeline, so the Ray
stage is checked element for element against it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

import stoker
from stoker import Dataset
from stoker.errors import WorkerError

pytest.importorskip("ray")

import stoker.ray  # registers executor="ray"
from stoker.ray._interleave import RayInterleaveIterator


def _inner(x: Any) -> Dataset:
    """Input element ``x`` -> ``3x + 1`` elements ``(x, i)``: files of uneven lengths."""
    n = int(x)
    return Dataset.range(3 * n + 1).map(lambda i: (n, int(i)))


def _pairs(out: list[Any]) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in out]


@pytest.mark.parametrize(("cycle", "block", "actors"), [(2, 1, 2), (3, 2, 1), (1, 5, 1), (4, 3, 2)])
def test_order_is_the_local_interleaves(cycle: int, block: int, actors: int) -> None:
    src = Dataset.range(9)
    local = src.interleave(_inner, cycle_length=cycle, block_length=block)
    it = src.interleave(
        _inner,
        cycle_length=cycle,
        block_length=block,
        num_parallel_calls=actors,
        executor="ray",
    ).iterator()
    assert _pairs(list(it)) == _pairs(list(local))
    assert it.executor_info["executor"] == "ray"


def test_options_executor_sends_a_parallel_interleave_to_ray() -> None:
    ds = Dataset.range(5).interleave(_inner, cycle_length=2, num_parallel_calls=1)
    it = ds.with_options(stoker.Options(executor="ray")).iterator()
    out = list(it)
    assert isinstance(it, RayInterleaveIterator)
    assert _pairs(out) == _pairs(list(ds))
    with pytest.raises(ValueError, match="executor"):
        Dataset.range(2).interleave(_inner, executor="rey")


def _bad_open(x: Any) -> Dataset:
    if int(x) == 2:
        raise KeyError(f"cannot open file {int(x)}")
    return _inner(x)


def _bad_element(x: Any) -> Dataset:
    n = int(x)

    def check(i: Any) -> Any:
        if n == 1 and int(i) == 2:
            raise ValueError(f"corrupt record {int(i)} of file {n}")
        return (n, int(i))

    return Dataset.range(3 * n + 1).map(check)


def _until_error(it: Any) -> tuple[list[Any], BaseException | None]:
    out: list[Any] = []
    while True:
        try:
            out.append(next(it))
        except StopIteration:
            return out, None
        except Exception as e:
            return out, e


@pytest.mark.parametrize("fn", [_bad_open, _bad_element])
def test_errors_come_at_the_local_position_with_the_actors_traceback(fn: Any) -> None:
    src = Dataset.range(5)
    kw = {"cycle_length": 2, "block_length": 2}
    local_it = iter(src.interleave(fn, **kw))
    ray_it = iter(src.interleave(fn, num_parallel_calls=1, executor="ray", **kw))
    local_head, local_err = _until_error(local_it)
    ray_head, ray_err = _until_error(ray_it)
    assert _pairs(ray_head) == _pairs(local_head)
    assert type(ray_err) is type(local_err) and str(ray_err) == str(local_err)
    assert fn.__name__ in str(ray_err.__cause__)  # the traceback from the actor
    # Both go on after the error, to the same end.
    assert _pairs(list(ray_it)) == _pairs(list(local_it))


def test_ignore_errors_drops_what_the_local_interleave_drops() -> None:
    src = Dataset.range(6)
    kw = {"cycle_length": 3, "block_length": 2}
    local = src.interleave(_bad_element, **kw).ignore_errors()
    ray = src.interleave(_bad_element, num_parallel_calls=1, executor="ray", **kw)
    assert _pairs(list(ray.ignore_errors())) == _pairs(list(local))


def test_deterministic_false_serves_what_is_ready(tmp_path: Path) -> None:
    # Input element 0's file waits until the consumer has 20 elements of the others: in
    # the deterministic order it would block the pipeline (for its 60 s), here it must not.
    # (Files share the two actors: those behind file 0 on its actor wait too; the other
    # actor's files bring 40.)
    flag = str(tmp_path / "go")

    def files(x: Any) -> Dataset:
        n = int(x)

        def slow(i: Any) -> Any:
            if n == 0:
                deadline = time.monotonic() + 60
                while not os.path.exists(flag) and time.monotonic() < deadline:
                    time.sleep(0.01)
            return (n, int(i))

        return Dataset.range(20).map(slow)

    ds = Dataset.range(6).interleave(
        files, cycle_length=3, num_parallel_calls=2, deterministic=False, executor="ray"
    )
    out: list[tuple[int, int]] = []
    for x in ds:
        out.append((int(x[0]), int(x[1])))
        if len(out) == 20:
            Path(flag).touch()
    assert all(n != 0 for n, _ in out[:20])
    assert sorted(out) == [(n, i) for n in range(6) for i in range(20)]
    for n in range(6):  # each file's own elements in order
        assert [i for m, i in out if m == n] == list(range(20))


def _slow_files(x: Any) -> Dataset:
    n = int(x)

    def slow(i: Any) -> Any:
        time.sleep(0.002)
        return (n, int(i))

    return Dataset.range(60).map(slow)


def test_a_killed_actor_restarts_its_files_where_they_were(ray_cluster: Any) -> None:
    src = Dataset.range(6)
    kw = {"cycle_length": 3, "block_length": 4}
    expected = _pairs(list(src.interleave(_slow_files, **kw)))
    it = src.interleave(_slow_files, num_parallel_calls=2, executor="ray", **kw).iterator()
    out = [next(it) for _ in range(50)]
    run = it._run
    ray_cluster.kill(run.actor_handles[0])
    out.extend(it)
    assert _pairs(out) == expected  # nothing lost, nothing twice, the same order
    assert run.restarts >= 1


def _crashes(x: Any) -> Dataset:
    n = int(x)

    def crash(i: Any) -> Any:
        if n == 1 and int(i) == 3:
            os._exit(3)  # the actor's process dies, every time
        return (n, int(i))

    return Dataset.range(5).map(crash)


def test_an_input_element_that_kills_every_actor_is_raised_naming_it() -> None:
    ds = Dataset.range(3).interleave(_crashes, cycle_length=2, num_parallel_calls=1, executor="ray")
    it = iter(ds)
    with pytest.raises(WorkerError, match="input element 1"):
        while True:
            next(it)


def test_checkpoints_restore_on_ray_and_from_the_local_interleave() -> None:
    src = Dataset.range(8)
    kw = {"cycle_length": 3, "block_length": 2}
    expected = _pairs(list(src.interleave(_inner, **kw)))
    ray_ds = src.interleave(_inner, num_parallel_calls=2, executor="ray", **kw)
    it = ray_ds.iterator()
    head = [next(it) for _ in range(17)]
    state = it.get_state()
    it.close()
    rest = list(ray_ds.iterator(state))
    assert _pairs(head + rest) == expected
    for npc in (None, 2):  # the sequential interleave's state, and the threads'
        local = src.interleave(_inner, num_parallel_calls=npc, **kw).iterator()
        head = [next(local) for _ in range(23)]
        state = local.get_state()
        local.close()
        rest = list(ray_ds.iterator(state))
        assert _pairs(head + rest) == expected


_KEPT = Dataset.range(4).interleave(_inner, cycle_length=2, num_parallel_calls=2, executor="ray")


def test_passes_reuse_the_actors_and_close_stops_them(assert_stopped: Any) -> None:
    expected = _pairs(list(Dataset.range(4).interleave(_inner, cycle_length=2)))
    it = _KEPT.iterator()
    assert _pairs([next(it) for _ in range(3)]) == expected[:3]
    handles = it._run.actor_handles
    assert len(handles) == 2 and it.stage_info()["executor"] == "ray"
    assert _pairs(list(it)) == expected[3:]  # the pass ends: its actors are kept
    again = _KEPT.iterator()
    assert _pairs([next(again)]) == expected[:1]
    assert again._run.actor_handles == handles  # the same actors, not new ones
    again.close()  # mid-pass: the actors stop
    for h in handles:
        assert_stopped(h)
