"""The controller on real pipelines: it tunes, it stays within budgets, it shows its
decisions, it leaves no thread behind, and it never changes what a pipeline yields.

No timing bars: growth is awaited with generous deadlines, and semantics are checked
while a fast "chaos" tuner moves every knob at random under the pipeline.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from stoker import AUTOTUNE, Dataset, Options
from stoker.autotune import _tuner as T
from stoker.autotune import tuner_for
from stoker.testing import assert_checkpoint_roundtrip

# A deadline no loaded machine reaches; tests end as soon as the condition holds.
_DEADLINE_S = 60.0


def _sleep_ms(x: int, ms: float = 4.0) -> int:
    time.sleep(ms / 1000)
    return x


def _burn(x: int) -> int:
    # CPU-bound with the GIL released (hashlib on large buffers).
    return int(hashlib.sha256(bytes(200_000)).digest()[0]) + x


def _tuner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stoker-autotune-")]


def _knob_info(it: Any, label_part: str) -> dict[str, Any]:
    for s in it.stats().to_dict()["stages"]:
        if label_part in s["name"] and s.get("autotune"):
            return s["autotune"]  # type: ignore[no-any-return]
    raise AssertionError(f"no AUTOTUNE record for a stage named like {label_part!r}")


def _run_until(it: Iterator[Any], done: Any) -> int:
    n = 0
    deadline = time.monotonic() + _DEADLINE_S
    for _ in it:
        n += 1
        if n % 16 == 0 and done():
            return n
        assert time.monotonic() < deadline, "condition not reached before the deadline"
    raise AssertionError("the pipeline ended before the condition held")


def _wait_gone(deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while _tuner_threads():
        gc.collect()
        assert time.monotonic() < deadline, f"left behind: {_tuner_threads()}"
        time.sleep(0.02)


# -- tuning ---------------------------------------------------------------------------------


def test_parallelism_of_a_sleep_bound_map_rises_over_time() -> None:
    ds = Dataset.range(10**6).map(_sleep_ms, num_parallel_calls=AUTOTUNE, executor="thread")
    with ds.iterator() as it:
        assert it.stage_info()["parallelism"] == 1  # starts small
        _run_until(it, lambda: it.stage_info()["parallelism"] >= 8)
        info = _knob_info(it, "map(_sleep_ms)")
    assert info["autotune"] is True and info["start"] == 1 and info["changes"] >= 1
    assert "calls wait" in info["last_change"]["reason"]


def test_a_waiting_stage_exceeds_a_cpu_budget_that_a_burning_one_keeps() -> None:
    ds = (
        Dataset.range(10**6)
        .map(_sleep_ms, num_parallel_calls=AUTOTUNE, executor="thread")
        .map(_burn, num_parallel_calls=AUTOTUNE, executor="thread")
        .with_options(Options(cpu_budget=1))
    )
    seen: list[int] = []
    with ds.iterator() as it:
        tuner = tuner_for(it._ctx)
        assert tuner is not None

        def done() -> bool:
            knobs = {k.label: k for k in tuner.knobs()}
            burn, sleep = knobs["map(_burn)"], knobs["map(_sleep_ms)"]
            seen.append(burn.value)
            return sleep.value > 1 and burn.measured and not burn.waiting

        _run_until(it, done)
    # The burning stage's single worker is the whole budget; it never had more while it
    # was known to burn (the rules' tests check the arithmetic of sharing).
    assert max(seen) <= 2


def test_cpu_budget_one_uses_about_one_core() -> None:
    ds = (
        Dataset.range(10**6)
        .map(_burn, num_parallel_calls=AUTOTUNE, executor="thread")
        .with_options(Options(cpu_budget=1))
    )
    with ds.iterator() as it:
        next(it)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(400):
            next(it)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        value = it.stage_info()["parallelism"]
    # Load only lowers what we get; the margin covers the consumer's own work.
    assert cpu / wall < 1.6, (cpu, wall, value)


def test_explicit_values_are_untouched() -> None:
    ds = (
        Dataset.range(2000)
        .map(_sleep_ms, num_parallel_calls=3, executor="thread")
        .prefetch(2)
        .map(lambda x: x + 1, num_parallel_calls=2, executor="thread")
    )
    with ds.iterator() as it:
        for _ in range(300):
            next(it)
            assert it.stage_info()["parallelism"] == 2
        stages = it.stats().to_dict()["stages"]
    by_name = {s["name"]: s for s in stages}
    sleeper = by_name["map(_sleep_ms)"]
    assert sleeper["parallelism"] == 3
    assert sleeper["autotune"]["autotune"] is False and sleeper["autotune"]["changes"] == 0
    assert by_name["prefetch"]["autotune"] is None  # an explicit buffer has no knob


def test_autotune_false_is_static_and_starts_no_thread() -> None:
    _wait_gone()
    ds = (
        Dataset.range(3000)
        .map(_sleep_ms, num_parallel_calls=AUTOTUNE, executor="thread")
        .prefetch(AUTOTUNE)
        .with_options(Options(autotune=False, cpu_budget=2))
    )
    with ds.iterator() as it:
        for _ in range(200):
            next(it)
            assert not _tuner_threads()
        assert tuner_for(it._ctx) is None
        report = it.stats()
    assert all(s.autotune is None for s in report.stages)
    by_name = {s.name: s for s in report.stages}
    assert by_name["map(_sleep_ms)"].parallelism == 2  # today's: the CPU budget
    assert "AUTOTUNE" not in str(report)


# -- visibility -----------------------------------------------------------------------------


def test_decisions_are_in_the_report_and_the_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    ds = (
        Dataset.range(10**6)
        .map(_sleep_ms, num_parallel_calls=AUTOTUNE, executor="thread")
        .prefetch(AUTOTUNE)
    )
    with caplog.at_level(logging.DEBUG, logger="stoker.autotune"):
        with ds.iterator() as it:
            _run_until(it, lambda: _knob_info(it, "map(")["changes"] >= 2)
            report = it.stats()
    text = str(report)
    assert "AUTOTUNE" in text and "map(_sleep_ms): parallelism" in text
    assert "last change at" in text and "calls wait" in text
    d = json.loads(json.dumps(report.to_dict()))
    rec = next(s for s in d["stages"] if s["name"] == "map(_sleep_ms)")
    a = rec["autotune"]
    # (The stage applies a new value on its next call: the two may differ for a moment.)
    assert a["knob"] == "parallelism" and a["value"] >= 2 and rec["parallelism"] >= 1
    assert set(a["last_change"]) == {"at_s", "from", "to", "reason"}
    assert set(a["measured"]) >= {"rate", "busy", "cpu_share", "cores", "wait_share"}
    pre = next(s for s in d["stages"] if s["name"] == "prefetch")
    assert pre["autotune"]["knob"] == "buffer"
    logged = [r.getMessage() for r in caplog.records if r.name == "stoker.autotune"]
    assert any("map(_sleep_ms): parallelism 1 -> " in m for m in logged), logged


# -- lifetime -------------------------------------------------------------------------------


def test_the_tuner_thread_ends_after_close() -> None:
    _wait_gone()
    ds = Dataset.range(10**6).map(_sleep_ms, num_parallel_calls=AUTOTUNE, executor="thread")
    it = ds.iterator()
    for _ in range(50):
        next(it)
    assert len(_tuner_threads()) == 1
    it.close()
    _wait_gone()


def test_the_tuner_thread_ends_when_the_iterator_is_dropped() -> None:
    _wait_gone()
    ds = Dataset.range(10**6).map(_sleep_ms, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    it = ds.iterator()
    for _ in range(50):
        next(it)
    assert _tuner_threads()
    del it
    _wait_gone()


def test_the_tuner_thread_ends_at_the_end_and_restarts_for_the_next_pass() -> None:
    _wait_gone()
    ds = Dataset.range(300).map(_sleep_ms, num_parallel_calls=AUTOTUNE, executor="thread")
    with ds.iterator() as it:
        assert len(list(it)) == 300
        _wait_gone()  # the run ended: nothing to tune
    with ds.iterator() as it:
        next(it)
        assert _tuner_threads()
        # The second pass starts where the first left off.
        assert it.stage_info()["parallelism"] > 1


# -- semantics while knobs move --------------------------------------------------------------


@pytest.fixture
def chaos(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the rules by random moves of every tunable knob, every millisecond."""
    rng = random.Random(0)

    def tick(self: T.Tuner, now: float | None = None) -> bool:
        knobs = [k for k in self.knobs() if k.active()]
        for k in knobs:
            if k.tunable:
                k.value = rng.randint(1, 8 if k.kind == "parallelism" else 16)
                k.changes += 1
        return bool(knobs)

    monkeypatch.setattr(T.Tuner, "tick", tick)
    monkeypatch.setattr(T, "TICK_S", 0.001)


