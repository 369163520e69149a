"""interleave(num_parallel_calls=...): tf.data's order, read ahead on threads."""

from __future__ import annotations

import collections
import gc
import json
import threading
import time
from pathlib import Path

import pytest

import stoker as sk
from stoker import AUTOTUNE, Dataset
from stoker.io import TFRecordWriter
from stoker.testing import assert_checkpoint_roundtrip

D = Dataset


def _ints(ds):
    return [int(x) for x in ds]


def _ranges(x):
    # Inner datasets of different lengths (0 included): slots end at different times.
    return D.range(int(x) % 4 * 3).map(lambda y: y * 100 + x)


@pytest.mark.parametrize("npc", [1, 2, AUTOTUNE])
@pytest.mark.parametrize(("cycle", "block"), [(1, 1), (2, 4), (3, 2), (4, 1), (8, 3)])
def test_order_matches_the_sequential_interleave(npc, cycle, block):
    def make(par):
        return D.range(11).interleave(
            _ranges, cycle_length=cycle, block_length=block, num_parallel_calls=par
        )

    assert _ints(make(npc)) == _ints(make(None))


def test_tfdata_doc_example():
    ds = D.range(1, 6).interleave(
        lambda x: D.from_tensors(x).repeat(6), cycle_length=2, block_length=4, num_parallel_calls=2
    )
    assert _ints(ds) == [
        1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3,
        4, 4, 4, 4, 3, 3, 4, 4, 5, 5, 5, 5, 5, 5,
    ]  # fmt: skip


@pytest.mark.parametrize(("cycle", "block"), [(2, 1), (3, 2)])
def test_checkpoint_roundtrip(cycle, block):
    ds = D.range(9).interleave(
        _ranges, cycle_length=cycle, block_length=block, num_parallel_calls=2
    )
    assert assert_checkpoint_roundtrip(ds) > 0


def test_checkpoint_roundtrip_with_skips_in_slots():
    # Long inner datasets: slots are read far ahead of what is delivered.
    ds = D.range(3).interleave(
        lambda x: D.range(40).map(lambda y: y + 1000 * x), cycle_length=2, num_parallel_calls=2
    )
    assert assert_checkpoint_roundtrip(ds, every=7) == 120


def test_a_sequential_interleave_state_restores_into_a_parallel_one():
    def make(par):
        return D.range(9).interleave(
            _ranges, cycle_length=3, block_length=2, num_parallel_calls=par
        )

    it = iter(make(None))
    for _ in range(5):
        next(it)
    expect = _ints(it)
    it = iter(make(None))
    for _ in range(5):
        next(it)
    assert _ints(make(3).iterator(it.get_state())) == expect


def test_set_state_after_start():
    ds = D.range(9).interleave(_ranges, cycle_length=3, num_parallel_calls=3)
    expect = _ints(ds)
    it = iter(ds)
    for _ in range(4):
        next(it)
    state = it.get_state()
    for _ in range(6):
        next(it)
    it.set_state(state)
    assert _ints(it) == expect[4:]


def test_nondeterministic_returns_every_element_exactly_once_and_resumes():
    def slow(x):
        return D.range(8).map(lambda y: (time.sleep(0.002 * (int(x) % 2)), y * 10 + x)[1])

    ds = D.range(6).interleave(slow, cycle_length=3, num_parallel_calls=3, deterministic=False)
    expect = collections.Counter(_ints(D.range(6).interleave(slow, cycle_length=3)))
    assert collections.Counter(_ints(ds)) == expect
    states, got = [], []
    with ds.iterator() as it:
        while True:
            states.append(it.get_state())
            try:
                got.append(int(next(it)))
            except StopIteration:
                break
    for step in range(0, len(states), 5):
        rest = _ints(ds.iterator(json.loads(json.dumps(states[step]))))
        assert collections.Counter(rest) == collections.Counter(got[step:]), step


def test_a_blocked_input_does_not_hold_back_the_others_when_nondeterministic():
    release = threading.Event()

    def inner(x):
        if int(x) == 0:
            return D.range(1).map(lambda y: (release.wait(10), y)[1])
        return D.range(5).map(lambda y: y + 10 * x)

    ds = D.range(4).interleave(inner, cycle_length=4, num_parallel_calls=4, deterministic=False)
    it = iter(ds)
    got = [int(next(it)) for _ in range(15)]
    assert 0 not in got
    release.set()
    assert sorted(got + _ints(it)) == sorted(
        [0] + [y + 10 * x for x in (1, 2, 3) for y in range(5)]
    )


def test_future_inputs_are_opened_ahead():
    opened = []

    def inner(x):
        opened.append(int(x))
        return D.range(3)

    it = iter(D.range(10).interleave(inner, cycle_length=2, num_parallel_calls=2))
    next(it)
    deadline = time.monotonic() + 5
    while len(opened) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(opened) >= 3, "elements after the cycle should be opened ahead"
    it.close()


def test_map_func_error_is_annotated_and_iteration_continues():
    def inner(x):
        if int(x) == 2:
            raise ValueError("cannot open 2")
        return D.from_tensors(x)

    it = iter(D.range(5).interleave(inner, cycle_length=2, num_parallel_calls=2))
    got = []
    with pytest.raises(ValueError, match="cannot open 2") as info:
        for x in it:
            got.append(int(x))
    assert any("interleave[" in n and "element 2" in n for n in info.value.__notes__)
    assert got + _ints(it) == [0, 1, 3, 4]


def test_map_func_must_return_a_dataset():
    with pytest.raises(TypeError, match="must return a stoker Dataset"):
        list(D.range(3).interleave(lambda x: [x], cycle_length=2, num_parallel_calls=2))


def test_inner_errors_arrive_in_order_and_ignore_errors_skips_them():
    def inner(x):
        def check(y):
            if int(x) == 1 and int(y) == 1:
                raise KeyError("inner")
            return y * 10 + x

        return D.range(3).map(check)

    def make(par):
        return D.range(3).interleave(inner, cycle_length=3, num_parallel_calls=par)

    assert _ints(make(3).ignore_errors()) == _ints(make(None).ignore_errors())
    it = iter(make(3))
    with pytest.raises(KeyError):
        for _ in range(10):
            next(it)


def test_tfrecord_num_parallel_reads_matches_sequential(tmp_path: Path):
    paths = []
    for f in range(4):
        path = str(tmp_path / f"f{f}.tfrecord")
        with TFRecordWriter(path) as w:
            for r in range(5 + f * 3):
                w.write(f"{f}:{r}".encode())
        paths.append(path)
    seq = list(sk.TFRecordDataset(paths, num_parallel_reads=None))
    flat = [f"{f}:{r}".encode() for f in range(4) for r in range(5 + f * 3)]
    assert seq == flat
    par = sk.TFRecordDataset(paths, num_parallel_reads=3)
    expect = list(
        D.from_tensor_slices(paths).interleave(
            lambda p: sk.TFRecordDataset(p), cycle_length=3, block_length=1
        )
    )
    assert list(par) == expect
    assert_checkpoint_roundtrip(par, every=4)


def test_threads_stop_when_done():
    gc.collect()  # iterators earlier tests dropped may still hold the pool
    ds = D.range(6).interleave(_ranges, cycle_length=3, num_parallel_calls=3)
    _ints(ds)
    deadline = time.monotonic() + 5
    while [t for t in threading.enumerate() if t.name.startswith("stoker-")]:
        assert time.monotonic() < deadline, threading.enumerate()
        time.sleep(0.01)
