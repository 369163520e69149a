"""Dataset.range: Python's range semantics, int64 elements, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset

RANGES = [(5,), (0,), (-3,), (2, 7), (7, 2), (0, 10, 3), (10, 0, -3), (-5, 5, 2), (0, 3000, 7)]


@pytest.mark.parametrize("args", RANGES)
def test_matches_python_range(args: tuple[int, ...]) -> None:
    got = list(D.range(*args))
    assert [int(x) for x in got] == list(range(*args))
    assert all(type(x) is np.int64 for x in got)


@pytest.mark.parametrize("args", RANGES)
def test_cardinality_and_len(args: tuple[int, ...]) -> None:
    ds = D.range(*args)
    assert ds.cardinality() == len(range(*args))
    assert len(ds) == len(range(*args))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float32, np.float64])
def test_output_type(dtype: type) -> None:
    got = list(D.range(1, 4, output_type=dtype))
    assert [type(x) for x in got] == [dtype] * 3
    assert [float(x) for x in got] == [1.0, 2.0, 3.0]


def test_numpy_integer_arguments() -> None:
    assert [int(x) for x in D.range(np.int32(2), np.int64(5))] == [2, 3, 4]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((), TypeError, "1 to 3 positional arguments"),
        ((1, 2, 3, 4), TypeError, "1 to 3 positional arguments"),
        ((1.5,), TypeError, "must be ints"),
        ((True,), TypeError, "must be ints"),
        ((0, 5, 0), ValueError, "must not be zero"),
    ],
)
def test_bad_arguments(args: tuple, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        D.range(*args)


def test_each_iteration_starts_over() -> None:
    ds = D.range(3)
    assert [int(x) for x in ds] == [0, 1, 2]
    assert [int(x) for x in ds] == [0, 1, 2]


def test_long_range_crosses_internal_chunks() -> None:
    # Values are produced in blocks internally; check the seams and the end exactly.
    got = np.fromiter(D.range(-1, 5000, 2), dtype=np.int64)
    np.testing.assert_array_equal(got, np.arange(-1, 5000, 2))


@pytest.mark.parametrize("args", [(10,), (10, 0, -3), (0, 3000, 7)])
def test_checkpoint_roundtrip(args: tuple[int, ...]) -> None:
    assert_checkpoint_roundtrip(D.range(*args), max_elements=500, every=7)


def test_state_is_an_index() -> None:
    it = D.range(100).iterator()
    for _ in range(42):
        next(it)
    state = it.get_state()
    assert state["op"] == "range" and state["index"] == 42
    assert int(next(D.range(100).iterator({"op": "range", "index": 42}))) == 42
