"""batch(num_parallel_calls=...): stacking on the thread pool, same batches as serial."""

from __future__ import annotations

import numpy as np
import pytest

from stoker import AUTOTUNE, Dataset, InvalidElementError
from stoker.ops import _parallel_batch
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal


def _big(x):
    return {"img": np.full((200, 200), x, dtype=np.float32), "label": x}


@pytest.mark.parametrize("npc", [1, 2, AUTOTUNE])
@pytest.mark.parametrize("drop", [False, True])
def test_batches_match_sequential(npc, drop):
    seq = list(Dataset.range(23).map(_big).batch(4, drop_remainder=drop))
    par = list(Dataset.range(23).map(_big).batch(4, drop_remainder=drop, num_parallel_calls=npc))
    assert len(par) == len(seq)
    for a, b in zip(par, seq, strict=True):
        assert_elements_equal(a, b)


def test_checkpoint_roundtrip():
    ds = Dataset.range(30).shuffle(7, seed=3).batch(4, num_parallel_calls=2)
    assert assert_checkpoint_roundtrip(ds) == 8


def test_a_sequential_batch_state_restores():
    it = iter(Dataset.range(20).batch(3))
    next(it)
    state = it.get_state()
    rest = [b.tolist() for b in Dataset.range(20).batch(3, num_parallel_calls=2).iterator(state)]
    assert rest[0] == [3, 4, 5] and rest[-1] == [18, 19]


@pytest.mark.parametrize("threshold", [0.0, 10.0])
def test_cheap_stacks_switch_to_inline(monkeypatch, threshold):
    # Timing-free: the threshold decides (a stack never takes 0 s or 10 s).
    monkeypatch.setattr(_parallel_batch, "_INLINE_BELOW_S", threshold)
    it = iter(Dataset.range(200).batch(2, num_parallel_calls=2))
    assert [b.tolist() for b in it] == [[i, i + 1] for i in range(0, 200, 2)]
    assert it.inline == (threshold > 0)


def test_shape_errors_arrive_at_their_batch():
    ds = Dataset.range(9).map(lambda x: np.zeros(3 if x != 5 else 4)).batch(3, num_parallel_calls=2)
    it = iter(ds)
    next(it)
    with pytest.raises(InvalidElementError, match="elements 3 and 5"):
        next(it)
    assert next(it).shape == (3, 3)
