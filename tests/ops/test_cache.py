"""``Dataset.cache``: tf.data's visible behaviour, partial passes, budgets, checkpoints."""

from __future__ import annotations

import gc
import json
import os
import pickle
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stoker as sk
from stoker.errors import CacheError
from stoker.testing import assert_checkpoint_roundtrip
from stoker.testing.checkpoint import assert_elements_equal

Point = namedtuple("Point", ["x", "y"])


class Counted:
    """A map function that counts its calls; its fingerprint ignores the count."""

    def __init__(self, fn: Any):
        self.fn = fn
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.fn(*args)

    def __stoker_fingerprint__(self) -> Any:
        return ("Counted", self.fn)


def _square(x: Any) -> Any:
    return x * x


def _features(x: Any) -> Any:
    return {"x": x, "v": np.full(3, x, np.float32), "s": f"n{int(x)}"}


@pytest.fixture(params=["memory", "file"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "" if request.param == "memory" else str(tmp_path / "c.stoker")


def _equal(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert_elements_equal(x, y, f"element {i}")


# -- tf.data's behaviour -----------------------------------------------------------------------


def test_first_pass_fills_later_passes_replay(where: str) -> None:
    fn = Counted(_features)
    ds = sk.Dataset.range(20).map(fn).cache(where)
    first = list(ds)
    assert fn.calls == 20
    second = list(ds)
    assert fn.calls == 20
    _equal(second, first)
    _equal(first, [_features(np.int64(i)) for i in range(20)])
    assert ds.cardinality() == 20


def test_file_cache_is_reused_by_a_new_pipeline_object(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    fn = Counted(_features)
    first = list(sk.Dataset.range(10).map(fn).cache(path))
    again = sk.Dataset.range(10).map(fn).cache(path)
    _equal(list(again), first)
    assert fn.calls == 10
    assert sorted(os.listdir(tmp_path)) == ["c.stoker"]  # no lock or temporary file left


def test_cache_under_repeat_is_filled_by_epoch_one(where: str) -> None:
    fn = Counted(_square)
    out = list(sk.Dataset.range(5).map(fn).cache(where).repeat(3))
    assert [int(v) for v in out] == [0, 1, 4, 9, 16] * 3
    assert fn.calls == 5


def test_order_is_the_order_of_the_filling_pass(where: str) -> None:
    ds = sk.Dataset.range(50).shuffle(50, seed=1, reshuffle_each_iteration=True).cache(where)
    first = [int(v) for v in ds]
    assert first != list(range(50))
    assert [int(v) for v in ds] == first
    assert [int(v) for v in ds] == first


def test_shuffle_after_cache_reshuffles_each_epoch(where: str) -> None:
    fn = Counted(_square)
    ds = sk.Dataset.range(30).map(fn).cache(where).shuffle(30, seed=3)
    epochs = [[int(v) for v in ds] for _ in range(3)]
    assert fn.calls == 30
    assert all(sorted(e) == sorted(i * i for i in range(30)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]


def test_empty_dataset(where: str) -> None:
    ds = sk.Dataset.range(0).cache(where)
    assert list(ds) == []
    assert list(ds) == []


def test_take_before_cache_is_a_complete_pass(where: str) -> None:
    fn = Counted(_square)
    ds = sk.Dataset.range(100).map(fn).take(5).cache(where)
    assert [int(v) for v in ds] == [0, 1, 4, 9, 16]
    assert [int(v) for v in ds] == [0, 1, 4, 9, 16]
    assert fn.calls == 5


# -- partial passes ----------------------------------------------------------------------------


def test_take_after_cache_discards_and_warns_once(where: str) -> None:
    fn = Counted(_square)
    ds = sk.Dataset.range(10).map(fn).cache(where)
    with pytest.warns(UserWarning, match=r"take\(\) before cache\(\)"):
        assert [int(v) for v in ds.take(3)] == [0, 1, 4]
        gc.collect()
    # Only once per dataset: a second partial pass is silent.
    assert [int(v) for v in ds.take(4)] == [0, 1, 4, 9]
    gc.collect()
    assert fn.calls == 7
    assert [int(v) for v in ds] == [i * i for i in range(10)]  # refilled, complete
    assert fn.calls == 17
    assert [int(v) for v in ds] == [i * i for i in range(10)]
    assert fn.calls == 17
    if where:
        assert sorted(os.listdir(os.path.dirname(where))) == ["c.stoker"]


def test_break_discards_partial_cache(where: str) -> None:
    fn = Counted(_square)
    ds = sk.Dataset.range(10).map(fn).cache(where)
    with pytest.warns(UserWarning, match="partial cache was discarded"):
        for v in ds:
            if v == 4:
                break
        gc.collect()
    if where:
        assert not os.path.exists(where)
        assert os.listdir(os.path.dirname(where)) == []
    assert [int(v) for v in ds] == [i * i for i in range(10)]
    assert fn.calls == 13


def test_close_mid_pass_discards(where: str) -> None:
    ds = sk.Dataset.range(10).cache(where)
    it = ds.iterator()
    next(it)
    with pytest.warns(UserWarning, match="saw only 1 elements"):
        it.close()
    it.close()  # idempotent, no second warning
    with pytest.raises(StopIteration):
        next(it)
    replay = ds.iterator()
    next(replay)
    replay.close()
    with pytest.raises(StopIteration):
        next(replay)


def test_exception_discards_partial_cache(where: str) -> None:
    state = {"fail": True}

    def flaky(x: Any) -> Any:
        if x == 5 and state["fail"]:
            raise ValueError("boom")
        return x

    ds = sk.Dataset.range(8).map(flaky).cache(where)
    with pytest.warns(UserWarning, match="raised ValueError"):
        with pytest.raises(ValueError, match="boom"):
            list(ds)
    state["fail"] = False
    assert [int(v) for v in ds] == list(range(8))
    assert [int(v) for v in ds] == list(range(8))


def test_error_then_continue_is_not_committed(where: str) -> None:
    """Elements after an error are delivered but that pass never becomes the cache."""
    calls = Counted(lambda x: x)

    def bad(x: Any) -> Any:
        if x == 2 and calls.calls < 5:
            raise ValueError("once")
        return calls(x)

    ds = sk.Dataset.range(4).map(bad).cache(where)
    it = ds.iterator()
    assert int(next(it)) == 0
    assert int(next(it)) == 1
    with pytest.warns(UserWarning, match="raised ValueError"):
        with pytest.raises(ValueError):
            next(it)
    assert [int(v) for v in it] == [3]
    it.close()
    assert [int(v) for v in ds] == [0, 1, 2, 3]  # a fresh, complete pass


# -- memory ------------------------------------------------------------------------------------


def test_memory_cache_arrays_are_read_only() -> None:
    ds = sk.Dataset.range(3).map(lambda x: np.full(2, x)).cache()
    for epoch in range(2):
        for v in ds:
            with pytest.raises(ValueError, match="read-only"):
                v[0] = 7
        del epoch
    assert [v.tolist() for v in ds] == [[0, 0], [1, 1], [2, 2]]


def test_memory_cache_over_ram_budget_warns_and_stops_caching() -> None:
    fn = Counted(lambda x: np.zeros(1000, np.uint8))
    ds = sk.Dataset.range(20).map(fn).cache().with_options(sk.Options(ram_budget=5000))
    with pytest.warns(UserWarning, match=r"ram_budget.*cache\(filename\)"):
        assert len(list(ds)) == 20
    assert len(list(ds)) == 20  # computed again, and warned only once
    assert fn.calls == 40


def test_memory_cache_counts_its_bytes() -> None:
    ds = sk.Dataset.range(10).map(lambda x: np.zeros(1000, np.uint8)).cache()
    list(ds)
    assert 10_000 <= ds.memory_bytes < 20_000


def test_memory_cache_is_not_pickled() -> None:
    ds = sk.Dataset.range(5).cache()
    list(ds)
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._memory is None and ds._memory is not None
    assert [int(v) for v in clone] == list(range(5))


def test_memory_cache_holds_any_object() -> None:
    objs = [object() for _ in range(3)]
    ds = sk.Dataset.range(3).map(lambda i: (i, objs[int(i)])).cache()
    first = list(ds)
    assert [o for _, o in ds] == [o for _, o in first] == objs


# -- positions in a pipeline -------------------------------------------------------------------


def test_after_parallel_map(where: str) -> None:
    fn = Counted(_square)
    ds = sk.Dataset.range(40).map(fn, num_parallel_calls=2).cache(where)
    assert [int(v) for v in ds] == [i * i for i in range(40)]
    assert [int(v) for v in ds] == [i * i for i in range(40)]
    assert fn.calls == 40


def test_inside_interleave(tmp_path: Path) -> None:
    def inner(i: Any) -> sk.Dataset:
        return sk.Dataset.range(int(i) * 10, int(i) * 10 + 3).map(_square).cache()

    ds = sk.Dataset.range(3).interleave(inner, cycle_length=2, block_length=1)
    expect = [0, 100, 1, 121, 4, 144, 400, 441, 484]
    assert [int(v) for v in ds] == expect
    assert [int(v) for v in ds] == expect
    assert_checkpoint_roundtrip(ds)

    def inner_file(i: Any) -> sk.Dataset:
        path = str(tmp_path / f"part{int(i)}.stoker")
        return sk.Dataset.range(int(i) * 10, int(i) * 10 + 3).map(_square).cache(path)

    ds = sk.Dataset.range(3).interleave(inner_file, cycle_length=2, block_length=1)
    assert [int(v) for v in ds] == expect
    assert sorted(os.listdir(tmp_path)) == [f"part{i}.stoker" for i in range(3)]
    assert [int(v) for v in ds] == expect
    assert_checkpoint_roundtrip(ds)


def test_zip_of_the_same_cache(where: str) -> None:
    ds = sk.Dataset.range(5).cache(where)
    pairs = [(int(a), int(b)) for a, b in sk.Dataset.zip(ds, ds)]
    assert pairs == [(i, i) for i in range(5)]
    assert [int(v) for v in ds] == list(range(5))


# -- checkpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("epochs", [1, 3])
def test_checkpoint_roundtrip(where: str, epochs: int) -> None:
    ds = sk.Dataset.range(12).map(_features).cache(where).repeat(epochs)
    assert assert_checkpoint_roundtrip(ds) == 12 * epochs


def test_checkpoint_roundtrip_shuffle_after_cache(where: str) -> None:
    ds = sk.Dataset.range(15).cache(where).shuffle(6, seed=0).repeat(2)
    assert assert_checkpoint_roundtrip(ds) == 30


def _replay_state(ds: sk.Dataset, skip: int) -> tuple[dict[str, Any], list[Any]]:
    list(ds)  # fill
    it = ds.iterator()
    for _ in range(skip):
        next(it)
    state = json.loads(json.dumps(it.get_state()))
    rest = list(it)
    assert state["mode"] == "replay" and state["pos"] == skip
    return state, rest


def test_replay_state_restores_without_the_cache(where: str) -> None:
    """A new process (no memory cache, or a deleted file) recomputes up to the position."""
    fn = Counted(_features)
    state, rest = _replay_state(sk.Dataset.range(10).map(fn).cache(where), 4)
    if where:
        os.unlink(where)
    fresh = sk.Dataset.range(10).map(fn).cache(where)
    calls = fn.calls
    _equal(list(fresh.iterator(state)), rest)
    assert fn.calls == calls + 10
    _equal(list(fresh)[4:], rest)  # and the recomputed pass filled the cache
    assert fn.calls == calls + 10


def test_replay_state_restores_in_o1(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    fn = Counted(_square)
    state, rest = _replay_state(sk.Dataset.range(1000).map(fn).cache(path), 990)
    fresh = sk.Dataset.range(1000).map(fn).cache(path)
    assert [int(v) for v in fresh.iterator(state)] == [int(v) for v in rest]
    assert fn.calls == 1000


def test_fill_state_restored_mid_pass_reads_input_only(where: str) -> None:
    fn = Counted(_square)
    ds = sk.Dataset.range(10).map(fn).cache(where)
    it = ds.iterator()
    for _ in range(4):
        next(it)
    state = it.get_state()
    with pytest.warns(UserWarning, match="partial"):
        it.close()
    assert state["mode"] == "fill"
    fresh = sk.Dataset.range(10).map(fn).cache(where)
    assert [int(v) for v in fresh.iterator(state)] == [i * i for i in range(4, 10)]
    # The restored pass missed its first part, so it did not fill the cache.
    before = fn.calls
    assert [int(v) for v in fresh] == [i * i for i in range(10)]
    assert fn.calls == before + 10


def test_state_of_a_different_cache_is_refused(where: str) -> None:
    ds = sk.Dataset.range(3).cache(where)
    list(ds)
    with pytest.raises(sk.CheckpointError, match="holds 3"):
        ds.iterator({"op": "cache", "mode": "replay", "pos": 9, "start": None})


def test_replay_state_without_start_and_without_cache_is_refused() -> None:
    def gen() -> Any:
        yield from range(3)

    ds = sk.Dataset.from_generator(gen, output_signature=sk.TensorSpec((), np.int64)).cache()
    list(ds)
    it = ds.iterator()
    next(it)
    state = it.get_state()
    assert state["start"] is None  # a generator cannot save its position
    fresh = sk.Dataset.from_generator(gen, output_signature=sk.TensorSpec((), np.int64)).cache()
    with pytest.raises(sk.CheckpointError, match="no usable cache"):
        fresh.iterator(state)


# -- file cache: types and errors --------------------------------------------------------------

_ELEMENT = (
    np.int64(3),
    np.float32(1.5),
    np.bool_(True),
    np.complex64(1 + 2j),
    np.datetime64("2024-01-02", "D"),
    np.str_("text"),
    np.bytes_(b"b\x00y"),
    7,
    -(2**63),
    2.5,
    True,
    3 - 1j,
    "héllo",
    b"\x00\x01raw",
    None,
    np.arange(12, dtype=">i4").reshape(3, 4),
    np.arange(10.0)[::2],  # not contiguous
    np.zeros((0, 3), np.float16),
    np.array(7, np.uint16),
    np.array(["ab", "c"]),
    np.array([b"x\x00", b""], dtype="S2"),
    np.array([b"abc", b"", b"\x00\x00"], dtype=object),
    np.array([["a", "bc"], ["", "é"]], dtype=object),
    np.array(b"one", dtype=object),
    Point(np.float64(1), {"k": [1, 2, 3]}),
    {"nested": (np.ones((2, 2)), {"deep": "x"})},
)


def test_file_roundtrips_every_supported_type(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    ds = sk.Dataset.range(2).map(lambda i: _ELEMENT).cache(path)
    first = list(ds)
    replay = list(sk.Dataset.range(2).map(lambda i: _ELEMENT).cache(path))
    expected = list(_ELEMENT)
    expected[-2] = Point(np.float64(1), {"k": np.array([1, 2, 3])})  # a list leaf -> array
    for got in replay:
        assert_elements_equal(got, tuple(expected))
        for i, (g, e) in enumerate(zip(got, _ELEMENT, strict=True)):
            assert type(g) is type(e) or isinstance(e, np.ndarray), i
        assert isinstance(got[6], np.bytes_) and got[6] == b"b\x00y"
        assert type(got[-2]) is Point
    _equal(first, replay)


@pytest.mark.parametrize(
    "element",
    [
        np.int64(-5),
        7,
        2.5,
        (np.int64(1), np.float32(0.1), 3, -1.5),
        (np.uint64(2**64 - 1), np.float16(0.333), np.bool_(False), np.int8(-128)),
        {"label": np.int32(4)},
    ],
    ids=["np.int64", "int", "float", "tuple", "extremes", "dict"],
)
def test_file_roundtrips_scalar_elements(tmp_path: Path, element: Any) -> None:
    path = str(tmp_path / "c.stoker")
    list(sk.Dataset.range(3).map(lambda i: element).cache(path))
    for got in sk.Dataset.range(3).map(lambda i: element).cache(path):
        assert_elements_equal(got, element)
        leaves = got if isinstance(got, tuple) else [got]
        for g, e in zip(leaves, element if isinstance(element, tuple) else [element], strict=True):
            assert type(g) is type(e)


def test_file_arrays_are_read_only_views_of_the_mapping(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    ds = sk.Dataset.range(3).map(lambda i: np.full(5000, i, np.float32)).cache(path)
    list(ds)
    arrays = list(ds)
    for i, a in enumerate(arrays):
        assert not a.flags.writeable and not a.flags.owndata
        assert a.ctypes.data % 64 == 0  # large arrays are 64-byte aligned
        assert a.tolist() == [float(i)] * 5000
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 1


def test_unsupported_element_is_a_clear_error_at_write_time(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    ds = sk.Dataset.range(3).map(lambda i: (i, {"obj": object()})).cache(path)
    with pytest.raises(CacheError, match=r"builtins.object at element\[1\]\['obj'\]"):
        list(ds)
    assert os.listdir(tmp_path) == []
    with pytest.raises(CacheError, match="dict key 1"):
        list(sk.Dataset.range(1).map(lambda i: {1: i}).cache(path))
    with pytest.raises(CacheError, match="outside int64"):
        list(sk.Dataset.range(1).map(lambda i: 2**70).cache(path))


def test_not_a_cache_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my precious notes")
    with pytest.raises(CacheError, match="not a stoker cache"):
        list(sk.Dataset.range(3).cache(str(path)))
    assert path.read_text() == "my precious notes"


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "nope" / "c.stoker")
    with pytest.raises(CacheError, match="directory exists"):
        list(sk.Dataset.range(3).cache(path))


def test_filename_type_is_checked() -> None:
    with pytest.raises(TypeError, match="filename"):
        sk.Dataset.range(3).cache(3)  # type: ignore[arg-type]


def test_pathlike_filename(tmp_path: Path) -> None:
    ds = sk.Dataset.range(3).cache(tmp_path / "c.stoker")  # type: ignore[arg-type]
    assert [int(v) for v in ds] == [0, 1, 2]
    assert (tmp_path / "c.stoker").exists()
