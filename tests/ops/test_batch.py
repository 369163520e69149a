"""Dataset.batch."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset
Point = collections.namedtuple("Point", ["x", "y"])


def reference_batch(xs, size, drop):
    out = [xs[i : i + size] for i in range(0, len(xs), size)]
    if drop and out and len(out[-1]) < size:
        out.pop()
    return out


@pytest.mark.parametrize("n", [0, 1, 5, 6, 7])
@pytest.mark.parametrize("size", [1, 3, 10])
@pytest.mark.parametrize("drop", [False, True])
def test_matches_reference(n: int, size: int, drop: bool) -> None:
    ds = D.range(n).batch(size, drop_remainder=drop)
    got = [b.tolist() for b in ds]
    assert got == reference_batch(list(range(n)), size, drop)
    assert ds.cardinality() == len(got)


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ([1, 2, 3], np.int64),
        ([1.5, 2.0, 3.0], np.float64),
        ([True, False, True], np.bool_),
        (np.array([1, 2, 3], np.uint8), np.uint8),
        (np.array([1, 2, 3], np.float32), np.float32),
    ],
)
def test_dtypes(values, dtype) -> None:
    (batch,) = list(D.from_tensor_slices(values).batch(3))
    assert batch.dtype == dtype and batch.shape == (3,)


def test_python_scalars_from_map_become_numpy() -> None:
    (ints,) = list(D.range(3).map(lambda x: int(x)).batch(3))
    assert_elements_equal(ints, np.array([0, 1, 2], np.int64))
    (floats,) = list(D.range(3).map(lambda x: float(x)).batch(3))
    assert_elements_equal(floats, np.array([0.0, 1.0, 2.0]))


def test_strings_and_bytes() -> None:
    (s,) = list(D.from_tensor_slices(["a", "bb"]).batch(2))
    assert s.dtype.kind == "U" and s.tolist() == ["a", "bb"]
    (b,) = list(D.from_tensor_slices([b"a", b"b\x00"]).batch(2))
    assert b.tolist() == [b"a", b"b\x00"]  # trailing NUL kept (object dtype)


def test_arrays_gain_a_leading_dimension() -> None:
    ds = D.range(5).map(lambda x: np.full((2, 3), x, np.float32)).batch(2)
    got = list(ds)
    assert [b.shape for b in got] == [(2, 2, 3), (2, 2, 3), (1, 2, 3)]
    assert got[0].dtype == np.float32
    assert_elements_equal(got[2], np.full((1, 2, 3), 4, np.float32))


def test_structures_are_batched_leaf_by_leaf() -> None:
    data = {
        "img": np.arange(12).reshape(4, 3),
        "meta": (Point([1, 2, 3, 4], [5, 6, 7, 8]), ["a", "b", "c", "d"]),
    }
    got = list(D.from_tensor_slices(data).batch(3))
    assert_elements_equal(
        got[0],
        {
            "img": np.arange(9).reshape(3, 3),
            "meta": (Point(np.array([1, 2, 3]), np.array([5, 6, 7])), np.array(["a", "b", "c"])),
        },
    )
    assert_elements_equal(
        got[1],
        {
            "img": np.array([[9, 10, 11]]),
            "meta": (Point(np.array([4]), np.array([8])), np.array(["d"])),
        },
    )


def test_shape_mismatch_names_elements_and_shapes() -> None:
    shapes = [(2,), (2,), (2,), (2,), (2,), (3,)]
    ds = D.from_generator(lambda: (np.zeros(s) for s in shapes)).batch(3)
    it = ds.iterator()
    assert next(it).shape == (3, 2)
    with pytest.raises(sk.InvalidElementError) as e:
        next(it)
    msg = str(e.value)
    assert "elements 3 and 5" in msg
    assert "(2,)" in msg and "(3,)" in msg
    assert "padded_batch" in msg
    assert isinstance(e.value, ValueError)


def test_shape_mismatch_inside_a_structure() -> None:
    elements = [(1, np.zeros(2)), (2, np.zeros(4))]
    with pytest.raises(sk.InvalidElementError, match=r"elements 0 and 1.*\(2,\).*\(4,\)"):
        list(D.from_generator(lambda: iter(elements)).batch(2))


@pytest.mark.parametrize(
    "elements",
    [
        [{"a": 1}, {"b": 1}],
        [(1, 2), (1,)],
        [(1, (2, 3)), (1, (2,))],
        [Point(1, 2), (1, 2)],
        [1, (1, 2)],
    ],
)
def test_structure_mismatch_is_an_error(elements) -> None:
    with pytest.raises(sk.InvalidElementError, match="element 1 has structure"):
        list(D.from_generator(lambda: iter(elements)).batch(2))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"batch_size": 0}, ValueError),
        ({"batch_size": -1}, ValueError),
        ({"batch_size": 2.0}, TypeError),
        ({"batch_size": True}, TypeError),
        ({"batch_size": 2, "num_parallel_calls": 0}, ValueError),
    ],
)
def test_bad_arguments(kwargs, error) -> None:
    with pytest.raises(error, match="batch"):
        D.range(3).batch(**kwargs)


def test_cardinality() -> None:
    assert D.range(10).batch(3).cardinality() == 4
    assert D.range(10).batch(3, drop_remainder=True).cardinality() == 3
    assert D.range(3).repeat().batch(2).cardinality() == sk.INFINITE_CARDINALITY
    assert D.range(10).filter(lambda x: x > 3).batch(2).cardinality() == sk.UNKNOWN_CARDINALITY
    assert D.range(3).repeat().take(7).batch(2).cardinality() == 4


def test_sequential_num_parallel_calls_same_result() -> None:
    a = [b.tolist() for b in D.range(10).batch(4)]
    b = [b.tolist() for b in D.range(10).batch(4, num_parallel_calls=None, deterministic=True)]
    assert a == b


@pytest.mark.parametrize(
    "ds",
    [
        D.range(10).batch(3),
        D.range(10).batch(3, drop_remainder=True),
        D.from_tensor_slices({"a": np.arange(14).reshape(7, 2), "b": ["s"] * 7}).batch(2),
        D.range(40).map(lambda x: x * 2).shuffle(10, seed=1).batch(4),
        D.range(40).filter(lambda x: x % 3 > 0).shuffle(10, seed=1).batch(4),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0
