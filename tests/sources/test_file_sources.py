"""The file sources: argument errors name the op and the argument; one TFRecord file resumes
at any record and delivers every good record before a damaged one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stoker as sk


@pytest.mark.parametrize("op", [sk.TFRecordDataset, sk.TextLineDataset])
@pytest.mark.parametrize(
    ("filenames", "match"),
    [
        (123, r"\(\): filenames=123 must be a path .*got int"),
        (None, r"\(\): filenames=None must be a path .*got NoneType"),
        (["a.rec", 1], r"\(\): filenames\[1\]=1 must be a path .*got int"),
        ([], r"\(\): filenames must not be empty"),
    ],
)
def test_bad_filenames_name_the_op_and_the_argument(op: Any, filenames: Any, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=op.__name__ + match):
        op(filenames)


def test_filenames_may_be_any_iterable_of_paths(tmp_path: Path) -> None:
    files = []
    for i in range(2):
        path = tmp_path / f"{i}.txt"
        path.write_text(f"line {i}\n")
        files.append(path)
    want = [b"line 0", b"line 1"]
    assert list(sk.TextLineDataset(p for p in files)) == want  # a generator
    assert list(sk.TextLineDataset(tuple(files))) == want
    assert list(sk.TextLineDataset(np.array([str(p) for p in files]))) == want
    assert list(sk.TextLineDataset([str(files[0]).encode(), files[1]])) == want


def _write_records(path: Path, n: int) -> list[bytes]:
    from stoker.io import TFRecordWriter

    records = [f"record {i} ".encode() * (1 + i % 7) for i in range(n)]
    with TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)
    return records


@pytest.mark.parametrize("stop", [0, 1, 4095, 4096, 4097, 6000, 9000])
def test_one_tfrecord_file_resumes_at_any_record(tmp_path: Path, stop: int) -> None:
    # One named file is read by the file's own node in blocks of 4,096 records: a state
    # taken mid-block, at a block's end or at the end names the next record exactly.
    path = tmp_path / "a.tfrecord"
    records = _write_records(path, 9000)
    ds = sk.TFRecordDataset(str(path))
    it = ds.iterator()
    got = [next(it) for _ in range(stop)]
    state = it.get_state()
    it.close()
    rest = list(ds.iterator(state))
    assert got + rest == records
    assert json.loads(json.dumps(state)) == state


def test_one_tfrecord_file_delivers_every_good_record_before_the_damage(tmp_path: Path) -> None:
    from stoker.errors import DataLossError

    path = tmp_path / "a.tfrecord"
    records = _write_records(path, 5000)
    data = bytearray(path.read_bytes())
    offset = sum(len(r) + 16 for r in records[:4500])
    data[offset + 12] ^= 0xFF  # the first data byte of record 4500
    path.write_bytes(bytes(data))
    it = iter(sk.TFRecordDataset(str(path)))
    got = []
    with pytest.raises(DataLossError, match=r"a\.tfrecord"):
        for r in it:
            got.append(r)
    assert got == records[:4500]
    assert list(sk.TFRecordDataset([str(path)]).ignore_errors()) == records[:4500]
