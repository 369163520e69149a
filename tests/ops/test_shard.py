"""Dataset.shard."""

from __future__ import annotations

import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


@pytest.mark.parametrize("n", [0, 1, 10, 11])
@pytest.mark.parametrize(("num", "index"), [(1, 0), (3, 0), (3, 1), (3, 2), (4, 3), (20, 5)])
def test_matches_reference(n: int, num: int, index: int) -> None:
    ds = D.range(n).shard(num, index)
    expected = list(range(n))[index::num]
    assert [int(x) for x in ds] == expected
    assert ds.cardinality() == len(expected)


def test_shards_partition_the_input() -> None:
    shards = [[int(x) for x in D.range(17).shard(4, i)] for i in range(4)]
    assert sorted(x for s in shards for x in s) == list(range(17))


@pytest.mark.parametrize(
    ("num", "index", "error"),
    [(0, 0, ValueError), (2, 2, ValueError), (2, -1, ValueError), (2.0, 0, TypeError)],
)
def test_bad_arguments(num, index, error) -> None:
    with pytest.raises(error, match="shard"):
        D.range(3).shard(num, index)


def test_cardinality_infinite_and_unknown() -> None:
    assert D.range(3).repeat().shard(2, 0).cardinality() == sk.INFINITE_CARDINALITY
    assert D.range(10).filter(lambda x: x > 3).shard(2, 0).cardinality() == sk.UNKNOWN_CARDINALITY


@pytest.mark.parametrize(
    "ds",
    [
        D.range(10).shard(3, 1),
        D.range(10).shard(3, 0).repeat(2),
        D.range(20).shard(4, 2).shuffle(3, seed=1),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0
