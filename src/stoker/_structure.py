"""Nested element structures: tuples, namedtuples and dicts of NumPy leaves.

tf.data treats tuples, namedtuples and dicts as structure and everything else (lists
included) as a leaf that becomes one tensor. stoker does the same with NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stoker.errors import InvalidElementError

__all__ = [
    "flatten",
    "is_namedtuple",
    "map_structure",
    "pack_like",
    "stack",
    "to_leaf_array",
    "unstack",
]


def is_namedtuple(x: object) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def is_structure(x: object) -> bool:
    return isinstance(x, (tuple, dict))


def flatten(x: Any) -> list[Any]:
    """Leaves in a fixed order (dict keys sorted, as tf.nest does)."""
    if isinstance(x, tuple):
        out: list[Any] = []
        for v in x:
            out.extend(flatten(v))
        return out
    if isinstance(x, dict):
        out = []
        for k in sorted(x):
            out.extend(flatten(x[k]))
        return out
    return [x]


def pack_like(template: Any, leaves: Sequence[Any]) -> Any:
    """Inverse of :func:`flatten`: rebuild ``template``'s structure from ``leaves``."""
    it = iter(leaves)
    result = _pack(template, it)
    return result


def _pack(template: Any, it: Any) -> Any:
    if isinstance(template, tuple):
        values = [_pack(v, it) for v in template]
        if is_namedtuple(template):
            return type(template)(*values)
        return tuple(values)
    if isinstance(template, dict):
        packed = {k: _pack(template[k], it) for k in sorted(template)}
        return {k: packed[k] for k in template}
    return next(it)


def map_structure(fn: Callable[..., Any], *structs: Any) -> Any:
    """Apply ``fn`` to matching leaves of structures that have the same shape."""
    first = structs[0]
    if isinstance(first, tuple):
        for s in structs[1:]:
            if not isinstance(s, tuple) or len(s) != len(first):
                raise InvalidElementError(
                    f"structures differ: {_describe(first)} vs {_describe(s)}"
                )
        values = [map_structure(fn, *parts) for parts in zip(*structs, strict=True)]
        return type(first)(*values) if is_namedtuple(first) else tuple(values)
    if isinstance(first, dict):
        for s in structs[1:]:
            if not isinstance(s, dict) or s.keys() != first.keys():
                raise InvalidElementError(
                    f"structures differ: {_describe(first)} vs {_describe(s)}"
                )
        return {k: map_structure(fn, *(s[k] for s in structs)) for k in first}
    for s in structs[1:]:
        if is_structure(s):
            raise InvalidElementError(f"structures differ: {_describe(first)} vs {_describe(s)}")
    return fn(*structs)


def _describe(x: Any) -> str:
    if isinstance(x, tuple):
        inner = ", ".join(_describe(v) for v in x)
        name = type(x).__name__ if is_namedtuple(x) else ""
        return f"{name}({inner}{',' if len(x) == 1 and not name else ''})"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in x.items()) + "}"
    return "leaf"


