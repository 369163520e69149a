"""Dataset.concatenate."""

from __future__ import annotations

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


@pytest.mark.parametrize(("a", "b"), [(3, 4), (0, 2), (2, 0), (0, 0)])
def test_matches_reference(a: int, b: int) -> None:
    ds = D.range(a).concatenate(D.range(100, 100 + b))
    assert [int(x) for x in ds] == list(range(a)) + list(range(100, 100 + b))
    assert ds.cardinality() == a + b


def test_structures() -> None:
    a = D.from_tensor_slices({"x": [1, 2], "y": ["a", "b"]})
    b = D.from_tensor_slices({"x": [3], "y": ["c"]})
    got = [(int(e["x"]), str(e["y"])) for e in a.concatenate(b)]
    assert got == [(1, "a"), (2, "b"), (3, "c")]


def test_chained() -> None:
    ds = D.range(1).concatenate(D.range(1, 2)).concatenate(D.range(2, 3))
    assert [int(x) for x in ds] == [0, 1, 2]


def test_incompatible_inputs_fail_at_the_switch() -> None:
    ds = D.range(2).concatenate(D.from_tensor_slices(["a"]))
    it = ds.iterator()
    assert [int(next(it)) for _ in range(2)] == [0, 1]
    with pytest.raises(sk.InvalidElementError, match="incompatible"):
        next(it)


def test_not_a_dataset() -> None:
    with pytest.raises(TypeError, match="Dataset"):
        D.range(2).concatenate([1, 2])


def test_cardinality_rules() -> None:
    unknown = D.range(4).filter(lambda x: x > 1)
    forever = D.range(3).repeat()
    assert D.range(3).concatenate(forever).cardinality() == sk.INFINITE_CARDINALITY
    assert D.range(3).concatenate(unknown).cardinality() == sk.UNKNOWN_CARDINALITY
    assert forever.concatenate(unknown).cardinality() == sk.INFINITE_CARDINALITY
    assert unknown.concatenate(forever).cardinality() == sk.INFINITE_CARDINALITY


@pytest.mark.parametrize(
    "ds",
    [
        D.range(3).concatenate(D.range(5, 8)),
        D.range(0).concatenate(D.range(3)),
        D.range(4).filter(lambda x: x % 2 == 0).concatenate(D.range(3).map(lambda x: x * 10)),
        D.range(3).concatenate(D.range(3, 6)).shuffle(4, seed=0).repeat(2),
        D.from_tensor_slices(np.arange(4)).concatenate(D.from_tensor_slices(np.arange(2))),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0


def test_checkpoint_roundtrip_shuffle_in_second_input() -> None:
    assert_checkpoint_roundtrip(D.range(3).concatenate(D.range(5).shuffle(5, seed=1)))
