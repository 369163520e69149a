"""Dataset.enumerate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset


@pytest.mark.parametrize("start", [0, 5, -3])
def test_matches_reference(start: int) -> None:
    got = list(D.from_tensor_slices(["a", "b", "c"]).enumerate(start))
    for (i, x), (ei, ex) in zip(got, enumerate("abc", start), strict=True):
        assert type(i) is np.int64 and int(i) == ei
        assert x == ex


def test_index_counts_across_internal_blocks() -> None:
    idx = [int(i) for i, _ in D.range(3000).enumerate(10)]
    assert idx == list(range(10, 3010))


def test_structured_elements_are_nested() -> None:
    (first, _) = list(D.zip(D.range(2), D.range(2)).enumerate())
    assert_elements_equal(first, (np.int64(0), (np.int64(0), np.int64(0))))
    # map unpacks the outer pair only, like tf.data.
    ds = D.zip(D.range(3), D.range(3)).enumerate().map(lambda i, ab: i + ab[0] + ab[1])
    assert [int(x) for x in ds] == [0, 3, 6]


def test_restarts_each_pass() -> None:
    ds = D.range(2).enumerate()
    assert [int(i) for i, _ in ds.repeat(2)] == [0, 1, 0, 1]


def test_bad_start() -> None:
    with pytest.raises(TypeError, match="start"):
        D.range(3).enumerate(1.5)


def test_cardinality_kept() -> None:
    assert D.range(7).enumerate().cardinality() == 7
    assert D.range(7).repeat().enumerate().cardinality() == sk.INFINITE_CARDINALITY


def test_infinite() -> None:
    got = [(int(i), int(x)) for i, x in itertools.islice(D.range(2).repeat().enumerate(), 5)]
    assert got == [(0, 0), (1, 1), (2, 0), (3, 1), (4, 0)]


@pytest.mark.parametrize(
    "ds",
    [
        D.range(10).enumerate(),
        D.range(10).enumerate(100).shuffle(4, seed=0),
        D.range(10).filter(lambda x: x % 2 == 0).enumerate(-2),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0
