"""A list-based model of stoker's ops, and pipelines described as JSON-able specs.

A spec is ``{"source": [name, *args], "ops": [[name, *args], ...]}``. :func:`build` turns
it into a stoker pipeline and :func:`model` into the list of elements that pipeline must
produce, computed with plain Python lists; :func:`to_py` turns stoker's NumPy elements into
the same plain values (ints, lists of ints, tuples). Specs are plain data, so a subprocess
can rebuild the very same pipeline (see ``test_pipelines.py``).

Element kinds: ``"int"`` (a scalar), ``"vec"`` (a 1-D batch of ints) and ``"pair"`` (a
tuple of two ints). :data:`OPS` says which ops take and give which kind.

``shuffle`` is modelled as the identity: a pipeline with a shuffle is compared with the
model as a multiset only (see :func:`order_insensitive_after`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import stoker as sk

D = sk.Dataset

# op name -> (input kinds, output kind; None: same as input)
OPS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "map_add": (("int", "vec"), None),
    "map_mul": (("int",), "int"),
    "filter_mod": (("int",), "int"),
    "take": (("int", "vec", "pair"), None),
    "skip": (("int", "vec", "pair"), None),
    "repeat": (("int", "vec", "pair"), None),
    "shard": (("int", "vec", "pair"), None),
    "batch": (("int",), "vec"),
    "padded_batch": (("int",), "vec"),
    "unbatch": (("vec",), "int"),
    "take_while_lt": (("int",), "int"),
    "scan_sum": (("int",), "int"),
    "unique": (("int",), "int"),
    "enumerate": (("int",), "pair"),
    "concat_range": (("int",), "int"),
    "zip_range": (("int",), "pair"),
    "flat_map_mod": (("int",), "int"),
    "interleave_mod": (("int",), "int"),
    "map_pair_sum": (("pair",), "int"),
    "filter_pair": (("pair",), "pair"),
    "shuffle": (("int", "vec", "pair"), None),
}

# Ops after which a multiset comparison still holds when their input was shuffled.
# (batch only without drop_remainder: which remainder is dropped depends on the order.)
ORDER_INSENSITIVE = {
    "map_add",
    "map_mul",
    "filter_mod",
    "repeat",
    "batch",
    "padded_batch",
    "unbatch",
    "unique",
    "concat_range",
    "flat_map_mod",
    "interleave_mod",
    "map_pair_sum",
    "filter_pair",
    "shuffle",
}


def source_kind(source: list[Any]) -> str:
    return "pair" if source[0] == "pairs" else "int"


def output_kind(spec: dict[str, Any]) -> str:
    kind = source_kind(spec["source"])
    for op in spec["ops"]:
        kind = OPS[op[0]][1] or kind
    return kind


def order_insensitive_after(spec: dict[str, Any]) -> bool:
    """Whether everything from the first shuffle on keeps the multiset of flat values."""
    names = [op[0] for op in spec["ops"]]
    if "shuffle" not in names:
        return True
    tail = spec["ops"][names.index("shuffle") :]
    return all(op[0] in ORDER_INSENSITIVE and not (op[0] == "batch" and op[2]) for op in tail)


# -- stoker ---------------------------------------------------------------------------------


def build(spec: dict[str, Any]) -> sk.Dataset:
    name, *args = spec["source"]
    if name == "range":
        ds = D.range(*args)
    elif name == "slices":
        ds = D.from_tensor_slices(np.array(args[0], dtype=np.int64))
    elif name == "pairs":
        a, b = args
        ds = D.from_tensor_slices((np.array(a, np.int64), np.array(b, np.int64)))
    else:  # pragma: no cover
        raise ValueError(name)
    for op in spec["ops"]:
        ds = _BUILD[op[0]](ds, *op[1:])
    return ds


def _interleave(ds: sk.Dataset, k: int, cycle: int, block: int) -> sk.Dataset:
    return ds.interleave(
        lambda x: D.range(x % k).map(lambda j: x * 100 + j), cycle_length=cycle, block_length=block
    )


_BUILD: dict[str, Callable[..., sk.Dataset]] = {
    "map_add": lambda ds, k: ds.map(lambda x: x + k),
    "map_mul": lambda ds, k: ds.map(lambda x: x * k),
    "filter_mod": lambda ds, m, r: ds.filter(lambda x: x % m == r),
    "take": lambda ds, c: ds.take(c),
    "skip": lambda ds, c: ds.skip(c),
    "repeat": lambda ds, c: ds.repeat(c),
    "shard": lambda ds, n, i: ds.shard(n, i),
    "batch": lambda ds, b, drop: ds.batch(b, drop_remainder=drop),
    "padded_batch": lambda ds, b: ds.padded_batch(b),
    "unbatch": lambda ds: ds.unbatch(),
    "take_while_lt": lambda ds, t: ds.take_while(lambda x: x < t),
    "scan_sum": lambda ds: ds.scan(np.int64(0), lambda s, x: (s + x, s + x)),
    "unique": lambda ds: ds.unique(),
    "enumerate": lambda ds, start: ds.enumerate(start),
    "concat_range": lambda ds, a, b: ds.concatenate(D.range(a, b)),
    "zip_range": lambda ds, m: D.zip(ds, D.range(m)),
    "flat_map_mod": lambda ds, k: ds.flat_map(lambda x: D.range(x % k)),
    "interleave_mod": _interleave,
    "map_pair_sum": lambda ds: ds.map(lambda a, b: a + b),
    "filter_pair": lambda ds: ds.filter(lambda a, b: (a + b) % 2 == 0),
    "shuffle": lambda ds, buf, seed: ds.shuffle(buf, seed=seed),
}


def to_py(x: Any) -> Any:
    """A stoker element as plain Python: ints, lists of ints, tuples."""
    if isinstance(x, tuple):
        return tuple(to_py(v) for v in x)
    return np.asarray(x).tolist()


# -- the model ------------------------------------------------------------------------------


def model(spec: dict[str, Any]) -> list[Any]:
    name, *args = spec["source"]
    if name == "range":
        xs: list[Any] = list(range(*args))
    elif name == "slices":
        xs = list(args[0])
    else:
        xs = list(zip(args[0], args[1], strict=True))
    for op in spec["ops"]:
        xs = _MODEL[op[0]](xs, *op[1:])
    return xs


def _batch(xs: list[Any], b: int, drop: bool = False) -> list[Any]:
    out = [xs[i : i + b] for i in range(0, len(xs), b)]
    return out[:-1] if drop and out and len(out[-1]) < b else out


def _take_while(xs: list[Any], t: int) -> list[Any]:
    out = []
    for x in xs:
        if not x < t:
            break
        out.append(x)
    return out


def _scan_sum(xs: list[int]) -> list[int]:
    out, s = [], 0
    for x in xs:
        s += x
        out.append(s)
    return out


def _unique(xs: list[int]) -> list[int]:
    seen: set[int] = set()
    out = []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def interleave(xs: list[Any], fn: Callable[[Any], list[Any]], cycle: int, block: int) -> list[Any]:
    """tf.data's interleave order on lists."""
    slots: list[Any] = [None] * cycle
    inputs = iter(xs)
    out: list[Any] = []
    c = b = open_ = 0
    end = False
    while not end or open_:
        slot = slots[c]
        if slot is not None:
            v = next(slot, _END)
            if v is _END:
                slots[c], open_ = None, open_ - 1
                c, b = (c + 1) % cycle, 0
                continue
            out.append(v)
            b += 1
            if b == block:
                c, b = (c + 1) % cycle, 0
        elif not end:
            x = next(inputs, _END)
            if x is _END:
                end = True
            else:
                slots[c], open_ = iter(fn(x)), open_ + 1
        else:
            c, b = (c + 1) % cycle, 0
    return out


