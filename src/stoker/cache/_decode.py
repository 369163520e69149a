"""Decoding records of the cache file (see :mod:`stoker.cache._codec` for the layout).

Decoders are built from the specs in a file's metadata, which are checked strictly: a
decoder only ever builds NumPy arrays (read-only views of the mapped file), NumPy and
Python scalars, ``str``, ``bytes``, tuples, namedtuples and dicts. No code from the file
runs, and no module is imported.
"""

from __future__ import annotations

import collections
import math
import struct
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from stoker.cache._codec import (
    RECORD_HEADER,
    Spec,
    dtype_of,
    inline_code,
    leaf_specs,
    table_format,
)

__all__ = ["Decoder", "compile_decoder"]

Decoder = Callable[[Any, int], Any]


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _namedtuple_class(spec: Spec) -> Any:
    """The namedtuple class named by ``spec`` if this process already has it, else a lookalike.

    Only ``sys.modules`` is consulted: reading a cache never imports (runs) a module.
    """
    fields = [str(f) for f in spec["fields"]]
    obj: Any = sys.modules.get(str(spec["module"]))
    for part in str(spec["name"]).split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    if (
        isinstance(obj, type)
        and issubclass(obj, tuple)
        and list(getattr(obj, "_fields", ())) == fields
    ):
        return obj
    name = str(spec["name"]).rsplit(".", 1)[-1]
    return collections.namedtuple(name if name.isidentifier() else "Element", fields)


def _leaf_decoder(spec: Spec, w: int) -> tuple[Callable[[Any, int, tuple[Any, ...]], Any], int]:
    """A function ``(mmap, record offset, table words) -> leaf`` and the words it uses."""
    k = spec["k"]
    if k == "a":
        dt = dtype_of(spec["dtype"])
        nd = int(spec["ndim"])

        def array(mm: Any, base: int, words: tuple[Any, ...]) -> Any:
            dims = words[w : w + nd]
            n = math.prod(dims)
            if n == 0:
                return _readonly(np.empty(dims, dt))
            arr = np.frombuffer(mm, dt, n, base + words[w + nd])
            return arr.reshape(dims) if nd != 1 else arr

        return array, nd + 1
    if k == "s":
        dt = dtype_of(spec["dtype"])
        if inline_code(spec["dtype"]) is not None:
            ctor = dt.type
            return (lambda _mm, _base, words: ctor(words[w])), 1

        def other_scalar(mm: Any, base: int, words: tuple[Any, ...]) -> Any:
            return np.frombuffer(mm, dt, 1, base + words[w])[0]

        return other_scalar, 1
    if k in ("ob", "os"):
        nd = int(spec["ndim"])
        as_str = k == "os"

        def objects(mm: Any, base: int, words: tuple[Any, ...]) -> Any:
            dims = words[w : w + nd]
            n = math.prod(dims)
            start = base + words[w + nd]
            lengths = np.frombuffer(mm, "<u8", n, start).tolist() if n else []
            pos = start + 8 * n
            out = np.empty(n, dtype=object)
            for i, length in enumerate(lengths):
                b = mm[pos : pos + length]
                if len(b) != length:
                    raise ValueError("blob past the end of the file")
                out[i] = b.decode() if as_str else b
                pos += length
            if pos - start - 8 * n != words[w + nd + 1]:
                raise ValueError("blob lengths do not add up")
            return _readonly(out.reshape(dims))

        return objects, nd + 2
    if k in ("str", "bytes", "npstr", "npbytes"):
        wraps: dict[str, Callable[[bytes], Any]] = {
            "str": bytes.decode,
            "bytes": bytes,
            "npstr": lambda b: np.str_(b.decode()),
            "npbytes": np.bytes_,
        }
        wrap = wraps[k]
        plain = k == "bytes"

        def blob(mm: Any, base: int, words: tuple[Any, ...]) -> Any:
            start = base + words[w]
            b = mm[start : start + words[w + 1]]
            if len(b) != words[w + 1]:
                raise ValueError("blob past the end of the file")
            return b if plain else wrap(b)

        return blob, 2
    if k in ("int", "float"):
        return (lambda _mm, _base, words: words[w]), 1
    if k == "bool":
        return (lambda _mm, _base, words: bool(words[w])), 1
    if k == "complex":
        return (lambda _mm, _base, words: complex(words[w], words[w + 1])), 2
    if k == "none":
        return (lambda _mm, _base, _words: None), 0
    raise ValueError(f"unknown leaf kind {k!r}")


def _structure_decoder(
    spec: Spec, w: int
) -> tuple[Callable[[Any, int, tuple[Any, ...]], Any], int]:
    k = spec["k"]
    if k not in ("t", "d", "nt"):
        return _leaf_decoder(spec, w)
    children = []
    used = 0
    for child in spec["items"]:
        fn, n = _structure_decoder(child, w + used)
        children.append(fn)
        used += n
    if k == "t":
        return (lambda mm, base, words: tuple([f(mm, base, words) for f in children])), used
    if k == "d":
        keys = [str(key) for key in spec["keys"]]
        if len(keys) != len(children):
            raise ValueError("dict keys and items differ in number")
        pairs = list(zip(keys, children, strict=True))
        return (lambda mm, base, words: {key: f(mm, base, words) for key, f in pairs}), used
    cls = _namedtuple_class(spec)
    if len(spec["fields"]) != len(children):
        raise ValueError("namedtuple fields and items differ in number")
    return (lambda mm, base, words: cls(*[f(mm, base, words) for f in children])), used


def compile_decoder(spec: Spec) -> Decoder:
    """A function ``(mmap, record offset) -> element`` for records of ``spec``.

    Raises:
        ValueError: ``spec`` is malformed (the file is damaged).
    """
    table = struct.Struct(table_format(leaf_specs(spec)))
    fn, used = _structure_decoder(spec, 0)
    if used * 8 != table.size:
        raise ValueError("spec table size mismatch")
    unpack = table.unpack_from
    start = RECORD_HEADER.size
    # Fast paths for elements made only of scalars held in the table (the common small
    # element: an id, a label, a pair of them): one call, no per-leaf closures.
    scalar = _scalar_type(spec)
    if scalar is not None:
        return lambda mm, base: scalar(unpack(mm, base + start)[0])
    if spec["k"] == "t" and spec["items"]:
        types = [_scalar_type(item) for item in spec["items"]]
        if all(t is not None for t in types):
            pairs = list(zip(types, range(len(types)), strict=True))
            return lambda mm, base: _tuple_of(pairs, unpack(mm, base + start))
    return lambda mm, base: fn(mm, base, unpack(mm, base + start))


def _tuple_of(pairs: list[Any], words: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple([t(words[i]) for t, i in pairs])


def _scalar_type(spec: Spec) -> Any:
    """The constructor of a leaf stored whole in one table word, or None."""
    k = spec["k"]
    if k == "s" and inline_code(spec["dtype"]) is not None:
        return dtype_of(spec["dtype"]).type
    if k == "int":
        return int
    if k == "float":
        return float
    return None
