"""it.stats(): the report names the bottleneck and what would help."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from stoker import AUTOTUNE, Dataset, Options
from stoker.stats import StatsReport


def _burn(x: Any, seconds: float = 0.002) -> Any:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return x


def decode(x: Any) -> Any:
    return _burn(x, 0.0001)


def keep(x: Any) -> bool:
    return bool(x % 2 == 0)


def test_fast_consumer_on_cpu_bound_map_names_the_map() -> None:
    ds = Dataset.range(150).map(_burn).batch(4)
    it = iter(ds)
    for _ in it:
        pass
    report = it.stats()
    assert isinstance(report, StatsReport)
    assert report.input_bound > 0.8
    assert report.bottleneck == "map(_burn)"
    assert "parallelism" in report.advice
    text = str(report)
    assert "bottleneck: map(_burn)" in text and "num_parallel_calls" in text


def test_fast_consumer_on_a_thread_pool_map_names_the_map() -> None:
    ds = Dataset.range(150).map(_burn, num_parallel_calls=2, executor="thread").batch(2)
    it = iter(ds)
    for _ in it:
        pass
    report = it.stats()
    assert report.bottleneck == "map(_burn)"
    (rec,) = [s for s in report.stages if s.name == "map(_burn)"]
    assert rec.parallelism == 2 and rec.executor == "thread"
    assert "processes" in rec.advice


def test_slow_consumer_means_the_pipeline_keeps_up() -> None:
    # Inline stages only: no thread start-up inside the first next() on a loaded machine.
    ds = Dataset.range(1000).map(decode).batch(2)
    it = iter(ds)
    for _ in range(40):
        next(it)
        time.sleep(0.02)
    report = it.stats()
    assert report.input_bound < 0.1
    assert report.bottleneck == "consumer"
    assert "the consumer is the bottleneck, the pipeline is fine" in str(report)
    it.close()


def test_every_op_is_named_by_op_and_function() -> None:
    ds = (
        Dataset.range(200)
        .shuffle(10, seed=0)
        .map(decode)
        .filter(keep)
        .batch(4)
        .prefetch(AUTOTUNE)
        .take(20)
    )
    it = iter(ds)
    list(it)
    names = [s.name for s in it.stats().stages]
    assert names == ["take", "prefetch", "batch", "filter(keep)", "map(decode)", "shuffle", "range"]
    assert [s.depth for s in it.stats().stages] == list(range(7))


def test_user_names_win() -> None:
    it = iter(Dataset.range(10).map(decode, name="decode_jpeg"))
    list(it)
    assert [s.name for s in it.stats().stages] == ["decode_jpeg", "range"]


def test_records_have_the_promised_fields_and_to_dict_is_json() -> None:
    ds = Dataset.range(64).map(lambda x: np.full(100, x, np.float32)).batch(8)
    it = iter(ds)
    list(it)
    report = it.stats()
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) >= {"input_bound", "bottleneck", "stages", "advice"}
    for stage in data["stages"]:
        assert set(stage) >= {
            "name",
            "elements",
            "parallelism",
            "executor",
            "busy_share",
            "wait_share",
            "buffer_fill",
            "bytes",
        }
        assert 0.0 <= stage["busy_share"] <= 1.0 and 0.0 <= stage["wait_share"] <= 1.0
    batch = data["stages"][0]
    assert batch["name"] == "batch" and batch["elements"] == 8
    assert batch["bytes"] == 64 * 400
    assert 0.0 <= data["input_bound"] <= 1.0


def test_report_before_the_first_element() -> None:
    it = iter(Dataset.range(3))
    report = it.stats()
    assert report.bottleneck == "consumer" and report.elements == 0
    assert "range" in str(report)


def test_stats_off_says_so() -> None:
    it = iter(Dataset.range(3).with_options(Options(stats=False)))
    list(it)
    with pytest.raises(RuntimeError, match="stats=False"):
        it.stats()


def test_stage_info_of_a_parallel_stage_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    it = iter(Dataset.range(100).map(decode).prefetch(8))
    list(it)
    info = {"parallelism": 3, "executor": "process", "buffered": 6, "in_flight": 1, "capacity": 8}
    monkeypatch.setattr(type(it), "stage_info", lambda self: info, raising=False)
    (rec,) = [s for s in it.stats().stages if s.name == "prefetch"]
    assert (rec.parallelism, rec.executor, rec.buffer_fill) == (3, "process", 0.75)


def test_a_failing_stage_info_does_not_break_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    it = iter(Dataset.range(10).prefetch(2))
    list(it)

    def broken(self: Any) -> dict[str, Any]:
        raise RuntimeError("no")

    monkeypatch.setattr(type(it), "stage_info", broken, raising=False)
    assert [s.name for s in it.stats().stages] == ["prefetch", "range"]


def test_own_time_is_measured_within_the_call_under_a_parallel_input() -> None:
    # zip/shuffle above a parallel interleave: their calls are mostly instant with a few
    # long waits on the interleave's workers; the waits belong to the interleave.
    def shard(i: Any) -> Dataset:
        return Dataset.range(200).map(_burn_small)

    ds = (
        Dataset.zip(
            Dataset.range(16).interleave(shard, cycle_length=2, num_parallel_calls=2),
            Dataset.range(10**6),
        )
        .shuffle(50, seed=0)
        .batch(16)
    )
    it = iter(ds)
    for _ in it:
        pass
    report = it.stats()
    assert report.bottleneck == "interleave(shard)", str(report)


def _burn_small(x: Any) -> Any:
    return _burn(x, 0.0005)
