"""map(num_parallel_calls=...): order, checkpoints, errors, executors, bounds."""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time

import numpy as np
import pytest

import stoker as sk
from stoker import AUTOTUNE, Dataset, Options, WorkerError
from stoker.exec import _gil, auto
from stoker.exec.processes import RemoteTraceback
from stoker.testing import assert_checkpoint_roundtrip

EXECUTORS = ["thread", "process", "auto"]


def _ints(ds):
    return [int(x) for x in ds]


def _square(x):
    return x * x


def _slow_square(x):
    time.sleep(0.001 * (int(x) % 3))
    return x * x


def _fails_at_5(x):
    if x == 5:
        raise ValueError(f"bad element {x}")
    return x


def assert_exactly_once_roundtrip(ds, max_elements=200):
    """deterministic=False: resuming at any step gives each remaining element once."""
    states, elements = [], []
    with ds.iterator() as it:
        for _ in range(max_elements):
            states.append(it.get_state())
            try:
                elements.append(int(next(it)))
            except StopIteration:
                break
    for step, state in enumerate(states):
        state = json.loads(json.dumps(state))
        with ds.iterator(state) as resumed:
            rest = _ints(resumed)
        assert collections.Counter(rest) == collections.Counter(elements[step:]), step
    return len(elements)


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("npc", [1, 2, AUTOTUNE])
def test_deterministic_order_matches_sequential(executor, npc):
    ds = Dataset.range(40).map(_slow_square, num_parallel_calls=npc, executor=executor)
    assert _ints(ds) == [x * x for x in range(40)]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_nondeterministic_returns_every_element_once(executor):
    ds = Dataset.range(60).map(
        _slow_square, num_parallel_calls=4, deterministic=False, executor=executor
    )
    assert sorted(_ints(ds)) == [x * x for x in range(60)]


def test_options_deterministic_is_the_default():
    def slow_first(x):
        if x == 0:
            time.sleep(0.5)
        return x

    ds = (
        Dataset.range(8)
        .map(slow_first, num_parallel_calls=4, executor="thread")
        .with_options(Options(deterministic=False))
    )
    out = _ints(ds)
    assert sorted(out) == list(range(8)) and out[0] != 0


def test_a_slow_element_does_not_hold_back_the_others_when_nondeterministic():
    release = threading.Event()

    def fn(x):
        if x == 0:
            release.wait(10)
        return x

    ds = Dataset.range(30).map(fn, num_parallel_calls=4, deterministic=False, executor="thread")
    it = iter(ds)
    got = [int(next(it)) for _ in range(20)]  # element 0 is still blocked
    assert 0 not in got
    release.set()
    assert sorted(got + _ints(it)) == list(range(30))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_checkpoint_roundtrip(executor):
    ds = Dataset.range(30).map(_square, num_parallel_calls=2, executor=executor)
    assert assert_checkpoint_roundtrip(ds, every=3 if executor == "process" else 1) == 30


@pytest.mark.parametrize("npc", [1, 3])
def test_checkpoint_roundtrip_of_a_partial_pipeline(npc):
    ds = (
        Dataset.range(50)
        .shuffle(10, seed=1)
        .map(_square, num_parallel_calls=npc, executor="thread")
        .batch(3)
    )
    assert_checkpoint_roundtrip(ds)


def test_checkpoint_roundtrip_random_map_matches_sequential():
    def aug(x, rng):
        return x + rng.integers(0, 1000)

    par = Dataset.range(25).random_map(aug, seed=7, num_parallel_calls=3, executor="process")
    seq = Dataset.range(25).random_map(aug, seed=7)
    assert _ints(par) == _ints(seq)
    assert_checkpoint_roundtrip(par, every=4)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_exactly_once_roundtrip_when_nondeterministic(executor):
    ds = Dataset.range(30).map(
        _slow_square, num_parallel_calls=3, deterministic=False, executor=executor
    )
    assert assert_exactly_once_roundtrip(ds) == 30


