"""Consecutive Ray maps fuse into one stage, only when nothing a user sees changes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import stoker
from stoker import Dataset

pytest.importorskip("ray")

import stoker.ray  # registers executor="ray"
from stoker.ray._fuse import FusedMapDataset, fused


def _plus1(x: Any) -> Any:
    return x + 1


def _times10(x: Any) -> Any:
    if int(x) == 6:
        raise ValueError(f"no sixes: {int(x)}")
    return x * 10


def _neg(x: Any) -> Any:
    return -x


def _ray_map(ds: Dataset, fn: Any, **kw: Any) -> Dataset:
    return ds.map(fn, num_parallel_calls=1, executor="ray", **kw)


def _stages(it: Any) -> list[str]:
    """Stage names from the root down to the source."""
    names = []
    node = it
    while node is not None:
        names.append(node.stage)
        node = node._inputs[0] if node._inputs else None
    return names


# One pipeline for several tests: its next pass takes back the actors the last one kept.
_FUSED = _ray_map(_ray_map(_ray_map(Dataset.range(40), _plus1), _neg), _times10)


def _expected(x: int) -> int:
    return -(x + 1) * 10


def test_three_maps_run_as_one_stage_with_one_call_per_chunk() -> None:
    it = _FUSED.ignore_errors().iterator()
    out = list(it)
    assert out == [_expected(x) for x in range(40) if -(x + 1) != 6]
    fused = it._inputs[0]
    assert isinstance(fused._ds, FusedMapDataset)
    names = _stages(it)
    assert names[1].startswith("map(_plus1)+map(_neg)+map(_times10)[")
    assert names[2].startswith("range")  # no other map stage: one round trip per element
    assert fused.executor_info["executor"] == "ray"
    ex = fused._last
    assert ex.calls <= 40  # one call per chunk, chunks of one or more elements, not three


def test_an_error_in_a_later_map_names_it_and_keeps_the_traceback() -> None:
    # -(x + 1) is never 6: make the second map produce 6 at input element 4.
    ds = _ray_map(_ray_map(Dataset.range(10), _plus1), _times10)
    it = iter(ds)
    assert [int(next(it)) for _ in range(5)] == [10, 20, 30, 40, 50]
    with pytest.raises(ValueError, match="no sixes") as info:
        next(it)
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "_times10()" in notes and "map(_times10)" in notes
    assert "_times10" in str(info.value.__cause__)  # the actor's traceback
    assert [int(x) for x in it] == [x * 10 for x in range(7, 11)]


def test_options_executor_fuses_auto_maps() -> None:
    ds = Dataset.range(12).map(_plus1, num_parallel_calls=1).map(_neg, num_parallel_calls=1)
    it = ds.with_options(stoker.Options(executor="ray")).iterator()
    assert [int(x) for x in it] == [-(x + 1) for x in range(12)]
    assert isinstance(it._ds, FusedMapDataset)


def _rand(x: Any, rng: np.random.Generator) -> float:
    return float(x) + float(rng.random())


def test_a_random_map_first_draws_as_unfused() -> None:
    def run(executor: str) -> list[float]:
        ds = Dataset.range(30).random_map(_rand, seed=5, num_parallel_calls=2, executor=executor)
        return [float(x) for x in ds.map(_neg, num_parallel_calls=2, executor=executor)]

    it = (
        Dataset.range(30)
        .random_map(_rand, seed=5, num_parallel_calls=2, executor="ray")
        .map(_neg, num_parallel_calls=2, executor="ray")
        .iterator()
    )
    assert isinstance(it._ds, FusedMapDataset)
    assert [float(x) for x in it] == run("thread")


def _decision(ds: Dataset, **options: Any) -> Any:
    """What the map's iterator runs: the fusion rule as ``MapDataset._make_iterator`` asks it."""
    opts = ds.options().merge(stoker.Options(**options)).resolved()
    return fused(ds, opts)


@pytest.mark.parametrize(
    ("build", "options"),
    [
        # a different deterministic
        (lambda ds: _ray_map(_ray_map(ds, _plus1), _neg, deterministic=False), {}),
        # an op between them
        (lambda ds: _ray_map(_ray_map(ds, _plus1).ignore_errors(), _neg), {}),
        # the later map is not on Ray
        (lambda ds: _ray_map(ds, _plus1).map(_neg, num_parallel_calls=2, executor="thread"), {}),
        # a sequential map is not a Ray stage
        (lambda ds: _ray_map(ds.map(_plus1, executor="ray"), _neg), {}),
        # a random_map after the first map: its draws are keyed by its own element index
        (
            lambda ds: _ray_map(ds, _plus1).random_map(
                _rand, seed=1, num_parallel_calls=2, executor="ray"
            ),
            {},
        ),
        # Options.seed reseeds the actors' generators per element and map
        (lambda ds: _ray_map(_ray_map(ds, _plus1), _neg), {"seed": 3}),
        # Options.executor="ray" does not move a map that names its executor
        (
            lambda ds: ds.map(_plus1, num_parallel_calls=2, executor="thread").map(
                _neg, num_parallel_calls=2
            ),
            {"executor": "ray"},
        ),
    ],
    ids=["deterministic", "op-between", "not-ray", "sequential", "random-later", "seed", "named"],
)
def test_not_fused_when_semantics_could_differ(build: Any, options: dict[str, Any]) -> None:
    ds = build(Dataset.range(6))
    assert _decision(ds, **options) is ds


def test_the_rule_fuses_what_it_should_and_the_pipeline_runs_it() -> None:
    ds = _ray_map(_ray_map(Dataset.range(6), _plus1), _neg, deterministic=False)
    decided = _decision(ds, deterministic=False)
    assert isinstance(decided, FusedMapDataset) and decided is _decision(ds, deterministic=False)
    it = ds.with_options(stoker.Options(deterministic=False)).iterator()
    assert sorted(int(x) for x in it) == sorted(-(x + 1) for x in range(6))
    assert isinstance(it._ds, FusedMapDataset)
