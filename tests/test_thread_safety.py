"""One iterator shared by several threads: every element exactly once, nothing breaks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import stoker as sk
from stoker import AUTOTUNE, Dataset

_DEADLINE_S = 120.0  # a hang fails the test instead of blocking the run


def _square(x: Any) -> Any:
    return x * x


def _drain_from_threads(it: Any, threads: int = 4) -> list[int]:
    got: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(out: list[int]) -> None:
        try:
            for x in it:
                out.append(int(x))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    workers = [threading.Thread(target=work, args=(g,), daemon=True) for g in got]
    for w in workers:
        w.start()
    deadline = time.monotonic() + _DEADLINE_S
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
    alive = [w for w in workers if w.is_alive()]
    it.close()
    assert not alive, f"{len(alive)} threads still iterating after {_DEADLINE_S} s (hang)"
    assert not errors, errors
    return [x for g in got for x in g]


PIPELINES: dict[str, Callable[[], Dataset]] = {
    "sequential": lambda: Dataset.range(10_000).map(_square).batch(4).unbatch(),
    "thread": lambda: Dataset.range(10_000).map(_square, num_parallel_calls=2, executor="thread"),
    "process": lambda: Dataset.range(3_000).map(_square, num_parallel_calls=2, executor="process"),
    "autotune": lambda: (
        Dataset.range(10_000).map(_square, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    ),
    "prefetch": lambda: Dataset.range(10_000).shuffle(100, seed=0).prefetch(4),
}


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_each_element_exactly_once_across_threads(kind: str) -> None:
    ds = PIPELINES[kind]()
    expected = sorted(int(x) for x in ds)
    got = _drain_from_threads(iter(ds))
    assert sorted(got) == expected


def test_get_state_while_other_threads_iterate() -> None:
    ds = Dataset.range(5_000).map(_square, num_parallel_calls=2, executor="thread")
    it = iter(ds)
    states: list[dict[str, Any]] = []
    stop = threading.Event()

    def checkpoint() -> None:
        while not stop.is_set():
            states.append(it.get_state())

    saver = threading.Thread(target=checkpoint, daemon=True)
    saver.start()
    try:
        got = _drain_from_threads(it, threads=3)
    finally:
        stop.set()
        saver.join(_DEADLINE_S)
    assert sorted(got) == sorted(int(x) for x in ds)
    assert states, "no state was taken"
    # Each state is a consistent position: resuming from it gives exactly the rest.
    state = states[len(states) // 2]
    with ds.iterator(state) as resumed:
        rest = [int(x) for x in resumed]
    assert rest == [int(x) for x in ds][len(ds) - len(rest) :]


def test_close_while_other_threads_iterate() -> None:
    ds = Dataset.range(1_000_000).map(_square, num_parallel_calls=2, executor="thread")
    it = iter(ds)
    seen: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for x in it:
                seen.append(int(x))
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(3)]
    for w in workers:
        w.start()
    while len(seen) < 100:
        time.sleep(0.001)
    it.close()
    for w in workers:
        w.join(_DEADLINE_S)
    assert not any(w.is_alive() for w in workers), "a thread kept iterating after close()"
    assert not errors, errors
    assert len(set(seen)) == len(seen)
    with pytest.raises(StopIteration):
        next(it)


def test_set_state_from_another_thread_is_serialised() -> None:
    ds = Dataset.range(2_000).batch(2)
    it = iter(ds)
    next(it)
    state = it.get_state()
    out: list[Any] = []
    t = threading.Thread(target=lambda: (it.set_state(state), out.append(next(it))))
    t.start()
    t.join(_DEADLINE_S)
    assert [int(v) for v in out[0]] == [2, 3]
    assert sk.stats.collect(it)  # the counters survive concurrent use
