"""``Dataset.concatenate``."""

from __future__ import annotations

from typing import Any

import numpy as np

from stoker._structure import map_structure
from stoker.dataset import Dataset
from stoker.errors import InvalidElementError
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import make_input
from stoker.options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY

__all__ = ["ConcatenateDataset"]


def _kinds(x: Any) -> Any:
    """Structure and dtype kinds (int, float, str…) of an element, for a cheap check."""
    return map_structure(lambda leaf: _KIND.get(np.asarray(leaf).dtype.kind, "other"), x)


_KIND = {
    "i": "int",
    "u": "int",
    "f": "float",
    "c": "complex",
    "b": "bool",
    "U": "str",
    "S": "bytes",
    "O": "object",
}


class ConcatenateDataset(Dataset):
    _op_name = "concatenate"

    def __init__(self, first: Dataset, second: Dataset, name: str | None):
        if not isinstance(second, Dataset):
            raise TypeError(f"concatenate(): expected a stoker Dataset, got {type(second)!r}")
        super().__init__((first, second), name)

    def _cardinality(self) -> int:
        a, b = (d._cardinality() for d in self._inputs)
        if INFINITE_CARDINALITY in (a, b):
            return INFINITE_CARDINALITY
        if UNKNOWN_CARDINALITY in (a, b):
            return UNKNOWN_CARDINALITY
        return a + b

    def _random_access(self) -> Any:
        first, second = self._inputs
        get_a, get_b = first._random_access(), second._random_access()
        n = first._cardinality()
        if get_a is None or get_b is None or n < 0:
            return None
        return lambda i: get_a(i) if i < n else get_b(i - n)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _ConcatenateIterator(ctx, self)


class _ConcatenateIterator(DatasetIterator):
    OP = "concatenate"

    def __init__(self, ctx: IterContext, ds: ConcatenateDataset):
        self._ds = ds
        self._which = 0
        self._first_kinds: Any = None
        self._input = make_input(ctx, ds._inputs[0])
        super().__init__(ctx, ds, (self._input,))

    def __next__(self) -> Any:
        try:
            x = next(self._input)
        except StopIteration:
            if self._which == 1:
                raise
            self._switch()
            x = next(self._input)
            if self._first_kinds is not None:
                self._check(x)
            return x
        if self._first_kinds is None and self._which == 0:
            self._first_kinds = _kinds(x)
        return x

    def _check(self, x: Any) -> None:
        # No static element_spec: compare the first element of each input once, so mixing
        # e.g. ints and strings fails at the switch instead of somewhere downstream.
        kinds = _kinds(x)
        if kinds != self._first_kinds:
            raise InvalidElementError(
                f"{self.stage}: incompatible dataset elements: the first input gives "
                f"{self._first_kinds}, the second gives {kinds}; both must have the same "
                "structure and dtype kinds"
            )

    def _switch(self) -> None:
        old = self._input
        old.close()
        self._which = 1
        self._input = make_input(self._ctx, self._ds._inputs[1])
        self._inputs = (self._input,)
        self._input_replaced(old, self._input, same=False)

    def _get_state(self) -> State:
        return {"which": self._which, "input": self._input.get_state()}

    def _set_state(self, state: State) -> None:
        if int(state["which"]) == 1 and self._which == 0:
            self._switch()
        self._input.set_state(state["input"])
