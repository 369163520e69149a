"""``Dataset.take_while``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, UnaryIterator, annotate, stop_iteration_error
from stoker.ops.filter import predicate_result
from stoker.options import UNKNOWN_CARDINALITY

__all__ = ["TakeWhileDataset"]


class TakeWhileDataset(UnaryDataset):
    _op_name = "take_while"

    def __init__(self, input_dataset: Dataset, predicate: Callable[..., Any], name: str | None):
        super().__init__(input_dataset, name)
        if not callable(predicate):
            raise TypeError(f"take_while(): predicate must be callable, got {predicate!r}")
        self._predicate = predicate

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        return 0 if n == 0 else UNKNOWN_CARDINALITY

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _TakeWhileIterator(ctx, self)


class _TakeWhileIterator(UnaryIterator):
    OP = "take_while"
    _ds: TakeWhileDataset

    def __init__(self, ctx: IterContext, ds: TakeWhileDataset):
        super().__init__(ctx, ds)
        self._pred = ds._predicate
        self._done = False
        self._index = 0

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        x = next(self._input)
        i = self._index
        self._index += 1
        try:
            keep = self._pred(*x) if type(x) is tuple else self._pred(x)
        except StopIteration:
            raise stop_iteration_error(self.stage, self._pred) from None
        except Exception as e:
            annotate(e, self.stage, self._pred, i)
            raise
        if predicate_result(keep, self.stage, self._pred, i):
            return x
        self._done = True
        raise StopIteration

    def _get_state(self) -> State:
        return {"input": self._input.get_state(), "done": self._done, "index": self._index}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._done = bool(state["done"])
        self._index = int(state["index"])
