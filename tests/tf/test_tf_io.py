"""``tf.io``: Example parsing, TFRecord writing and files, with TensorFlow's signatures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stoker
import stoker.tf as tf
from stoker.io import make_example

SPEC = {
    "label": tf.io.FixedLenFeature([], tf.int64),
    "bbox": tf.io.FixedLenFeature([4], tf.float32),
    "name": tf.io.FixedLenFeature([], tf.string),
}


def _record(i: int) -> bytes:
    return make_example(
        {"label": i, "bbox": np.float32([i, 0, 1, 1]), "name": f"n{i}", "tags": [i, i + 1]}
    )


def test_parse_single_example() -> None:
    example = tf.io.parse_single_example(_record(3), SPEC)
    assert example["label"] == 3 and example["label"].dtype == np.int64
    assert example["bbox"].tolist() == [3, 0, 1, 1] and example["bbox"].dtype == np.float32
    name = example["name"]
    assert (name if isinstance(name, bytes) else name[()]) == b"n3"
    tags = tf.io.parse_single_example(_record(3), {"tags": tf.io.VarLenFeature(tf.int64)})
    assert tags["tags"].tolist() == [3, 4]


def test_parse_example_on_a_batch() -> None:
    ds = tf.data.Dataset.from_tensor_slices(
        np.array([_record(i) for i in range(5)], dtype=object)
    ).batch(2)
    batches = [tf.io.parse_example(records, SPEC) for records in ds]
    assert [b["label"].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert batches[0]["bbox"].shape == (2, 4)
    assert batches[0]["name"].dtype == object and batches[0]["name"].tolist() == [b"n0", b"n1"]
    single = tf.io.parse_example(_record(1), SPEC)
    assert single["label"] == 1


def test_parse_example_refuses_varlen_in_a_batch() -> None:
    with pytest.raises(ValueError, match=r"features\['tags'\] is a VarLenFeature"):
        tf.io.parse_example([_record(0)], {"tags": tf.io.VarLenFeature(tf.int64)})


@pytest.mark.parametrize("options", [None, "", "GZIP", tf.io.TFRecordOptions("ZLIB")])
def test_tfrecord_writer_options(tmp_path: Path, options: object) -> None:
    path = tmp_path / "x.tfrecord"
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for i in range(3):
            writer.write(_record(i))
    compression = (
        options.compression_type if isinstance(options, tf.io.TFRecordOptions) else options
    )
    ds = tf.data.TFRecordDataset(str(path), compression_type=compression)
    assert [int(tf.io.parse_single_example(r, SPEC)["label"]) for r in ds] == [0, 1, 2]
    with tf.io.TFRecordWriter(str(tmp_path / "y")) as other:
        assert isinstance(other, stoker.io.TFRecordWriter)


def test_tfrecord_options_refuse_what_they_cannot_honour() -> None:
    with pytest.raises(ValueError, match=r"\['compression_level'\] are not supported"):
        tf.io.TFRecordOptions("GZIP", compression_level=9)
    with pytest.raises(TypeError, match="options="):
        tf.io.TFRecordWriter("unused", options=3)  # type: ignore[arg-type]


def test_read_file(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"\x00\x01abc")
    assert tf.io.read_file(tmp_path / "f.bin") == b"\x00\x01abc"
    assert tf.io.read_file(str(tmp_path / "f.bin")) == b"\x00\x01abc"


def test_decode_raw() -> None:
    data = np.arange(6, dtype="<u2").tobytes()
    out = tf.io.decode_raw(data, tf.uint16)
    assert out.dtype == np.uint16 and out.tolist() == [0, 1, 2, 3, 4, 5]
    assert tf.io.decode_raw(data, tf.uint16, little_endian=False).tolist() == [
        0,
        256,
        512,
        768,
        1024,
        1280,
    ]
    assert tf.io.decode_raw(b"\x01\x02\x03", tf.uint8).tolist() == [1, 2, 3]
    batch = np.array([b"\x01\x02", b"\x03\x04"], dtype=object)
    assert tf.io.decode_raw(batch, tf.uint8).tolist() == [[1, 2], [3, 4]]
    ragged = [b"\x01", b"\x02\x03\x04"]
    assert tf.io.decode_raw(ragged, tf.uint8, fixed_length=2).tolist() == [[1, 0], [2, 3]]
    with pytest.raises(ValueError, match="different lengths"):
        tf.io.decode_raw(ragged, tf.uint8)
    with pytest.raises(ValueError, match="3 bytes are not a whole number of uint16"):
        tf.io.decode_raw(b"abc", tf.uint16)
    with pytest.raises(TypeError, match="not a numeric dtype"):
        tf.io.decode_raw(b"abc", tf.string)
