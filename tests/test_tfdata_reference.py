"""stoker against TensorFlow: the same pipeline expressions must give the same elements.

``tests/data/tfdata_reference.json`` is written by ``scripts/make_test_data.py`` under
TensorFlow: each pipeline is a Python expression over ``D`` (the Dataset class) and a few
helpers. Here the same string is evaluated with ``D = stoker.Dataset`` and NumPy versions
of the helpers, and the elements are compared with TensorFlow's.

Comparison rules (see the JSON's "notes"): values exactly; integer, bool, float and
string dtypes exactly, except that where TF's input was a Python int / float (int32 /
float32 in TF, int64 / float64 in NumPy) only the dtype kind is checked and floats are
compared with a float32 tolerance; strings compare as bytes (str is encoded as UTF-8).
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stoker
from stoker.errors import StokerError

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "tfdata_reference.json").read_text(encoding="utf-8")
)
PIPELINES: list[dict[str, Any]] = REFERENCE["pipelines"]

# What a TF error may be in stoker: bad arguments raise ValueError / TypeError, failures
# while running raise a StokerError (InvalidElementError is also a ValueError).
EXPECTED_ERRORS = (ValueError, TypeError, IndexError, KeyError, StokerError)

# How many elements past the expected count to pull before declaring a pipeline too long
# (keeps a wrong infinite pipeline from hanging the test).
EXTRA_ELEMENTS = 5


# --------------------------------------------------------------------------------------
# NumPy versions of the helpers named in the JSON's "helpers"
# --------------------------------------------------------------------------------------


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, np.ndarray):
        v = v.item()
    if isinstance(v, (bytes, bytearray, np.bytes_)):
        return bytes(v)
    if isinstance(v, (str, np.str_)):
        return str(v).encode("utf-8")
    raise TypeError(f"not a string: {type(v).__name__} {v!r:.60}")


def _is_string(v: Any) -> bool:
    if isinstance(v, (bytes, bytearray, str, np.bytes_, np.str_)):
        return True
    return isinstance(v, np.ndarray) and v.dtype.kind in "OSU"


def _full(shape: tuple[int, ...], v: Any) -> np.ndarray:
    if _is_string(v):
        out = np.empty(shape, dtype=object)
        item = _as_bytes(v)
        for idx in np.ndindex(shape):
            out[idx] = item
        return out
    a = np.asarray(v)
    return np.full(shape, a, dtype=a.dtype)


def i64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def cast_i64(x: Any) -> np.ndarray:
    return np.asarray(x).astype(np.int64)


def cast_f64(x: Any) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def fill(n: Any, v: Any) -> np.ndarray:
    return _full((int(n),), v)


def fill2(r: Any, c: Any, v: Any) -> np.ndarray:
    return _full((int(r), int(c)), v)


def arange(n: Any) -> np.ndarray:
    return np.arange(int(n), dtype=np.int64)


def as_str(x: Any) -> bytes:
    return str(int(x)).encode("ascii")


def size(x: Any) -> np.ndarray:
    return np.asarray(np.size(x), dtype=np.int64)


def reduce_sum(x: Any) -> np.ndarray:
    a = np.asarray(x)
    return np.asarray(a.sum(dtype=a.dtype))


HELPERS = {
    "i64": i64,
    "f64": f64,
    "cast_i64": cast_i64,
    "cast_f64": cast_f64,
    "fill": fill,
    "fill2": fill2,
    "arange": arange,
    "as_str": as_str,
    "size": size,
    "reduce_sum": reduce_sum,
}


# --------------------------------------------------------------------------------------
# Decoding TF's elements and normalising stoker's
# --------------------------------------------------------------------------------------


def _nested_leaves(v: Any) -> Iterator[Any]:
    if isinstance(v, list):
        for u in v:
            yield from _nested_leaves(u)
    else:
        yield v


def decode(enc: dict[str, Any]) -> Any:
    """An element from the JSON encoding: tuples, dicts, NumPy arrays (bytes as object)."""
    if "tuple" in enc:
        return tuple(decode(v) for v in enc["tuple"])
    if "dict" in enc:
        return {k: decode(v) for k, v in enc["dict"].items()}
    shape = tuple(enc["shape"])
    if enc["dtype"] == "bytes":
        flat = [base64.b64decode(s) for s in _nested_leaves(enc["value"])]
        out = np.empty(shape, dtype=object)
        assert len(flat) == out.size, enc
        for idx, item in zip(np.ndindex(shape), flat, strict=True):
            out[idx] = item
        return out
    return np.array(enc["value"], dtype=np.dtype(enc["dtype"])).reshape(shape)


def _to_bytes_array(arr: np.ndarray) -> np.ndarray:
    out = np.empty(arr.shape, dtype=object)
    for idx in np.ndindex(arr.shape):
        out[idx] = _as_bytes(arr[idx])
    return out


def normalize(x: Any) -> Any:
    """stoker's element as tuples / dicts of NumPy arrays, strings as object bytes."""
    if isinstance(x, tuple):  # namedtuples included
        return tuple(normalize(v) for v in x)
    if isinstance(x, dict):
        return {str(k): normalize(v) for k, v in x.items()}
    if isinstance(x, list):
        raise AssertionError(f"element holds a Python list (TF never yields one): {x!r:.80}")
    if isinstance(x, (bytes, bytearray, np.bytes_, str, np.str_)):
        out = np.empty((), dtype=object)
        out[()] = _as_bytes(x)
        return out
    arr = np.asarray(x)
    if arr.dtype.kind in "OSU":
        return _to_bytes_array(arr)
    return arr


