"""Dataset.unique."""

from __future__ import annotations

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


def reference_unique(xs):
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


@pytest.mark.parametrize(
    "data",
    [
        [1, 2, 1, 3, 2, 5, 1],
        [],
        np.array([7, 7, 7], np.int32),
        np.array([3, 1, 3], np.uint8),
        ["a", "b", "a", "c"],
        [b"x", b"x\x00", b"x"],
    ],
)
def test_matches_reference(data) -> None:
    ds = D.from_tensor_slices(data) if len(data) else D.range(0)
    got = list(ds.unique())
    plain = data.tolist() if isinstance(data, np.ndarray) else list(data)
    assert [x.item() if isinstance(x, np.generic) else x for x in got] == reference_unique(plain)


def test_keeps_dtype_of_first_occurrence() -> None:
    got = list(D.from_tensor_slices(np.array([3, 1, 3], np.int16)).unique())
    assert [type(x) for x in got] == [np.int16, np.int16]


def test_each_pass_starts_empty() -> None:
    ds = D.from_tensor_slices([1, 1, 2]).unique()
    assert [int(x) for x in ds] == [1, 2]
    assert [int(x) for x in ds.repeat(2)] == [1, 2, 1, 2]


@pytest.mark.parametrize("data", [[1.0, 2.0], [[1, 2], [3, 4]], [True, False]])
def test_unsupported_elements(data) -> None:
    with pytest.raises(sk.InvalidElementError, match="scalar int or string"):
        list(D.from_tensor_slices(data).unique())


def test_cardinality() -> None:
    assert D.range(6).unique().cardinality() == sk.UNKNOWN_CARDINALITY


@pytest.mark.parametrize(
    "data", [[1, 2, 1, 3, 2, 5, 1, 9], ["a", "b", "a", "c"], [b"x", b"y", b"x\x00", b"y"]]
)
def test_checkpoint_roundtrip(data) -> None:
    assert assert_checkpoint_roundtrip(D.from_tensor_slices(data).unique()) == len(set(data))
