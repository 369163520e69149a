"""``Dataset.unique``."""

from __future__ import annotations

from typing import Any

import numpy as np

from stoker.dataset import Dataset
from stoker.errors import InvalidElementError
from stoker.iterator import DatasetIterator, IterContext, State, decode_value, encode_value
from stoker.ops._common import UnaryDataset, UnaryIterator
from stoker.options import UNKNOWN_CARDINALITY

__all__ = ["UniqueDataset"]


class UniqueDataset(UnaryDataset):
    _op_name = "unique"

    def __init__(self, input_dataset: Dataset, name: str | None):
        super().__init__(input_dataset, name)

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        return n if n == 0 else UNKNOWN_CARDINALITY

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _UniqueIterator(ctx, self)


class _UniqueIterator(UnaryIterator):
    OP = "unique"
    _ds: UniqueDataset

    def __init__(self, ctx: IterContext, ds: UniqueDataset):
        super().__init__(ctx, ds)
        self._seen: dict[Any, Any] = {}

    def _key(self, x: Any) -> Any:
        if isinstance(x, (bytes, str, int)) and not isinstance(x, bool):
            return x
        if isinstance(x, (np.generic, np.ndarray)) and np.ndim(x) == 0:
            kind = np.asarray(x).dtype.kind
            if kind in "iuSUO":
                return np.asarray(x).item()
        raise InvalidElementError(
            f"{self.stage}: unique() takes scalar int or string elements, got "
            f"{type(x).__name__} {np.shape(x)}"
        )

    def __next__(self) -> Any:
        seen = self._seen
        while True:
            x = next(self._input)
            key = self._key(x)
            if key not in seen:
                seen[key] = x
                return x

    def _get_state(self) -> State:
        return {
            "input": self._input.get_state(),
            "seen": [encode_value(v) for v in self._seen.values()],
        }

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        values = [decode_value(v) for v in state["seen"]]
        self._seen = {self._key(v): v for v in values}
