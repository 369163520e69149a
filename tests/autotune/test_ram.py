"""``Options(ram_budget=...)``: the RAM ledger and every buffer that counts in it."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

import numpy as np
import pytest

import stoker as sk
from stoker.autotune._ram import (
    ELEMENT_OVERHEAD,
    SLACK,
    RamLedger,
    StageRam,
    element_bytes,
    ledger_for,
)
from stoker.iterator import IterContext

MB = 1 << 20


# -- the ledger ------------------------------------------------------------------------------


def test_ledger_counts_exactly_and_never_goes_negative() -> None:
    ledger = RamLedger(1000)
    ledger.reserve("a", 300)
    ledger.reserve("b", 200)
    ledger.reserve("a", 100)
    assert ledger.held() == 600
    assert ledger.by_stage() == {"a": 400, "b": 200}
    assert ledger.room() == 400
    ledger.release("a", 150)
    assert ledger.by_stage() == {"a": 250, "b": 200}
    ledger.release("b", 10_000)  # more than it holds: releases what it holds
    assert ledger.by_stage() == {"a": 250}
    assert ledger.held() == 250
    ledger.release("nobody", 50)
    assert ledger.held() == 250
    ledger.reserve("c", 2000)
    assert ledger.room() == 0  # over the budget: room is never negative
    assert ledger.release_all("c") == 2000
    assert ledger.release_all("a") == 250
    assert ledger.held() == 0 and ledger.by_stage() == {}
    assert ledger.peak == 2250


def test_ledger_rejects_a_budget_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="budget=0"):
        RamLedger(0)


def test_a_stage_holding_nothing_may_always_take_one_element() -> None:
    ledger = RamLedger(100)
    assert ledger.admits("a", 10_000)  # holds nothing: the one-element guarantee
    ledger.reserve("a", 10_000)
    assert not ledger.admits("a", 1)
    assert ledger.admits("b", 10_000)  # another stage holding nothing may too
    ledger.release("a", 10_000)
    assert ledger.admits("a", 100) and not ledger.fits(101)


def test_wait_room_wakes_when_another_thread_releases() -> None:
    ledger = RamLedger(100)
    ledger.reserve("a", 80)
    ledger.reserve("b", 20)
    assert not ledger.wait_room("a", 50, 0.01)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(ledger.wait_room("a", 50, 30.0)))
    waiter.start()
    time.sleep(0.05)
    ledger.release("b", 20)
    ledger.release("a", 40)
    waiter.join(30.0)
    assert got == [True]


def test_ledger_is_exact_under_threads() -> None:
    ledger = RamLedger(1 << 40)

    def hammer(stage: str) -> None:
        for i in range(2000):
            ledger.reserve(stage, i + 1)
        for i in range(2000):
            ledger.release(stage, i + 1)

    threads = [threading.Thread(target=hammer, args=(f"s{k % 2}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.held() == 0 and ledger.by_stage() == {}
    assert ledger.peak > 0


def test_stage_account_releases_exactly_what_each_key_reserved() -> None:
    big = 10 * SLACK
    ledger = RamLedger(100 * big)
    ram = StageRam(ledger, "m")
    ram.hold(0, big)
    ram.hold(1, big)
    ram.update(0, 5 * big)  # the output is bigger than the input
    assert ledger.held() == ram.held == 6 * big
    assert ram.expect >= big
    ram.hold(2, 10)  # an input: reserves at least what outputs take
    assert ram.held >= 6 * big + 10
    ram.drop(0)
    ram.drop(0)  # twice: nothing more
    ram.update(7, 1)  # unknown key: ignored
    ram.drop(1)
    ram.drop(2)
    assert ledger.held() == ram.held == 0
    ram.hold(3, big)
    ram.clear()
    assert ledger.held() == 0 and ram.held == 0


def test_stage_account_batches_small_changes_and_syncs_when_empty() -> None:
    ledger = RamLedger(1 << 30)
    ram = StageRam(ledger, "m")
    for k in range(10):
        ram.hold(k, 100)
    assert ram.held == 1000
    assert ledger.held() < SLACK  # behind by less than SLACK
    assert not ram.admits() or ledger.fits(ram.held)
    for k in range(10):
        ram.drop(k)
    assert ledger.held() == ram.held == 0  # emptied: exact


def test_element_bytes_counts_arrays_in_structures() -> None:
    a = np.zeros(1000, np.uint8)
    assert element_bytes(a) == 1000 + ELEMENT_OVERHEAD
    assert element_bytes((a, {"b": a, "c": b"xyz"})) == 2003 + ELEMENT_OVERHEAD
    assert element_bytes(7) == ELEMENT_OVERHEAD


def test_one_ledger_per_pipeline_with_the_options_budget() -> None:
    ctx = IterContext(sk.Options(ram_budget=12345))
    assert ledger_for(ctx) is ledger_for(ctx)
    assert ledger_for(ctx).budget == 12345
    assert ledger_for(IterContext(sk.Options())).budget >= 1


# -- pipelines -------------------------------------------------------------------------------

ELEM = 1 * MB


def _big(i: Any) -> np.ndarray:
    return np.full(ELEM, int(i) % 251, np.uint8)


def _sampled(it: Any, every: float = 0.002) -> tuple[list[int], RamLedger]:
    """Consume ``it`` slowly, returning each element's first byte; the ledger too."""
    ledger = ledger_for(it._ctx)
    out = []
    for x in it:
        out.append(int(np.asarray(x).ravel()[0]))
        time.sleep(every)  # a slow consumer: the stages fill up to what they may hold
    return out, ledger


