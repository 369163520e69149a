"""Dataset.map (sequential: num_parallel_calls=None) and Dataset.random_map."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import stoker as sk
from stoker.ops.map import element_rng
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset
Point = collections.namedtuple("Point", ["x", "y"])


def reference_map(fn, xs):
    return [fn(*x) if type(x) is tuple else fn(x) for x in xs]


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x * 2 + 1,
        lambda x: x.astype(np.float32) / 2,
        lambda x: (x, -x),
        lambda x: {"v": x},
    ],
)
def test_matches_reference(fn) -> None:
    xs = list(D.range(10))
    got = list(D.range(10).map(fn))
    expected = reference_map(fn, xs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert_elements_equal(g, e)


def test_dtypes_follow_numpy() -> None:
    got = list(D.range(3).map(lambda x: x * 2))
    assert all(type(x) is np.int64 for x in got)
    got = list(D.range(3).map(lambda x: x / 2))
    assert all(type(x) is np.float64 for x in got)
    # Python ints returned by a map become int64 once batched.
    (batch,) = list(D.range(3).map(lambda x: int(x) + 1).batch(3))
    assert_elements_equal(batch, np.array([1, 2, 3], np.int64))


def test_plain_tuple_is_unpacked() -> None:
    ds = D.zip(D.range(3), D.range(10, 13)).map(lambda a, b: a + b)
    assert [int(x) for x in ds] == [10, 12, 14]
    nested = D.zip(D.range(2), (D.range(2), D.range(2))).map(lambda a, bc: a + bc[0] + bc[1])
    assert [int(x) for x in nested] == [0, 3]


def test_namedtuple_is_not_unpacked() -> None:
    ds = D.from_tensor_slices(Point([1, 2], [3, 4]))
    assert [int(x) for x in ds.map(lambda p: p.x * 10 + p.y)] == [13, 24]
    with pytest.raises(TypeError):
        list(ds.map(lambda x, y: x + y))


def test_dict_is_one_argument() -> None:
    ds = D.from_tensor_slices({"a": [1, 2], "b": [3, 4]}).map(lambda d: d["a"] * d["b"])
    assert [int(x) for x in ds] == [3, 8]


def test_synchronous_runs_inline() -> None:
    ds = D.range(4).map(lambda x: x + 1, num_parallel_calls=2, synchronous=True)
    assert [int(x) for x in ds] == [1, 2, 3, 4]


def test_user_error_keeps_type_and_names_the_stage() -> None:
    boom = ValueError("bad element")

    def fn(x):
        if x == 3:
            raise boom
        return x

    it = D.range(5).map(fn, name="decode").iterator()
    assert [int(next(it)) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError) as e:
        next(it)
    assert e.value is boom  # never wrapped
    (note,) = e.value.__notes__
    assert "decode[" in note and "element 3" in note and "fn()" in note
    # The user's frame is in the traceback.
    assert any(tb.tb_frame.f_code is fn.__code__ for tb in _walk(e.value.__traceback__))


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_default_stage_name_in_note() -> None:
    with pytest.raises(ZeroDivisionError) as e:
        list(D.range(3).map(lambda x: 1 // 0))
    assert "stage map[" in e.value.__notes__[0]


def test_stop_iteration_in_user_function_is_an_error() -> None:
    def fn(x):
        raise StopIteration

    with pytest.raises(RuntimeError, match=r"raised StopIteration at stage map\["):
        list(D.range(3).map(fn))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="callable"):
        D.range(3).map(42)
    with pytest.raises(ValueError, match="num_parallel_calls"):
        D.range(3).map(lambda x: x, num_parallel_calls=0)
    with pytest.raises(ValueError, match="executor"):
        D.range(3).map(lambda x: x, executor="gpu")


@pytest.mark.parametrize("bad", ["4", 1.5, True, [2]])
def test_num_parallel_calls_must_be_an_int(bad) -> None:
    # As interleave() and batch() do: a string or a float is refused, naming the argument.
    with pytest.raises(TypeError, match=r"map\(\): num_parallel_calls=.* must be an int"):
        D.range(3).map(lambda x: x, num_parallel_calls=bad)


def test_num_parallel_calls_accepts_numpy_ints() -> None:
    ds = D.range(5).map(lambda x: x + 1, num_parallel_calls=np.int64(2), executor="thread")
    assert [int(x) for x in ds] == [1, 2, 3, 4, 5]


def test_cardinality_kept() -> None:
    assert D.range(7).map(lambda x: x).cardinality() == 7
    assert D.range(7).repeat().map(lambda x: x).cardinality() == sk.INFINITE_CARDINALITY
    assert D.range(7).filter(bool).map(lambda x: x).cardinality() == sk.UNKNOWN_CARDINALITY


@pytest.mark.parametrize(
    "ds",
    [
        D.range(10).map(lambda x: x * 3),
        D.zip(D.range(5), D.range(5)).map(lambda a, b: {"s": a + b, "t": (a, "x")}),
        D.range(6).map(lambda x: x + 1).shuffle(4, seed=0).map(lambda x: x * 2),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0


# -- random_map -----------------------------------------------------------------------------


def draw(x, rng):
    return x * 1000 + rng.integers(1000)


def test_random_map_rng_is_seeded_per_pass_and_element() -> None:
    ds = D.range(6).random_map(draw, seed=5)
    first = [int(x) for x in ds]
    expected = [i * 1000 + int(element_rng(5, [0, 0], i).integers(1000)) for i in range(6)]
    assert first == expected
    second = [int(x) for x in ds]  # the dataset's second pass draws anew
    expected = [i * 1000 + int(element_rng(5, [1, 0], i).integers(1000)) for i in range(6)]
    assert second == expected
    assert first != second


def test_random_map_same_seed_same_draws() -> None:
    a = [int(x) for x in D.range(20).random_map(draw, seed=1)]
    b = [int(x) for x in D.range(20).random_map(draw, seed=1)]
    c = [int(x) for x in D.range(20).random_map(draw, seed=2)]
    assert a == b
    assert a != c
    assert len({x % 1000 for x in a}) > 1  # elements get different draws


def test_random_map_epochs_differ_under_repeat() -> None:
    out = [int(x) % 1000 for x in D.range(10).random_map(draw, seed=3).repeat(2)]
    assert out[:10] != out[10:]


def test_random_map_uses_options_seed() -> None:
    def build():
        return D.range(8).with_options(sk.Options(seed=11)).random_map(draw)

    assert [int(x) for x in build()] == [int(x) for x in build()]


def test_random_map_unpacks_tuples_and_passes_rng_keyword() -> None:
    def fn(a, b, rng):
        assert isinstance(rng, np.random.Generator)
        return a + b

    assert [int(x) for x in D.zip(D.range(3), D.range(3)).random_map(fn, seed=0)] == [0, 2, 4]


def test_random_map_error_note() -> None:
    with pytest.raises(KeyError) as e:
        list(D.range(2).random_map(lambda x, rng: {}["k"], seed=0, name="aug"))
    assert "aug[" in e.value.__notes__[0]


def test_random_map_checkpoint_roundtrip() -> None:
    assert assert_checkpoint_roundtrip(D.range(10).random_map(draw, seed=4).repeat(2)) == 20
