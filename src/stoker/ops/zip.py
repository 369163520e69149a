"""``Dataset.zip``."""

from __future__ import annotations

from typing import Any

from stoker._structure import flatten, pack_like
from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY

__all__ = ["ZipDataset"]


class ZipDataset(Dataset):
    _op_name = "zip"

    def __init__(self, structure: Any, name: str | None):
        leaves = flatten(structure)
        for d in leaves:
            if not isinstance(d, Dataset):
                raise TypeError(
                    f"zip(): every leaf of the argument must be a stoker Dataset, got "
                    f"{type(d).__name__}"
                )
        if not leaves:
            raise ValueError("zip() needs at least one dataset")
        super().__init__(tuple(leaves), name)
        self._structure = structure

    def _cardinality(self) -> int:
        ns = [d._cardinality() for d in self._inputs]
        if UNKNOWN_CARDINALITY in ns:
            return UNKNOWN_CARDINALITY  # tf.data: unknown wins, even over a finite input
        known = [n for n in ns if n >= 0]
        return min(known) if known else INFINITE_CARDINALITY

    def _random_access(self) -> Any:
        getters = [d._random_access() for d in self._inputs]
        if any(g is None for g in getters):
            return None
        structure = self._structure
        return lambda i: pack_like(structure, [g(i) for g in getters])  # type: ignore[misc]

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _ZipIterator(ctx, self)


class _ZipIterator(DatasetIterator):
    OP = "zip"

    def __init__(self, ctx: IterContext, ds: ZipDataset):
        inputs = tuple(d._make_iterator(ctx) for d in ds._inputs)
        super().__init__(ctx, ds, inputs)
        self._structure = ds._structure
        self._plain = type(ds._structure) is tuple and all(
            isinstance(d, Dataset) for d in ds._structure
        )

    def __next__(self) -> Any:
        values = [next(it) for it in self._inputs]
        if self._plain:
            return tuple(values)
        return pack_like(self._structure, values)

    def _get_state(self) -> State:
        return {"inputs": [it.get_state() for it in self._inputs]}

    def _set_state(self, state: State) -> None:
        states = state["inputs"]
        if len(states) != len(self._inputs):
            raise ValueError(f"{len(states)} input states for {len(self._inputs)} inputs")
        for it, s in zip(self._inputs, states, strict=True):
            it.set_state(s)
