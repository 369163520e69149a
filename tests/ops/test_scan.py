"""Dataset.scan."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset
Point = collections.namedtuple("Point", ["x", "y"])


def reference_scan(initial, fn, xs):
    state, out = initial, []
    for x in xs:
        state, y = fn(state, x)
        out.append(y)
    return out


def test_tf_doc_running_sum() -> None:
    # tf.data's example: D.range(10).scan(0, lambda state, i: (state + i, state))
    got = [int(x) for x in D.range(10).scan(np.int64(0), lambda s, i: (s + i, s))]
    assert got == [0, *itertools.accumulate(range(9))]


@pytest.mark.parametrize(
    ("initial", "fn"),
    [
        (np.int64(1), lambda s, x: (s * 2, s + x)),
        ((np.int64(0), np.int64(1)), lambda s, x: ((s[1], s[0] + s[1]), s[0] * x)),
        ({"n": np.int64(0)}, lambda s, x: ({"n": s["n"] + 1}, (s["n"], x))),
    ],
)
def test_matches_reference(initial, fn) -> None:
    xs = list(D.range(8))
    got = list(D.range(8).scan(initial, fn))
    for g, e in zip(got, reference_scan(initial, fn, xs), strict=True):
        assert_elements_equal(g, e)


def test_tuple_element_is_one_argument() -> None:
    # scan_func(state, element): a tuple element is passed whole, as tf.data does.
    ds = D.zip(D.range(3), D.range(3)).scan(np.int64(0), lambda s, ab: (s + ab[0] * ab[1], s))
    assert [int(x) for x in ds] == [0, 0, 1]


def test_state_restarts_each_pass() -> None:
    ds = D.range(3).scan(np.int64(0), lambda s, x: (s + x, s + x))
    assert [int(x) for x in ds] == [0, 1, 3]
    assert [int(x) for x in ds] == [0, 1, 3]
    assert [int(x) for x in ds.repeat(2)] == [0, 1, 3, 0, 1, 3]


def test_bad_return_is_an_error() -> None:
    with pytest.raises(sk.InvalidElementError, match=r"must return \(new_state, output\)"):
        list(D.range(3).scan(0, lambda s, x: s))


def test_user_error_note() -> None:
    with pytest.raises(ZeroDivisionError) as e:
        list(D.range(3).scan(0, lambda s, x: (s, 1 // (int(x) - 2))))
    assert "scan[" in e.value.__notes__[0] and "element 2" in e.value.__notes__[0]


def test_not_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        D.range(3).scan(0, None)


def test_cardinality_kept() -> None:
    assert D.range(6).scan(0, lambda s, x: (s, x)).cardinality() == 6


@pytest.mark.parametrize(
    ("initial", "fn"),
    [
        (np.int64(0), lambda s, x: (s + x, s)),
        ((np.float32(0.5), "a"), lambda s, x: ((s[0] * 2, s[1] + "b"), s[0])),
        ({"k": np.zeros(2)}, lambda s, x: ({"k": s["k"] + x}, s["k"].sum())),
        (b"", lambda s, x: (s + b"\x00", len(s))),
    ],
)
def test_checkpoint_roundtrip(initial, fn) -> None:
    assert assert_checkpoint_roundtrip(D.range(8).scan(initial, fn)) == 8


def test_namedtuple_state_cannot_be_saved() -> None:
    it = D.range(4).scan(Point(0, 0), lambda s, x: (s, x)).iterator()
    next(it)
    with pytest.raises(sk.CheckpointError, match="namedtuple"):
        it.get_state()
