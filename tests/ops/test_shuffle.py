"""Dataset.shuffle: permutations, buffer semantics, seeds, reshuffling, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


def ints(ds) -> list[int]:
    return [int(x) for x in ds]


@pytest.mark.parametrize("n", [0, 1, 5, 50])
@pytest.mark.parametrize("buffer_size", [1, 2, 10, 100])
def test_output_is_a_permutation(n: int, buffer_size: int) -> None:
    assert sorted(ints(D.range(n).shuffle(buffer_size, seed=0))) == list(range(n))


def test_buffer_size_one_keeps_order() -> None:
    assert ints(D.range(20).shuffle(1, seed=3)) == list(range(20))


@pytest.mark.parametrize("buffer_size", [1, 3, 8])
def test_output_i_comes_from_the_first_buffer_size_plus_i_inputs(buffer_size: int) -> None:
    # The defining property of a shuffle buffer (tf.data's): it has seen only that many.
    for seed in range(5):
        out = ints(D.range(60).shuffle(buffer_size, seed=seed))
        assert all(x < buffer_size + i for i, x in enumerate(out))


def test_large_buffer_shuffles_uniformly_enough() -> None:
    # Every input position reaches the first output slot for a full buffer (seeds 0..199).
    firsts = {ints(D.range(8).shuffle(8, seed=s))[0] for s in range(200)}
    assert firsts == set(range(8))


def test_same_seed_same_order_different_seed_different_order() -> None:
    a = ints(D.range(100).shuffle(20, seed=1))
    assert a == ints(D.range(100).shuffle(20, seed=1))
    assert a != ints(D.range(100).shuffle(20, seed=2))
    assert a != list(range(100))


def test_reshuffle_each_iteration_is_the_default() -> None:
    ds = D.range(30).shuffle(30, seed=4)
    passes = [ints(ds) for _ in range(3)]
    assert len({tuple(p) for p in passes}) == 3
    # ...and the sequence of orders is reproducible from the seed.
    again = D.range(30).shuffle(30, seed=4)
    assert [ints(again) for _ in range(3)] == passes


def test_reshuffle_false_repeats_the_order() -> None:
    ds = D.range(30).shuffle(30, seed=4, reshuffle_each_iteration=False)
    assert ints(ds) == ints(ds)
    epochs = ints(ds.repeat(3))
    assert epochs[:30] == epochs[30:60] == epochs[60:]


def test_each_repeat_epoch_is_reshuffled() -> None:
    out = ints(D.range(20).shuffle(20, seed=9).repeat(3))
    epochs = [out[i : i + 20] for i in range(0, 60, 20)]
    assert all(sorted(e) == list(range(20)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3


def test_unseeded_shuffle_varies_and_options_seed_fixes_it() -> None:
    orders = {tuple(ints(D.range(30).shuffle(30))) for _ in range(3)}
    assert len(orders) > 1

    def seeded():
        return D.range(30).with_options(sk.Options(seed=5)).shuffle(30)

    assert ints(seeded()) == ints(seeded())


def test_structured_elements() -> None:
    data = {"a": np.arange(10), "b": [str(i) for i in range(10)]}
    got = list(D.from_tensor_slices(data).shuffle(4, seed=0))
    assert sorted(int(e["a"]) for e in got) == list(range(10))
    assert all(str(e["b"]) == str(int(e["a"])) for e in got)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="buffer_size"):
        D.range(3).shuffle(0)
    with pytest.raises(TypeError, match="buffer_size"):
        D.range(3).shuffle(1.5)
    with pytest.raises(TypeError, match="seed"):
        D.range(3).shuffle(2, seed="x")


def test_cardinality_kept() -> None:
    assert D.range(9).shuffle(3).cardinality() == 9
    assert D.range(9).repeat().shuffle(3).cardinality() == sk.INFINITE_CARDINALITY


@pytest.mark.parametrize(
    "ds",
    [
        D.range(40).shuffle(7, seed=1),  # positions mode (random-access input)
        D.range(40).map(lambda x: x * 2).shuffle(50, seed=1),  # buffer larger than input
        D.range(40).filter(lambda x: x % 3 > 0).shuffle(7, seed=1),  # replay mode
        D.range(10).shuffle(4, seed=2).repeat(3),
        D.range(10).shuffle(4, seed=2, reshuffle_each_iteration=False).repeat(2),
        D.from_tensor_slices({"a": np.arange(12), "b": ["s"] * 12}).shuffle(5, seed=3),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0


def test_state_holds_positions_not_elements() -> None:
    # A random-access input lets the state list buffer positions: its size does not grow
    # with the size of the elements.
    big = D.from_tensor_slices(np.zeros((64, 10_000), np.float32)).shuffle(16, seed=0)
    it = big.iterator()
    for _ in range(5):
        next(it)
    state = it.get_state()
    assert state["mode"] == "positions"
    assert len(json.dumps(state)) < 2_000


def test_replay_mode_state_is_small() -> None:
    ds = D.range(1000).filter(lambda x: x % 2 == 0).shuffle(100, seed=0)
    it = ds.iterator()
    for _ in range(300):
        next(it)
    state = it.get_state()
    assert state["mode"] == "replay"
    assert len(json.dumps(state)) < 500


@pytest.mark.parametrize(
    "build",
    [
        lambda: D.range(30).shuffle(8),
        lambda: D.range(30).filter(lambda x: x % 2 == 0).shuffle(8),
    ],
)
def test_unseeded_state_resumes_in_a_rebuilt_pipeline(build) -> None:
    # A new process rebuilds the pipeline, and an unseeded shuffle draws a new seed there;
    # the state carries the seed, so the resumed pass continues exactly.
    it = build().iterator()
    for _ in range(5):
        next(it)
    state = json.loads(json.dumps(it.get_state()))
    rest = ints(it)
    assert ints(build().iterator(state)) == rest
