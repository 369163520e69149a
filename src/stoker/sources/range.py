"""``Dataset.range``."""

from __future__ import annotations

import operator
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
    """Values of the current chunk straight from the chunk array's own iterator.

    The hot path is one call of that iterator's ``__next__`` (no chain object, no position
    counter): the position is computed when a state is taken, from where the current
    chunk ends and how many of its values are left.
    """

    OP = "range"

    def __init__(self, ctx: IterContext, ds: RangeDataset):
        super().__init__(ctx, ds, ())
        self._range = ds._range
        self._dtype = ds._dtype
        r = self._range
        self._chunked = max(abs(r.start), abs(r.stop), abs(r.step)) < _SAFE
        self._reset(0)

    def _reset(self, pos: int) -> None:
        rest = self._range[pos:]
        self._end = pos  # the position after the current chunk's last value
        self._chunk: Iterator[Any] = iter(())
        self._next = self._chunk.__next__
        if self._chunked:
            self._chunks: Iterator[Any] = _chunks(rest, self._dtype)
        else:  # Python ints beyond int64: convert one by one (NumPy raises if they don't fit)
            self._chunks = (
                range(lo, min(lo + _CHUNK, len(rest))) for lo in range(0, len(rest), _CHUNK)
            )
            self._big = rest

    def __next__(self) -> Any:
        try:
            return self._next()
        except StopIteration:
            return self._next_chunk()

    def _next_chunk(self) -> Any:
        # StopIteration from next(self._chunks) ends the range.
        chunk = next(self._chunks)
        start = self._end
        self._end = start + len(chunk)
        if self._chunked:
            self._chunk = iter(chunk)
        else:
            self._chunk = _Converted(self._big, chunk, self._dtype)
        self._next = self._chunk.__next__
        return self._next()

    @property
    def _pos(self) -> int:
        return self._end - operator.length_hint(self._chunk)

    def _get_state(self) -> State:
        return {"index": self._pos}

    def _set_state(self, state: State) -> None:
        self._reset(int(state["index"]))


class _Converted:
    """Values ``big[i]`` for ``i`` in ``indices``, converted to ``dtype`` one at a time."""

    __slots__ = ("_big", "_dtype", "_indices")

    def __init__(self, big: range, indices: range, dtype: np.dtype[Any]):
        self._big, self._indices, self._dtype = big, iter(indices), dtype.type

    def __iter__(self) -> _Converted:
        return self

    def __next__(self) -> Any:
        return self._dtype(self._big[next(self._indices)])

    def __length_hint__(self) -> int:
        return operator.length_hint(self._indices)
