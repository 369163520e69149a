"""Dataset.choose_from_datasets and Dataset.sample_from_datasets."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


def ints(ds) -> list[int]:
    return [int(x) for x in ds]


def reference_choose(inputs, choices, stop_on_empty):
    its = [iter(x) for x in inputs]
    done = [False] * len(its)
    out = []
    for c in choices:
        if all(done):
            break
        if done[c]:
            continue
        v = next(its[c], None)
        if v is None:
            done[c] = True
            if stop_on_empty:
                break
            continue
        out.append(v)
    return out


# -- choose_from_datasets -------------------------------------------------------------------


def test_tf_doc_example() -> None:
    datasets = [
        D.from_tensors("foo").repeat(),
        D.from_tensors("bar").repeat(),
        D.from_tensors("baz").repeat(),
    ]
    choice = D.range(3).repeat(3)
    got = [str(x) for x in D.choose_from_datasets(datasets, choice)]
    assert got == ["foo", "bar", "baz"] * 3


@pytest.mark.parametrize("stop", [True, False])
@pytest.mark.parametrize(
    "choices", [[0, 1, 1, 0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 0], [], [2, 0, 2, 2, 2, 1]]
)
def test_matches_reference(stop: bool, choices: list[int]) -> None:
    inputs = [list(range(3)), list(range(10, 12)), list(range(20, 24))]
    ds = D.choose_from_datasets(
        [D.range(0, 3), D.range(10, 12), D.range(20, 24)],
        D.from_tensor_slices(np.array(choices, np.int64)),
        stop_on_empty_dataset=stop,
    )
    assert ints(ds) == reference_choose(inputs, choices, stop)


def test_choice_out_of_range_is_an_error() -> None:
    ds = D.choose_from_datasets([D.range(3), D.range(3)], D.from_tensor_slices([0, 2]))
    with pytest.raises(sk.InvalidElementError, match=r"choice element 1 is .*2.*\[0, 2\)"):
        list(ds)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="empty"):
        D.choose_from_datasets([], D.range(1))
    with pytest.raises(TypeError, match="stoker Dataset"):
        D.choose_from_datasets([D.range(1), [1]], D.range(1))
    with pytest.raises(TypeError, match="choice_dataset"):
        D.choose_from_datasets([D.range(1)], [0])


def test_choose_cardinality() -> None:
    ds = D.choose_from_datasets([D.range(3), D.range(3)], D.range(2).repeat(2))
    assert ds.cardinality() == sk.UNKNOWN_CARDINALITY


def test_choose_checkpoint_roundtrip() -> None:
    ds = D.choose_from_datasets(
        [D.range(3), D.range(10, 15).shuffle(3, seed=0)],
        D.from_tensor_slices([0, 1, 1, 0, 1, 0, 0, 1, 1, 1]),
        stop_on_empty_dataset=False,
    )
    assert assert_checkpoint_roundtrip(ds) == 8


# -- sample_from_datasets -------------------------------------------------------------------


def sample(seed=0, weights=None, stop=False, sizes=(20, 20)):
    inputs = [D.range(1000 * i, 1000 * i + n) for i, n in enumerate(sizes)]
    return D.sample_from_datasets(inputs, weights=weights, seed=seed, stop_on_empty_dataset=stop)


def test_sample_is_a_merge_keeping_each_inputs_order() -> None:
    got = ints(sample(sizes=(20, 30, 5)))
    assert sorted(got) == sorted([*range(20), *range(1000, 1030), *range(2000, 2005)])
    for i in range(3):
        part = [x for x in got if x // 1000 == i]
        assert part == sorted(part)


def test_sample_seeded_is_deterministic() -> None:
    assert ints(sample(seed=3)) == ints(sample(seed=3))
    assert ints(sample(seed=3)) != ints(sample(seed=4))


def test_sample_follows_the_weights() -> None:
    got = ints(sample(weights=[0.9, 0.1], sizes=(2000, 2000)).take(1000))
    share = sum(x < 1000 for x in got) / len(got)
    assert 0.85 < share < 0.95  # binomial sd ~0.01: six sd of margin


def test_sample_zero_weight_input_is_never_drawn() -> None:
    assert ints(sample(weights=[1.0, 0.0])) == list(range(20))


def test_sample_stop_on_empty() -> None:
    got = ints(sample(stop=True, sizes=(3, 100)))
    assert sum(x < 1000 for x in got) == 3  # ends when input 0 runs out
    assert len(got) < 103


def test_rerandomize_each_iteration() -> None:
    fixed = sample(seed=1)
    assert ints(fixed) == ints(fixed)
    ds = D.sample_from_datasets(
        [D.range(20), D.range(100, 120)], seed=1, rerandomize_each_iteration=True
    )
    assert ints(ds) != ints(ds)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([1.0], "2 datasets"),
        ([1.0, -1.0], ">= 0"),
        ([0.0, 0.0], "not all 0"),
        ([np.nan, 1], "finite"),
    ],
)
def test_sample_bad_weights(weights, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        D.sample_from_datasets([D.range(1), D.range(1)], weights=weights)


def test_sample_cardinality() -> None:
    forever = D.range(3).repeat()
    assert D.sample_from_datasets([forever, forever]).cardinality() == sk.INFINITE_CARDINALITY
    unknown = D.range(3).filter(lambda x: x > 0)
    assert D.sample_from_datasets([unknown, D.range(2)]).cardinality() == sk.UNKNOWN_CARDINALITY
    # Never exhausted: the infinite input keeps being drawn (tf.data's rule).
    assert D.sample_from_datasets([forever, D.range(2)]).cardinality() == sk.INFINITE_CARDINALITY
    both = D.sample_from_datasets([forever, D.range(2)], stop_on_empty_dataset=True)
    assert both.cardinality() == sk.UNKNOWN_CARDINALITY  # ends when range(2) does
    # Exact where known: every element of every input is drawn once.
    assert sample(sizes=(4, 6)).cardinality() == len(list(sample(sizes=(4, 6)))) == 10
    assert sample(weights=[1.0, 0.0], sizes=(4, 6)).cardinality() == 4


@pytest.mark.parametrize(
    "ds",
    [
        sample(seed=2, sizes=(10, 15)),
        sample(seed=2, stop=True, sizes=(5, 15)),
        D.sample_from_datasets(
            [D.range(5), D.range(10, 15)], seed=1, rerandomize_each_iteration=True
        ).repeat(2),
    ],
)
def test_sample_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0


def test_sample_inputs_consumed_in_expected_proportions_over_many_seeds() -> None:
    counts = collections.Counter(
        ints(sample(seed=s, sizes=(50, 50)).take(1))[0] // 1000 for s in range(100)
    )
    assert counts[0] > 20 and counts[1] > 20
