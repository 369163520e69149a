"""Every node has a recorder, linked as the iterator tree; collect() walks it."""

from __future__ import annotations

import numpy as np
import pytest

import stoker as sk
from stoker import Dataset, Options
from stoker.stats import NO_STATS, StageStats, collect, stats_for


def _inc(x: np.int64) -> np.int64:
    return x + 1


def test_collect_sees_every_stage_of_a_parallel_pipeline() -> None:
    ds = Dataset.range(100).map(_inc, num_parallel_calls=2).batch(4)
    ds = ds.with_options(Options(stats=True))
    with ds.iterator() as it:
        assert len(list(it)) == 25
        stats = collect(it)
    by_label = {v["label"]: (k, v) for k, v in stats.items()}
    assert set(by_label) == {"range", "map(_inc)", "batch"}
    assert by_label["map(_inc)"][1]["elements"] == 100
    assert by_label["range"][1]["elements"] == 100
    assert by_label["batch"][1]["elements"] == 25
    assert by_label["batch"][1]["bytes"] == 25 * 4 * 8  # 4 int64 per batch
    assert all(v["time_s"] >= 0 for v in stats.values())


def test_stats_are_on_by_default_and_off_costs_no_recorder() -> None:
    on = iter(Dataset.range(10).map(_inc))
    assert isinstance(on.recorder, StageStats)
    assert isinstance(on.recorder.children[0], StageStats)
    off = iter(Dataset.range(10).map(_inc).with_options(Options(stats=False)))
    assert off.recorder is NO_STATS
    assert off._inputs[0].recorder is NO_STATS
    assert list(off) == list(range(1, 11))
    assert collect(off) == {}


def test_recorder_tree_mirrors_the_iterator_tree() -> None:
    ds = Dataset.zip(Dataset.range(5), Dataset.range(5).map(_inc)).batch(2)
    it = iter(ds)
    list(it)
    root = it.recorder
    assert root.label == "batch"
    (zipped,) = root.children
    assert zipped.label == "zip"
    assert [c.label for c in zipped.children] == ["range", "map(_inc)"]
    assert zipped.children[1].children[0].label == "range"
    assert zipped.elements == 5


def test_stats_for_keeps_the_parallel_stage_contract() -> None:
    rec = stats_for(Options(stats=True).resolved(), "map[3]")
    rec.add(elements=2, busy_s=0.5)
    rec.add_wait(0.25)
    rec.set_info("executor", "thread")
    snap = rec.snapshot()
    assert snap["busy_s"] == 0.5 and snap["wait_s"] == 0.25 and snap["executor"] == "thread"
    off = stats_for(Options(stats=False).resolved(), "map[3]")
    off.add(elements=1, busy_s=1.0)
    off.add_wait(1.0)
    off.set_info("k", "v")
    assert off.snapshot() == {}


def test_a_parallel_stage_reports_into_its_nodes_recorder() -> None:
    it = iter(Dataset.range(50).map(_inc, num_parallel_calls=2, executor="thread"))
    assert len(list(it)) == 50
    # The stage assigns self.stats = stats_for(...); its counts land in node.recorder.
    assert it.recorder.info.get("executor") == "thread"
    assert it.recorder.busy_s > 0


def test_counting_is_exact_with_sampled_timing() -> None:
    it = iter(Dataset.range(10_000).filter(lambda x: x % 3 == 0))
    n = sum(1 for _ in it)
    stats = collect(it)
    assert [v["elements"] for v in stats.values()] == [n, 10_000]


def test_elements_survive_a_restore() -> None:
    ds = Dataset.range(20).batch(2)
    it = iter(ds)
    next(it)
    state = it.get_state()
    with ds.iterator(state) as resumed:
        assert len(list(resumed)) == 9
        assert resumed.recorder.elements == 9


def test_inner_datasets_of_flat_map_count_in_its_time() -> None:
    it = iter(Dataset.range(4).flat_map(lambda x: Dataset.range(x)))
    assert len(list(it)) == 6
    assert [r.label for r in (it.recorder, *it.recorder.children)] == [
        "flat_map(<lambda>)",
        "range",
    ]
    assert sk.stats.collect(it)


def test_repeat_epochs_add_up_in_one_recorder_tree() -> None:
    it = iter(Dataset.range(10).map(_inc).repeat(3))
    assert len(list(it)) == 30
    labels = {v["label"]: v["elements"] for v in collect(it).values()}
    assert labels == {"repeat": 30, "map(_inc)": 30, "range": 30}
    assert it.recorder.children[0].node() is it._input


def test_concatenate_reports_both_inputs() -> None:
    it = iter(Dataset.range(4).concatenate(Dataset.range(6).map(_inc)))
    assert len(list(it)) == 10
    report = it.stats()
    assert [(s.name, s.elements) for s in report.stages] == [
        ("concatenate", 10),
        ("range", 4),
        ("map(_inc)", 6),
        ("range", 6),
    ]


def test_sampled_time_estimates_the_real_time() -> None:
    import time

    def spin(x: np.int64) -> np.int64:
        end = time.perf_counter() + 0.0001
        while time.perf_counter() < end:
            pass
        return x

    it = iter(Dataset.range(3000).map(spin).batch(10))
    start = time.perf_counter()
    for _ in it:
        pass
    wall = time.perf_counter() - start
    root = it.recorder  # the consumer's calls: sampled, waits added exactly
    assert root.time_s == pytest.approx(wall, rel=0.1)
    # map is below: beyond its first 256 calls only some are timed, and extrapolated.
    (mapped,) = root.children
    assert mapped.samples > 50
    assert 0.5 * root.time_s < mapped.time_s < 2 * root.time_s


def test_rare_long_waits_are_counted_exactly_not_sampled() -> None:
    import time

    def sometimes_slow(x: np.int64) -> np.int64:
        if int(x) % 200 == 199:
            time.sleep(0.02)
        return x

    # Beyond the first 256 calls the consumer's calls are sampled; the waits the parallel
    # stage reports (each time the consumer blocks on it) are added exactly, so 20 ms
    # stalls on 1 call in 200 are neither missed nor extrapolated.
    it = iter(Dataset.range(4000).map(sometimes_slow, num_parallel_calls=1).batch(2))
    start = time.perf_counter()
    for _ in it:
        pass
    wall = time.perf_counter() - start
    root = it.recorder
    assert root.elements == 2000 and root.samples > 20
    assert root.time_s == pytest.approx(wall, rel=0.15)


def test_counts_stay_exact_past_the_sampled_calls() -> None:
    # map and filter count themselves (their own __next__), other ops by the wrapper class;
    # counts are exact whether or not a call was timed.
    ds = Dataset.range(50_000).filter(lambda x: x % 3 == 0).map(lambda x: x).batch(7)
    it = iter(ds)
    assert sum(len(b) for b in it) == 16_667
    counts = {v["label"]: v["elements"] for v in collect(it).values()}
    assert counts == {
        "batch": 2_381,
        "map(<lambda>)": 16_667,
        "filter(<lambda>)": 16_667,
        "range": 50_000,
    }
