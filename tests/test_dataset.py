"""Whole-dataset API: apply, reduce, cardinality, len, as_numpy_iterator, iterators."""

from __future__ import annotations

import json
import pickle

import cloudpickle
import numpy as np
import pytest

import stoker as sk
from stoker.iterator import IteratorState
from stoker.testing import assert_elements_equal

D = sk.Dataset


# -- apply ----------------------------------------------------------------------------------


def test_apply_calls_the_transformation() -> None:
    def evens(ds):
        return ds.filter(lambda x: x % 2 == 0)

    assert [int(x) for x in D.range(7).apply(evens)] == [0, 2, 4, 6]


def test_apply_must_return_a_dataset() -> None:
    with pytest.raises(TypeError, match="expected a stoker Dataset"):
        D.range(3).apply(lambda ds: list(ds))


# -- reduce ---------------------------------------------------------------------------------


def test_reduce_sum_and_count() -> None:
    assert int(D.range(5).reduce(np.int64(0), lambda s, x: s + x)) == 10
    assert int(D.range(5).reduce(np.int64(0), lambda s, _: s + 1)) == 5


def test_reduce_structured_state() -> None:
    total, count = D.range(1, 5).reduce((0, 0), lambda s, x: (s[0] + x, s[1] + 1))
    assert (int(total), int(count)) == (10, 4)


def test_reduce_empty_returns_initial_state() -> None:
    assert D.range(0).reduce("init", lambda s, x: s + "x") == "init"


def test_reduce_passes_tuple_elements_whole() -> None:
    got = D.zip(D.range(3), D.range(3)).reduce(np.int64(0), lambda s, ab: s + ab[0] * ab[1])
    assert int(got) == 5


# -- cardinality and len --------------------------------------------------------------------


def test_cardinality_constants() -> None:
    assert sk.INFINITE_CARDINALITY == -1
    assert sk.UNKNOWN_CARDINALITY == -2
    assert sk.AUTOTUNE == -1


def test_len() -> None:
    assert len(D.range(10).batch(3)) == 4
    with pytest.raises(TypeError, match="infinite"):
        len(D.range(3).repeat())
    with pytest.raises(TypeError, match="unknown"):
        len(D.range(3).filter(lambda x: x > 0))


def test_empty_dataset_is_truthy() -> None:
    assert bool(D.range(0))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (lambda: D.range(10).map(lambda x: x).batch(3).take(2), 2),
        (lambda: D.range(3).repeat().take(5).skip(1), 4),
        (lambda: D.range(3).repeat().shard(2, 0), -1),
        (lambda: D.zip(D.range(5), D.range(3).repeat()).enumerate(), 5),
        (lambda: D.range(4).concatenate(D.range(2)).shuffle(3), 6),
        (lambda: D.range(3).scan(0, lambda s, x: (s, x)).with_options(sk.Options()), 3),
    ],
)
def test_cardinality_propagates(expr, expected: int) -> None:
    assert expr().cardinality() == expected


# -- iteration ------------------------------------------------------------------------------


def test_as_numpy_iterator_gives_numpy_elements() -> None:
    ds = D.from_tensor_slices({"a": [1, 2], "b": (["x", "y"], [[1.0], [2.0]])})
    got = list(ds.as_numpy_iterator())
    assert_elements_equal(got[1], {"a": np.int64(2), "b": (np.str_("y"), np.array([2.0]))})


def test_iter_and_iterator_are_fresh_passes() -> None:
    ds = D.range(3)
    it1, it2 = iter(ds), ds.iterator()
    assert int(next(it1)) == 0 and int(next(it1)) == 1
    assert int(next(it2)) == 0
    assert iter(it1) is it1


def test_iterator_context_manager_and_close() -> None:
    with D.range(5).iterator() as it:
        assert int(next(it)) == 0
    assert it.lifecycle is IteratorState.CLOSED
    it.close()  # idempotent


def test_state_dict_aliases() -> None:
    ds = D.range(10).shuffle(4, seed=0)
    it = ds.iterator()
    next(it)
    state = it.state_dict()
    assert state == it.get_state()
    rest = [int(x) for x in it]
    other = ds.iterator()
    other.load_state_dict(json.loads(json.dumps(state)))
    assert [int(x) for x in other] == rest


def test_state_from_another_pipeline_is_refused_naming_the_stage() -> None:
    state = D.range(5).map(lambda x: x).iterator().get_state()
    with pytest.raises(sk.CheckpointError, match=r"stage filter\[.*'map'.*'filter'"):
        D.range(5).filter(lambda x: True).iterator(state)
    with pytest.raises(sk.CheckpointError, match="does not fit"):
        D.range(5).map(lambda x: x).iterator({"op": "map", "input": {"op": "range"}})
    with pytest.raises(sk.CheckpointError):
        D.range(5).iterator([1, 2])


def test_repr_names_the_op() -> None:
    assert "map" in repr(D.range(3).map(lambda x: x))
    assert "decode" in repr(D.range(3).map(lambda x: x, name="decode"))


def test_dataset_pickles_with_cloudpickle() -> None:
    ds = D.range(10).map(lambda x: x * 3).filter(lambda x: x % 2 == 0).batch(2)
    clone = pickle.loads(cloudpickle.dumps(ds))
    assert [b.tolist() for b in clone] == [b.tolist() for b in ds]


def test_closed_iterator_raises_stop_iteration() -> None:
    it = D.range(5).map(lambda x: x).iterator()
    next(it)
    it.close()
    with pytest.raises(StopIteration):
        next(it)
