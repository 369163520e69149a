"""``Dataset.scan``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stoker.dataset import Dataset
from stoker.errors import InvalidElementError
from stoker.iterator import DatasetIterator, IterContext, State, decode_value, encode_value
from stoker.ops._common import (
    UnaryDataset,
    UnaryIterator,
    annotate,
    func_name,
    stop_iteration_error,
)

__all__ = ["ScanDataset"]


class ScanDataset(UnaryDataset):
    _op_name = "scan"

    def __init__(
        self,
        input_dataset: Dataset,
        initial_state: Any,
        scan_func: Callable[[Any, Any], Any],
        name: str | None,
    ):
        super().__init__(input_dataset, name)
        if not callable(scan_func):
            raise TypeError(f"scan(): scan_func must be callable, got {scan_func!r}")
        self._initial = initial_state
        self._fn = scan_func

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _ScanIterator(ctx, self)


class _ScanIterator(UnaryIterator):
    OP = "scan"
    _ds: ScanDataset

    def __init__(self, ctx: IterContext, ds: ScanDataset):
        super().__init__(ctx, ds)
        self._fn = ds._fn
        self._carry = ds._initial
        self._index = 0

    def __next__(self) -> Any:
        x = next(self._input)
        i = self._index
        self._index += 1
        try:
            result = self._fn(self._carry, x)
        except StopIteration:
            raise stop_iteration_error(self.stage, self._fn) from None
        except Exception as e:
            annotate(e, self.stage, self._fn, i)
            raise
        if not isinstance(result, tuple) or len(result) != 2:
            raise InvalidElementError(
                f"{self.stage}: {func_name(self._fn)}() must return (new_state, output), got "
                f"{type(result).__name__} for element {i}"
            )
        self._carry, out = result
        return out

    def _get_state(self) -> State:
        return {
            "input": self._input.get_state(),
            "carry": encode_value(self._carry),
            "index": self._index,
        }

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._carry = decode_value(state["carry"])
        self._index = int(state["index"])
