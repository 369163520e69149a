"""Element codec of the cache file: structure specs and record encoding.

An element is described by a *spec*: its structure (tuples, namedtuples, dicts) and, for
every leaf, a kind and what does not change from element to element (dtype, number of
dimensions). Elements with the same spec share one decoder; a file holds a table of the
specs it uses and every record names its spec by number.

A record is::

    crc32c u32 | spec id u32 | payload length u64 | table | data sections

The CRC covers everything after itself. The table is a fixed number of 8-byte words per
spec: shapes, offsets (relative to the record start) and lengths of the data sections,
and Python scalars inline. Array data is stored raw and aligned (64 bytes when at least
1 KiB, else 16) to its absolute position in the file, so a reader maps it with
``np.frombuffer`` over an ``mmap``, without a copy. Strings and bytes are length-prefixed
blobs. Nothing is pickled, and decoding only ever builds NumPy arrays, scalars, ``str``,
``bytes``, tuples, namedtuples and dicts: reading a cache never runs code from the file.
"""

from __future__ import annotations

import struct
from typing import Any

import crc32c
import numpy as np

from stoker.errors import CacheError

__all__ = [
    "RECORD_HEADER",
    "Encoder",
    "Spec",
    "UnsupportedElement",
    "describe_spec",
    "dtype_of",
    "inline_code",
    "leaf_specs",
    "table_format",
]

#: crc32c, spec id, payload length.
RECORD_HEADER = struct.Struct("<IIQ")
_BIG_ALIGN = 64
_SMALL_ALIGN = 16
_BIG_BYTES = 1024
# Dtype kinds stored raw: bool, ints, floats, complex, fixed-width bytes/str, datetimes.
_RAW_KINDS = frozenset("biufcSUmM")
_PY_SCALARS = {bool: "bool", int: "int", float: "float", complex: "complex"}
_STRUCT_CODES = {"b1": "?", "i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I",
                 "i8": "q", "u8": "Q", "f2": "e", "f4": "f", "f8": "d"}  # fmt: skip

Spec = Any  # the JSON form: {"k": kind, ...}
_SCALAR_KEYS: dict[type, tuple[str, str]] = {}  # NumPy scalar type -> its spec key


class UnsupportedElement(CacheError):
    """An element holds something the cache format cannot store."""


# -- writing --------------------------------------------------------------------------------


def _unsupported(where: str, what: str) -> UnsupportedElement:
    return UnsupportedElement(
        f"cache(): cannot store {what} at {where} of an element in a cache file. The file "
        "format holds NumPy arrays (numeric, bool, fixed-width str/bytes, datetime), NumPy "
        "and Python scalars, str, bytes, object arrays of str or bytes, None, and tuples, "
        "namedtuples and dicts with str keys of those. map() the element to such types "
        "before cache(filename), or use cache() in memory, which holds any object."
    )


def _leaf_key(x: Any, where: str, leaves: list[Any]) -> Any:
    """The hashable spec key of ``x``; appends its leaves (in spec order) to ``leaves``."""
    t = type(x)
    if t is np.ndarray:
        kind = x.dtype.kind
        if kind in _RAW_KINDS and x.dtype.fields is None and x.dtype.subdtype is None:
            leaves.append(x)
            return ("a", x.dtype.str, x.ndim)
        if kind == "O":
            items = x.ravel().tolist()
            if all(type(v) is bytes for v in items):
                leaves.append(x)
                return ("ob", x.ndim)
            if all(type(v) is str for v in items):
                leaves.append(x)
                return ("os", x.ndim)
            bad = next(v for v in items if type(v) not in (bytes, str))
            raise _unsupported(where, f"an object array holding {type(bad).__name__}")
        raise _unsupported(where, f"an array of dtype {x.dtype}")
    if t is tuple:
        return ("t", tuple(_leaf_key(v, f"{where}[{i}]", leaves) for i, v in enumerate(x)))
    if t is dict:
        for k in x:
            if type(k) is not str:
                raise _unsupported(where, f"a dict key {k!r} that is not a str")
        keys = tuple(x)
        return ("d", keys, tuple(_leaf_key(x[k], f"{where}[{k!r}]", leaves) for k in keys))
    if isinstance(x, np.generic):
        if t is np.bytes_:
            leaves.append(x.tobytes())
            return ("npbytes",)
        if t is np.str_:
            leaves.append(str(x).encode())
            return ("npstr",)
        key = _SCALAR_KEYS.get(t)
        if key is None:
            if x.dtype.kind not in _RAW_KINDS or t is np.datetime64 or t is np.timedelta64:
                if x.dtype.kind in _RAW_KINDS:  # units vary per value: no caching by type
                    leaves.append(x)
                    return ("s", x.dtype.str)
                raise _unsupported(where, f"a NumPy scalar of dtype {x.dtype}")
            key = _SCALAR_KEYS[t] = ("s", x.dtype.str)
        leaves.append(x)
        return key
    if t in _PY_SCALARS:
        if t is int and not -(1 << 63) <= x < (1 << 63):
            raise _unsupported(where, f"the Python int {x} (outside int64)")
        leaves.append(x)
        return (_PY_SCALARS[t],)
    if t is str:
        leaves.append(x.encode())
        return ("str",)
    if t is bytes:
        leaves.append(x)
        return ("bytes",)
    if x is None:
        leaves.append(None)
        return ("none",)
    if isinstance(x, tuple) and hasattr(t, "_fields"):
        children = tuple(
            _leaf_key(v, f"{where}.{f}", leaves) for f, v in zip(t._fields, x, strict=True)
        )
        return ("nt", t, children)
    if t is list:
        # tf.data (and stoker's batch) treat a list as one leaf that becomes an array.
        arr = np.asarray(x)
        if arr.dtype.kind in _RAW_KINDS:
            return _leaf_key(arr, where, leaves)
        raise _unsupported(where, "a list that is not one rectangular array")
    raise _unsupported(where, f"a {t.__module__}.{t.__qualname__}")


