"""``Dataset.repeat``."""

from __future__ import annotations

from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, UnaryIterator, make_input
from stoker.options import INFINITE_CARDINALITY

__all__ = ["RepeatDataset"]


class RepeatDataset(UnaryDataset):
    _op_name = "repeat"

    def __init__(self, input_dataset: Dataset, count: int | None, name: str | None):
        super().__init__(input_dataset, name)
        if count is None:
            count = -1
        if isinstance(count, bool) or not hasattr(count, "__index__") or int(count) < -1:
            raise ValueError(f"repeat(): count={count!r} must be None, -1 or >= 0")
        self._count = int(count)

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        if self._count == 0 or n == 0:
            return 0
        if self._count == -1:
            # tf.data: repeating a dataset of unknown size forever is infinite.
            return INFINITE_CARDINALITY
        return n if n < 0 else n * self._count

    def _random_access(self) -> Any:
        get = self._input._random_access()
        n = self._input._cardinality()
        if get is None or n <= 0:
            return None
        return lambda i: get(i % n)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _RepeatIterator(ctx, self)


class _RepeatIterator(UnaryIterator):
    OP = "repeat"
    _ds: RepeatDataset

    def __init__(self, ctx: IterContext, ds: RepeatDataset):
        super().__init__(ctx, ds)
        self._epoch = 0  # epochs finished (not a pass id)
        self._done = ds._count == 0
        if self._done:
            self._next_input = _exhausted

    def __next__(self) -> Any:
        try:
            return self._next_input()
        except StopIteration:
            pass
        return self._next_epoch()

    def _next_epoch(self) -> Any:
        if self._done:
            raise StopIteration
        self._epoch += 1
        count = self._ds._count
        if count != -1 and self._epoch >= count:
            self._finish()
            raise StopIteration
        self._new_input()
        try:
            return self._next_input()
        except StopIteration:
            # An empty pass: stop rather than loop forever (tf.data does the same).
            self._finish()
            raise

    def _finish(self) -> None:
        self._done = True
        self._next_input = _exhausted

    def _new_input(self) -> None:
        self._replace_input(make_input(self._ctx, self._ds._input))

    def _get_state(self) -> State:
        return {"epoch": self._epoch, "done": self._done, "input": self._input.get_state()}

    def _set_state(self, state: State) -> None:
        epoch = int(state["epoch"])
        if epoch != self._epoch:
            self._epoch = epoch
            self._new_input()
        self._input.set_state(state["input"])
        self._done = bool(state["done"])
        if self._done:
            self._finish()
        else:
            self._next_input = self._input.__next__


def _exhausted() -> Any:
    raise StopIteration
