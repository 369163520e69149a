"""Dataset.take."""

from __future__ import annotations

import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


def ints(ds) -> list[int]:
    return [int(x) for x in ds]


@pytest.mark.parametrize("n", [0, 3, 10])
@pytest.mark.parametrize("count", [-1, 0, 1, 3, 20])
def test_matches_reference(n: int, count: int) -> None:
    xs = list(range(n))
    expected = xs if count == -1 else xs[:count]
    ds = D.range(n).take(count)
    assert ints(ds) == expected
    assert ds.cardinality() == len(expected)


def test_take_from_infinite() -> None:
    ds = D.range(3).repeat().take(7)
    assert ints(ds) == [0, 1, 2, 0, 1, 2, 0]
    assert ds.cardinality() == 7
    assert D.range(3).repeat().take(-1).cardinality() == sk.INFINITE_CARDINALITY


def test_does_not_read_past_count() -> None:
    pulled = []

    def gen():
        for i in range(10):
            pulled.append(i)
            yield i

    assert list(D.from_generator(gen).take(3)) == [0, 1, 2]
    assert pulled == [0, 1, 2]


@pytest.mark.parametrize("count", [-2, 1.0, True, "3"])
def test_bad_count(count) -> None:
    with pytest.raises(ValueError, match="count"):
        D.range(3).take(count)


def test_unknown_cardinality() -> None:
    assert D.range(10).filter(lambda x: x > 3).take(3).cardinality() == sk.UNKNOWN_CARDINALITY


@pytest.mark.parametrize(
    ("ds", "n"),
    [(D.range(10).take(4), 4), (D.range(10).take(-1), 10), (D.range(3).repeat().take(7), 7)],
)
def test_checkpoint_roundtrip(ds, n: int) -> None:
    assert assert_checkpoint_roundtrip(ds) == n