def _key_to_spec(key: Any) -> Spec:
    kind = key[0]
    if kind == "a":
        return {"k": "a", "dtype": key[1], "ndim": key[2]}
    if kind == "s":
        return {"k": "s", "dtype": key[1]}
    if kind in ("ob", "os"):
        return {"k": kind, "ndim": key[1]}
    if kind == "t":
        return {"k": "t", "items": [_key_to_spec(c) for c in key[1]]}
    if kind == "d":
        return {"k": "d", "keys": list(key[1]), "items": [_key_to_spec(c) for c in key[2]]}
    if kind == "nt":
        cls = key[1]
        return {
            "k": "nt",
            "module": cls.__module__,
            "name": cls.__qualname__,
            "fields": list(cls._fields),
            "items": [_key_to_spec(c) for c in key[2]],
        }
    return {"k": kind}


def leaf_specs(spec: Spec) -> list[Spec]:
    if spec["k"] in ("t", "d", "nt"):
        return [leaf for child in spec["items"] for leaf in leaf_specs(child)]
    return [spec]


def dtype_of(name: Any) -> np.dtype[Any]:
    if not isinstance(name, str):
        raise ValueError(f"bad dtype {name!r}")
    dt = np.dtype(name)
    if dt.kind not in _RAW_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise ValueError(f"dtype {name!r} is not stored raw")
    return dt


def inline_code(dtype: Any) -> str | None:
    """The struct code (padded to 8 bytes) of a scalar stored in the table, or None."""
    dt = dtype_of(dtype)
    code = _STRUCT_CODES.get(dt.str[1:])
    return None if code is None else code + "x" * (8 - dt.itemsize)


def table_format(leaves: list[Spec]) -> str:
    fmt = "<"
    for leaf in leaves:
        k = leaf["k"]
        if k == "a":
            fmt += "Q" * (int(leaf["ndim"]) + 1)
        elif k in ("ob", "os"):
            fmt += "Q" * (int(leaf["ndim"]) + 2)  # dims, offset of lengths, total blob bytes
        elif k == "s":
            code = inline_code(leaf["dtype"])
            fmt += "Q" if code is None else code
        elif k == "bool":
            fmt += "Q"
        elif k == "int":
            fmt += "q"
        elif k == "float":
            fmt += "d"
        elif k == "complex":
            fmt += "dd"
        elif k in ("str", "bytes", "npstr", "npbytes"):
            fmt += "QQ"
        elif k != "none":
            raise ValueError(f"unknown leaf kind {k!r}")
    return fmt


class _SpecEncoder:
    __slots__ = ("kinds", "spec", "spec_id", "table", "tag")

    def __init__(self, spec: Spec, spec_id: int):
        self.spec = spec
        self.spec_id = spec_id
        leaves = leaf_specs(spec)
        # "si": a NumPy scalar stored in the table itself (no data section).
        self.kinds = [
            "si" if leaf["k"] == "s" and inline_code(leaf["dtype"]) else leaf["k"]
            for leaf in leaves
        ]
        self.table = struct.Struct(table_format(leaves))
        self.tag = struct.Struct("<IQ")  # spec id and payload length, covered by the CRC


def _raw_bytes(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr).reshape(-1).view(np.uint8)


# Records up to this size are joined into one buffer (one CRC call, one write).
_JOIN_BYTES = 1 << 16


