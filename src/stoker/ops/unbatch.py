"""``Dataset.unbatch``."""

from __future__ import annotations

from typing import Any

from stoker._structure import unstack
from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State, saved, snapshot
from stoker.ops._common import UnaryDataset, UnaryIterator
from stoker.options import UNKNOWN_CARDINALITY

__all__ = ["UnbatchDataset"]


class UnbatchDataset(UnaryDataset):
    _op_name = "unbatch"

    def __init__(self, input_dataset: Dataset, name: str | None):
        super().__init__(input_dataset, name)

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        return n if n == -1 else UNKNOWN_CARDINALITY

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _UnbatchIterator(ctx, self)


class _UnbatchIterator(UnaryIterator):
    OP = "unbatch"
    _ds: UnbatchDataset

    def __init__(self, ctx: IterContext, ds: UnbatchDataset):
        super().__init__(ctx, ds)
        self._items: list[Any] = []
        self._pos = 0
        # State of the input before the batch being split was pulled.
        self._before: Any = None

    def __next__(self) -> Any:
        while self._pos >= len(self._items):
            self._before = None
            self._items = []
            self._pos = 0
            self._before = snapshot(self._input)
            self._items = unstack(next(self._input), self.stage)
        item = self._items[self._pos]
        self._pos += 1
        return item

    def _get_state(self) -> State:
        if self._pos >= len(self._items):
            return {"input": self._input.get_state(), "pos": 0, "mid": False}
        return {"input": saved(self._before), "pos": self._pos, "mid": True}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._items, self._pos, self._before = [], 0, None
        if state["mid"]:
            self._before = state["input"]
            self._items = unstack(next(self._input), self.stage)
            self._pos = int(state["pos"])
