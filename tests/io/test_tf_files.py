"""stoker's TFRecord / text readers and Example parser against files TensorFlow wrote.

The files under ``tests/data/`` and ``manifest.json`` (what TensorFlow reads back from
each) are written by ``scripts/make_test_data.py``.
"""

from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stoker
from stoker.errors import DataLossError

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
FILES: dict[str, dict[str, Any]] = MANIFEST["files"]

TFRECORD_FILES = [n for n, f in FILES.items() if f["kind"] == "tfrecord"]
EXAMPLE_FILES = [n for n, f in FILES.items() if "examples" in f]
TEXT_FILES = [n for n, f in FILES.items() if f["kind"] == "text"]
PLAIN_RECORDS = "tf_plain.tfrecord"

DTYPES = {"int64": np.dtype(np.int64), "float32": np.dtype(np.float32)}


def _path(name: str) -> str:
    return str(DATA / name)


def _records(name: str) -> list[bytes]:
    return [base64.b64decode(r) for r in FILES[name]["records"]]


def _lines(name: str) -> list[bytes]:
    return [base64.b64decode(r) for r in FILES[name]["lines"]]


def _as_bytes(x: Any) -> bytes:
    """A record / line element as bytes: bytes, np.bytes_, 0-d object array or str."""
    if isinstance(x, np.ndarray):
        assert x.shape == (), f"expected a scalar element, got shape {x.shape}"
        x = x.item()
    if isinstance(x, str):
        return x.encode("utf-8")
    assert isinstance(x, (bytes, bytearray, np.bytes_)), f"not bytes: {type(x).__name__}"
    return bytes(x)


def _sio() -> Any:
    """``stoker.io``, imported when a test needs it."""
    return importlib.import_module("stoker.io")


def _close(reader: Any) -> None:
    close = getattr(reader, "close", None)
    if close is not None:
        close()


def _read_all(reader: Any) -> list[bytes]:
    try:
        return [_as_bytes(r) for r in reader]
    finally:
        _close(reader)


def test_manifest_is_sane() -> None:
    assert set(FILES) == {
        "tf_plain.tfrecord",
        "tf_gzip.tfrecord.gz",
        "tf_zlib.tfrecord.zz",
        "tf_raw.tfrecord",
        "tf_lines.txt",
        "tf_lines.txt.gz",
    }
    for name in FILES:
        assert (DATA / name).is_file(), name
    records = _records(PLAIN_RECORDS)
    for name in EXAMPLE_FILES:
        assert _records(name) == records
        assert FILES[name]["examples"] == FILES[PLAIN_RECORDS]["examples"]
    assert b"" in records
    assert 70000 in {len(r) for r in _records("tf_raw.tfrecord")}


# --------------------------------------------------------------------------------------
# stoker.io readers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TFRECORD_FILES)
def test_tfrecord_reader(name: str) -> None:
    f = FILES[name]
    reader = _sio().TFRecordReader(_path(name), compression_type=f["compression_type"])
    assert _read_all(reader) == _records(name)


@pytest.mark.parametrize("name", TEXT_FILES)
def test_text_line_reader(name: str) -> None:
    f = FILES[name]
    reader = _sio().TextLineReader(_path(name), compression_type=f["compression_type"])
    assert _read_all(reader) == _lines(name)