def test_a_sequential_map_state_restores_into_a_parallel_map():
    seq = Dataset.range(20).map(_square)
    par = Dataset.range(20).map(_square, num_parallel_calls=2, executor="thread")
    it = iter(seq)
    for _ in range(7):
        next(it)
    assert _ints(par.iterator(it.get_state())) == [x * x for x in range(7, 20)]


def test_set_state_after_start_stops_and_restarts():
    ds = Dataset.range(50).map(_slow_square, num_parallel_calls=4, executor="thread")
    it = iter(ds)
    for _ in range(5):
        next(it)
    state = it.get_state()
    for _ in range(10):
        next(it)
    it.set_state(state)
    assert _ints(it) == [x * x for x in range(5, 50)]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_user_error_reaches_the_consumer_at_its_position(executor):
    ds = Dataset.range(10).map(_fails_at_5, num_parallel_calls=3, executor=executor)
    it = iter(ds)
    got = []
    with pytest.raises(ValueError, match="bad element 5") as info:
        for x in it:
            got.append(int(x))
    assert got == [0, 1, 2, 3, 4]
    notes = getattr(info.value, "__notes__", [])
    assert any("_fails_at_5" in n and "map[" in n and "element 5" in n for n in notes)
    if executor == "thread":
        frames = [code.co_name for code in _walk_tb(info.value.__traceback__)]
        assert "_fails_at_5" in frames, "the user's traceback must be kept"
    else:
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert "_fails_at_5" in info.value.__cause__.text
    assert _ints(it) == [6, 7, 8, 9], "iteration continues after the failed element"


def _walk_tb(tb):
    while tb is not None:
        yield tb.tb_frame.f_code
        tb = tb.tb_next


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_ignore_errors_skips_failed_elements(executor):
    ds = Dataset.range(10).map(_fails_at_5, num_parallel_calls=2, executor=executor)
    assert _ints(ds.ignore_errors()) == [0, 1, 2, 3, 4, 6, 7, 8, 9]


def test_input_errors_keep_their_position():
    def gen():
        yield from range(3)

    def boom(x):
        if x == 3:
            raise KeyError("upstream")
        return x

    ds = Dataset.range(6).map(boom).map(_square, num_parallel_calls=3, executor="thread")
    it = iter(ds)
    assert [int(next(it)) for _ in range(3)] == [0, 1, 4]
    with pytest.raises(KeyError, match="upstream"):
        next(it)
    assert _ints(it) == [16, 25]


def test_stop_iteration_in_the_function_is_a_runtime_error():
    def fn(x):
        raise StopIteration

    with pytest.raises(RuntimeError, match="StopIteration"):
        list(Dataset.range(3).map(fn, num_parallel_calls=2, executor="thread"))


def test_a_dying_worker_raises_worker_error_not_a_hang():
    def fn(x):
        if x == 4:
            os._exit(7)
        return x

    start = time.monotonic()
    with pytest.raises(WorkerError, match="exited with code 7") as info:
        list(Dataset.range(20).map(fn, num_parallel_calls=2, executor="process").ignore_errors())
    assert "map[" in str(info.value)
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("executor", ["thread", "process"])
@pytest.mark.parametrize("npc", [1, 2, 4])
def test_buffers_stay_bounded_with_a_slow_consumer(executor, npc):
    ds = Dataset.range(10_000).map(_square, num_parallel_calls=npc, executor=executor)
    it = iter(ds)
    next(it)
    time.sleep(0.3)
    pulled = it._cursor.seq
    bound = 2 * it._run.slots * 64 + 1
    assert pulled <= bound, (pulled, bound)
    it.close()


def test_auto_runs_cheap_functions_inline():
    it = iter(Dataset.range(200).map(lambda x: x + 1, num_parallel_calls=AUTOTUNE))
    assert _ints(it) == list(range(1, 201))
    assert it.executor_info["executor"] == "inline"


def test_auto_keeps_waiting_functions_on_many_threads():
    def wait(x):
        time.sleep(0.005)
        return x

    it = iter(Dataset.range(60).map(wait, num_parallel_calls=AUTOTUNE))
    assert _ints(it) == list(range(60))
    info = it.executor_info
    assert info["executor"] == "thread" and info["waiting"], info
    assert it._run is None or it._run.slots > os.cpu_count()


