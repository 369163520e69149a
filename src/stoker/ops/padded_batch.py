"""``Dataset.padded_batch``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from stoker._structure import flatten, is_structure, pack_like, to_leaf_array
from stoker.dataset import Dataset
from stoker.errors import InvalidElementError
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, UnaryIterator, check_count
from stoker.ops.batch import batch_cardinality

__all__ = ["PaddedBatchDataset"]


def _leaf_shapes(template: Any, padded_shapes: Any) -> list[Any]:
    """``padded_shapes`` aligned with the leaves of ``template`` (None: pad to the max)."""
    if padded_shapes is None:
        return [None] * len(flatten(template))
    if isinstance(template, tuple):
        if not isinstance(padded_shapes, (tuple, list)) or len(padded_shapes) != len(template):
            raise ValueError(
                f"padded_batch(): padded_shapes {padded_shapes!r} does not match the element "
                f"structure (a tuple of {len(template)})"
            )
        out: list[Any] = []
        for t, p in zip(template, padded_shapes, strict=True):
            out.extend(_leaf_shapes(t, p))
        return out
    if isinstance(template, dict):
        if not isinstance(padded_shapes, dict) or set(padded_shapes) != set(template):
            raise ValueError(
                f"padded_batch(): padded_shapes {padded_shapes!r} does not match the element's "
                f"keys {sorted(template)}"
            )
        out = []
        for k in sorted(template):
            out.extend(_leaf_shapes(template[k], padded_shapes[k]))
        return out
    if isinstance(padded_shapes, (int, np.integer)):
        return [(int(padded_shapes),)]
    return [tuple(padded_shapes)]  # a shape: a list, tuple or TensorShape-like sequence


def _leaf_values(template: Any, padding_values: Any) -> list[Any]:
    if padding_values is None or not is_structure(padding_values):
        return [padding_values] * len(flatten(template))
    if isinstance(template, tuple):
        out: list[Any] = []
        for t, p in zip(template, padding_values, strict=True):
            out.extend(_leaf_values(t, p))
        return out
    if isinstance(template, dict):
        out = []
        for k in sorted(template):
            out.extend(_leaf_values(template[k], padding_values[k]))
        return out
    raise ValueError(f"padded_batch(): padding_values {padding_values!r} is not a scalar")


def _pad_leaf(
    values: Sequence[np.ndarray],
    shape: Sequence[int | None] | None,
    pad: Any,
    stage: str,
    start: int,
) -> np.ndarray:
    rank = values[0].ndim
    for i, v in enumerate(values):
        if v.ndim != rank:
            raise InvalidElementError(
                f"{stage}: element {start + i} has a component of rank {v.ndim} "
                f"(shape {v.shape}) but element {start} has rank {rank}; padded_batch pads "
                "dimensions, it cannot add them"
            )
    if shape is not None and len(shape) != rank:
        raise InvalidElementError(
            f"{stage}: padded_shapes {tuple(shape)} has rank {len(shape)} but the component "
            f"has rank {rank} (shape {values[0].shape})"
        )
    maxes = [max(v.shape[d] for v in values) for d in range(rank)]
    target = []
    for d in range(rank):
        want = None if shape is None else shape[d]
        if want is None or want == -1:
            target.append(maxes[d])
        else:
            if maxes[d] > want:
                i = next(j for j, v in enumerate(values) if v.shape[d] > want)
                raise InvalidElementError(
                    f"{stage}: element {start + i} has shape {values[i].shape}, larger than "
                    f"padded_shapes {tuple(shape or ())} in dimension {d}"
                )
            target.append(int(want))
    dtype = values[0].dtype
    if pad is None:
        pad = b"" if dtype.kind in "OS" else ("" if dtype.kind == "U" else 0)
    out = np.full((len(values), *target), pad, dtype=dtype)
    for i, v in enumerate(values):
        index: tuple[Any, ...] = (i, *(slice(0, s) for s in v.shape))
        out[index] = v
    return out


class PaddedBatchDataset(UnaryDataset):
    _op_name = "padded_batch"

    def __init__(
        self,
        input_dataset: Dataset,
        batch_size: int,
        padded_shapes: Any,
        padding_values: Any,
        drop_remainder: bool,
        name: str | None,
    ):
        super().__init__(input_dataset, name)
        self._batch_size = check_count("padded_batch", "batch_size", batch_size, 1)
        self._padded_shapes = padded_shapes
        self._padding_values = padding_values
        self._drop_remainder = bool(drop_remainder)

    def _cardinality(self) -> int:
        return batch_cardinality(self._input._cardinality(), self._batch_size, self._drop_remainder)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _PaddedBatchIterator(ctx, self)


class _PaddedBatchIterator(UnaryIterator):
    OP = "padded_batch"
    _ds: PaddedBatchDataset

    def __init__(self, ctx: IterContext, ds: PaddedBatchDataset):
        super().__init__(ctx, ds)
        self._consumed = 0

    def __next__(self) -> Any:
        ds = self._ds
        elements = list(itertools.islice(self._input, ds._batch_size))
        n = len(elements)
        if n == 0 or (ds._drop_remainder and n < ds._batch_size):
            raise StopIteration
        start = self._consumed
        self._consumed += n
        template = elements[0]
        shapes = _leaf_shapes(template, ds._padded_shapes)
        pads = _leaf_values(template, ds._padding_values)
        flat = [[to_leaf_array(x) for x in flatten(e)] for e in elements]
        leaves = [
            _pad_leaf([f[j] for f in flat], shapes[j], pads[j], self.stage, start)
            for j in range(len(shapes))
        ]
        return pack_like(template, leaves)

    def _get_state(self) -> State:
        return {"input": self._input.get_state(), "consumed": self._consumed}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._consumed = int(state["consumed"])
