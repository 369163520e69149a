"""Dataset.from_tensor_slices and Dataset.from_tensors: structures, dtypes, read-only views."""

from __future__ import annotations

import collections
import re
from typing import Any

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset
Point = collections.namedtuple("Point", ["x", "y"])


def elements(ds: sk.Dataset) -> list:
    return list(ds)


# -- from_tensor_slices ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        ([1, 2, 3], np.int64),  # Python ints become int64
        ([1.0, 2.5], np.float64),
        ([True, False], np.bool_),
        (np.array([1, 2], np.int8), np.int8),
        (np.array([1.0, 2.0], np.float32), np.float32),
    ],
)
def test_slices_of_a_vector_are_numpy_scalars(data, dtype) -> None:
    got = elements(D.from_tensor_slices(data))
    assert [type(x) for x in got] == [dtype] * len(data)
    assert [x.item() for x in got] == list(np.asarray(data).tolist())


def test_slices_of_a_matrix_are_rows() -> None:
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    got = elements(D.from_tensor_slices(data))
    assert len(got) == 4
    for i, row in enumerate(got):
        assert_elements_equal(row, data[i])


def test_nested_lists_become_arrays() -> None:
    got = elements(D.from_tensor_slices([[1, 2], [3, 4]]))
    assert_elements_equal(got[0], np.array([1, 2], np.int64))
    assert_elements_equal(got[1], np.array([3, 4], np.int64))


def test_strings_are_numpy_str_and_bytes_stay_bytes() -> None:
    # Documented deviation: tf.data gives bytes for strings; stoker keeps np.str_.
    got = elements(D.from_tensor_slices(["a", "bc"]))
    assert got == ["a", "bc"]
    assert all(type(s) is np.str_ for s in got)
    raw = elements(D.from_tensor_slices([b"a", b"bc\x00"]))
    assert raw == [b"a", b"bc\x00"]  # trailing NUL kept


def test_tuple_structure() -> None:
    got = elements(D.from_tensor_slices(([1, 2], ["a", "b"], [[1.0, 2.0], [3.0, 4.0]])))
    assert_elements_equal(got[0], (np.int64(1), np.str_("a"), np.array([1.0, 2.0])))
    assert_elements_equal(got[1], (np.int64(2), np.str_("b"), np.array([3.0, 4.0])))


def test_dict_structure_keeps_key_order() -> None:
    got = elements(D.from_tensor_slices({"z": [1, 2], "a": [3.0, 4.0]}))
    assert [list(e) for e in got] == [["z", "a"], ["z", "a"]]
    assert_elements_equal(got[1], {"z": np.int64(2), "a": np.float64(4.0)})


def test_namedtuple_structure() -> None:
    got = elements(D.from_tensor_slices(Point([1, 2], [3, 4])))
    assert got == [Point(1, 3), Point(2, 4)]
    assert all(type(e) is Point for e in got)


def test_nested_structure() -> None:
    data = {
        "img": np.zeros((3, 2, 2), np.uint8),
        "meta": (Point([1, 2, 3], [4, 5, 6]), ["a", "b", "c"]),
    }
    got = elements(D.from_tensor_slices(data))
    assert len(got) == 3
    assert_elements_equal(
        got[2],
        {
            "img": np.zeros((2, 2), np.uint8),
            "meta": (Point(np.int64(3), np.int64(6)), np.str_("c")),
        },
    )


def test_lists_inside_structures_are_leaves() -> None:
    # tf.data: a list is one tensor, not structure.
    got = elements(D.from_tensor_slices(([1, 2], [[1, 2], [3, 4]])))
    assert_elements_equal(got[0], (np.int64(1), np.array([1, 2])))


def test_elements_are_read_only_views() -> None:
    data = np.arange(6).reshape(3, 2)
    row = next(iter(D.from_tensor_slices(data)))
    assert not row.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        row[0] = 100
    assert data.flags.writeable, "the caller's array must stay writeable"
    assert int(next(iter(D.from_tensor_slices(data)))[0]) == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (5, "scalar"),
        (([1, 2], 3), "scalar"),
        (([1, 2], [1, 2, 3]), "different first dimensions"),
        ((), "at least one component"),
        ({}, "at least one component"),
    ],
)
def test_slices_bad_input(data, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        D.from_tensor_slices(data)


def test_slices_empty_first_dimension() -> None:
    ds = D.from_tensor_slices(np.zeros((0, 3)))
    assert elements(ds) == []
    assert ds.cardinality() == 0


def test_slices_cardinality() -> None:
    assert D.from_tensor_slices({"a": [1, 2, 3], "b": [4, 5, 6]}).cardinality() == 3
    assert len(D.from_tensor_slices(np.zeros((7, 2)))) == 7


@pytest.mark.parametrize(
    "data",
    [
        [1, 2, 3, 4, 5],
        (np.arange(5), ["a", "b", "c", "d", "e"]),
        {"a": np.arange(10).reshape(5, 2), "b": Point([1, 2, 3, 4, 5], [b"x"] * 5)},
    ],
)
def test_slices_checkpoint_roundtrip(data) -> None:
    assert assert_checkpoint_roundtrip(D.from_tensor_slices(data)) == 5


# -- from_tensors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, np.int64(5)),
        (2.5, np.float64(2.5)),
        (True, np.bool_(True)),
        ("s", np.str_("s")),
        ([1, 2], np.array([1, 2], np.int64)),
        (np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)),
    ],
)
def test_from_tensors_is_one_element(value, expected) -> None:
    got = elements(D.from_tensors(value))
    assert len(got) == 1
    assert_elements_equal(got[0], expected)


def test_from_tensors_structures() -> None:
    value = {"a": (1, [2.0, 3.0]), "b": Point("s", b"raw")}
    (got,) = elements(D.from_tensors(value))
    assert_elements_equal(
        got,
        {"a": (np.int64(1), np.array([2.0, 3.0])), "b": Point(np.str_("s"), b"raw")},
    )


def test_from_tensors_read_only_and_repeatable() -> None:
    ds = D.from_tensors(np.arange(3))
    (a,) = elements(ds)
    assert not a.flags.writeable
    (b,) = elements(ds)
    assert_elements_equal(a, b)


def test_from_tensors_cardinality_and_checkpoint() -> None:
    ds = D.from_tensors((1, "a"))
    assert ds.cardinality() == 1
    assert assert_checkpoint_roundtrip(ds) == 1
    assert assert_checkpoint_roundtrip(ds.repeat(3)) == 3


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda: D.from_tensor_slices([[1, 2], [3]]), "tensors cannot"),
        (lambda: D.from_tensor_slices({"a": [[1, 2], [3]], "b": [1, 2]}), r"tensors\['a'\]"),
        (lambda: D.from_tensor_slices(([1, 2], [[1], [2, 3]])), r"tensors\[1\]"),
        (lambda: D.from_tensors({"x": ([0], [[1, 2], [3]])}), r"tensors\['x'\]\[1\]"),
    ],
)
def test_ragged_input_names_the_op_and_the_component(build: Any, where: str) -> None:
    with pytest.raises(ValueError, match=r"^(from_tensor_slices|from_tensors)\(\): ") as err:
        build()
    assert re.search(where, str(err.value)) and "ragged" in str(err.value)
