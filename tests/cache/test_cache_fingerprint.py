"""Pipeline fingerprints: equal for equal pipelines, different when what matters changes."""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

import stoker as sk
from stoker.ops._cache_fingerprint import describe_pipeline, fingerprint

OFFSET = 10


def _helper(x: Any) -> Any:
    return x + OFFSET


def _digest(ds: sk.Dataset) -> str:
    fp = fingerprint(ds)
    assert fp.known, fp.unknown
    return fp.digest


def test_equal_pipelines_built_twice_are_equal() -> None:
    def build() -> sk.Dataset:
        table = np.arange(5)
        return (
            sk.Dataset.from_tensor_slices({"a": np.arange(10), "b": np.ones((10, 2))})
            .map(lambda d: (d["a"], table[d["a"] % 5]))
            .filter(lambda a, b: a > 1)
            .batch(3)
        )

    assert _digest(build()) == _digest(build())


def test_the_dataset_name_is_not_part_of_it() -> None:
    assert _digest(sk.Dataset.range(3, name="a")) == _digest(sk.Dataset.range(3, name="b"))


def test_op_arguments_change_it() -> None:
    base = _digest(sk.Dataset.range(10).batch(2))
    assert base != _digest(sk.Dataset.range(10).batch(3))
    assert base != _digest(sk.Dataset.range(11).batch(2))
    assert base != _digest(sk.Dataset.range(10).batch(2, drop_remainder=True))
    assert base != _digest(sk.Dataset.range(10).map(lambda x: x).batch(2))


def test_function_code_and_constants_change_it() -> None:
    a = _digest(sk.Dataset.range(3).map(lambda x: x + 1))
    assert a == _digest(sk.Dataset.range(3).map(lambda x: x + 1))
    assert a != _digest(sk.Dataset.range(3).map(lambda x: x + 2))
    assert a != _digest(sk.Dataset.range(3).map(lambda x: x - 1))


def test_closures_defaults_and_partials_change_it() -> None:
    def closure(k: int) -> sk.Dataset:
        return sk.Dataset.range(3).map(lambda x: x * k)

    assert _digest(closure(2)) == _digest(closure(2))
    assert _digest(closure(2)) != _digest(closure(3))

    def scaled(x: Any, k: int = 2) -> Any:
        return x * k

    def scaled3(x: Any, k: int = 3) -> Any:
        return x * k

    assert _digest(sk.Dataset.range(3).map(scaled)) != _digest(sk.Dataset.range(3).map(scaled3))
    p2 = functools.partial(np.multiply, 2)
    p3 = functools.partial(np.multiply, 3)
    assert _digest(sk.Dataset.range(3).map(p2)) != _digest(sk.Dataset.range(3).map(p3))


def test_captured_arrays_are_hashed_by_content() -> None:
    table = np.arange(100.0)

    def build() -> sk.Dataset:
        return sk.Dataset.range(3).map(lambda x: table[x])

    before = _digest(build())
    table[50] = -1
    assert _digest(build()) != before


def test_referenced_globals_and_helpers_change_it() -> None:
    global OFFSET
    before = _digest(sk.Dataset.range(3).map(lambda x: _helper(x)))
    OFFSET = 11
    try:
        assert _digest(sk.Dataset.range(3).map(lambda x: _helper(x))) != before
    finally:
        OFFSET = 10
    assert _digest(sk.Dataset.range(3).map(lambda x: _helper(x))) == before


def test_source_file_size_and_mtime_change_it(tmp_path: Path) -> None:
    f = tmp_path / "data.txt"
    f.write_text("one\n")
    ds = sk.TextLineDataset([str(f)])
    fp = fingerprint(ds)
    assert fp.known and fp.files >= 1
    os.utime(f, ns=(1, 1))
    assert fingerprint(sk.TextLineDataset([str(f)])).digest != fp.digest
    assert (
        fingerprint(sk.TextLineDataset(str(f))).digest
        != fingerprint(sk.TextLineDataset(str(tmp_path / "other.txt"))).digest
    )


def test_list_files_covers_the_matched_files(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"p{i}.txt").write_text(str(i))
    pattern = str(tmp_path / "*.txt")
    fp = fingerprint(sk.Dataset.list_files(pattern, shuffle=False))
    assert fp.files == 3
    (tmp_path / "p3.txt").write_text("3")
    assert fingerprint(sk.Dataset.list_files(pattern, shuffle=False)).digest != fp.digest


def test_ignored_paths_are_not_stat_ed(tmp_path: Path) -> None:
    cache = tmp_path / "c.stoker"
    cache.write_text("x")
    ds = sk.Dataset.from_tensor_slices(np.array([str(cache), str(cache) + ".lock"]))
    assert fingerprint(ds).files == 1
    assert fingerprint(ds, ignore_paths=(str(cache),)).files == 0


def test_objects_with_state_are_hashed_and_opaque_ones_are_unknown() -> None:
    class Scaler:
        def __init__(self, k: float):
            self.k = k

        def __call__(self, x: Any) -> Any:
            return x * self.k

    assert _digest(sk.Dataset.range(3).map(Scaler(2.0))) != _digest(
        sk.Dataset.range(3).map(Scaler(3.0))
    )
    rng = np.random.default_rng(0)
    fp = fingerprint(sk.Dataset.range(3).map(lambda x: x + rng.random()))
    assert not fp.known
    assert any("Generator" in u and "closure['rng']" in u for u in fp.unknown), fp.unknown


def test_fingerprint_hook() -> None:
    class Model:
        def __init__(self, version: str):
            self.version = version
            self.lock = threading.Lock()
            self.native = np.random.default_rng(0)  # unhashable, but the hook speaks for it

        def __call__(self, x: Any) -> Any:
            return x

        def __stoker_fingerprint__(self) -> str:
            return self.version

    assert _digest(sk.Dataset.range(3).map(Model("v1"))) == _digest(
        sk.Dataset.range(3).map(Model("v1"))
    )
    assert _digest(sk.Dataset.range(3).map(Model("v1"))) != _digest(
        sk.Dataset.range(3).map(Model("v2"))
    )


def test_cycles_and_shared_objects_terminate(tmp_path: Path) -> None:
    f = tmp_path / "r.tfrecord"
    f.write_bytes(b"")
    # The reader's per-file closure refers back to the reader dataset.
    fp = fingerprint(sk.TFRecordDataset([str(f)], num_parallel_reads=2))
    assert fp.known
    shared = sk.Dataset.range(3)
    assert _digest(sk.Dataset.zip(shared, shared)) != _digest(shared)


def test_describe_pipeline() -> None:
    def parse(x: Any) -> Any:
        return x

    ds = sk.Dataset.zip(sk.Dataset.range(3).map(parse), sk.Dataset.range(3)).batch(2)
    assert (
        describe_pipeline(ds)
        == "zip(range -> map(test_describe_pipeline.<locals>.parse), range) -> batch"
    )