def to_leaf_array(x: Any) -> np.ndarray:
    """A leaf as an array: Python ints become int64, bytes stay bytes (object dtype)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (bytes, bytearray)):
        arr = np.empty((), dtype=object)
        arr[()] = bytes(x)
        return arr
    arr = np.asarray(x)
    if arr.dtype.kind == "S":
        # NumPy's fixed-width bytes dtype drops trailing NUL bytes; keep the bytes intact.
        return np.asarray(x, dtype=object)
    return arr


def _leaf_shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


def _stack_leaf(values: list[Any], stage: str, start: int) -> np.ndarray:
    first = values[0]
    if isinstance(first, (bytes, np.bytes_)):
        # Object dtype: NumPy's fixed-width bytes dtype would drop trailing NUL bytes.
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    try:
        # np.array, not np.stack: it is 2-3x faster on small arrays, and it raises (or adds
        # no dimension) when shapes differ, which the check below turns into a clear error.
        out = np.array(values)
        ndim = first.ndim if isinstance(first, (np.ndarray, np.generic)) else np.ndim(first)
        if out.ndim == 1 + ndim:
            return out
    except ValueError:
        pass
    ref = _leaf_shape(first)
    for i, v in enumerate(values):
        if _leaf_shape(v) != ref:
            raise InvalidElementError(
                f"{stage}: cannot batch elements {start} and {start + i}: a component has "
                f"shape {ref} in element {start} but {_leaf_shape(v)} in element {start + i}. "
                "Use padded_batch() to pad to a common shape, or map() them to one shape."
            ) from None
    raise InvalidElementError(
        f"{stage}: cannot stack elements {start}..{start + len(values) - 1} into one array "
        f"(first component: {type(first).__name__} {first!r:.80})"
    )


class _StructureMismatch(Exception):
    def __init__(self, index: int):
        self.index = index


def _stack_columns(values: list[Any], stage: str, start: int) -> Any:
    """Stack ``values`` (one component of every element), recursing into structures."""
    first = values[0]
    kinds = set(map(type, values))  # C loops: cheaper than an isinstance per value
    kind = type(first)
    if len(kinds) == 1:
        if issubclass(kind, tuple):  # tuple or namedtuple
            if len(set(map(len, values))) != 1:
                raise _StructureMismatch(_first_mismatch(values))
            parts = [_stack_columns(list(c), stage, start) for c in zip(*values, strict=True)]
            return kind(*parts) if kind is not tuple else tuple(parts)
        if issubclass(kind, dict):
            keys = first.keys()
            if not all(v.keys() == keys for v in values):
                raise _StructureMismatch(_first_mismatch(values))
            return {k: _stack_columns([v[k] for v in values], stage, start) for k in first}
    elif any(issubclass(k, (tuple, dict)) for k in kinds):
        raise _StructureMismatch(_first_mismatch(values))
    return _stack_leaf(values, stage, start)


def _first_mismatch(values: list[Any]) -> int:
    first = values[0]
    for i, v in enumerate(values):
        if isinstance(first, tuple):
            if type(v) is not type(first) or len(v) != len(first):
                return i
        elif isinstance(first, dict):
            if not isinstance(v, dict) or v.keys() != first.keys():
                return i
        elif is_structure(v):
            return i
    return 0  # pragma: no cover - only called once a mismatch was seen


def stack(elements: list[Any], stage: str = "batch", start: int = 0) -> Any:
    """Stack a list of same-structured elements into one element of arrays.

    Args:
        elements: The elements, all with the structure of the first.
        stage: Stage name used in error messages.
        start: Index of ``elements[0]`` in the input, used in error messages.
    """
    first = elements[0]
    try:
        return _stack_columns(elements, stage, start)
    except _StructureMismatch as e:
        bad = e.index
        raise InvalidElementError(
            f"{stage}: element {start + bad} has structure {_describe(elements[bad])} but "
            f"element {start} has {_describe(first)}; every element of a batch needs the same "
            "structure"
        ) from None


def unstack(element: Any, stage: str = "unbatch") -> list[Any]:
    """Split an element along the first dimension of every leaf."""
    leaves = flatten(element)
    if not leaves:
        return []
    arrays = [to_leaf_array(x) for x in leaves]
    for a in arrays:
        if a.ndim == 0:
            raise InvalidElementError(
                f"{stage}: cannot unbatch a scalar component (shape ()); every component needs a "
                "leading batch dimension"
            )
    n = arrays[0].shape[0]
    for a in arrays[1:]:
        if a.shape[0] != n:
            raise InvalidElementError(
                f"{stage}: components have different batch sizes {n} and {a.shape[0]}; "
                "every component of an element must have the same leading dimension"
            )
    if not isinstance(element, (tuple, dict)):
        return list(arrays[0])
    return [pack_like(element, [a[i] for a in arrays]) for i in range(n)]