class Encoder:
    """Turns elements into records; collects the specs and shapes it has seen."""

    def __init__(self) -> None:
        self._by_key: dict[Any, _SpecEncoder] = {}
        self.specs: list[Spec] = []
        self.shapes: list[list[list[int | None] | None]] = []  # per spec, per leaf
        self.data_bytes = 0

    def encode(self, x: Any, pos: int) -> tuple[list[Any], int]:
        """Buffers of the record for ``x`` starting at file offset ``pos`` (8-aligned).

        Returns:
            The buffers to write in order, and their total length (a multiple of 8).

        Raises:
            UnsupportedElement: ``x`` holds something the format cannot store.
        """
        leaves: list[Any] = []
        key = _leaf_key(x, "element", leaves)
        enc = self._by_key.get(key)
        if enc is None:
            enc = _SpecEncoder(_key_to_spec(key), len(self.specs))
            self._by_key[key] = enc
            self.specs.append(enc.spec)
            self.shapes.append([None] * len(leaves))
        words: list[Any] = []
        parts: list[Any] = []  # after the table: bytes and arrays, padding included
        cursor = pos + RECORD_HEADER.size + enc.table.size
        shapes = self.shapes[enc.spec_id]
        data_bytes = 0
        for i, k in enumerate(enc.kinds):
            leaf = leaves[i]
            if k == "none":
                continue
            if k in ("int", "float"):
                words.append(leaf)
                continue
            if k == "si":
                words.append(leaf.item())
                data_bytes += leaf.itemsize
                continue
            if k == "bool":
                words.append(int(leaf))
                continue
            if k == "complex":
                words.extend((leaf.real, leaf.imag))
                continue
            if k == "s":
                buf: Any = leaf.tobytes()
                nbytes = len(buf)
            elif k in ("str", "bytes", "npstr", "npbytes"):
                buf, nbytes = leaf, len(leaf)
            else:  # "a", "ob", "os": arrays, with their shapes in the table
                shape = list(leaf.shape)
                seen = shapes[i]
                shapes[i] = shape if seen is None else _merge_shape(seen, shape)
                words.extend(shape)
                if k == "a":
                    buf = _raw_bytes(leaf)
                    nbytes = buf.nbytes
                else:
                    items = leaf.ravel().tolist()
                    if k == "os":
                        items = [v.encode() for v in items]
                    lengths = np.array([len(b) for b in items], dtype="<u8").tobytes()
                    blob = b"".join(items)
                    buf, nbytes = lengths + blob, len(lengths) + len(blob)
            pad = -cursor % (_BIG_ALIGN if nbytes >= _BIG_BYTES else _SMALL_ALIGN)
            if pad:
                parts.append(bytes(pad))
            words.append(cursor + pad - pos)
            if k in ("ob", "os"):
                words.append(nbytes - 8 * len(items))
            elif k in ("str", "bytes", "npstr", "npbytes"):
                words.append(nbytes)
            parts.append(buf)
            cursor += pad + nbytes
            data_bytes += nbytes
        self.data_bytes += data_bytes
        tail = -cursor % 8
        if tail:
            parts.append(bytes(tail))
            cursor += tail
        plen = cursor - pos - RECORD_HEADER.size
        body = [enc.tag.pack(enc.spec_id, plen), enc.table.pack(*words), *parts]
        if cursor - pos <= _JOIN_BYTES:
            joined = b"".join(body)
            crc = crc32c.crc32c(joined)
            return [struct.pack("<I", crc), joined], cursor - pos
        crc = 0
        for p in body:
            crc = crc32c.crc32c(p, crc)
        return [struct.pack("<I", crc), *body], cursor - pos


def _merge_shape(seen: list[int | None], shape: list[int]) -> list[int | None]:
    return [a if a == b else None for a, b in zip(seen, shape, strict=True)]


def describe_spec(spec: Spec, shapes: list[Any] | None = None) -> str:
    """A short human-readable form of a spec: ``(int64[], {'x': float32[?,3]})``."""
    it = iter(shapes or [])

    def leaf(s: Spec) -> str:
        k = s["k"]
        shape = next(it, None)
        if k in ("a", "ob", "os"):
            name = np.dtype(s["dtype"]).name if k == "a" else ("bytes" if k == "ob" else "str")
            if shape is None:
                dims = ",".join("?" for _ in range(int(s["ndim"])))
            else:
                dims = ",".join("?" if d is None else str(d) for d in shape)
            return f"{name}[{dims}]"
        if k == "s":
            return f"np.{np.dtype(s['dtype']).name}"
        return {"npstr": "np.str_", "npbytes": "np.bytes_", "none": "None"}.get(k, str(k))

    def walk(s: Spec) -> str:
        k = s["k"]
        if k == "t":
            inner = ", ".join(walk(c) for c in s["items"])
            return f"({inner}{',' if len(s['items']) == 1 else ''})"
        if k == "d":
            return (
                "{"
                + ", ".join(
                    f"{key!r}: {walk(c)}" for key, c in zip(s["keys"], s["items"], strict=True)
                )
                + "}"
            )
        if k == "nt":
            inner = ", ".join(
                f"{f}={walk(c)}" for f, c in zip(s["fields"], s["items"], strict=True)
            )
            return f"{s['name']}({inner})"
        return leaf(s)

    return walk(spec)
