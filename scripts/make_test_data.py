"""Write the TensorFlow-generated reference data under ``tests/data/``.

The outputs are committed, so the test suite never needs TensorFlow. Regenerate them
only when adding cases, with TensorFlow installed in a virtualenv outside the repo::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu numpy
    /tmp/tfvenv/bin/python scripts/make_test_data.py

Files written (all small, deterministic apart from ``tf_version`` fields):

* ``tf_plain.tfrecord``, ``tf_gzip.tfrecord.gz``, ``tf_zlib.tfrecord.zz``: the same
  serialized ``tf.train.Example`` records (plus an empty record and a hand-made
  record in unpacked wire encoding), written by ``tf.io.TFRecordWriter`` with
  compression "", "GZIP" and "ZLIB".
* ``tf_raw.tfrecord``: raw byte records of assorted sizes (0 .. 70000 bytes).
* ``tf_lines.txt`` / ``tf_lines.txt.gz``: text with mixed line endings.
* ``manifest.json``: per file, its compression type and what TensorFlow reads back
  (records / lines as base64, Example features as TensorFlow parses them).
* ``tfdata_reference.json``: elements of ~200 tf.data pipelines given as Python
  expression strings that can be evaluated against ``D = tf.data.Dataset`` or
  ``D = stoker.Dataset`` (see ``tests/test_tfdata_reference.py``).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
D = tf.data.Dataset


def b64(b: bytes) -> str:
    return base64.b64encode(bytes(b)).decode("ascii")


# --------------------------------------------------------------------------------------
# TFRecord / text files
# --------------------------------------------------------------------------------------


def _unpacked_example() -> bytes:
    """An Example whose int64/float lists use the non-packed wire encoding.

    Python's protobuf always writes packed repeated scalars; TensorFlow (and any
    conforming parser) must accept both encodings.
    """

    def varint(n: int) -> bytes:
        n &= (1 << 64) - 1
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            if n:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                return bytes(out)

    def field(num: int, wire: int, payload: bytes) -> bytes:
        key = varint((num << 3) | wire)
        if wire == 2:
            return key + varint(len(payload)) + payload
        return key + payload

    ints = b"".join(field(1, 0, varint(v)) for v in (5, -3, 1 << 40))
    floats = b"".join(field(1, 5, np.float32(v).tobytes()) for v in (1.5, -0.25))
    feat_ints = field(3, 2, ints)  # Feature.int64_list
    feat_floats = field(2, 2, floats)  # Feature.float_list
    entry_ints = field(1, 2, b"ints") + field(2, 2, feat_ints)
    entry_floats = field(1, 2, b"floats") + field(2, 2, feat_floats)
    features = field(1, 2, entry_ints) + field(1, 2, entry_floats)
    return field(1, 2, features)


def example_records() -> list[bytes]:
    rng = random.Random(1234)
    records: list[bytes] = []
    for i in range(20):
        feats: dict[str, tf.train.Feature] = {}
        n_int = i % 5
        ints = [i * 1000 - 7 * j for j in range(n_int)]
        if i == 3:
            ints = [-(2**63), 2**63 - 1, 0, -1]
        if i != 7:
            feats["ints"] = tf.train.Feature(int64_list=tf.train.Int64List(value=ints))
        n_float = (i * 3) % 4
        floats = [float(np.float32(i * 0.25 - j * 1.1)) for j in range(n_float)]
        if i == 5:
            floats = [-0.0, 1e-30, float(np.finfo(np.float32).max), float(np.float32(0.1))]
        if i not in (7, 11):
            feats["floats"] = tf.train.Feature(float_list=tf.train.FloatList(value=floats))
        n_bytes = i % 3
        data = [bytes(rng.randrange(256) for _ in range(rng.randrange(12))) for _ in range(n_bytes)]
        if i == 4:
            data = [b"", b"\x00", "h\u00e9llo".encode(), b"trailing\x00\x00"]
        feats["data"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=data))
        if i % 4 == 1:
            feats["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))
        ex = tf.train.Example(features=tf.train.Features(feature=feats))
        records.append(ex.SerializeToString(deterministic=True))
        if i == 9:
            records.append(b"")  # an empty record: valid TFRecord framing, no Example
        if i == 14:
            records.append(_unpacked_example())
    return records


def raw_records() -> list[bytes]:
    rng = random.Random(99)
    sizes = [0, 1, 7, 100, 0, 255, 256, 1000, 70000, 3]
    return [bytes(rng.randrange(256) for _ in range(n)) for n in sizes]


def parse_example_tf(record: bytes) -> dict[str, Any]:
    """Features of one Example as TensorFlow parses it (checked two ways)."""
    ex = tf.train.Example.FromString(record)
    out: dict[str, Any] = {}
    for key in sorted(ex.features.feature):
        feat = ex.features.feature[key]
        kind = feat.WhichOneof("kind")
        if kind == "int64_list":
            out[key] = {"dtype": "int64", "value": [int(v) for v in feat.int64_list.value]}
        elif kind == "float_list":
            out[key] = {
                "dtype": "float32",
                "value": [float(np.float32(v)) for v in feat.float_list.value],
            }
        elif kind == "bytes_list":
            out[key] = {"dtype": "bytes", "value": [b64(v) for v in feat.bytes_list.value]}
        else:
            raise AssertionError(f"feature {key!r} has no kind")
    # Cross-check against the parsing op.
    dtypes = {"int64": tf.int64, "float32": tf.float32, "bytes": tf.string}
    spec = {k: tf.io.VarLenFeature(dtypes[v["dtype"]]) for k, v in out.items()}
    parsed = tf.io.parse_single_example(record, spec)
    for k, v in out.items():
        got = parsed[k].values.numpy().tolist()
        if v["dtype"] == "bytes":
            got = [b64(x) for x in got]
        elif v["dtype"] == "float32":
            got = [float(np.float32(x)) for x in got]
        assert got == v["value"], (k, got, v["value"])
    return out


def write_files() -> dict[str, Any]:
    files: dict[str, Any] = {}
    recs = example_records()
    for name, ctype in (
        ("tf_plain.tfrecord", ""),
        ("tf_gzip.tfrecord.gz", "GZIP"),
        ("tf_zlib.tfrecord.zz", "ZLIB"),
    ):
        path = DATA / name
        with tf.io.TFRecordWriter(str(path), options=tf.io.TFRecordOptions(ctype)) as w:
            for r in recs:
                w.write(r)
        read = [bytes(x) for x in tf.data.TFRecordDataset(str(path), ctype).as_numpy_iterator()]
        assert read == recs, name
        files[name] = {
            "kind": "tfrecord",
            "compression_type": ctype,
            "records": [b64(r) for r in read],
            # null where the record is not an Example (the empty record).
            "examples": [parse_example_tf(r) if r else None for r in read],
        }

    raws = raw_records()
    path = DATA / "tf_raw.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in raws:
            w.write(r)
    read = [bytes(x) for x in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]
    assert read == raws
    files["tf_raw.tfrecord"] = {
        "kind": "tfrecord",
        "compression_type": "",
        "records": [b64(r) for r in read],
    }

    text = (
        b"alpha\nbeta\r\n\ngamma\r\n\r\n  spaced \tline  \nmid\rcarriage\n"
        + "h\u00e9llo w\u00f6rld\n".encode()
        + b"last line without newline"
    )
    (DATA / "tf_lines.txt").write_bytes(text)
    (DATA / "tf_lines.txt.gz").write_bytes(gzip.compress(text, mtime=0))
    for name, ctype in (("tf_lines.txt", ""), ("tf_lines.txt.gz", "GZIP")):
        lines = [
            bytes(x) for x in tf.data.TextLineDataset(str(DATA / name), ctype).as_numpy_iterator()
        ]
        files[name] = {
            "kind": "text",
            "compression_type": ctype,
            "lines": [b64(x) for x in lines],
        }
    assert files["tf_lines.txt"]["lines"] == files["tf_lines.txt.gz"]["lines"]
    return files


# --------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------

HELPERS_DOC = {
    "i64": "i64(x): x (a Python int or nested list of ints) as an int64 array "
    "(tf.constant(x, tf.int64)).",
    "f64": "f64(x): x as a float64 array (tf.constant(x, tf.float64)).",
    "cast_i64": "cast_i64(x): x cast to int64 (tf.cast(x, tf.int64)).",
    "cast_f64": "cast_f64(x): x cast to float64 (tf.cast(x, tf.float64)).",
    "fill": "fill(n, v): 1-D array of length n, every entry v, dtype of v "
    "(tf.fill([n], v)); v may be bytes, then the result holds bytes.",
    "fill2": "fill2(r, c, v): 2-D array of shape (r, c), every entry v, dtype of v "
    "(tf.fill([r, c], v)).",
    "arange": "arange(n): int64 array [0, 1, ..., n-1] (tf.range(n) with n cast to int64).",
    "as_str": "as_str(x): the decimal text of the integer scalar x as bytes, e.g. 12 -> b'12' "
    "(tf.strings.as_string).",
    "size": "size(x): number of entries of x as an int64 scalar (tf.size(x, out_type=int64)).",
    "reduce_sum": "reduce_sum(x): sum of all entries of x, same dtype as x (tf.reduce_sum).",
}


def i64(x: Any) -> tf.Tensor:
    return tf.constant(x, dtype=tf.int64)


def f64(x: Any) -> tf.Tensor:
    return tf.constant(x, dtype=tf.float64)


def cast_i64(x: Any) -> tf.Tensor:
    return tf.cast(x, tf.int64)


def cast_f64(x: Any) -> tf.Tensor:
    return tf.cast(x, tf.float64)


def fill(n: Any, v: Any) -> tf.Tensor:
    return tf.fill(tf.stack([tf.cast(n, tf.int64)]), v)


def fill2(r: Any, c: Any, v: Any) -> tf.Tensor:
    return tf.fill(tf.stack([tf.cast(r, tf.int64), tf.cast(c, tf.int64)]), v)


def arange(n: Any) -> tf.Tensor:
    return tf.range(tf.cast(n, tf.int64))


def as_str(x: Any) -> tf.Tensor:
    return tf.strings.as_string(x)


def size(x: Any) -> tf.Tensor:
    return tf.size(x, out_type=tf.int64)


def reduce_sum(x: Any) -> tf.Tensor:
    return tf.reduce_sum(x)


NAMESPACE = {
    "D": D,
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
assert set(NAMESPACE) - {"D"} == set(HELPERS_DOC)

# (name, expression) for element pipelines; kinds "value" and "cardinality" below.
ELEMENTS: list[tuple[str, str]] = [
    # range
    ("range_stop", "D.range(5)"),
    ("range_start_stop", "D.range(2, 5)"),
    ("range_step", "D.range(1, 10, 3)"),
    ("range_negative_step", "D.range(10, 0, -3)"),
    ("range_negative_step_to_negative", "D.range(5, -5, -2)"),
    ("range_negative_start", "D.range(-3, 3)"),
    ("range_empty_start_gt_stop", "D.range(5, 2)"),
    ("range_empty_negative_stop", "D.range(-3)"),
    ("range_empty_wrong_direction", "D.range(2, 5, -1)"),
    ("range_zero", "D.range(0)"),
    ("range_step_zero_error", "D.range(0, 5, 0)"),
    ("range_map_square", "D.range(4).map(lambda x: x * x)"),
    # from_tensor_slices
    ("fts_list_int", "D.from_tensor_slices([1, 2, 3])"),
    ("fts_list_float", "D.from_tensor_slices([0.5, 1.25, -2.0])"),
    ("fts_list_str", 'D.from_tensor_slices(["a", "bb", ""])'),
    ("fts_list_bytes", 'D.from_tensor_slices([b"x\\x00y", b"", b"\\xff\\x00yz"])'),
    ("fts_list_bool", "D.from_tensor_slices([True, False, True])"),
    ("fts_list_2d", "D.from_tensor_slices([[1, 2], [3, 4], [5, 6]])"),
    ("fts_list_of_tuples_is_one_tensor", "D.from_tensor_slices([(1, 2), (3, 4)])"),
    ("fts_i64", "D.from_tensor_slices(i64([10, 20, 30]))"),
    ("fts_tuple", 'D.from_tensor_slices(([1, 2, 3], ["a", "b", "c"]))'),
    ("fts_dict", 'D.from_tensor_slices({"a": [1, 2], "b": [[1.5, 2.5], [3.5, 4.5]]})'),
    (
        "fts_nested",
        'D.from_tensor_slices(({"x": i64([1, 2]), "y": (i64([3, 4]), ["p", "q"])}, i64([7, 8])))',
    ),
    ("fts_empty_leading_dim", "D.from_tensor_slices(fill2(0, 3, i64(1)))"),
    ("fts_mismatched_lengths_error", "D.from_tensor_slices(([1, 2], [3]))"),
    ("fts_scalar_error", "D.from_tensor_slices(i64(5))"),
    # from_tensors
    ("ft_scalar", "D.from_tensors(i64(7))"),
    ("ft_py_int", "D.from_tensors(7)"),
    ("ft_list", "D.from_tensors([1, 2, 3])"),
    ("ft_str", 'D.from_tensors("hello")'),
    ("ft_tuple", 'D.from_tensors((i64(1), "a", [0.5, 1.5]))'),
    ("ft_dict", 'D.from_tensors({"k": i64([[1, 2]]), "s": "v"})'),
    ("ft_repeat", "D.from_tensors(i64([1, 2])).repeat(3)"),
    # batch
    ("batch_basic", "D.range(10).batch(3)"),
    ("batch_drop_remainder", "D.range(10).batch(3, drop_remainder=True)"),
    ("batch_exact_drop_remainder", "D.range(9).batch(3, drop_remainder=True)"),
    ("batch_larger_than_input", "D.range(2).batch(5)"),
    ("batch_larger_than_input_drop", "D.range(2).batch(5, drop_remainder=True)"),
    ("batch_empty_input", "D.range(0).batch(2)"),
    ("batch_tuple", "D.range(5).map(lambda x: (x, x * 10)).batch(2)"),
    ("batch_dict", 'D.range(5).map(lambda x: {"a": x, "b": fill(2, x)}).batch(2)'),
    ("batch_strings", 'D.from_tensor_slices(["a", "b", "c"]).batch(2)'),
    ("batch_of_batch", "D.range(8).batch(2).batch(2)"),
    ("batch_vectors", "D.range(5).map(lambda x: fill(3, x)).batch(2, drop_remainder=True)"),
    ("batch_ragged_error", "D.range(1, 4).map(lambda x: fill(x, x)).batch(2)"),
    ("batch_zero_error", "D.range(3).batch(0)"),
    # padded_batch (tf docstring examples, with int64 elements)
    ("padded_batch_default", "D.range(1, 5).map(lambda x: fill(x, x)).padded_batch(2)"),
    (
        "padded_batch_shape_int",
        "D.range(1, 5).map(lambda x: fill(x, x)).padded_batch(2, padded_shapes=5)",
    ),
    (
        "padded_batch_shape_list",
        "D.range(1, 5).map(lambda x: fill(x, x)).padded_batch(2, padded_shapes=[5])",
    ),
    (
        "padded_batch_shape_none_dim",
        "D.range(1, 5).map(lambda x: fill(x, x)).padded_batch(2, padded_shapes=[None])",
    ),
    (
        "padded_batch_padding_value",
        "D.range(1, 5).map(lambda x: fill(x, x))"
        ".padded_batch(2, padded_shapes=5, padding_values=i64(-1))",
    ),
    (
        "padded_batch_drop_remainder",
        "D.range(1, 6).map(lambda x: fill(x, x)).padded_batch(2, drop_remainder=True)",
    ),
    ("padded_batch_remainder", "D.range(1, 6).map(lambda x: fill(x, x)).padded_batch(2)"),
    (
        "padded_batch_nested_doc",
        "D.range(1, 3).map(lambda x: (fill(4 - x, x), fill(x, 10 + x)))"
        ".padded_batch(2, padded_shapes=([4], [None]), padding_values=(i64(-1), i64(100)))",
    ),
    ("padded_batch_scalars", "D.range(5).padded_batch(2)"),
    ("padded_batch_strings", "D.range(1, 4).map(lambda x: fill(x, as_str(x))).padded_batch(2)"),
    (
        "padded_batch_strings_value",
        'D.range(1, 4).map(lambda x: fill(x, as_str(x))).padded_batch(3, padding_values="?")',
    ),
    ("padded_batch_2d", "D.range(1, 4).map(lambda x: fill2(x, 4 - x, x)).padded_batch(2)"),
    (
        "padded_batch_2d_partial_shape",
        "D.range(1, 4).map(lambda x: fill2(x, 4 - x, x)).padded_batch(3, padded_shapes=[None, 4])",
    ),
    (
        "padded_batch_dict",
        'D.range(1, 4).map(lambda x: {"v": fill(x, x), "n": x})'
        '.padded_batch(2, padding_values={"v": i64(-9), "n": i64(0)})',
    ),
    (
        "padded_batch_float",
        "D.range(1, 4).map(lambda x: fill(x, cast_f64(x) / 2)).padded_batch(3)",
    ),
    (
        "padded_batch_shape_too_small_error",
        "D.range(1, 5).map(lambda x: fill(x, x)).padded_batch(2, padded_shapes=3)",
    ),
    # unbatch
    ("unbatch_basic", "D.range(7).batch(3).unbatch()"),
    (
        "unbatch_tuple",
        'D.from_tensor_slices(([[1, 2], [3, 4]], [["a", "b"], ["c", "d"]])).unbatch()',
    ),
    ("unbatch_dict", 'D.from_tensors({"a": i64([1, 2, 3]), "b": i64([[1], [2], [3]])}).unbatch()'),
    ("unbatch_2d", "D.from_tensors(i64([[1, 2], [3, 4]])).unbatch()"),
    ("unbatch_varying_lengths", "D.range(4).map(lambda x: fill(x, x)).unbatch()"),
    ("unbatch_scalar_error", "D.range(3).unbatch()"),
    # repeat
    ("repeat_3", "D.range(3).repeat(3)"),
    ("repeat_0", "D.range(3).repeat(0)"),
    ("repeat_1", "D.range(3).repeat(1)"),
    ("repeat_forever_take", "D.range(3).repeat().take(8)"),
    ("repeat_none_take", "D.range(3).repeat(None).take(7)"),
    ("repeat_neg1_take", "D.range(2).repeat(-1).take(5)"),
    ("repeat_empty_forever", "D.range(0).repeat().take(5)"),
    ("repeat_then_batch", "D.range(3).repeat(2).batch(4)"),
    ("batch_then_repeat", "D.range(3).batch(2).repeat(2)"),
    # take / skip
    ("take_3", "D.range(10).take(3)"),
    ("take_0", "D.range(10).take(0)"),
    ("take_neg1_all", "D.range(4).take(-1)"),
    ("take_beyond_end", "D.range(3).take(10)"),
    ("skip_3", "D.range(10).skip(3)"),
    ("skip_0", "D.range(4).skip(0)"),
    ("skip_neg1_all", "D.range(4).skip(-1)"),
    ("skip_beyond_end", "D.range(3).skip(10)"),
    ("skip_then_take", "D.range(10).skip(2).take(3)"),
    ("take_then_skip", "D.range(10).take(5).skip(3)"),
    ("skip_on_infinite", "D.range(3).repeat().skip(4).take(4)"),
    # take_while
    ("take_while_basic", "D.range(10).take_while(lambda x: x < 5)"),
    ("take_while_never", "D.range(5).take_while(lambda x: x > 10)"),
    ("take_while_always", "D.range(5).take_while(lambda x: x < 10)"),
    (
        "take_while_first_false",
        "D.from_tensor_slices(i64([1, 2, 5, 1, 2])).take_while(lambda x: x < 3)",
    ),
    (
        "take_while_tuple",
        "D.zip((D.range(6), D.range(10, 16))).take_while(lambda a, b: a + b < 15)",
    ),
    # scan
    ("scan_doc", "D.range(10).scan(i64(0), lambda state, i: (state + i, state + i))"),
    (
        "scan_tuple_state",
        "D.range(8).scan((i64(0), i64(1)), lambda s, x: ((s[1], s[0] + s[1]), s[0] + x))",
    ),
    (
        "scan_tuple_element",
        "D.zip((D.range(4), D.range(10, 14)))"
        ".scan(i64(0), lambda s, ab: (s + ab[0] * ab[1], (s, ab[1])))",
    ),
    ("scan_dict_output", 'D.range(4).scan(i64(1), lambda s, x: (s * 2, {"s": s, "x": x}))'),
    # unique
    ("unique_ints", "D.from_tensor_slices([1, 1, 2, 4, 3, 3, 2, 1]).unique()"),
    ("unique_i64", "D.range(10).map(lambda x: x % 3).unique()"),
    ("unique_strings", 'D.from_tensor_slices(["b", "a", "b", "c", "a"]).unique()'),
    # enumerate
    ("enumerate_default", 'D.from_tensor_slices(["a", "b", "c"]).enumerate()'),
    ("enumerate_start", "D.range(10, 13).enumerate(start=5)"),
    ("enumerate_negative_start", "D.range(3).enumerate(-2)"),
    ("enumerate_tuple_element", "D.zip((D.range(2), D.range(5, 7))).enumerate(3)"),
    ("enumerate_dict_element", 'D.range(2).map(lambda x: {"v": x}).enumerate()'),
    # shard
    ("shard_3_0", "D.range(10).shard(3, 0)"),
    ("shard_3_1", "D.range(10).shard(3, 1)"),
    ("shard_3_2", "D.range(10).shard(3, 2)"),
    ("shard_4_3", "D.range(10).shard(num_shards=4, index=3)"),
    ("shard_1_0", "D.range(5).shard(1, 0)"),
    ("shard_more_shards_than_elements", "D.range(3).shard(5, 4)"),
    ("shard_of_batches", "D.range(10).batch(2).shard(2, 1)"),
    ("shard_infinite_take", "D.range(5).repeat().shard(2, 1).take(6)"),
    ("shard_index_error", "D.range(10).shard(2, 2)"),
    ("shard_negative_index_error", "D.range(10).shard(2, -1)"),
    ("shard_zero_shards_error", "D.range(10).shard(0, 0)"),
    # concatenate
    ("concatenate_basic", "D.range(1, 4).concatenate(D.range(4, 8))"),
    ("concatenate_empty_first", "D.range(0).concatenate(D.range(3))"),
    ("concatenate_empty_second", "D.range(3).concatenate(D.range(0))"),
    (
        "concatenate_tuple",
        "D.zip((D.range(2), D.range(2))).concatenate(D.zip((D.range(5, 6), D.range(7, 8))))",
    ),
    (
        "concatenate_different_shapes",
        "D.from_tensors(i64([1, 2])).concatenate(D.from_tensors(i64([3])))",
    ),
    ("concatenate_chain", "D.range(2).concatenate(D.range(5, 6)).concatenate(D.range(9, 11))"),
    ("concatenate_incompatible_error", 'D.range(3).concatenate(D.from_tensor_slices(["a"]))'),
    # zip
    ("zip_tuple", "D.zip((D.range(3), D.range(10, 13)))"),
    ("zip_varargs", "D.zip(D.range(3), D.range(10, 13))"),
    ("zip_dict", 'D.zip({"a": D.range(3), "b": D.from_tensor_slices(["x", "y", "z"])})'),
    ("zip_nested", "D.zip((D.range(3), (D.range(3, 6), D.range(6, 9))))"),
    ("zip_different_lengths", "D.zip((D.range(5), D.range(2)))"),
    ("zip_with_infinite", "D.zip((D.range(3).repeat(), D.range(4)))"),
    ("zip_single", "D.zip((D.range(3),))"),
    ("zip_with_empty", "D.zip((D.range(3), D.range(0)))"),
    ("zip_of_zips", "D.zip((D.zip((D.range(2), D.range(2))), D.range(5, 7)))"),
    ("zip_map_unpack", "D.zip((D.range(3), D.range(3, 6))).map(lambda a, b: a * b)"),
    ("zip_dict_map", 'D.zip({"a": D.range(3), "b": D.range(3, 6)}).map(lambda d: d["a"] + d["b"])'),
    # flat_map
    ("flat_map_range", "D.range(4).flat_map(lambda x: D.range(x))"),
    (
        "flat_map_doc",
        "D.from_tensor_slices([[1, 2, 3], [4, 5, 6], [7, 8, 9]]).flat_map(D.from_tensor_slices)",
    ),
    ("flat_map_repeat", "D.range(1, 4).flat_map(lambda x: D.from_tensors(x).repeat(x))"),
    (
        "flat_map_tuple_unpack",
        "D.zip((D.range(3), D.range(3))).flat_map(lambda a, b: D.range(a + b))",
    ),
    (
        "flat_map_slices_helper",
        "D.range(4).flat_map(lambda x: D.from_tensor_slices(arange(x) * 10))",
    ),
    ("flat_map_empty_inner", "D.range(5).flat_map(lambda x: D.range(x % 2))"),
    # interleave
    (
        "interleave_doc",
        "D.range(1, 6).interleave(lambda x: D.from_tensors(x).repeat(6), "
        "cycle_length=2, block_length=4)",
    ),
    (
        "interleave_doc_default_block",
        "D.range(1, 6).interleave(lambda x: D.from_tensors(x).repeat(3), cycle_length=3)",
    ),
    *[
        (
            f"interleave_uneven_c{c}_b{b}",
            f"D.range(1, 6).interleave(lambda x: D.range(10 * x, 10 * x + x), "
            f"cycle_length={c}, block_length={b})",
        )
        for c in range(1, 5)
        for b in range(1, 5)
    ],
    (
        "interleave_decreasing_c2_b2",
        "D.range(5, 0, -1).interleave(lambda x: D.range(10 * x, 10 * x + x), "
        "cycle_length=2, block_length=2)",
    ),
    (
        "interleave_empty_inners",
        "D.range(6).interleave(lambda x: D.range(10 * x, 10 * x + (x % 3)), "
        "cycle_length=2, block_length=1)",
    ),
    (
        "interleave_cycle_exceeds_inputs",
        "D.range(1, 3).interleave(lambda x: D.range(10 * x, 10 * x + 3), cycle_length=4)",
    ),
    (
        "interleave_tuple_unpack",
        "D.zip((D.range(3), D.range(1, 4))).interleave(lambda a, b: D.range(a * 10, a * 10 + b), "
        "cycle_length=2)",
    ),
    (
        "interleave_tuple_elements",
        "D.range(3).interleave(lambda x: D.zip((D.range(2), D.from_tensors(x).repeat(2))), "
        "cycle_length=3, block_length=1)",
    ),
    # choose_from_datasets
    (
        "choose_from_datasets_doc",
        'D.choose_from_datasets([D.from_tensors("foo").repeat(), D.from_tensors("bar").repeat(), '
        'D.from_tensors("baz").repeat()], D.range(3).repeat(3))',
    ),
    (
        "choose_stop_on_empty_default",
        "D.choose_from_datasets([D.range(2), D.range(10, 15)], "
        "D.from_tensor_slices(i64([0, 1, 0, 1, 0, 1, 1])))",
    ),
    (
        "choose_stop_on_empty_true",
        "D.choose_from_datasets([D.range(2), D.range(10, 15)], "
        "D.from_tensor_slices(i64([0, 1, 0, 1, 0, 1, 1])), stop_on_empty_dataset=True)",
    ),
    (
        "choose_stop_on_empty_false",
        "D.choose_from_datasets([D.range(2), D.range(10, 15)], "
        "D.from_tensor_slices(i64([0, 1, 0, 1, 0, 1, 1])), stop_on_empty_dataset=False)",
    ),
    (
        "choose_all_empty_false",
        "D.choose_from_datasets([D.range(0), D.range(0)], "
        "D.from_tensor_slices(i64([0, 1, 0])), stop_on_empty_dataset=False)",
    ),
    ("choose_empty_choice", "D.choose_from_datasets([D.range(3)], D.range(0))"),
    (
        "choose_index_out_of_range_error",
        "D.choose_from_datasets([D.range(3)], D.from_tensor_slices(i64([0, 1])))",
    ),
    # filter
    ("filter_even", "D.range(10).filter(lambda x: x % 2 == 0)"),
    ("filter_none_pass", "D.range(5).filter(lambda x: x > 100)"),
    ("filter_tuple", "D.zip((D.range(6), D.range(6, 12))).filter(lambda a, b: (a + b) % 3 == 0)"),
    (
        "filter_dict",
        'D.from_tensor_slices({"a": [1, 2, 3, 4], "b": ["w", "x", "y", "z"]})'
        '.filter(lambda d: d["a"] > 2)',
    ),
    ("filter_then_batch", "D.range(20).filter(lambda x: x % 3 == 1).batch(3)"),
    ("filter_infinite_take", "D.range(4).repeat().filter(lambda x: x > 1).take(5)"),
    # map
    ("map_mul", "D.range(5).map(lambda x: x * 2)"),
    ("map_to_tuple", "D.range(4).map(lambda x: (x, x * x))"),
    ("map_tuple_unpack", "D.range(4).map(lambda x: (x, x + 1)).map(lambda a, b: a * b)"),
    ("map_to_dict", 'D.range(3).map(lambda x: {"x": x, "neg": -x})'),
    (
        "map_dict_in_dict_out",
        'D.range(3).map(lambda x: {"x": x, "neg": -x})'
        '.map(lambda d: {"sum": d["x"] + d["neg"], "x2": d["x"] * 2})',
    ),
    ("map_nested_structure", 'D.range(3).map(lambda x: (x, (x + 1, {"k": x + 2})))'),
    ("map_single_tuple", "D.range(2).map(lambda x: (x,))"),
    ("map_compare_bool", "D.range(5).map(lambda x: x >= 2)"),
    ("map_truediv", "D.range(5).map(lambda x: x / 2)"),
    ("map_floordiv_negative", "D.range(-5, 5).map(lambda x: x // 3)"),
    ("map_mod_negative", "D.range(-5, 5).map(lambda x: x % 3)"),
    ("map_py_float", "D.from_tensor_slices([0.5, 1.5, -2.25]).map(lambda x: x * 2.0 + 1.0)"),
    ("map_f64", "D.range(4).map(lambda x: cast_f64(x) * 0.5)"),
    ("map_as_str", "D.range(3).map(lambda x: as_str(x * 7))"),
    ("map_constant_py_int", "D.range(3).map(lambda x: (x, 1))"),
    ("map_size", "D.range(4).map(lambda x: size(fill(x, x)))"),
    ("map_batch_reduce_sum", "D.range(7).batch(3).map(lambda b: reduce_sum(b))"),
    (
        "map_then_filter_then_map",
        "D.range(10).map(lambda x: x * 3).filter(lambda x: x % 2 == 1).map(lambda x: -x)",
    ),
]

VALUES: list[tuple[str, str]] = [
    ("reduce_sum", "D.range(5).reduce(i64(0), lambda s, x: s + x)"),
    ("reduce_empty", "D.range(0).reduce(i64(7), lambda s, x: s + x)"),
    (
        "reduce_tuple_state",
        "D.range(1, 5).reduce((i64(0), i64(1)), lambda s, x: (s[0] + x, s[1] * x))",
    ),
    ("reduce_py_ints", "D.from_tensor_slices([1, 2, 3]).reduce(0, lambda s, x: s + x)"),
    (
        "reduce_tuple_elements",
        "D.zip((D.range(3), D.range(3, 6))).reduce(i64(0), lambda s, ab: s + ab[0] * ab[1])",
    ),
    (
        "reduce_dict_state",
        'D.range(4).reduce({"n": i64(0), "s": i64(0)}, '
        'lambda st, x: {"n": st["n"] + 1, "s": st["s"] + x})',
    ),
]

CARDINALITY: list[tuple[str, str]] = [
    ("card_range", "D.range(10)"),
    ("card_range_empty", "D.range(5, 2)"),
    ("card_range_negative_step", "D.range(10, 0, -3)"),
    ("card_from_tensor_slices", "D.from_tensor_slices([1, 2, 3])"),
    ("card_from_tensors", "D.from_tensors([1, 2, 3])"),
    ("card_map", "D.range(10).map(lambda x: x * 2)"),
    ("card_filter", "D.range(10).filter(lambda x: x > 3)"),
    ("card_repeat_forever", "D.range(3).repeat()"),
    ("card_repeat_3", "D.range(3).repeat(3)"),
    ("card_repeat_0", "D.range(3).repeat(0)"),
    ("card_repeat_empty_forever", "D.range(0).repeat()"),
    ("card_repeat_unknown_forever", "D.range(3).filter(lambda x: x > 0).repeat()"),
    ("card_take", "D.range(10).take(3)"),
    ("card_take_beyond", "D.range(3).take(10)"),
    ("card_take_neg1", "D.range(10).take(-1)"),
    ("card_take_infinite", "D.range(3).repeat().take(5)"),
    ("card_take_neg1_infinite", "D.range(3).repeat().take(-1)"),
    ("card_take_unknown", "D.range(10).filter(lambda x: x > 3).take(3)"),
    ("card_skip", "D.range(10).skip(3)"),
    ("card_skip_beyond", "D.range(10).skip(20)"),
    ("card_skip_neg1", "D.range(10).skip(-1)"),
    ("card_skip_infinite", "D.range(3).repeat().skip(5)"),
    ("card_skip_neg1_infinite", "D.range(3).repeat().skip(-1)"),
    ("card_skip_unknown", "D.range(10).filter(lambda x: x > 3).skip(2)"),
    ("card_batch", "D.range(10).batch(3)"),
    ("card_batch_drop", "D.range(10).batch(3, drop_remainder=True)"),
    ("card_batch_infinite", "D.range(3).repeat().batch(2)"),
    ("card_batch_unknown", "D.range(10).filter(lambda x: x > 3).batch(2)"),
    ("card_padded_batch", "D.range(1, 6).map(lambda x: fill(x, x)).padded_batch(2)"),
    (
        "card_padded_batch_drop",
        "D.range(1, 6).map(lambda x: fill(x, x)).padded_batch(2, drop_remainder=True)",
    ),
    ("card_shard_3_0", "D.range(10).shard(3, 0)"),
    ("card_shard_3_1", "D.range(10).shard(3, 1)"),
    ("card_shard_4_3", "D.range(10).shard(4, 3)"),
    ("card_shard_infinite", "D.range(3).repeat().shard(2, 0)"),
    ("card_shard_unknown", "D.range(10).filter(lambda x: x > 3).shard(2, 0)"),
    ("card_concatenate", "D.range(3).concatenate(D.range(4))"),
    ("card_concatenate_infinite", "D.range(3).concatenate(D.range(4).repeat())"),
    ("card_concatenate_unknown", "D.range(3).concatenate(D.range(4).filter(lambda x: x > 1))"),
    (
        "card_concatenate_infinite_unknown",
        "D.range(3).repeat().concatenate(D.range(4).filter(lambda x: x > 1))",
    ),
    (
        "card_concatenate_unknown_infinite",
        "D.range(4).filter(lambda x: x > 1).concatenate(D.range(3).repeat())",
    ),
    ("card_zip", "D.zip((D.range(5), D.range(3)))"),
    ("card_zip_infinite", "D.zip((D.range(3).repeat(), D.range(4)))"),
    ("card_zip_all_infinite", "D.zip((D.range(3).repeat(), D.range(4).repeat()))"),
    ("card_zip_unknown", "D.zip((D.range(3).filter(lambda x: x > 0), D.range(4)))"),
    (
        "card_zip_unknown_infinite",
        "D.zip((D.range(3).filter(lambda x: x > 0), D.range(4).repeat()))",
    ),
    ("card_zip_dict", 'D.zip({"a": D.range(5), "b": D.range(7)})'),
    ("card_flat_map", "D.range(4).flat_map(lambda x: D.range(x))"),
    (
        "card_interleave",
        "D.range(4).interleave(lambda x: D.range(x), cycle_length=2)",
    ),
    ("card_take_while", "D.range(10).take_while(lambda x: x < 5)"),
    ("card_unbatch", "D.range(10).batch(3).unbatch()"),
    ("card_enumerate", "D.range(7).enumerate()"),
    ("card_scan", "D.range(6).scan(i64(0), lambda s, x: (s + x, s))"),
    ("card_unique", "D.range(6).unique()"),
    (
        "card_choose_from_datasets",
        "D.choose_from_datasets([D.range(3), D.range(3)], D.range(2).repeat(2))",
    ),
    ("card_batch_of_take_infinite", "D.range(3).repeat().take(7).batch(2)"),
]


def _b64_nested(v: Any) -> Any:
    if isinstance(v, list):
        return [_b64_nested(u) for u in v]
    return b64(v if isinstance(v, bytes) else str(v).encode())


def encode(x: Any) -> Any:
    """An element as nested JSON (see the "encoding" entry of the output)."""
    if isinstance(x, tuple):
        return {"tuple": [encode(v) for v in x]}
    if isinstance(x, dict):
        return {"dict": {str(k): encode(v) for k, v in x.items()}}
    if isinstance(x, tf.Tensor):
        x = x.numpy()
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "SU":
        return {"dtype": "bytes", "shape": list(arr.shape), "value": _b64_nested(arr.tolist())}
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"cannot encode dtype {arr.dtype}")
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "value": arr.tolist()}


def dtypes_in(enc: Any) -> set[str]:
    if "tuple" in enc:
        return set().union(*(dtypes_in(v) for v in enc["tuple"]))
    if "dict" in enc:
        return set().union(*(dtypes_in(v) for v in enc["dict"].values()))
    return {enc["dtype"]}


def describe_error(e: BaseException, phase: str) -> dict[str, Any]:
    msg = re.sub(r"\s+", " ", str(e)).strip()
    # Drop TF's op decoration, and the batch-shape detail, whose order is not stable.
    msg = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", msg)
    msg = re.sub(r"\s*\[Op:[^\]]*\].*$", "", msg)
    msg = re.sub(r" Shapes are: .*$", "", msg)
    return {"type": type(e).__name__, "message": msg[:400], "phase": phase}


def run_case(name: str, expr: str, kind: str) -> dict[str, Any]:
    case: dict[str, Any] = {"name": name, "kind": kind, "expr": expr}
    try:
        obj = eval(expr, dict(NAMESPACE))
    except Exception as e:
        case["error"] = describe_error(e, "build")
        return case
    if kind == "elements":
        out: list[Any] = []
        try:
            for el in obj.as_numpy_iterator():
                out.append(encode(el))
        except Exception as e:
            case["error"] = describe_error(e, "iterate")
            case["elements_before_error"] = out
            return case
        case["result"] = out
        found = set().union(*(dtypes_in(e) for e in out)) if out else set()
    elif kind == "value":
        case["result"] = encode(tf.nest.map_structure(lambda t: t.numpy(), obj))
        found = dtypes_in(case["result"])
    else:
        case["result"] = int(obj.cardinality().numpy())
        found = set()
    # TF makes int32 / float32 tensors only from Python ints / floats in these cases
    # (no helper creates either), where NumPy makes int64 / float64.
    case["python_int_input"] = "int32" in found
    case["python_float_input"] = "float32" in found
    return case


def build_reference() -> dict[str, Any]:
    pipelines = []
    for kind, cases in (("elements", ELEMENTS), ("value", VALUES), ("cardinality", CARDINALITY)):
        for name, expr in cases:
            pipelines.append(run_case(name, expr, kind))
    names = [p["name"] for p in pipelines]
    assert len(names) == len(set(names)), "duplicate pipeline names"
    return {
        "tf_version": tf.__version__,
        "generator": "scripts/make_test_data.py",
        "notes": [
            "Each expr is evaluated with D bound to the Dataset class and the helpers below "
            "as globals (eval(expr, {'D': Dataset, **helpers})).",
            "kind 'elements': iterate the dataset; result is the list of encoded elements. "
            "kind 'value': the expression itself gives one value (Dataset.reduce); result is "
            "that encoded value. kind 'cardinality': expr is a dataset; result is "
            "int(ds.cardinality()) with -1 = INFINITE, -2 = UNKNOWN.",
            "A case with 'error' raised in TF instead: type/message of the exception, phase "
            "'build' (evaluating expr) or 'iterate'; elements_before_error lists what was "
            "yielded before it.",
            "Python floats become float32 tensors in TF but float64 arrays in NumPy, and "
            "Python ints become int32 in TF but int64 in NumPy. Where python_float_input / "
            "python_int_input is true, compare float / int values, not the exact float / "
            "int dtype (float values with a float32 tolerance).",
            "Padding values and scan/reduce initial states are given as i64(...) because TF "
            "rejects a Python int (int32) for int64 components; stoker need not.",
            "Strings: TF yields bytes; a NumPy implementation may yield str, compare after "
            "encoding str as UTF-8.",
            "Left out on purpose (TF artifacts stoker need not copy): a Python bytes literal "
            "with trailing NUL bytes loses them in TF (NumPy 'S' conversion); padded_batch "
            "with a Python-int padding_values on int64 components raises TypeError in TF; "
            "unique() rejects floats in TF.",
        ],
        "encoding": {
            "array": '{"dtype": name, "shape": [...], "value": nested list}; dtype "bytes" '
            "means TF string, with each entry base64-encoded",
            "tuple": '{"tuple": [encoded, ...]}',
            "dict": '{"dict": {key: encoded, ...}}',
        },
        "helpers": HELPERS_DOC,
        "pipelines": pipelines,
    }


def dump(obj: dict[str, Any], key: str) -> str:
    """JSON with one list entry of ``obj[key]`` per line: small and diff-friendly."""
    head = {k: v for k, v in obj.items() if k != key}
    text = json.dumps(head, indent=1, ensure_ascii=True)
    items = obj[key]
    if isinstance(items, dict):
        body = ",\n".join(
            f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in items.items()
        )
        lines = "{\n" + body + "\n }"
    else:
        body = ",\n".join(f"  {json.dumps(v, separators=(',', ':'))}" for v in items)
        lines = "[\n" + body + "\n ]"
    return text[:-2] + f',\n "{key}": {lines}\n}}\n'


def main() -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    files = write_files()
    manifest = {
        "tf_version": tf.__version__,
        "generator": "scripts/make_test_data.py",
        "notes": [
            "records / lines: what TensorFlow reads back, base64-encoded.",
            "examples: per record, its features as tf.train.Example.FromString gives them "
            "(checked against tf.io.parse_single_example with VarLenFeature); null where "
            "the record is not an Example (the empty record).",
        ],
        "files": files,
    }
    (DATA / "manifest.json").write_text(dump(manifest, "files"))
    ref = build_reference()
    (DATA / "tfdata_reference.json").write_text(dump(ref, "pipelines"))
    n_err = sum("error" in p for p in ref["pipelines"])
    print(f"TF {tf.__version__}: {len(ref['pipelines'])} pipelines ({n_err} errors)")
    for p in sorted(DATA.iterdir()):
        print(f"  {p.name}: {p.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
