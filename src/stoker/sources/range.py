"""``Dataset.range``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
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


# Values come from np.arange in chunks of this many: iterating an array yields NumPy scalars
# several times faster than converting each Python int (np.int64(i) costs ~0.5 us).
_CHUNK = 1024
_SAFE = 1 << 62  # bounds beyond this could overflow int64 in a chunk's arange


def _chunks(r: range, dtype: np.dtype[Any]) -> Iterator[np.ndarray]:
    for lo in range(0, len(r), _CHUNK):
        sub = r[lo : lo + _CHUNK]
        yield np.arange(sub.start, sub.stop, sub.step, dtype=np.int64).astype(dtype, copy=False)


class _RangeIterator(DatasetIterator):
    OP = "range"

    def __init__(self, ctx: IterContext, ds: RangeDataset):
        super().__init__(ctx, ds, ())
        self._range = ds._range
        self._dtype = ds._dtype
        r = self._range
        self._chunked = max(abs(r.start), abs(r.stop), abs(r.step)) < _SAFE
        self._pos = 0
        self._reset()

    def _reset(self) -> None:
        rest = self._range[self._pos :]
        if self._chunked:
            it: Iterator[Any] = itertools.chain.from_iterable(_chunks(rest, self._dtype))
        else:  # Python ints beyond int64: convert one by one (NumPy raises if they don't fit)
            it = map(self._dtype.type, rest)
        self._next = it.__next__

    def __next__(self) -> Any:
        value = self._next()
        self._pos += 1
        return value

    def _get_state(self) -> State:
        return {"index": self._pos}

    def _set_state(self, state: State) -> None:
        self._pos = int(state["index"])
        self._reset()
