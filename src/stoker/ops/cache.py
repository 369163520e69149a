"""``Dataset.cache`` (in-memory placeholder until the cache issue lands)."""

from __future__ import annotations

from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset

__all__ = ["CacheDataset"]


class CacheDataset(UnaryDataset):
    _op_name = "cache"

    def __init__(self, input_dataset: Dataset, filename: str, name: str | None):
        super().__init__(input_dataset, name)
        self._filename = str(filename)
        self._complete: list[Any] | None = None

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _MemoryCacheIterator(ctx, self)


class _MemoryCacheIterator(DatasetIterator):
    OP = "cache"

    def __init__(self, ctx: IterContext, ds: CacheDataset):
        self._ds = ds
        self._replay = ds._complete
        self._input = ds._input._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))
        self._filling: list[Any] = []
        self._pos = 0

    def __next__(self) -> Any:
        if self._replay is not None:
            if self._pos >= len(self._replay):
                raise StopIteration
            x = self._replay[self._pos]
            self._pos += 1
            return x
        try:
            x = next(self._input)
        except StopIteration:
            self._ds._complete = self._filling
            raise
        self._filling.append(x)
        self._pos += 1
        return x

    def _get_state(self) -> State:
        return {
            "pos": self._pos,
            "replay": self._replay is not None,
            "input": None if self._replay is not None else self._input.get_state(),
        }

    def _set_state(self, state: State) -> None:
        raise NotImplementedError