def _describe(x: Any) -> str:
    if isinstance(x, tuple):
        return "(" + ", ".join(_describe(v) for v in x) + ("," if len(x) == 1 else "") + ")"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in x.items()) + "}"
    if isinstance(x, np.ndarray):
        return f"{x.dtype}{list(x.shape)}"
    return type(x).__name__


def assert_same(actual: Any, expected: Any, case: dict[str, Any], where: str) -> None:
    """Raise AssertionError describing the first difference."""
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple), f"{where}: expected a tuple, got {_describe(actual)}"
        assert len(actual) == len(expected), (
            f"{where}: tuple of {len(actual)}, expected {len(expected)}"
        )
        for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
            assert_same(a, e, case, f"{where}[{i}]")
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected a dict, got {_describe(actual)}"
        assert set(actual) == set(expected), (
            f"{where}: keys {sorted(actual)}, expected {sorted(expected)}"
        )
        for k, e in expected.items():
            assert_same(actual[k], e, case, f"{where}[{k!r}]")
        return
    assert isinstance(actual, np.ndarray), f"{where}: expected an array, got {_describe(actual)}"
    assert actual.shape == expected.shape, (
        f"{where}: shape {actual.shape}, expected {expected.shape} "
        f"(got {actual.tolist()!r:.120}, expected {expected.tolist()!r:.120})"
    )
    kind = expected.dtype.kind
    if kind == "O":
        assert actual.dtype == object, f"{where}: dtype {actual.dtype}, expected strings"
        assert actual.tolist() == expected.tolist(), (
            f"{where}: {actual.tolist()!r:.200} != {expected.tolist()!r:.200}"
        )
        return
    if kind in "iu" and case.get("python_int_input"):
        assert actual.dtype.kind in "iu", f"{where}: dtype {actual.dtype}, expected an integer"
    elif kind == "f" and case.get("python_float_input"):
        assert actual.dtype.kind == "f", f"{where}: dtype {actual.dtype}, expected a float"
        np.testing.assert_allclose(
            actual.astype(np.float64),
            expected.astype(np.float64),
            rtol=1e-6,
            atol=0,
            err_msg=where,
        )
        return
    else:
        assert actual.dtype == expected.dtype, (
            f"{where}: dtype {actual.dtype}, expected {expected.dtype}"
        )
    assert np.array_equal(actual, expected), (
        f"{where}: {actual.tolist()!r:.200} != {expected.tolist()!r:.200}"
    )


def assert_elements(actual: list[Any], expected: list[Any], case: dict[str, Any]) -> None:
    for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
        assert_same(a, e, case, f"element {i}")
    assert len(actual) == len(expected), (
        f"{len(actual)}{'+' if len(actual) > len(expected) else ''} elements, "
        f"expected {len(expected)}"
    )


