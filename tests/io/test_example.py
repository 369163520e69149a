from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pool  # type: ignore[import-untyped]

import stoker as sk
from stoker.errors import DataLossError
from stoker.io import FixedLenFeature, VarLenFeature, make_example, parse_example

DATA = Path(__file__).resolve().parent.parent / "data"


def test_wire_format_matches_hand_encoding() -> None:
    # Example{features{feature{key: "a" value{int64_list{value: [1]}}}}}, field by field:
    int64_list = b"\x0a\x01\x01"  # value (1, packed): len 1, varint 1
    feature = b"\x1a\x03" + int64_list  # int64_list = 3
    entry = b"\x0a\x01a" + b"\x12\x05" + feature  # map entry: key = 1, value = 2
    features = b"\x0a\x0a" + entry  # feature = 1
    example = b"\x0a\x0c" + features  # features = 1
    assert make_example({"a": 1}) == example
    assert parse_example(example)["a"].tolist() == [1]


def test_float_and_bytes_wire_format() -> None:
    # float_list = 2 holding packed float32 1.0; bytes_list = 1 holding b"xy".
    floats = make_example({"f": 1.0})
    assert b"\x12\x06\x0a\x04\x00\x00\x80\x3f" in floats
    data = make_example({"b": b"xy"})
    assert b"\x0a\x04\x0a\x02xy" in data


def test_round_trip_of_every_value_kind() -> None:
    features = {
        "int": 7,
        "bool": True,
        "ints": [1, -2, 2**62],
        "np_int32": np.arange(4, dtype=np.int32).reshape(2, 2),
        "np_uint8": np.array([255], dtype=np.uint8),
        "np_scalar": np.int16(-5),
        "float": 0.5,
        "mixed_numbers": [1, 2.5],
        "np_float64": np.array([1.25, -3.0]),
        "bytes": b"\x00\xff",
        "str": "héllo",
        "strs": ["a", "bc"],
        "byte_list": [b"x", b""],
        "np_bytes": np.array([b"ab", b"c"]),
        "np_str": np.array(["q", "rs"]),
        "np_object": np.array([b"o", "p"], dtype=object),
        "empty_ints": np.array([], dtype=np.int64),
        "empty_floats": np.array([], dtype=np.float32),
        "empty_bytes": np.array([], dtype=object),
    }
    got = parse_example(make_example(features))
    assert sorted(got) == sorted(features)
    expect_int: dict[str, list[Any]] = {
        "int": [7],
        "bool": [1],
        "ints": [1, -2, 2**62],
        "np_int32": [0, 1, 2, 3],
        "np_uint8": [255],
        "np_scalar": [-5],
        "empty_ints": [],
    }
    for name, values in expect_int.items():
        assert got[name].dtype == np.int64 and got[name].tolist() == values, name
    expect_float: dict[str, list[Any]] = {
        "float": [0.5],
        "mixed_numbers": [1.0, 2.5],
        "np_float64": [1.25, -3.0],
        "empty_floats": [],
    }
    for name, values in expect_float.items():
        assert got[name].dtype == np.float32 and got[name].tolist() == values, name
    expect_bytes: dict[str, list[Any]] = {
        "bytes": [b"\x00\xff"],
        "str": ["héllo".encode()],
        "strs": [b"a", b"bc"],
        "byte_list": [b"x", b""],
        "np_bytes": [b"ab", b"c"],
        "np_str": [b"q", b"rs"],
        "np_object": [b"o", b"p"],
        "empty_bytes": [],
    }
    for name, values in expect_bytes.items():
        arr = got[name]
        assert arr.dtype == object and arr.ndim == 1 and arr.tolist() == values, name


def test_float_values_are_float32() -> None:
    got = parse_example(make_example({"x": 0.1}))["x"]
    assert got.dtype == np.float32 and got[0] == np.float32(0.1)


