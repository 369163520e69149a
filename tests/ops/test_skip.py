"""Dataset.skip."""

from __future__ import annotations

import itertools

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
    expected = [] if count == -1 else xs[count:]
    ds = D.range(n).skip(count)
    assert ints(ds) == expected
    assert ds.cardinality() == len(expected)


def test_skip_on_infinite() -> None:
    ds = D.range(3).repeat().skip(4)
    assert ints(itertools.islice(ds, 4)) == [1, 2, 0, 1]
    assert ds.cardinality() == sk.INFINITE_CARDINALITY
    assert D.range(3).repeat().skip(-1).cardinality() == sk.INFINITE_CARDINALITY


@pytest.mark.parametrize("count", [-2, 1.0, False])
def test_bad_count(count) -> None:
    with pytest.raises(ValueError, match="count"):
        D.range(3).skip(count)


def test_unknown_cardinality() -> None:
    assert D.range(10).filter(lambda x: x > 3).skip(2).cardinality() == sk.UNKNOWN_CARDINALITY


@pytest.mark.parametrize(
    ("ds", "n"),
    [
        (D.range(10).skip(4), 6),
        (D.range(10).skip(-1), 0),
        (D.range(10).skip(20), 0),
        (D.range(4).repeat(3).skip(5), 7),
        (D.range(10).skip(3).shuffle(4, seed=0), 7),
    ],
)
def test_checkpoint_roundtrip(ds, n: int) -> None:
    assert assert_checkpoint_roundtrip(ds) == n
