"""``Dataset.enumerate``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, UnaryIterator

__all__ = ["EnumerateDataset"]


class EnumerateDataset(UnaryDataset):
    _op_name = "enumerate"

    def __init__(self, input_dataset: Dataset, start: int, name: str | None):
        super().__init__(input_dataset, name)
        if isinstance(start, bool) or not hasattr(start, "__index__"):
            raise TypeError(f"enumerate(): start={start!r} must be an int")
        self._start = int(start)

    def _random_access(self) -> Any:
        get = self._input._random_access()
        if get is None:
            return None
        start = self._start
        return lambda i: (np.int64(start + i), get(i))

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _EnumerateIterator(ctx, self)


def _int64_counter(start: int) -> Iterator[np.int64]:
    """``np.int64(start), np.int64(start + 1), …`` made in blocks by np.arange (np.int64(i)
    per element costs ~0.5 us; iterating an array yields its scalars several times faster)."""
    return itertools.chain.from_iterable(
        np.arange(lo, lo + _CHUNK, dtype=np.int64) for lo in itertools.count(start, _CHUNK)
    )


_CHUNK = 1024


class _EnumerateIterator(UnaryIterator):
    OP = "enumerate"
    _ds: EnumerateDataset

    def __init__(self, ctx: IterContext, ds: EnumerateDataset):
        super().__init__(ctx, ds)
        self._i = ds._start
        self._next_index = _int64_counter(self._i).__next__

    def __next__(self) -> Any:
        x = self._next_input()
        self._i += 1
        return (self._next_index(), x)

    def _get_state(self) -> State:
        return {"input": self._input.get_state(), "i": self._i}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._i = int(state["i"])
        self._next_index = _int64_counter(self._i).__next__
