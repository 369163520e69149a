"""Dataset.with_options."""

from __future__ import annotations

import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


def test_options_merge_outer_wins() -> None:
    ds = D.range(3).with_options(sk.Options(cpu_budget=2, seed=1))
    ds = ds.map(lambda x: x).with_options(sk.Options(seed=7))
    assert ds.options().cpu_budget == 2
    assert ds.options().seed == 7


def test_options_from_every_input_are_merged() -> None:
    a = D.range(2).with_options(sk.Options(stats=True))
    b = D.range(2).with_options(sk.Options(io_concurrency=8))
    merged = D.zip(a, b).options()
    assert merged.stats is True and merged.io_concurrency == 8


def test_elements_and_cardinality_unchanged() -> None:
    ds = D.range(5).with_options(sk.Options(deterministic=False))
    assert [int(x) for x in ds] == list(range(5))
    assert ds.cardinality() == 5


def test_adds_no_stage_to_the_state() -> None:
    it = D.range(5).with_options(sk.Options()).iterator()
    next(it)
    state = it.get_state()
    assert state["op"] == "range" and state["index"] == 1


def test_seed_option_seeds_random_ops() -> None:
    def build():
        return D.range(50).with_options(sk.Options(seed=3)).shuffle(50)

    assert [int(x) for x in build()] == [int(x) for x in build()]


def test_shuffle_keeps_random_access_through_options() -> None:
    ds = D.range(20).with_options(sk.Options(seed=1)).shuffle(5)
    it = ds.iterator()
    next(it)
    assert it.get_state()["mode"] == "positions"


def test_bad_options() -> None:
    with pytest.raises(TypeError, match="Options"):
        D.range(2).with_options({"seed": 1})
    with pytest.raises(ValueError, match="cpu_budget"):
        sk.Options(cpu_budget=0)


def test_checkpoint_roundtrip() -> None:
    ds = D.range(10).with_options(sk.Options(seed=2)).shuffle(4).map(lambda x: x * 2)
    assert assert_checkpoint_roundtrip(ds) == 10
