"""Dataset.from_generator: args, output_signature checks, no checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_elements_equal

D = sk.Dataset
Spec = sk.TensorSpec


def gen_pairs(n):
    for i in range(n):
        yield i, [1.0] * i


def test_yields_the_generator_values() -> None:
    assert list(D.from_generator(lambda: iter([1, 2, 3]))) == [1, 2, 3]


def test_args_are_passed() -> None:
    got = list(D.from_generator(lambda lo, hi: range(lo, hi), args=(2, 5)))
    assert got == [2, 3, 4]
    got = list(D.from_generator(gen_pairs, args=[3]))
    assert [g[0] for g in got] == [0, 1, 2]


def test_generator_called_anew_each_pass() -> None:
    calls = []

    def gen():
        calls.append(1)
        yield from range(3)

    ds = D.from_generator(gen)
    assert list(ds) == [0, 1, 2]
    assert list(ds) == [0, 1, 2]
    assert list(ds.repeat(2)) == [0, 1, 2, 0, 1, 2]
    assert len(calls) == 4


def test_generator_not_called_until_first_element() -> None:
    calls = []
    ds = D.from_generator(lambda: calls.append(1) or iter([1]))
    it = ds.iterator()
    assert calls == []
    next(it)
    assert calls == [1]


def test_output_signature_converts_dtypes() -> None:
    sig = (Spec((), np.int32), Spec((None,), np.float32))
    got = list(D.from_generator(gen_pairs, args=(3,), output_signature=sig))
    assert_elements_equal(got[2], (np.int32(2), np.array([1.0, 1.0], np.float32)))
    assert_elements_equal(got[0], (np.int32(0), np.zeros(0, np.float32)))


def test_output_signature_dict() -> None:
    sig = {"a": Spec((2,), np.int64), "b": Spec((), np.float64)}
    ds = D.from_generator(lambda: iter([{"a": [1, 2], "b": 3}]), output_signature=sig)
    assert_elements_equal(next(iter(ds)), {"a": np.array([1, 2]), "b": np.float64(3.0)})


def test_output_signature_accepts_a_list_for_a_tuple() -> None:
    sig = (Spec((), np.int64), Spec((), np.int64))
    got = list(D.from_generator(lambda: iter([[1, 2]]), output_signature=sig))
    assert_elements_equal(got[0], (np.int64(1), np.int64(2)))


def test_shape_mismatch_names_the_element() -> None:
    sig = (Spec((), np.int64), Spec((2,), np.float32))
    ds = D.from_generator(lambda: iter([(1, [1.0, 2.0]), (2, [1.0])]), output_signature=sig)
    it = ds.iterator()
    next(it)
    with pytest.raises(sk.InvalidElementError) as e:
        next(it)
    msg = str(e.value)
    assert "element 1" in msg and "(1,)" in msg and "(2,)" in msg and "output_signature" in msg


def test_dtype_mismatch_names_the_element() -> None:
    ds = D.from_generator(lambda: iter([1, "x"]), output_signature=Spec((), np.int64))
    with pytest.raises(sk.InvalidElementError, match=r"element 1 .*cannot be converted to int64"):
        list(ds)


def test_structure_mismatch_names_the_element() -> None:
    sig = (Spec((), np.int64), Spec((), np.int64))
    ds = D.from_generator(lambda: iter([(1, 2), (1, 2, 3)]), output_signature=sig)
    with pytest.raises(
        sk.InvalidElementError, match=r"element 1 .*does not match output_signature"
    ):
        list(ds)


def test_legacy_output_types_and_shapes() -> None:
    ds = D.from_generator(
        gen_pairs, output_types=(np.int32, np.float32), output_shapes=((), (None,)), args=(3,)
    )
    got = list(ds)
    assert_elements_equal(got[1], (np.int32(1), np.array([1.0], np.float32)))
    ds = D.from_generator(lambda: iter([[1, 2]]), output_types=np.int16, output_shapes=[2])
    assert_elements_equal(next(iter(ds)), np.array([1, 2], np.int16))
    ds = D.from_generator(lambda: iter([{"a": 1}]), output_types={"a": np.int8})
    assert_elements_equal(next(iter(ds)), {"a": np.int8(1)})


def test_legacy_shapes_must_match_types() -> None:
    with pytest.raises(ValueError, match="output_shapes"):
        D.from_generator(gen_pairs, output_types=(np.int32, np.float32), output_shapes=((),))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="not a generator object"):
        D.from_generator(gen_pairs(3))
    with pytest.raises(TypeError, match="TensorSpec"):
        D.from_generator(gen_pairs, output_signature=(np.int64, np.float32))


def test_error_from_the_generator_propagates() -> None:
    def gen():
        yield 1
        raise KeyError("boom")

    it = D.from_generator(gen).iterator()
    assert next(it) == 1
    with pytest.raises(KeyError, match="boom"):
        next(it)


def test_get_state_raises_checkpoint_error_naming_from_generator() -> None:
    it = D.from_generator(lambda: iter(range(5))).map(lambda x: x + 1).iterator()
    next(it)
    with pytest.raises(sk.CheckpointError, match="from_generator") as e:
        it.get_state()
    assert "cache()" in str(e.value) or "from_tensor_slices" in str(e.value)


def test_ops_that_snapshot_still_iterate_a_generator() -> None:
    # shuffle/unbatch/interleave take input snapshots; a generator input must not fail
    # unless a checkpoint is actually requested.
    ds = D.from_generator(lambda: iter(range(10))).shuffle(4, seed=0)
    assert sorted(int(x) for x in ds) == list(range(10))
    ds = D.from_generator(lambda: iter([np.arange(3), np.arange(2)])).unbatch()
    assert [int(x) for x in ds] == [0, 1, 2, 0, 1]
    it = ds.iterator()
    next(it)
    with pytest.raises(sk.CheckpointError, match="from_generator"):
        it.get_state()


def test_close_closes_the_generator() -> None:
    closed = []

    def gen():
        try:
            yield from range(10)
        finally:
            closed.append(True)

    it = D.from_generator(gen).iterator()
    next(it)
    it.close()
    assert closed == [True]
    it.close()  # idempotent
    with pytest.raises(StopIteration):  # a closed iterator does not restart the generator
        next(it)
    assert closed == [True]


def test_cardinality_unknown() -> None:
    assert D.from_generator(gen_pairs, args=(3,)).cardinality() == sk.UNKNOWN_CARDINALITY