def _python_loop(x):
    s = 0
    for i in range(20_000):
        s += i
    return x


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_auto_moves_gil_holding_python_to_processes():
    ds = (
        Dataset.range(120).map(_python_loop, num_parallel_calls=2).with_options(Options(stats=True))
    )
    it = iter(ds)
    assert _ints(it) == list(range(120))
    assert it.executor_info["executor"] == "process", it.executor_info
    assert sk.stats.collect(it)[it.stage]["executor"] == "process"


def test_process_workers_are_reused_across_epochs():
    ds = Dataset.range(12).map(lambda x: os.getpid(), num_parallel_calls=2, executor="process")
    first = set(_ints(ds))
    second = set(_ints(ds))
    assert first == second, "the second pass must run on the first pass's workers"
    assert set(_ints(ds.repeat(2))) <= first | set(_ints(ds.repeat(2)))


def test_per_worker_seeding_is_reproducible_with_a_seed():
    def draw(x):
        return np.random.randint(0, 1 << 30) + 0 * x

    def run(seed):
        ds = (
            Dataset.range(16)
            .map(draw, num_parallel_calls=2, executor="process")
            .with_options(Options(seed=seed))
        )
        return _ints(ds)

    a, b = run(3), run(3)
    assert a == b
    assert len(set(a)) == len(a), "elements must draw different numbers"
    assert run(4) != a


def test_workers_draw_differently_without_a_seed():
    def draw(x):
        return np.random.randint(0, 1 << 30) + 0 * x

    out = _ints(Dataset.range(16).map(draw, num_parallel_calls=2, executor="process"))
    assert len(set(out)) == len(out)


def test_stats_record_elements_busy_and_wait_time():
    ds = (
        Dataset.range(20)
        .map(_slow_square, num_parallel_calls=2, executor="thread")
        .with_options(Options(stats=True))
    )
    it = iter(ds)
    _ints(it)
    stats = sk.stats.collect(it)[it.stage]
    assert stats["elements"] == 20 and stats["busy_s"] > 0 and stats["executor"] == "thread"


def test_unpicklable_function_with_process_executor_is_a_type_error():
    lock = threading.Lock()
    with pytest.raises(TypeError, match="executor='thread'"):
        list(Dataset.range(3).map(lambda x: (lock, x)[1], num_parallel_calls=2, executor="process"))


def test_a_stack_of_parallel_stages_matches_the_sequential_pipeline():
    def aug(x, rng):
        return x * 10 + rng.integers(0, 5)

    def build(par):
        def inner(i):
            return Dataset.range(i * 3).map(lambda y: y + 100 * i)

        return (
            Dataset.range(6)
            .interleave(
                inner, cycle_length=3, block_length=2, num_parallel_calls=3 if par else None
            )
            .random_map(aug, seed=1, num_parallel_calls=2 if par else None, executor="process")
            .prefetch(3 if par else 0)
            .batch(4, num_parallel_calls=2 if par else None)
            .map(lambda b: b.sum(), num_parallel_calls=3 if par else None, executor="thread")
            .prefetch(2 if par else 0)
        )

    assert _ints(build(True)) == _ints(build(False))
    assert_checkpoint_roundtrip(build(True), every=2)


def test_inline_resumes_a_nondeterministic_state():
    release = threading.Event()

    def first_waits(x):
        if x == 0:
            release.wait(10)
        return x

    nondet = Dataset.range(40).map(
        first_waits, num_parallel_calls=4, deterministic=False, executor="thread"
    )
    it = iter(nondet)
    got = [int(next(it)) for _ in range(12)]
    state = it.get_state()
    release.set()
    it.close()
    assert 0 not in got and len(state["ahead"]) == 12
    inline = Dataset.range(40).map(lambda x: x, num_parallel_calls=AUTOTUNE)
    auto.remember(inline, _gil.Decision("inline", "test", 1e-6, 1.0))
    resumed = inline.iterator(state)
    rest = _ints(resumed)
    assert resumed.executor_info["executor"] == "inline"
    assert sorted(got + rest) == list(range(40))


