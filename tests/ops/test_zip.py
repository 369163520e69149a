"""Dataset.zip."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset
Point = collections.namedtuple("Point", ["x", "y"])


def test_positional_and_tuple_forms_agree() -> None:
    expected = list(zip(range(3), range(3, 6), strict=True))
    for ds in (
        D.zip(D.range(3), D.range(3, 6)),
        D.zip((D.range(3), D.range(3, 6))),
        D.zip(datasets=(D.range(3), D.range(3, 6))),
    ):
        got = list(ds)
        assert [(int(a), int(b)) for a, b in got] == expected
        assert all(type(e) is tuple for e in got)


def test_stops_at_the_shortest() -> None:
    ds = D.zip(D.range(5), D.range(2), D.range(3))
    assert [tuple(int(v) for v in e) for e in ds] == [(0, 0, 0), (1, 1, 1)]
    assert ds.cardinality() == 2


def test_dict_namedtuple_and_nested_structures() -> None:
    (first, _) = list(D.zip({"a": D.range(2), "b": (D.range(2), D.from_tensor_slices(["x", "y"]))}))
    assert_elements_equal(first, {"a": np.int64(0), "b": (np.int64(0), np.str_("x"))})
    points = list(D.zip(Point(D.range(2), D.range(10, 12))))
    assert points == [Point(0, 10), Point(1, 11)]
    assert all(type(p) is Point for p in points)


def test_zip_of_one_dataset_is_a_one_tuple() -> None:
    got = list(D.zip((D.range(2),)))
    assert got == [(0,), (1,)] and all(type(e) is tuple for e in got)


def test_structured_inputs_stay_nested() -> None:
    pairs = D.zip(D.range(2), D.range(2))
    got = list(D.zip(pairs, D.range(2)))
    assert_elements_equal(got[1], ((np.int64(1), np.int64(1)), np.int64(1)))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="stoker Dataset"):
        D.zip((D.range(2), [1, 2]))
    with pytest.raises(TypeError, match="either"):
        D.zip(D.range(2), datasets=(D.range(2),))
    with pytest.raises(ValueError, match="at least one"):
        D.zip(())


def test_cardinality_rules() -> None:
    forever = D.range(3).repeat()
    unknown = D.range(3).filter(lambda x: x > 0)
    assert D.zip((D.range(5), D.range(3))).cardinality() == 3
    assert D.zip((forever, D.range(4))).cardinality() == 4
    assert D.zip((forever, forever)).cardinality() == sk.INFINITE_CARDINALITY
    assert D.zip((unknown, D.range(4))).cardinality() == sk.UNKNOWN_CARDINALITY
    assert D.zip((unknown, forever)).cardinality() == sk.UNKNOWN_CARDINALITY
    assert D.zip({"a": D.range(5), "b": D.range(7)}).cardinality() == 5


@pytest.mark.parametrize(
    "ds",
    [
        D.zip(D.range(5), D.range(10, 13)),
        D.zip(
            {
                "a": D.range(4),
                "b": (D.range(4).shuffle(3, seed=0), D.range(4).filter(lambda x: x != 1)),
            }
        ),
        D.zip(Point(D.range(3).repeat(2), D.range(6))),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0
