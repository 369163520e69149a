"""``Dataset.take``."""

from __future__ import annotations

from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, UnaryIterator
from stoker.options import INFINITE_CARDINALITY

__all__ = ["TakeDataset"]


def _count(op: str, count: Any) -> int:
    if isinstance(count, bool) or not hasattr(count, "__index__") or int(count) < -1:
        raise ValueError(f"{op}(): count={count!r} must be -1 or >= 0")
    return int(count)


class TakeDataset(UnaryDataset):
    _op_name = "take"

    def __init__(self, input_dataset: Dataset, count: int, name: str | None):
        super().__init__(input_dataset, name)
        self._count = _count("take", count)

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        if self._count == -1:
            return n
        if n == INFINITE_CARDINALITY:
            return self._count
        return min(n, self._count) if n >= 0 else n

    def _random_access(self) -> Any:
        return self._input._random_access()

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _TakeIterator(ctx, self)


class _TakeIterator(UnaryIterator):
    OP = "take"
    _ds: TakeDataset

    def __init__(self, ctx: IterContext, ds: TakeDataset):
        super().__init__(ctx, ds)
        self._left = ds._count if ds._count >= 0 else float("inf")
        self._count = ds._count

    def __next__(self) -> Any:
        if self._left <= 0:
            raise StopIteration
        x = self._next_input()
        self._left -= 1
        return x

    def _get_state(self) -> State:
        left = self._left if self._count >= 0 else -1
        return {"input": self._input.get_state(), "left": left}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        left = int(state["left"])
        self._left = left if self._count >= 0 else float("inf")