PIPELINES = {
    "prefetch": lambda ds: ds.map(_big).prefetch(16),
    "parallel_map": lambda ds: ds.map(_big, num_parallel_calls=4).prefetch(sk.AUTOTUNE),
    "parallel_map_unordered": lambda ds: ds.map(
        _big, num_parallel_calls=4, deterministic=False
    ).prefetch(8),
    "parallel_map_process": lambda ds: ds.map(
        _big, num_parallel_calls=2, executor="process"
    ).prefetch(4),
    "interleave": lambda ds: ds.interleave(
        lambda i: sk.Dataset.range(int(i) * 5, int(i) * 5 + 5).map(_big),
        cycle_length=2,
        num_parallel_calls=2,
    ).prefetch(4),
    "parallel_batch": lambda ds: ds.map(_big).batch(2, num_parallel_calls=2).prefetch(8),
}
#: Stages of each pipeline that buffer (each may hold one element beyond the budget).
STAGES = {
    "prefetch": 1,
    "parallel_map": 2,
    "parallel_map_unordered": 2,
    "parallel_map_process": 2,
    "interleave": 2 + 4,  # the interleave: one element per slot (cycle and futures)
    "parallel_batch": 2 * 2,  # batches of two elements
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_held_bytes_stay_within_budget_plus_one_element_per_stage(name: str) -> None:
    budget = 4 * ELEM
    n = 20 if name != "interleave" else 4
    ds = PIPELINES[name](sk.Dataset.range(n)).with_options(sk.Options(ram_budget=budget))
    got, ledger = _sampled(iter(ds))
    count = n if name != "interleave" else n * 5
    assert len(got) == count // (2 if name == "parallel_batch" else 1)
    assert ledger.peak > 0  # it did count
    assert ledger.peak <= budget + STAGES[name] * (ELEM + 4096), ledger
    assert ledger.held() == 0, ledger.by_stage()


def test_without_a_tight_budget_the_same_pipeline_holds_more() -> None:
    # The bound above is the budget's doing: with room, prefetch(16) fills its buffer.
    ds = sk.Dataset.range(24).map(_big).prefetch(16)
    it = iter(ds.with_options(sk.Options(ram_budget=1 << 34)))
    next(it)
    ledger = ledger_for(it._ctx)
    deadline = time.monotonic() + 60
    while ledger.held() < 10 * ELEM and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ledger.held() >= 10 * ELEM
    it.close()
    assert ledger.held() == 0


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_an_element_bigger_than_the_budget_still_flows(name: str) -> None:
    ds = PIPELINES[name](sk.Dataset.range(4)).with_options(sk.Options(ram_budget=1000))
    got, ledger = _sampled(iter(ds), every=0.0)
    if name == "interleave":
        assert sorted(got) == sorted(i % 251 for i in range(20))
    elif name == "parallel_batch":
        assert got == [0, 2]
    elif name == "parallel_map_unordered":
        assert sorted(got) == [0, 1, 2, 3]
    else:
        assert got == [0, 1, 2, 3]
    assert ledger.held() == 0


def test_shuffle_buffer_counts_and_is_capped_by_the_budget() -> None:
    ds = sk.Dataset.range(30).map(_big).shuffle(20, seed=3)
    it = iter(ds.with_options(sk.Options(ram_budget=int(5.5 * ELEM))))
    with pytest.warns(UserWarning, match=r"shuffle\(buffer_size=20\).*ram_budget.*6 elements"):
        first = next(it)
    ledger = ledger_for(it._ctx)
    (stage,) = [s for s in ledger.by_stage() if s.startswith("shuffle")]
    assert 5.5 * ELEM < ledger.by_stage()[stage] <= 6 * (ELEM + 4096)
    rest = [int(x[0]) for x in it]
    assert sorted([int(first[0]), *rest]) == list(range(30))
    assert ledger.held() == 0


def test_shuffle_within_budget_is_unchanged() -> None:
    ds = sk.Dataset.range(50).shuffle(10, seed=1)
    roomy = [int(x) for x in ds.with_options(sk.Options(ram_budget=1 << 30))]
    assert roomy == [int(x) for x in ds]
    it = iter(ds.with_options(sk.Options(ram_budget=1 << 30)))
    next(it)
    (held,) = ledger_for(it._ctx).by_stage().values()
    assert held == 10 * element_bytes(next(iter(sk.Dataset.range(1))))


def test_capped_shuffle_resumes_from_a_checkpoint() -> None:
    ds = (
        sk.Dataset.range(30)
        .map(_big)
        .shuffle(20, seed=5, reshuffle_each_iteration=False)
        .with_options(sk.Options(ram_budget=int(5.5 * ELEM)))
    )
    with pytest.warns(UserWarning, match="shuffle"):
        full = [int(x[0]) for x in ds]
        it = iter(ds)
        head = [int(next(it)[0]) for _ in range(9)]
        state = it.get_state()
        it2 = iter(ds)
        it2.set_state(state)
        tail = [int(x[0]) for x in it2]
    assert head + tail == full
    assert ledger_for(it2._ctx).held() == 0


def test_memory_cache_counts_while_filling_and_replaying() -> None:
    ds = sk.Dataset.range(6).map(_big).cache()
    opts = sk.Options(ram_budget=64 * ELEM)
    it = iter(ds.with_options(opts))
    for _ in range(3):
        next(it)
    ledger = ledger_for(it._ctx)
    assert ledger.held() >= 3 * ELEM  # the filling cache holds what it added
    assert len(list(it)) == 3
    assert ledger.held() == 0  # the cache is the dataset's now
    replay = iter(ds.with_options(opts))
    rl = ledger_for(replay._ctx)
    assert rl.held() >= 6 * ELEM  # replaying holds the whole cache
    assert len(list(replay)) == 6
    assert rl.held() == 0


def test_memory_cache_past_the_budget_with_other_buffers_stops_caching() -> None:
    # The cache alone would fit (8 elements); with the shuffle buffer above it (4 more
    # once it holds 5), it does not.
    ds = sk.Dataset.range(8).map(_big).cache().shuffle(4, seed=0)
    opts = sk.Options(ram_budget=int(8.5 * ELEM))
    with pytest.warns(UserWarning, match=r"cache\(\) in memory.*ram_budget.*other buffers"):
        got, _ = _sampled(iter(ds.with_options(opts)))
    assert sorted(got) == list(range(8))
    alone = sk.Dataset.range(8).map(_big).cache()
    assert len(list(alone.with_options(opts))) == 8  # no warning: it fits
    assert alone.memory_bytes >= 8 * ELEM


def test_parallel_map_under_budget_resumes_from_a_checkpoint() -> None:
    ds = (
        sk.Dataset.range(30)
        .map(_big, num_parallel_calls=4)
        .prefetch(4)
        .with_options(sk.Options(ram_budget=3 * ELEM))
    )
    full = [int(x[0]) for x in ds]
    it = iter(ds)
    head = [int(next(it)[0]) for _ in range(11)]
    state = it.get_state()
    it.close()
    assert ledger_for(it._ctx).held() == 0
    it2 = iter(ds)
    it2.set_state(state)
    assert head + [int(x[0]) for x in it2] == full == [i % 251 for i in range(30)]


def test_dropped_iterators_leave_nothing_in_the_ledger() -> None:
    ds = (
        sk.Dataset.range(100)
        .map(_big, num_parallel_calls=2)
        .shuffle(4, seed=0)
        .prefetch(4)
        .with_options(sk.Options(ram_budget=16 * ELEM))
    )
    it = iter(ds)
    next(it)
    ledger = ledger_for(it._ctx)
    deadline = time.monotonic() + 60
    while ledger.held() < 5 * ELEM and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ledger.held() >= 5 * ELEM
    del it
    gc.collect()
    deadline = time.monotonic() + 30
    while ledger.held() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ledger.held() == 0, ledger.by_stage()


def test_resident_memory_stays_near_the_budget() -> None:
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process()
    elem = 8 * MB
    budget = 32 * MB

    def make(i: Any) -> np.ndarray:
        return np.full(elem, int(i) % 251, np.uint8)  # every page touched

    ds = (
        sk.Dataset.range(40)
        .map(make, num_parallel_calls=4)
        .prefetch(16)
        .with_options(sk.Options(ram_budget=budget))
    )
    gc.collect()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        n = 0
        for x in ds:
            n += int(x[0] == n % 251)
            time.sleep(0.01)
    finally:
        stop.set()
        sampler.join()
    assert n == 40
    # Unbounded, prefetch(16) and four calls in flight hold ~20 elements (160 MB). The
    # ledger allows the budget plus an element per stage; the margin covers allocator
    # slack and the elements in the consumer's and workers' hands.
    assert peak[0] - base < budget + 2 * elem + 64 * MB


class _Live:
    """Counts the 1 MB arrays a map function made that are still alive (independently of
    the ledger): their peak is what the pipeline really held."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = self.peak = 0

    def _gone(self) -> None:
        with self._lock:
            self.now -= 1

    def __call__(self, i: Any) -> np.ndarray:
        a = _big(i)
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        weakref.finalize(a, self._gone)
        return a


def test_a_sequential_batch_being_filled_counts_against_the_budget() -> None:
    live = _Live()
    budget = 8 * ELEM
    ds = (
        sk.Dataset.range(48)
        .map(live, num_parallel_calls=4, executor="thread")
        .batch(4)
        .with_options(sk.Options(ram_budget=budget))
    )
    it = iter(ds)
    firsts = []
    for b in it:
        firsts.append(int(b[0, 0]))
        if len(firsts) == 2:  # from here on the map knows its outputs' size
            live.peak = live.now
        time.sleep(0.02)  # a slow consumer: the map fills what the budget leaves it
    assert firsts == [i % 251 for i in range(0, 48, 4)]
    # The map holds what the budget leaves beside the batch being filled, plus one element
    # (the one-element guarantee); without counting the batch, the map filled its window
    # (8, the whole budget) beside the batch's 4 elements.
    assert live.peak <= 8 + 1, live.peak
    assert ledger_for(it._ctx).held() == 0