_END = object()

_MODEL: dict[str, Callable[..., list[Any]]] = {
    "map_add": lambda xs, k: [[v + k for v in x] if isinstance(x, list) else x + k for x in xs],
    "map_mul": lambda xs, k: [x * k for x in xs],
    "filter_mod": lambda xs, m, r: [x for x in xs if x % m == r],
    "take": lambda xs, c: xs if c == -1 else xs[:c],
    "skip": lambda xs, c: [] if c == -1 else xs[c:],
    "repeat": lambda xs, c: xs * c,
    "shard": lambda xs, n, i: xs[i::n],
    "batch": _batch,
    "padded_batch": _batch,
    "unbatch": lambda xs: [v for x in xs for v in x],
    "take_while_lt": _take_while,
    "scan_sum": _scan_sum,
    "unique": _unique,
    "enumerate": lambda xs, start: [(start + i, x) for i, x in enumerate(xs)],
    "concat_range": lambda xs, a, b: xs + list(range(a, b)),
    "zip_range": lambda xs, m: list(zip(xs, range(m), strict=False)),
    "flat_map_mod": lambda xs, k: [v for x in xs for v in range(x % k)],
    "interleave_mod": lambda xs, k, cycle, block: interleave(
        xs, lambda x: [x * 100 + j for j in range(x % k)], cycle, block
    ),
    "map_pair_sum": lambda xs: [a + b for a, b in xs],
    "filter_pair": lambda xs: [(a, b) for a, b in xs if (a + b) % 2 == 0],
    "shuffle": lambda xs, buf, seed: xs,
}


def flat_values(xs: list[Any]) -> list[Any]:
    """Batches flattened into their values, for multiset comparisons."""
    out: list[Any] = []
    for x in xs:
        if isinstance(x, list):
            out.extend(x)
        else:
            out.append(x)
    return out