def test_text_lines_drop_carriage_returns() -> None:
    # TF strips "\r" of "\r\n" and also drops a lone "\r" inside a line.
    lines = _lines("tf_lines.txt")
    assert b"midcarriage" in lines
    assert not any(b"\r" in line for line in lines)
    assert lines[-1] == b"last line without newline"


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_parse_example(name: str) -> None:
    f = FILES[name]
    checked = 0
    for i, (record, expected) in enumerate(zip(_records(name), f["examples"], strict=True)):
        if expected is None:  # not an Example (the empty record)
            continue
        parsed = _sio().parse_example(record)
        assert set(parsed) == set(expected), f"record {i}"
        for key, feat in expected.items():
            got = parsed[key]
            where = f"record {i} feature {key!r}"
            assert isinstance(got, np.ndarray), where
            assert got.shape == (len(feat["value"]),), where
            if feat["dtype"] == "bytes":
                assert got.dtype == object, where
                assert [bytes(v) for v in got] == [base64.b64decode(v) for v in feat["value"]]
                assert all(isinstance(v, bytes) for v in got), where
            else:
                assert got.dtype == DTYPES[feat["dtype"]], where
                want = np.array(feat["value"], dtype=DTYPES[feat["dtype"]])
                assert np.array_equal(got, want), f"{where}: {got.tolist()} != {want.tolist()}"
                if feat["dtype"] == "float32":  # -0.0 keeps its sign
                    assert np.array_equal(np.signbit(got), np.signbit(want)), where
        checked += 1
    assert checked == len(f["examples"]) - f["examples"].count(None)


# --------------------------------------------------------------------------------------
# Dataset level
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TFRECORD_FILES)
def test_tfrecord_dataset(name: str) -> None:
    f = FILES[name]
    ds = stoker.TFRecordDataset(_path(name), compression_type=f["compression_type"])
    assert [_as_bytes(r) for r in ds] == _records(name)


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_tfrecord_dataset_several_paths(name: str) -> None:
    f = FILES[name]
    ds = stoker.TFRecordDataset([_path(name), _path(name)], compression_type=f["compression_type"])
    assert [_as_bytes(r) for r in ds] == _records(name) * 2


def test_tfrecord_dataset_default_is_uncompressed() -> None:
    ds = stoker.TFRecordDataset(_path("tf_raw.tfrecord"))
    assert [_as_bytes(r) for r in ds] == _records("tf_raw.tfrecord")


@pytest.mark.parametrize("name", TEXT_FILES)
def test_text_line_dataset(name: str) -> None:
    f = FILES[name]
    ds = stoker.TextLineDataset(_path(name), compression_type=f["compression_type"])
    assert [_as_bytes(r) for r in ds] == _lines(name)


@pytest.mark.parametrize("name", TEXT_FILES)
def test_text_line_dataset_several_paths(name: str) -> None:
    f = FILES[name]
    ds = stoker.TextLineDataset([_path(name), _path(name)], compression_type=f["compression_type"])
    assert [_as_bytes(r) for r in ds] == _lines(name) * 2


# --------------------------------------------------------------------------------------
# Damaged input: TF raises DataLossError in each of these cases
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wrong_type"),
    [("tf_gzip.tfrecord.gz", ""), ("tf_plain.tfrecord", "GZIP"), ("tf_plain.tfrecord", "ZLIB")],
)
def test_wrong_compression_type_is_data_loss(name: str, wrong_type: str) -> None:
    with pytest.raises(DataLossError):
        _read_all(_sio().TFRecordReader(_path(name), compression_type=wrong_type))


def test_truncated_record_is_data_loss(tmp_path: Path) -> None:
    data = (DATA / PLAIN_RECORDS).read_bytes()
    path = tmp_path / "truncated.tfrecord"
    path.write_bytes(data[:-1])  # cuts into the last record's footer
    got: list[bytes] = []
    reader = _sio().TFRecordReader(str(path), compression_type="")
    try:
        with pytest.raises(DataLossError):
            for r in reader:
                got.append(_as_bytes(r))
    finally:
        _close(reader)
    assert got == _records(PLAIN_RECORDS)[:-1]


def test_corrupted_payload_is_data_loss(tmp_path: Path) -> None:
    data = bytearray((DATA / PLAIN_RECORDS).read_bytes())
    data[20] ^= 0x01  # inside the first record's payload: its data CRC no longer matches
    path = tmp_path / "corrupt.tfrecord"
    path.write_bytes(bytes(data))
    with pytest.raises(DataLossError):
        _read_all(_sio().TFRecordReader(str(path), compression_type=""))