# --------------------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------------------


def namespace() -> dict[str, Any]:
    return {"D": stoker.Dataset, **HELPERS}


def take_elements(ds: Any, limit: int, sink: list[Any]) -> list[Any]:
    """Up to ``limit`` normalised elements, appended to ``sink`` as they come."""
    for el in itertools.islice(iter(ds), limit):
        sink.append(normalize(el))
    return sink


def test_reference_file_is_sane() -> None:
    names = [c["name"] for c in PIPELINES]
    assert len(names) == len(set(names))
    assert len(PIPELINES) >= 40
    assert set(REFERENCE["helpers"]) == set(HELPERS)
    for case in PIPELINES:
        assert case["kind"] in ("elements", "value", "cardinality"), case["name"]
        assert ("result" in case) != ("error" in case), case["name"]


def test_decode_and_normalize_agree() -> None:
    enc = {
        "tuple": [
            {"dtype": "int64", "shape": [2], "value": [1, -2]},
            {"dict": {"s": {"dtype": "bytes", "shape": [], "value": "YQA="}}},
            {"dtype": "bytes", "shape": [2, 0], "value": [[], []]},
            {"dtype": "float32", "shape": [0, 3], "value": []},
        ]
    }
    expected = decode(enc)
    actual = normalize(
        (
            np.array([1, -2]),
            {"s": b"a\x00"},
            np.empty((2, 0), dtype=object),
            np.zeros((0, 3), np.float32),
        )
    )
    assert_same(actual, expected, {}, "x")
    assert_same(
        normalize("h\u00e9"), decode({"dtype": "bytes", "shape": [], "value": "aMOp"}), {}, "s"
    )
    with pytest.raises(AssertionError):
        assert_same(normalize(np.int32(1)), decode(enc["tuple"][0]), {}, "x")
    loose = {"python_int_input": True, "python_float_input": True}
    assert_same(normalize(np.int64(3)), np.array(3, np.int32), loose, "x")
    assert_same(normalize(0.1), np.array(0.1, np.float32), loose, "x")


def test_cardinality_constants() -> None:
    assert stoker.INFINITE_CARDINALITY == -1
    assert stoker.UNKNOWN_CARDINALITY == -2


# Errors stoker raises later than TF, on purpose (docs/tfdata.md says why): stoker has no
# static element_spec, so it checks when the offending element arrives.
LATE_ERRORS = {
    "concatenate_incompatible_error": "checked when the second input's first element arrives",
}


@pytest.mark.parametrize("case", PIPELINES, ids=[c["name"] for c in PIPELINES])
def test_pipeline(case: dict[str, Any]) -> None:
    expr, kind = case["expr"], case["kind"]
    if case["name"] in LATE_ERRORS:
        got_late: list[Any] = []
        with pytest.raises(EXPECTED_ERRORS):
            take_elements(eval(expr, namespace()), 1000, got_late)
        return
    if "error" in case:
        before = [decode(e) for e in case.get("elements_before_error", [])]
        got: list[Any] = []
        with pytest.raises(EXPECTED_ERRORS):
            obj = eval(expr, namespace())
            if kind == "elements":
                take_elements(obj, len(before) + 1000, got)
            elif kind == "cardinality":
                int(obj.cardinality())
        # stoker may fail earlier than TF (e.g. when building), never later.
        assert len(got) <= len(before), f"yielded {len(got)} elements before failing"
        for i, (a, e) in enumerate(zip(got, before, strict=False)):
            assert_same(a, e, case, f"element {i}")
        return

    obj = eval(expr, namespace())
    if kind == "elements":
        expected = [decode(e) for e in case["result"]]
        actual = take_elements(obj, len(expected) + EXTRA_ELEMENTS, [])
        assert_elements(actual, expected, case)
    elif kind == "value":
        assert_same(normalize(obj), decode(case["result"]), case, "value")
    else:
        card = obj.cardinality()
        assert int(card) == case["result"], f"cardinality {int(card)}, expected {case['result']}"
