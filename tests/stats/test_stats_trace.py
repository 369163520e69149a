"""stoker.trace(): Chrome trace-event JSON, complete even when the loop breaks or raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import stoker
from stoker import Dataset


def decode(x: Any) -> Any:
    return x * 2


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data["traceEvents"], list)
    for e in data["traceEvents"]:
        assert e["ph"] in ("X", "M")
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "X":
            assert e["ts"] >= 0 and e["dur"] >= 0
    return data


def _x(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in data["traceEvents"] if e["ph"] == "X"]


def test_every_stage_and_the_consumer_waits_are_in_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    ds = Dataset.range(200).map(decode).batch(4).prefetch(2)
    with stoker.trace(path):
        for _ in ds:
            pass
    data = _load(path)
    names = {e["name"] for e in _x(data)}
    assert {"range", "map(decode)", "batch", "prefetch"} <= names
    waits = [e for e in _x(data) if "wait" in e["name"]]
    assert len(waits) >= 50
    assert len({e["tid"] for e in waits}) == 1  # the consumer's thread
    tracks = {
        e["args"]["name"]
        for e in data["traceEvents"]
        if e["ph"] == "M" and e["name"] == "thread_name"
    }
    # A track per stage, and one per thread that ran stages (the consumer, prefetch's).
    assert {"stage range (range[0])", "stage map(decode) (map[1])"} <= tracks
    assert len([t for t in tracks if t.startswith("thread ")]) >= 2
    assert data["otherData"]["dropped_events"] == 0


def test_written_when_the_loop_breaks_early(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    it = iter(Dataset.range(10**9).map(decode))
    with stoker.trace(path):
        for i, _ in enumerate(it):
            if i == 10:
                break
    assert next(it) == 22  # the iterator is alive and untouched
    data = _load(path)
    assert len([e for e in _x(data) if e["name"] == "map(decode)"]) >= 2 * 11


def test_written_when_the_loop_raises(tmp_path: Path) -> None:
    path = tmp_path / "t.json"

    def boom(x: Any) -> Any:
        if x == 5:
            raise ValueError("bad element")
        return x

    with pytest.raises(ValueError, match="bad element"), stoker.trace(path):
        for _ in Dataset.range(10).map(boom):
            pass
    data = _load(path)
    assert any(e["name"] == "map(boom)" for e in _x(data))


def test_memory_is_capped_and_the_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    with stoker.trace(path, max_events=100):
        for _ in Dataset.range(1000).map(decode):
            pass
    data = _load(path)
    assert data["otherData"]["max_events"] == 100
    assert data["otherData"]["dropped_events"] > 1000
    assert len(_x(data)) <= 2 * 100


def test_tracing_off_records_nothing(tmp_path: Path) -> None:
    with stoker.trace(tmp_path / "a.json") as tracer:
        pass
    for _ in Dataset.range(100).map(decode):
        pass
    assert tracer.events == []
    assert stoker.stats.tracer is None


def test_nested_traces_are_refused(tmp_path: Path) -> None:
    with stoker.trace(tmp_path / "a.json"):
        with pytest.raises(RuntimeError, match="already running"):
            with stoker.trace(tmp_path / "b.json"):
                pass
    assert (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()


def test_with_stats_off_only_the_consumer_waits_are_traced(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    ds = Dataset.range(20).map(decode).with_options(stoker.Options(stats=False))
    with stoker.trace(path):
        assert len(list(ds)) == 20
    events = _x(_load(path))
    assert events and all(e["name"] == "wait for input" for e in events)


def _slow_decode(x: Any) -> Any:
    import time

    time.sleep(0.001)
    return x * 2


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_parallel_workers_have_tracks_with_their_chunks(tmp_path: Path, executor: str) -> None:
    path = tmp_path / "trace.json"
    ds = Dataset.range(60).map(_slow_decode, num_parallel_calls=2, executor=executor)
    with stoker.trace(path):
        assert sorted(int(x) for x in ds) == [2 * i for i in range(60)]
    data = _load(path)
    chunks = [e for e in _x(data) if e.get("cat") == "worker"]
    assert chunks, "no worker events"
    assert all(e["name"] == "map(_slow_decode)" for e in chunks)
    assert sum(e["args"]["elements"] for e in chunks) == 60
    assert all(e["dur"] >= 900 for e in chunks)  # each chunk slept >= 1 ms per element
    meta = [e for e in data["traceEvents"] if e["ph"] == "M"]
    if executor == "thread":
        tracks = {e["tid"] for e in chunks}
        names = {e["tid"]: e["args"]["name"] for e in meta if e["name"] == "thread_name"}
        assert all(names[t].startswith("worker thread ") for t in tracks)
        consumer = {e["tid"] for e in _x(data) if "wait" in e["name"]}
        assert not tracks & consumer  # the workers' tracks are not the consumer's
    else:
        pids = {e["pid"] for e in chunks}
        own = {e["pid"] for e in _x(data) if "wait" in e["name"]}
        assert own and not pids & own  # a track in each worker's own process
        named = {e["pid"] for e in meta if e["name"] == "process_name"}
        assert pids <= named
        # Worker clocks are the machine's monotonic clock: events fall inside the trace.
        waits = [e for e in _x(data) if "wait" in e["name"]]
        end = max(e["ts"] + e["dur"] for e in waits)
        assert all(0 <= e["ts"] <= end for e in chunks)
