"""Dataset.take_while."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset
Point = collections.namedtuple("Point", ["x", "y"])


@pytest.mark.parametrize(
    "pred", [lambda x: x < 4, lambda x: x < 0, lambda x: x < 100, lambda x: x % 5 != 3]
)
def test_matches_reference(pred) -> None:
    got = [int(x) for x in D.range(10).take_while(pred)]
    assert got == list(itertools.takewhile(lambda x: pred(np.int64(x)), range(10)))


def test_stops_reading_after_the_first_false() -> None:
    pulled = []

    def gen():
        for i in range(10):
            pulled.append(i)
            yield i

    it = D.from_generator(gen).take_while(lambda x: x < 2).iterator()
    assert list(it) == [0, 1]
    assert pulled == [0, 1, 2]
    assert next(it, None) is None
    assert pulled == [0, 1, 2]


def test_tuple_unpacked_namedtuple_not() -> None:
    pairs = D.zip(D.range(5), D.range(5, 10)).take_while(lambda a, b: a + b < 9)
    assert [(int(a), int(b)) for a, b in pairs] == [(0, 5), (1, 6)]
    points = D.from_tensor_slices(Point([1, 2, 3], [3, 2, 1])).take_while(lambda p: p.x < p.y)
    assert list(points) == [Point(1, 3)]


def test_non_bool_predicate_is_an_error() -> None:
    with pytest.raises(sk.InvalidElementError, match="scalar bool"):
        list(D.range(3).take_while(lambda x: x))


def test_user_error_note() -> None:
    with pytest.raises(ZeroDivisionError) as e:
        list(D.range(3).take_while(lambda x: 1 / 0 > 0, name="until"))
    assert "until[" in e.value.__notes__[0] and "element 0" in e.value.__notes__[0]


def test_cardinality() -> None:
    assert D.range(10).take_while(lambda x: x < 5).cardinality() == sk.UNKNOWN_CARDINALITY


def test_checkpoint_roundtrip() -> None:
    assert assert_checkpoint_roundtrip(D.range(10).take_while(lambda x: x < 6)) == 6
    assert assert_checkpoint_roundtrip(D.range(10).take_while(lambda x: x < 6).repeat(2)) == 12
