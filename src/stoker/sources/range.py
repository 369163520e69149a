"""``Dataset.range``."""

from __future__ import annotations

from typing import Any

import numpy as np

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State

__all__ = ["RangeDataset"]


class RangeDataset(Dataset):
    _op_name = "range"

    def __init__(self, args: tuple[int, ...], output_type: Any, name: str | None):
        super().__init__((), name)
        if not 1 <= len(args) <= 3:
            raise TypeError(f"range() takes 1 to 3 positional arguments, got {len(args)}")
        for a in args:
            if isinstance(a, bool) or not hasattr(a, "__index__"):
                raise TypeError(f"range() arguments must be ints, got {a!r}")
        r = range(*(int(a) for a in args))  # raises ValueError for step 0, like Python
        self._range = r
        self._dtype = np.dtype(output_type if output_type is not None else np.int64)

    def _cardinality(self) -> int:
        return len(self._range)

    def _random_access(self) -> Any:
        r, dtype = self._range, self._dtype.type
        return lambda i: dtype(r[i])

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _RangeIterator(ctx, self)


class _RangeIterator(DatasetIterator):
    OP = "range"

    def __init__(self, ctx: IterContext, ds: RangeDataset):
        super().__init__(ctx, ds, ())
        self._range = ds._range
        self._dtype = ds._dtype.type
        self._pos = 0
        self._it = iter(self._range)

    def __next__(self) -> Any:
        value = self._dtype(next(self._it))
        self._pos += 1
        return value

    def _get_state(self) -> State:
        return {"index": self._pos}

    def _set_state(self, state: State) -> None:
        pos = int(state["index"])
        self._pos = pos
        self._it = iter(self._range[pos:])
