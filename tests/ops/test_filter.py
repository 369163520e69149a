"""Dataset.filter."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset
Point = collections.namedtuple("Point", ["x", "y"])


@pytest.mark.parametrize(
    "pred", [lambda x: x % 3 == 0, lambda x: x > 100, lambda x: x >= 0, lambda x: np.bool_(x < 4)]
)
def test_matches_reference(pred) -> None:
    xs = list(range(20))
    got = [int(x) for x in D.range(20).filter(pred)]
    assert got == [x for x in xs if pred(np.int64(x))]


def test_elements_pass_through_unchanged() -> None:
    data = {"a": np.arange(6).reshape(3, 2), "b": ["x", "y", "z"]}
    got = list(D.from_tensor_slices(data).filter(lambda d: d["a"][0] != 2))
    assert len(got) == 2
    assert_elements_equal(got[1], {"a": np.array([4, 5]), "b": np.str_("z")})


def test_predicate_may_return_python_bool_numpy_bool_or_0d_array() -> None:
    for pred in (lambda x: bool(x % 2), lambda x: x % 2 == 1, lambda x: np.array(x % 2 == 1)):
        assert [int(x) for x in D.range(6).filter(pred)] == [1, 3, 5]


@pytest.mark.parametrize(
    ("pred", "shown"),
    [
        (lambda x: x, "int64"),
        (lambda x: np.array([True]), "ndarray"),
        (lambda x: "yes", "str"),
        (lambda x: None, "NoneType"),
    ],
)
def test_non_bool_predicate_is_an_error(pred, shown: str) -> None:
    with pytest.raises(sk.InvalidElementError) as e:
        list(D.range(3).filter(pred))
    msg = str(e.value)
    assert "must return a scalar bool" in msg and "element 0" in msg and shown in msg


def test_plain_tuple_is_unpacked_namedtuple_is_not() -> None:
    pairs = D.zip(D.range(6), D.range(6, 12))
    got = list(pairs.filter(lambda a, b: (a + b) % 4 == 2))
    assert [(int(a), int(b)) for a, b in got] == [
        (a, b) for a, b in zip(range(6), range(6, 12), strict=True) if (a + b) % 4 == 2
    ]
    points = D.from_tensor_slices(Point([1, 2, 3], [3, 2, 1]))
    assert list(points.filter(lambda p: p.x < p.y)) == [Point(1, 3)]


def test_user_error_keeps_type_and_names_stage_and_element() -> None:
    def pred(x):
        if x == 4:
            raise OSError("cannot read")
        return True

    with pytest.raises(OSError, match="cannot read") as e:
        list(D.range(6).filter(pred, name="keep"))
    (note,) = e.value.__notes__
    assert "keep[" in note and "input element 4" in note


def test_error_index_counts_input_elements() -> None:
    # The note's index is the input element's, not the count of kept ones.
    def pred(x):
        if x == 7:
            raise ValueError
        return x % 2 == 0

    with pytest.raises(ValueError) as e:
        list(D.range(10).filter(pred))
    assert "input element 7" in e.value.__notes__[0]


def test_stop_iteration_in_predicate_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="StopIteration"):
        list(D.range(3).filter(lambda x: next(iter(()))))


def test_not_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        D.range(3).filter(True)


def test_cardinality_is_unknown() -> None:
    assert D.range(10).filter(lambda x: x > 3).cardinality() == sk.UNKNOWN_CARDINALITY
    with pytest.raises(TypeError, match="unknown"):
        len(D.range(10).filter(lambda x: x > 3))


def test_checkpoint_roundtrip() -> None:
    assert assert_checkpoint_roundtrip(D.range(30).filter(lambda x: x % 4 == 1)) == 8
    assert assert_checkpoint_roundtrip(D.range(5).filter(lambda x: x > 10)) == 0
    pairs = D.zip(D.range(10), D.range(10)).filter(lambda a, b: a % 2 == 0)
    assert assert_checkpoint_roundtrip(pairs) == 5
