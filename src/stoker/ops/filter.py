"""``Dataset.filter``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from stoker import iterator as _iterator
from stoker.dataset import Dataset
from stoker.errors import InvalidElementError
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import (
    UnaryDataset,
    UnaryIterator,
    annotate,
    func_name,
    stop_iteration_error,
)
from stoker.options import UNKNOWN_CARDINALITY

__all__ = ["FilterDataset", "predicate_result"]


def predicate_result(value: Any, stage: str, fn: Callable[..., Any], index: int) -> bool:
    """A predicate's result as a bool; anything but a scalar bool is an error."""
    if value is True or value is False:
        return value
    if isinstance(value, (np.bool_, np.ndarray)) and np.ndim(value) == 0:
        if np.asarray(value).dtype == np.bool_:
            return bool(value)
    raise InvalidElementError(
        f"{stage}: predicate {func_name(fn)}() returned {value!r:.60} "
        f"({type(value).__name__}) for element {index}; it must return a scalar bool"
    )


_NP_TRUE = np.True_
_NP_FALSE = np.False_


class FilterDataset(UnaryDataset):
    _op_name = "filter"

    def __init__(self, input_dataset: Dataset, predicate: Callable[..., Any], name: str | None):
        super().__init__(input_dataset, name)
        if not callable(predicate):
            raise TypeError(f"filter(): predicate must be callable, got {predicate!r}")
        self._predicate = predicate

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        return n if n < 0 else UNKNOWN_CARDINALITY

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _FilterIterator(ctx, self)


class _FilterIterator(UnaryIterator):
    OP = "filter"
    _ds: FilterDataset

    def __init__(self, ctx: IterContext, ds: FilterDataset):
        super().__init__(ctx, ds)
        self._pred = ds._predicate
        self._index = 0

    def __next__(self) -> Any:
        nxt = self._next_input
        pred = self._pred
        while True:
            x = nxt()
            self._index += 1
            try:
                keep = pred(*x) if type(x) is tuple else pred(x)
            except StopIteration:
                raise stop_iteration_error(self.stage, pred) from None
            except Exception as e:
                annotate(e, self.stage, pred, self._index - 1)
                raise
            # Python and NumPy bools are singletons: identity checks cover the common
            # results (x > 0 on NumPy scalars gives np.True_) without a function call.
            if keep is True or keep is _NP_TRUE:
                return x
            if keep is False or keep is _NP_FALSE:
                continue
            if predicate_result(keep, self.stage, pred, self._index - 1):
                return x

    def _counted_next(self) -> Any:
        # __next__ with the stats' counting written in (what the node runs with stats on):
        # the same as iterator._counting_class's wrapper, without its extra call level.
        rec: Any = self.recorder
        n = rec.elements
        if n >= rec.next_sample or _iterator._tracing:
            return rec.timed_call(_FilterIterator.__next__, self, n)
        nxt = self._next_input
        pred = self._pred
        while True:
            x = nxt()
            self._index += 1
            try:
                keep = pred(*x) if type(x) is tuple else pred(x)
            except StopIteration:
                raise stop_iteration_error(self.stage, pred) from None
            except Exception as e:
                annotate(e, self.stage, pred, self._index - 1)
                raise
            if keep is True or keep is _NP_TRUE:
                break
            if keep is False or keep is _NP_FALSE:
                continue
            if predicate_result(keep, self.stage, pred, self._index - 1):
                break
        rec.elements = n + 1
        return x

    def _get_state(self) -> State:
        return {"input": self._input.get_state(), "index": self._index}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._index = int(state["index"])