def test_serialization_is_deterministic() -> None:
    assert make_example({"b": 1, "a": 2}) == make_example({"a": 2, "b": 1})


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([], ValueError, "empty list"),
        ({"nested": 1}, TypeError, "cannot put a dict"),
        ([1, b"x"], TypeError, "cannot mix int"),
        (np.array([1 + 2j]), TypeError, "complex128"),
        (np.array([2**64 - 1], dtype=np.uint64), ValueError, "does not fit int64"),
    ],
)
def test_make_example_rejects(value: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        make_example({"feat": value})
    assert "'feat'" in str(info.value)


def test_make_example_rejects_non_str_names() -> None:
    with pytest.raises(TypeError, match="names must be str"):
        make_example({1: 2})  # type: ignore[dict-item]


def test_parse_accepts_buffers() -> None:
    data = make_example({"a": [1, 2]})
    assert parse_example(bytearray(data))["a"].tolist() == [1, 2]
    assert parse_example(memoryview(data))["a"].tolist() == [1, 2]


def test_empty_example() -> None:
    assert parse_example(b"") == {}
    assert make_example({}) == b"\x0a\x00"
    assert parse_example(make_example({})) == {}


def test_invalid_bytes_raise_data_loss() -> None:
    with pytest.raises(DataLossError, match=r"cannot parse a tf.train.Example from 3 bytes"):
        parse_example(b"\xff\xff\xff")


def test_private_descriptor_pool() -> None:
    # The message classes must not be registered in the default pool, where TensorFlow
    # registers its own tensorflow.Example.
    try:
        importlib.import_module("tensorflow")
    except ImportError:
        with pytest.raises(KeyError):
            descriptor_pool.Default().FindMessageTypeByName("tensorflow.Example")


# -- parsing with a spec ---------------------------------------------------------------------


RECORD = make_example(
    {"label": 3, "image": np.arange(6, dtype=np.float32), "tags": ["a", "b"], "id": b"x1"}
)


def test_spec_fixed_and_var_len() -> None:
    spec: dict[str, FixedLenFeature | VarLenFeature] = {
        "label": FixedLenFeature((), "int64"),
        "image": FixedLenFeature((2, 3), np.float32),
        "tags": VarLenFeature("string"),
        "id": FixedLenFeature([1], "bytes"),
        "missing_var": VarLenFeature(np.int64),
    }
    got = parse_example(RECORD, spec)
    assert list(got) == list(spec)  # only the spec's features, in its order
    assert got["label"].shape == () and got["label"].dtype == np.int64 and got["label"] == 3
    assert got["image"].shape == (2, 3) and got["image"].dtype == np.float32
    assert got["image"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert got["tags"].dtype == object and got["tags"].tolist() == [b"a", b"b"]
    assert got["id"].shape == (1,) and got["id"].tolist() == [b"x1"]
    assert got["missing_var"].dtype == np.int64 and got["missing_var"].shape == (0,)


def test_spec_int_shape_is_accepted() -> None:
    assert FixedLenFeature(6, "float32").shape == (6,)
    got = parse_example(RECORD, {"image": FixedLenFeature(6, "float32")})
    assert got["image"].shape == (6,)


@pytest.mark.parametrize(
    ("spec", "expected", "dtype"),
    [
        (FixedLenFeature((), "int64", default_value=-1), -1, np.int64),
        (FixedLenFeature((2,), "float32", default_value=0.5), [0.5, 0.5], np.float32),
        (FixedLenFeature((2,), "float32", default_value=[1, 2]), [1.0, 2.0], np.float32),
        (FixedLenFeature((2,), "string", default_value="?"), [b"?", b"?"], object),
        (FixedLenFeature((1,), object, default_value=[b"z"]), [b"z"], object),
    ],
)
def test_spec_default_values(spec: FixedLenFeature, expected: object, dtype: object) -> None:
    got = parse_example(RECORD, {"absent": spec})["absent"]
    assert got.dtype == dtype
    assert got.shape == spec.shape
    assert got.tolist() == expected


def test_spec_missing_without_default_names_the_feature() -> None:
    with pytest.raises(ValueError, match=r"'absent' is missing .* default_value"):
        parse_example(RECORD, {"absent": FixedLenFeature((), "int64")})


def test_spec_bad_default_size() -> None:
    with pytest.raises(ValueError, match=r"'absent': default_value has 3 values"):
        parse_example(RECORD, {"absent": FixedLenFeature((2,), "int64", default_value=[1, 2, 3])})


def test_spec_wrong_count_names_the_feature() -> None:
    with pytest.raises(ValueError, match=r"'image' has 6 values but .* shape \(4,\) needs 4"):
        parse_example(RECORD, {"image": FixedLenFeature((4,), "float32")})


def test_spec_wrong_type_names_the_feature() -> None:
    with pytest.raises(ValueError, match=r"'label' holds int64 values but its spec asks for"):
        parse_example(RECORD, {"label": FixedLenFeature((), "float32")})
    with pytest.raises(ValueError, match=r"'tags' holds bytes"):
        parse_example(RECORD, {"tags": VarLenFeature("int64")})


@pytest.mark.parametrize("dtype", ["int32", np.float64, "text", 3])
def test_spec_rejects_unsupported_dtypes(dtype: object) -> None:
    with pytest.raises(ValueError, match="int64, float32 and bytes"):
        VarLenFeature(dtype)
    with pytest.raises(ValueError, match="int64, float32 and bytes"):
        FixedLenFeature((), dtype)


def test_spec_rejects_bad_shapes_and_objects() -> None:
    with pytest.raises(ValueError, match="shape"):
        FixedLenFeature((-1,), "int64")
    with pytest.raises(TypeError, match="FixedLenFeature or VarLenFeature"):
        parse_example(RECORD, {"label": "int64"})  # type: ignore[dict-item]


def test_empty_list_feature_parses_as_any_kind() -> None:
    data = make_example({"e": np.array([], dtype=np.int64)})
    assert parse_example(data, {"e": VarLenFeature("int64")})["e"].tolist() == []
    assert parse_example(data, {"e": FixedLenFeature((0,), "int64")})["e"].shape == (0,)


# -- records written by TensorFlow -----------------------------------------------------------


def _tf_examples() -> list[tuple[bytes, dict[str, dict[str, Any]]]]:
    manifest = DATA / "manifest.json"
    if not manifest.exists():
        return []
    entry = json.loads(manifest.read_text())["files"].get("tf_plain.tfrecord", {})
    pairs = zip(entry.get("records", []), entry.get("examples", []), strict=True)
    return [(base64.b64decode(r), e) for r, e in pairs if e is not None]


@pytest.mark.skipif(not _tf_examples(), reason="no TensorFlow-written Examples in tests/data")
def test_parses_tensorflow_examples() -> None:
    examples = _tf_examples()
    for record, expected in examples:
        got = parse_example(record)
        assert sorted(got) == sorted(expected)
        for name, feature in expected.items():
            values = feature["value"]
            if feature["dtype"] == "bytes":
                assert got[name].tolist() == [base64.b64decode(v) for v in values]
            else:
                assert got[name].dtype == np.dtype(feature["dtype"])
                assert got[name].tolist() == values
        spec = {name: VarLenFeature(f["dtype"]) for name, f in expected.items()}
        for name, arr in parse_example(record, spec).items():
            assert arr.tolist() == got[name].tolist()
    # Re-encoding what TensorFlow wrote gives the same bytes (when it used packed fields
    # and sorted keys, as TensorFlow's own serializer does for these).
    same = sum(make_example(parse_example(r)) == r for r, _ in examples)
    assert same >= len(examples) - 2


# -- bytes features and batches of records (issue: a bytes feature is not bytes) ----------------

IMAGE = bytes(range(256)) + b"\x00\x00"  # trailing NULs, which NumPy's S dtype would drop
SPEC = {
    "image": FixedLenFeature((), "bytes"),
    "label": FixedLenFeature((), "int64"),
    "vec": FixedLenFeature((3,), "float32"),
}


def _records(n: int) -> list[bytes]:
    return [
        make_example({"image": IMAGE[: 10 + i], "label": i, "vec": [1.0, 2.0, float(i)]})
        for i in range(n)
    ]


def test_scalar_bytes_feature_is_bytes() -> None:
    got = parse_example(_records(1)[0], SPEC)
    assert type(got["image"]) is bytes and got["image"] == IMAGE[:10]
    assert np.frombuffer(got["image"], np.uint8).tolist() == list(IMAGE[:10])
    default = parse_example(
        make_example({"label": 1, "vec": [0.0] * 3}),
        {
            "image": FixedLenFeature((), "bytes", default_value=b"none"),
        },
    )
    assert default["image"] == b"none" and type(default["image"]) is bytes


def test_batched_bytes_feature_is_an_object_array_of_bytes() -> None:
    # docs/tfdata.md: a batch of bytes is a 1-D object array of bytes.
    ds = sk.Dataset.from_tensor_slices(np.array(_records(6), dtype=object))
    batches = list(ds.map(lambda r: parse_example(r, SPEC)).batch(4))
    images = batches[0]["image"]
    assert images.dtype == object and images.shape == (4,)
    assert all(type(v) is bytes for v in images.tolist())
    assert images.tolist() == [IMAGE[: 10 + i] for i in range(4)]
    assert batches[1]["label"].tolist() == [4, 5]


def test_parse_a_batch_of_records_like_tf_vector_parse_example() -> None:
    # TensorFlow 2.21, tf.io.parse_example on a batch of 4 serialized Examples gives
    # image (4,) object, label (4,) int64, vec (4, 3) float32: the same as parsing each
    # record and batching.
    ds = sk.Dataset.from_tensor_slices(np.array(_records(6), dtype=object))
    batched = list(ds.batch(4).map(lambda x: parse_example(x, SPEC)))
    per_record = list(ds.map(lambda r: parse_example(r, SPEC)).batch(4))
    for got, want in zip(batched, per_record, strict=True):
        assert got["image"].dtype == object and got["image"].tolist() == want["image"].tolist()
        assert got["label"].dtype == np.int64 and got["label"].shape == want["label"].shape
        assert got["vec"].dtype == np.float32 and got["vec"].shape == want["vec"].shape
        np.testing.assert_array_equal(got["vec"], want["vec"])
    assert batched[0]["vec"].shape == (4, 3) and batched[1]["label"].tolist() == [4, 5]
    assert parse_example(_records(2), SPEC)["label"].tolist() == [0, 1]  # a list works too
    empty = parse_example(np.array([], dtype=object), SPEC)
    assert empty["vec"].shape == (0, 3) and empty["image"].shape == (0,)


def test_a_batch_is_never_called_corrupt() -> None:
    records = np.array(_records(3), dtype=object)
    with pytest.raises(ValueError, match="batch of 3 records without a features spec"):
        parse_example(records)
    with pytest.raises(ValueError, match=r"batch of 3 records and features\['t'\] is a VarLen"):
        parse_example(records, {"t": VarLenFeature("int64")})
    with pytest.raises(ValueError, match=r"shape \(1, 3\)"):
        parse_example(records.reshape(1, 3), SPEC)
    bad = np.array([records[0], b"\xff\xff"], dtype=object)
    with pytest.raises(DataLossError, match="record 1 of the batch"):
        parse_example(bad, SPEC)
    with pytest.raises(TypeError, match="record 1 of the batch is a int"):
        parse_example([records[0], 5], SPEC)
    with pytest.raises(TypeError, match="got int"):
        parse_example(5)  # type: ignore[arg-type]
    assert parse_example(np.array(records[0], dtype=object), SPEC)["image"] == IMAGE[:10]
