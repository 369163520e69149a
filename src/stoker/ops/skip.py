"""``Dataset.skip``."""

from __future__ import annotations

from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, UnaryIterator
from stoker.ops.take import _count

__all__ = ["SkipDataset"]


class SkipDataset(UnaryDataset):
    _op_name = "skip"

    def __init__(self, input_dataset: Dataset, count: int, name: str | None):
        super().__init__(input_dataset, name)
        self._count = _count("skip", count)

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        if n < 0:
            return n
        if self._count == -1:
            return 0
        return max(0, n - self._count)

    def _random_access(self) -> Any:
        get = self._input._random_access()
        if get is None or self._count < 0:
            return None
        k = self._count
        return lambda i: get(i + k)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _SkipIterator(ctx, self)


class _SkipIterator(UnaryIterator):
    OP = "skip"
    _ds: SkipDataset

    def __init__(self, ctx: IterContext, ds: SkipDataset):
        super().__init__(ctx, ds)
        self._to_skip = ds._count if ds._count >= 0 else float("inf")
        self._next_input = self._input.__next__

    def __next__(self) -> Any:
        while self._to_skip > 0:
            self._next_input()
            self._to_skip -= 1
        return self._next_input()

    def _get_state(self) -> State:
        left = -1 if self._to_skip == float("inf") else int(self._to_skip)
        return {"input": self._input.get_state(), "to_skip": left}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        left = int(state["to_skip"])
        self._to_skip = float("inf") if left == -1 else left