def _exits_at_3(x):
    if x == 3:
        sys.exit(0)
    return x


@pytest.mark.parametrize("executor", EXECUTORS)
def test_system_exit_in_a_worker_is_an_error_of_the_stage(executor):
    # sys.exit(0) inside a map function must not end the consumer's program with status 0.
    ds = Dataset.range(10).map(_exits_at_3, num_parallel_calls=2, executor=executor)
    with pytest.raises(WorkerError, match=r"stage map\[\d+\]: SystemExit\(0\).*element 3") as info:
        list(ds)
    assert isinstance(info.value.__cause__, SystemExit)
    if executor == "process":  # the worker's traceback is kept
        assert isinstance(info.value.__cause__.__cause__, RemoteTraceback)
        assert "_exits_at_3" in info.value.__cause__.__cause__.text


def test_system_exit_below_prefetch_and_interleave_is_an_error_of_the_stage():
    with pytest.raises(WorkerError, match=r"prefetch\[\d+\]: SystemExit"):
        list(Dataset.range(10).map(_exits_at_3).prefetch(2))
    with pytest.raises(WorkerError, match=r"interleave\[\d+\]: SystemExit"):
        list(
            Dataset.range(4).interleave(
                lambda x: Dataset.range(5).map(_exits_at_3), cycle_length=2, num_parallel_calls=2
            )
        )


def test_keyboard_interrupt_in_a_function_still_reaches_the_consumer():
    def fn(x):
        if x == 3:
            raise KeyboardInterrupt
        return x

    with pytest.raises(KeyboardInterrupt):
        list(Dataset.range(10).map(fn, num_parallel_calls=2, executor="thread"))


def _stage_pipelines():
    return {
        "map-thread": lambda: Dataset.range(400).map(
            _square, num_parallel_calls=3, executor="thread"
        ),
        "map-process": lambda: Dataset.range(400).map(
            _square, num_parallel_calls=2, executor="process"
        ),
        "map-auto": lambda: Dataset.range(400).map(_slow_square, num_parallel_calls=2),
        "interleave": lambda: Dataset.range(8).interleave(
            lambda x: Dataset.range(50), cycle_length=2, num_parallel_calls=2
        ),
        "batch": lambda: (
            Dataset.range(400).map(lambda x: np.full(50_000, x)).batch(8, num_parallel_calls=2)
        ),
        "prefetch": lambda: Dataset.range(400).prefetch(3),
    }


@pytest.mark.parametrize("name", list(_stage_pipelines()))
def test_stage_info_reports_current_values_from_another_thread(name):
    it = iter(_stage_pipelines()[name]())
    keys = {"parallelism", "executor", "buffered", "in_flight", "capacity"}
    before = it.stage_info()
    assert keys <= set(before) and before["in_flight"] == 0
    seen, errors, stop = [], [], threading.Event()

    def watch():
        try:
            while not stop.is_set():
                seen.append(it.stage_info())
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i, _ in enumerate(it):
            if i == 20:
                time.sleep(0.2)  # a slow consumer: the stage fills its buffers
                info = it.stage_info()
                if info["executor"] != "inline":  # inline work is never ahead
                    # Ahead of the consumer: done (buffered), or done and not yet polled
                    # (executors count those as in flight until the consumer looks).
                    assert info["buffered"] + info["in_flight"] > 0, info
    finally:
        stop.set()
        watcher.join()
    assert not errors, errors
    assert seen
    for info in seen:
        assert keys <= set(info)
        assert isinstance(info["executor"], str) and info["executor"]
        assert info["parallelism"] >= 1
        assert 0 <= info["buffered"] and 0 <= info["in_flight"]
        assert all(isinstance(info[k], int) for k in keys - {"executor"})
    if name == "map-process":
        assert {i["executor"] for i in seen} == {"process"}
        assert max(i["capacity"] for i in seen) >= 2
    it.close()
