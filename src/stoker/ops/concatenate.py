"""``Dataset.concatenate``."""

from __future__ import annotations

from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY

__all__ = ["ConcatenateDataset"]


class ConcatenateDataset(Dataset):
    _op_name = "concatenate"

    def __init__(self, first: Dataset, second: Dataset, name: str | None):
        if not isinstance(second, Dataset):
            raise TypeError(f"concatenate(): expected a stoker Dataset, got {type(second)!r}")
        super().__init__((first, second), name)

    def _cardinality(self) -> int:
        a, b = (d._cardinality() for d in self._inputs)
        if INFINITE_CARDINALITY in (a, b):
            return INFINITE_CARDINALITY
        if UNKNOWN_CARDINALITY in (a, b):
            return UNKNOWN_CARDINALITY
        return a + b

    def _random_access(self) -> Any:
        first, second = self._inputs
        get_a, get_b = first._random_access(), second._random_access()
        n = first._cardinality()
        if get_a is None or get_b is None or n < 0:
            return None
        return lambda i: get_a(i) if i < n else get_b(i - n)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _ConcatenateIterator(ctx, self)


class _ConcatenateIterator(DatasetIterator):
    OP = "concatenate"

    def __init__(self, ctx: IterContext, ds: ConcatenateDataset):
        self._ds = ds
        self._ctx_ = ctx
        self._which = 0
        self._input = ds._inputs[0]._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))

    def __next__(self) -> Any:
        try:
            return next(self._input)
        except StopIteration:
            if self._which == 1:
                raise
        self._switch()
        return next(self._input)

    def _switch(self) -> None:
        self._input.close()
        self._which = 1
        self._input = self._ds._inputs[1]._make_iterator(self._ctx_)
        self._inputs = (self._input,)

    def _get_state(self) -> State:
        return {"which": self._which, "input": self._input.get_state()}

    def _set_state(self, state: State) -> None:
        if int(state["which"]) == 1 and self._which == 0:
            self._switch()
        self._input.set_state(state["input"])
