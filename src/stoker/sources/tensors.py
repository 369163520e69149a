"""``Dataset.from_tensor_slices`` and ``Dataset.from_tensors``."""

from __future__ import annotations

from typing import Any

import numpy as np

from stoker._structure import flatten, pack_like, to_leaf_array
from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State

__all__ = ["TensorSlicesDataset", "TensorsDataset"]


def _where(x: Any, path: str = "") -> list[str]:
    """Where each leaf of ``x`` sits (``[0]['a']``), in :func:`flatten`'s order."""
    if isinstance(x, tuple):
        return [w for i, v in enumerate(x) for w in _where(v, f"{path}[{i}]")]
    if isinstance(x, dict):
        return [w for k in sorted(x) for w in _where(x[k], f"{path}[{k!r}]")]
    return [path]


def _leaf(leaf: Any, where: str, op: str) -> np.ndarray:
    try:
        return to_leaf_array(leaf)
    except (ValueError, TypeError) as e:
        what = f"the component at tensors{where}" if where else "tensors"
        ragged = "inhomogeneous" in str(e) or "sequence" in str(e)
        hint = (
            " It is ragged (its rows differ in length): give every row the same length "
            "(pad it), or use from_generator() for rows of different lengths."
            if ragged
            else ""
        )
        raise ValueError(
            f"{op}(): {what} cannot be made into one array: {str(e).rstrip('.')}.{hint}"
        ) from None


def _readonly_leaves(tensors: Any, op: str) -> list[np.ndarray]:
    leaves = []
    for leaf, where in zip(flatten(tensors), _where(tensors), strict=True):
        arr = _leaf(leaf, where, op).view()
        # Elements are views of these arrays; read-only views make an in-place change to an
        # element an error instead of a silent change to the next pass's data.
        arr.flags.writeable = False
        leaves.append(arr)
    return leaves


class TensorSlicesDataset(Dataset):
    _op_name = "from_tensor_slices"

    def __init__(self, tensors: Any, name: str | None):
        super().__init__((), name)
        leaves = _readonly_leaves(tensors, self._op_name)
        if not leaves:
            raise ValueError("from_tensor_slices() needs at least one component")
        for leaf in leaves:
            if leaf.ndim == 0:
                raise ValueError(
                    f"from_tensor_slices(): a component is a scalar ({leaf!r}); every component "
                    "needs a first dimension to slice along. Use from_tensors() for one element."
                )
        n = leaves[0].shape[0]
        for leaf in leaves[1:]:
            if leaf.shape[0] != n:
                raise ValueError(
                    "from_tensor_slices(): components have different first dimensions "
                    f"({n} and {leaf.shape[0]}); all must have the same length"
                )
        self._template = tensors
        self._leaves = leaves
        self._len = n
        self._plain = len(leaves) == 1 and not isinstance(tensors, (tuple, dict))

    def _cardinality(self) -> int:
        return int(self._len)

    def _random_access(self) -> Any:
        return self._get

    def _get(self, i: int) -> Any:
        if self._plain:
            return self._leaves[0][i]
        return pack_like(self._template, [leaf[i] for leaf in self._leaves])

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _SlicesIterator(ctx, self)


class _SlicesIterator(DatasetIterator):
    OP = "from_tensor_slices"

    def __init__(self, ctx: IterContext, ds: TensorSlicesDataset):
        super().__init__(ctx, ds, ())
        self._ds = ds
        self._pos = 0
        self._reset()

    def _reset(self) -> None:
        ds = self._ds
        if ds._plain:
            self._it: Any = iter(ds._leaves[0][self._pos :])
        else:
            template = ds._template
            self._it = (
                pack_like(template, leaves)
                for leaves in zip(*(leaf[self._pos :] for leaf in ds._leaves), strict=True)
            )

    def __next__(self) -> Any:
        value = next(self._it)
        self._pos += 1
        return value

    def _get_state(self) -> State:
        return {"index": self._pos}

    def _set_state(self, state: State) -> None:
        self._pos = int(state["index"])
        self._reset()


class TensorsDataset(Dataset):
    _op_name = "from_tensors"

    def __init__(self, tensors: Any, name: str | None):
        super().__init__((), name)
        leaves = [
            leaf[()] if leaf.ndim == 0 else leaf
            for leaf in _readonly_leaves(tensors, self._op_name)
        ]
        self._element = pack_like(tensors, leaves)

    def _cardinality(self) -> int:
        return 1

    def _random_access(self) -> Any:
        element = self._element
        return lambda _i: element

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _TensorsIterator(ctx, self)


class _TensorsIterator(DatasetIterator):
    OP = "from_tensors"

    def __init__(self, ctx: IterContext, ds: TensorsDataset):
        super().__init__(ctx, ds, ())
        self._element = ds._element
        self._done = False

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        self._done = True
        return self._element

    def _get_state(self) -> State:
        return {"done": self._done}

    def _set_state(self, state: State) -> None:
        self._done = bool(state["done"])
