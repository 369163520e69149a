"""Dataset.unbatch."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset
Point = collections.namedtuple("Point", ["x", "y"])


@pytest.mark.parametrize("n", [0, 1, 7, 9])
@pytest.mark.parametrize("size", [1, 3, 4])
def test_unbatch_inverts_batch(n: int, size: int) -> None:
    got = list(D.range(n).batch(size).unbatch())
    assert [int(x) for x in got] == list(range(n))
    assert all(type(x) is np.int64 for x in got)


def test_reference_on_ragged_batches() -> None:
    batches = [np.arange(3), np.arange(0), np.arange(10, 12)]
    got = [int(x) for x in D.from_generator(lambda: iter(batches)).unbatch()]
    assert got == [x for b in batches for x in b.tolist()]


def test_rows_of_matrices() -> None:
    got = list(D.from_tensors(np.arange(6).reshape(3, 2)).unbatch())
    assert [r.tolist() for r in got] == [[0, 1], [2, 3], [4, 5]]


def test_structures() -> None:
    element = {"a": np.arange(3), "b": (Point(np.arange(3) * 2, ["x", "y", "z"]), [1.0, 2.0, 3.0])}
    got = list(D.from_tensors(element).unbatch())
    assert len(got) == 3
    assert_elements_equal(
        got[2],
        {"a": np.int64(2), "b": (Point(np.int64(4), np.str_("z")), np.float64(3.0))},
    )
    assert [list(e) for e in got] == [["a", "b"]] * 3


def test_bytes_components() -> None:
    (b,) = list(D.from_tensor_slices([b"a", b"b\x00"]).batch(2))
    got = list(D.from_tensors(b).unbatch())
    assert got == [b"a", b"b\x00"]


def test_scalar_component_is_an_error() -> None:
    with pytest.raises(sk.InvalidElementError, match="scalar component"):
        list(D.range(3).unbatch())


def test_different_batch_sizes_is_an_error() -> None:
    ds = D.from_tensors((np.arange(3), np.arange(2))).unbatch()
    with pytest.raises(sk.InvalidElementError, match="different batch sizes 3 and 2"):
        list(ds)


def test_cardinality() -> None:
    assert D.range(10).batch(3).unbatch().cardinality() == sk.UNKNOWN_CARDINALITY
    assert D.range(3).batch(2).repeat().unbatch().cardinality() == sk.INFINITE_CARDINALITY


def test_checkpoint_mid_batch() -> None:
    it = D.range(10).batch(4).unbatch().iterator()
    for _ in range(5):
        next(it)
    state = it.get_state()
    assert state["mid"] is True and state["pos"] == 1
    assert [int(x) for x in D.range(10).batch(4).unbatch().iterator(state)] == [5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    "ds",
    [
        D.range(10).batch(3).unbatch(),
        D.from_tensor_slices({"a": np.arange(12).reshape(6, 2), "b": ["s"] * 6}).batch(4).unbatch(),
        D.range(20).batch(3).shuffle(4, seed=2).unbatch(),
        D.range(20).filter(lambda x: x % 3 > 0).batch(3).unbatch().batch(2),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0
