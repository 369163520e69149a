"""A state only restores into the pipeline it was saved from: each op checks its parameters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from stoker import CheckpointError, Dataset, Options


def _state(ds: Dataset, n: int = 3) -> dict[str, Any]:
    with ds.iterator() as it:
        for _ in range(n):
            next(it)
        return it.get_state()


def _base(stop: int = 100, seed: int = 0, batch: int = 4) -> Dataset:
    return Dataset.range(stop).shuffle(10, seed=seed).batch(batch)


@pytest.mark.parametrize(
    ("other", "stage", "what"),
    [
        (_base(batch=5), "batch", "batch_size was 4 when saved, is 5 now"),
        (_base(stop=50), "range", "range was 'range(0, 100, 1)' when saved"),
        (_base(seed=1), "shuffle", "seed was 0 when saved, is 1 now"),
        (Dataset.range(100).shuffle(11, seed=0).batch(4), "shuffle", "buffer_size was 10"),
        (
            Dataset.range(100).shuffle(10, seed=0).batch(4, drop_remainder=True),
            "batch",
            "drop_remainder was False",
        ),
    ],
)
def test_other_parameters_are_refused_naming_stage_and_difference(
    other: Dataset, stage: str, what: str
) -> None:
    state = _state(_base())
    with pytest.raises(CheckpointError, match=rf"stage {stage}\[\d+\].*{re.escape(what)}"):
        other.iterator(state)


def test_same_pipeline_rebuilt_restores() -> None:
    state = json.loads(json.dumps(_state(_base())))
    with _base().iterator(state) as it:
        rest = [b.tolist() for b in it]
    full = [b.tolist() for b in _base()]
    assert rest == full[3:]


def test_parallelism_is_not_a_parameter() -> None:
    seq = Dataset.range(50).map(lambda x: x + 1).batch(5)
    par = (
        Dataset.range(50).map(lambda x: x + 1, num_parallel_calls=2).batch(5, num_parallel_calls=2)
    )
    state = _state(seq)
    with par.iterator(state) as it:
        assert [b.tolist() for b in it] == [b.tolist() for b in seq][3:]


def test_unseeded_shuffle_restores_in_a_new_pipeline() -> None:
    # The seed was drawn by the op; the state carries it, so it is not checked.
    state = _state(Dataset.range(30).shuffle(5))
    with Dataset.range(30).shuffle(5).iterator(state) as it:
        assert len(list(it)) == 27


def test_arrays_are_compared_by_content() -> None:
    a = Dataset.from_tensor_slices(np.arange(20)).batch(2)
    b = Dataset.from_tensor_slices(np.arange(20) * 2).batch(2)
    state = _state(a)
    with a.iterator(state):
        pass
    with pytest.raises(CheckpointError, match="from_tensor_slices"):
        b.iterator(state)


def test_params_are_compact_and_json() -> None:
    big = Dataset.from_tensor_slices(np.zeros((10_000, 100), np.float32)).take(5).repeat(2)
    state = _state(big, 1)
    text = json.dumps(state)
    assert len(text) < 600, text
    assert "#" in text  # the array went in as a short hash


_CHILD = """
import json, sys
from stoker import Dataset
import numpy as np
ds = Dataset.from_tensor_slices(np.arange(40)).shuffle(8, seed=3).map(lambda x: x * 2).batch(3)
it = ds.iterator()
next(it)
if sys.argv[1] == "save":
    print(json.dumps(it.get_state()))
else:
    state = json.loads(sys.stdin.read())
    print(json.dumps([b.tolist() for b in ds.iterator(state)]))
"""


def test_params_are_stable_across_processes() -> None:
    saved = subprocess.run(
        [sys.executable, "-c", _CHILD, "save"], capture_output=True, text=True, check=True
    ).stdout
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, "load"],
        input=saved,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ds = Dataset.from_tensor_slices(np.arange(40)).shuffle(8, seed=3).map(lambda x: x * 2).batch(3)
    assert json.loads(out) == [b.tolist() for b in ds][1:]


def test_states_without_params_are_still_accepted() -> None:
    state = _state(_base())

    def strip(s: Any) -> Any:
        if isinstance(s, dict):
            return {k: strip(v) for k, v in s.items() if k != "params"}
        return s

    with _base().iterator(strip(state)) as it:
        assert len(list(it)) == 25 - 3


def test_options_seed_counts_as_a_fixed_seed() -> None:
    a = Dataset.range(20).with_options(Options(seed=1)).shuffle(5)
    b = Dataset.range(20).with_options(Options(seed=2)).shuffle(5)
    with pytest.raises(CheckpointError, match="seed was 1"):
        b.iterator(_state(a))
