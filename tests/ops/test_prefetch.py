"""prefetch(): a named background thread, a bounded buffer, exact checkpoints."""

from __future__ import annotations

import gc
import threading
import time

import pytest

import stoker as sk
from stoker import AUTOTUNE, Dataset, Options
from stoker.testing import assert_checkpoint_roundtrip


def _ints(ds):
    return [int(x) for x in ds]


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("stoker-prefetch-")]


def _wait_no_prefetch_threads(timeout=5.0):
    deadline = time.monotonic() + timeout
    while _prefetch_threads():
        gc.collect()
        assert time.monotonic() < deadline, _prefetch_threads()
        time.sleep(0.01)


@pytest.mark.parametrize("size", [0, 1, 10, AUTOTUNE])
def test_elements_and_order_are_unchanged(size):
    assert _ints(Dataset.range(25).prefetch(size)) == list(range(25))


@pytest.mark.parametrize("size", [0, 1, 10])
def test_checkpoint_roundtrip(size):
    ds = Dataset.range(30).shuffle(8, seed=2).map(lambda x: x * 3).prefetch(size)
    assert assert_checkpoint_roundtrip(ds) == 30


def test_checkpoint_roundtrip_of_nested_prefetches():
    ds = Dataset.range(20).prefetch(3).map(lambda x: x + 1).prefetch(2).batch(3)
    assert_checkpoint_roundtrip(ds)


def test_zero_adds_no_thread():
    it = iter(Dataset.range(5).prefetch(0))
    next(it)
    assert not _prefetch_threads()


def test_thread_is_named_and_starts_lazily():
    it = iter(Dataset.range(5).prefetch(2, name="ahead"))
    assert not _prefetch_threads()
    next(it)
    names = [t.name for t in _prefetch_threads()]
    assert len(names) == 1 and names[0].startswith("stoker-prefetch-ahead[")
    it.close()
    assert not _prefetch_threads()


@pytest.mark.parametrize("size", [1, 10])
def test_buffer_is_bounded(size):
    pulled = []

    def count(x):
        pulled.append(int(x))
        return x

    it = iter(Dataset.range(1000).map(count).prefetch(size))
    next(it)
    time.sleep(0.2)
    # delivered 1, buffer full, plus at most the element the producer holds
    assert len(pulled) <= 1 + size + 1
    it.close()


def test_producer_works_while_the_consumer_does_not():
    it = iter(Dataset.range(100).prefetch(5))
    next(it)
    deadline = time.monotonic() + 5
    while it._cursor.seq < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert it._cursor.seq == 6  # 1 delivered + 5 buffered
    it.close()


def test_errors_arrive_at_their_position_and_iteration_continues():
    def fn(x):
        if x == 3:
            raise ValueError("three")
        return x

    it = iter(Dataset.range(6).map(fn).prefetch(4))
    assert [int(next(it)) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(it)
    assert _ints(it) == [4, 5]
    assert _ints(Dataset.range(6).map(fn).prefetch(4).ignore_errors()) == [0, 1, 2, 4, 5]


def test_set_state_after_start():
    ds = Dataset.range(40).prefetch(5)
    it = iter(ds)
    for _ in range(7):
        next(it)
    state = it.get_state()
    for _ in range(9):
        next(it)
    it.set_state(state)
    assert _ints(it) == list(range(7, 40))


def test_dropping_the_iterator_stops_the_thread():
    it = iter(Dataset.range(10_000).prefetch(3))
    next(it)
    assert _prefetch_threads()
    del it
    _wait_no_prefetch_threads()


def test_breaking_out_of_a_loop_stops_the_thread():
    for x in Dataset.range(10_000).prefetch(3):
        if x == 5:
            break
    _wait_no_prefetch_threads()


def test_exhausting_stops_the_thread():
    _ints(Dataset.range(10).prefetch(3))
    _wait_no_prefetch_threads()


def test_stats_count_elements_and_wait():
    def slow(x):
        time.sleep(0.002)
        return x

    ds = Dataset.range(10).map(slow).prefetch(2).with_options(Options(stats=True))
    it = iter(ds)
    _ints(it)
    stats = sk.stats.collect(it)[it.stage]
    assert stats["elements"] == 10 and stats["wait_s"] > 0 and stats["busy_s"] > 0


def test_invalid_buffer_size():
    with pytest.raises(ValueError, match="buffer_size"):
        Dataset.range(3).prefetch(-5)
