"""Dataset.repeat."""

from __future__ import annotations

import itertools

import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


def ints(ds) -> list[int]:
    return [int(x) for x in ds]


@pytest.mark.parametrize("n", [0, 1, 3])
@pytest.mark.parametrize("count", [0, 1, 2, 5])
def test_matches_reference(n: int, count: int) -> None:
    ds = D.range(n).repeat(count)
    assert ints(ds) == list(range(n)) * count
    assert ds.cardinality() == n * count


@pytest.mark.parametrize("count", [None, -1])
def test_forever(count) -> None:
    ds = D.range(3).repeat(count)
    assert ints(itertools.islice(ds, 10)) == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert ds.cardinality() == sk.INFINITE_CARDINALITY


def test_repeat_of_empty_ends() -> None:
    assert ints(D.range(0).repeat()) == []
    assert D.range(0).repeat().cardinality() == 0
    assert ints(D.range(5).filter(lambda x: x > 10).repeat()) == []


def test_repeat_zero_never_reads_the_input() -> None:
    calls = []
    ds = D.from_generator(lambda: calls.append(1) or iter([1, 2])).repeat(0)
    assert list(ds) == []
    assert calls == []


def test_each_epoch_rereads_the_input() -> None:
    calls = []

    def gen():
        calls.append(1)
        yield from range(2)

    assert list(D.from_generator(gen).repeat(3)) == [0, 1, 0, 1, 0, 1]
    assert len(calls) == 3


def test_nested_repeat() -> None:
    assert ints(D.range(2).repeat(2).repeat(3)) == [0, 1] * 6


@pytest.mark.parametrize("count", [-2, 1.5, True])
def test_bad_count(count) -> None:
    with pytest.raises(ValueError, match="count"):
        D.range(3).repeat(count)


def test_cardinality_rules() -> None:
    unknown = D.range(3).filter(lambda x: x > 0)
    assert unknown.repeat().cardinality() == sk.INFINITE_CARDINALITY  # tf.data's rule
    assert unknown.repeat(2).cardinality() == sk.UNKNOWN_CARDINALITY
    assert unknown.repeat(0).cardinality() == 0
    assert D.range(3).repeat().repeat(2).cardinality() == sk.INFINITE_CARDINALITY


@pytest.mark.parametrize(
    ("ds", "n"),
    [
        (D.range(3).repeat(3), 9),
        (D.range(3).repeat(0), 0),
        (D.range(3).repeat(), 50),
        (D.range(4).filter(lambda x: x != 2).repeat(2), 6),
        (D.range(3).repeat(2).repeat(2), 12),
    ],
)
def test_checkpoint_roundtrip(ds, n: int) -> None:
    assert assert_checkpoint_roundtrip(ds, max_elements=50) == n