def _jitter(x: Any) -> Any:
    time.sleep(random.random() * 2e-4)
    return x * 3


def _inner(x: Any) -> Dataset:
    return Dataset.range(int(x) * 10, int(x) * 10 + 5).map(_jitter)


def _pipelines() -> dict[str, Dataset]:
    return {
        "map": Dataset.range(600).map(_jitter, num_parallel_calls=AUTOTUNE, executor="thread"),
        "map-unordered": Dataset.range(600).map(
            _jitter, num_parallel_calls=AUTOTUNE, executor="thread", deterministic=False
        ),
        "interleave": Dataset.range(40).interleave(
            _inner, cycle_length=4, block_length=2, num_parallel_calls=AUTOTUNE
        ),
        # Elements large enough that stacking stays on threads (not inline).
        "batch": Dataset.range(600)
        .map(lambda x: np.full((64, 1024), x, dtype=np.int32))
        .batch(7, num_parallel_calls=AUTOTUNE),
        "prefetch": Dataset.range(600).map(_jitter).prefetch(AUTOTUNE),
        "chain": Dataset.range(600)
        .map(_jitter, num_parallel_calls=AUTOTUNE, executor="thread")
        .prefetch(AUTOTUNE)
        .map(_jitter, num_parallel_calls=AUTOTUNE, executor="thread")
        .prefetch(AUTOTUNE),
    }


def _digest(x: Any) -> Any:
    a = np.asarray(x)
    return a.tolist() if a.size < 64 else hashlib.sha1(a.tobytes()).hexdigest()


def _plain(ds: Dataset) -> list[Any]:
    with ds.with_options(Options(autotune=False)).iterator() as it:
        return [_digest(x) for x in it]


@pytest.mark.parametrize("name", sorted(_pipelines()))
def test_output_is_unchanged_while_knobs_move(chaos: None, name: str) -> None:
    ds = _pipelines()[name]
    expected = _plain(ds)
    with ds.iterator() as it:
        got = [_digest(x) for x in it]
        knobs = tuner_for(it._ctx).knobs()  # type: ignore[union-attr]
    assert any(k.changes > 5 for k in knobs), "the chaos tuner did not move the knobs"
    if name == "map-unordered":
        assert sorted(got) == sorted(expected)
    else:
        assert got == expected


@pytest.mark.parametrize("name", ["map", "interleave", "batch", "chain"])
def test_checkpoints_resume_exactly_while_knobs_move(chaos: None, name: str) -> None:
    assert_checkpoint_roundtrip(_pipelines()[name], max_elements=120, every=17)
