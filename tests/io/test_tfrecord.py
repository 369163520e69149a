from __future__ import annotations

import base64
import gzip
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stoker.errors import DataLossError
from stoker.io import TFRecordReader, TFRecordWriter, masked_crc32c

DATA = Path(__file__).resolve().parent.parent / "data"
COMPRESSIONS = [None, "GZIP", "ZLIB"]


def _crc32c_reference(data: bytes) -> int:
    """Bit-by-bit CRC-32C (Castagnoli, reflected poly 0x82F63B78): independent of crc32c."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked_reference(data: bytes) -> int:
    crc = _crc32c_reference(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def _frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", _masked_reference(length))
        + data
        + struct.pack("<I", _masked_reference(data))
    )


def _write(path: Path, records: list[bytes], compression: str | None = None) -> None:
    with TFRecordWriter(path, compression) as writer:
        for record in records:
            writer.write(record)


def _read_all(path: Path, **kwargs: object) -> list[bytes]:
    with TFRecordReader(path, **kwargs) as reader:  # type: ignore[arg-type]
        return list(reader)


RECORDS = [b"", b"a", b"hello world", bytes(range(256)) * 40, b"\x00" * 3, os.urandom(70_000)]


# -- format ----------------------------------------------------------------------------------


def test_crc32c_check_value_and_mask() -> None:
    assert _crc32c_reference(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    for data in [b"", b"123456789", b"\x00" * 32, os.urandom(100)]:
        assert masked_crc32c(data) == _masked_reference(data)


@pytest.mark.parametrize("record", [b"", b"hello", os.urandom(1000)])
def test_writer_is_byte_exact(tmp_path: Path, record: bytes) -> None:
    path = tmp_path / "x.tfrecord"
    _write(path, [record, record])
    assert path.read_bytes() == _frame(record) * 2


def test_writer_hand_computed_bytes(tmp_path: Path) -> None:
    # Length 5 -> header bytes 05 00 .. 00, then the masked CRCs, all little-endian.
    path = tmp_path / "x.tfrecord"
    _write(path, [b"hello"])
    raw = path.read_bytes()
    assert raw[:8] == b"\x05" + b"\x00" * 7
    assert struct.unpack("<I", raw[8:12])[0] == _masked_reference(raw[:8])
    assert raw[12:17] == b"hello"
    assert struct.unpack("<I", raw[17:])[0] == _masked_reference(b"hello")
    assert len(raw) == 21


def test_writer_accepts_buffers(tmp_path: Path) -> None:
    path = tmp_path / "x.tfrecord"
    arr = np.arange(6, dtype=np.int32)
    with TFRecordWriter(path) as writer:
        writer.write(bytearray(b"ab"))
        writer.write(memoryview(b"xyz")[1:])
        writer.write(arr)  # type: ignore[arg-type]  # any C-contiguous buffer
    assert _read_all(path) == [b"ab", b"yz", arr.tobytes()]


def test_writer_rejects_str_and_closed(tmp_path: Path) -> None:
    writer = TFRecordWriter(tmp_path / "x.tfrecord")
    with pytest.raises(TypeError, match="encode"):
        writer.write("text")  # type: ignore[arg-type]
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"x")


def test_bad_compression_type(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'LZ4'.*GZIP.*ZLIB"):
        TFRecordWriter(tmp_path / "x", "LZ4")
    _write(tmp_path / "y", [b"x"])
    with pytest.raises(ValueError, match=r"'BZ2'.*GZIP.*ZLIB"):
        TFRecordReader(tmp_path / "y", "BZ2")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.tfrecord"):
        TFRecordReader(tmp_path / "nope.tfrecord")


@pytest.mark.parametrize("kwargs", [{"buffer_size": 0}, {"offset": -1}, {"offset": 1.5}])
def test_bad_reader_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    _write(tmp_path / "x", [b"x"])
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TFRecordReader(tmp_path / "x", **kwargs)  # type: ignore[arg-type]


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("buffer_size", [1, 7, 100, None])
def test_round_trip(tmp_path: Path, compression: str | None, buffer_size: int | None) -> None:
    path = tmp_path / "x.tfrecord"
    _write(path, RECORDS, compression)
    assert _read_all(path, compression_type=compression, buffer_size=buffer_size) == RECORDS
    with TFRecordReader(path, compression, buffer_size=buffer_size) as reader:
        blocks = []
        while block := reader.read_block(4):
            assert len(block) <= 4
            blocks.append(block)
        assert reader.read_block(4) == []
    assert [r for b in blocks for r in b] == RECORDS
    assert [len(b) for b in blocks] == [4, 2]


def test_compressed_output_is_standard(tmp_path: Path) -> None:
    _write(tmp_path / "plain", RECORDS)
    _write(tmp_path / "gz", RECORDS, "GZIP")
    _write(tmp_path / "zz", RECORDS, "zlib")  # case-insensitive, like TensorFlow
    plain = (tmp_path / "plain").read_bytes()
    assert gzip.decompress((tmp_path / "gz").read_bytes()) == plain
    assert zlib.decompress((tmp_path / "zz").read_bytes()) == plain


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_empty_file(tmp_path: Path, compression: str | None) -> None:
    path = tmp_path / "x"
    _write(path, [], compression)
    with TFRecordReader(path, compression) as reader:
        assert list(reader) == []
        assert reader.read_block(10) == []
        assert reader.offset == 0


def test_zero_byte_file_is_empty_for_every_compression(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"")
    for compression in COMPRESSIONS:
        assert _read_all(tmp_path / "x", compression_type=compression) == []


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_flush_makes_records_readable(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "x"
    with TFRecordWriter(path, compression) as writer:
        writer.write(b"one")
        writer.write(b"two")
        writer.flush()
        # A sync-flushed stream is complete up to here but has no end marker yet.
        with TFRecordReader(path, compression) as reader:
            assert reader.read_block(2) == [b"one", b"two"]
        writer.write(b"three")
    assert _read_all(path, compression_type=compression) == [b"one", b"two", b"three"]


def test_multi_member_gzip(tmp_path: Path) -> None:
    _write(tmp_path / "a", [b"1", b"2"], "GZIP")
    _write(tmp_path / "b", [b"3"], "GZIP")
    joined = tmp_path / "ab"
    joined.write_bytes((tmp_path / "a").read_bytes() + (tmp_path / "b").read_bytes())
    assert _read_all(joined, compression_type="GZIP") == [b"1", b"2", b"3"]


def test_close_is_idempotent_and_stops_reading(tmp_path: Path) -> None:
    _write(tmp_path / "x", [b"1", b"2"])
    reader = TFRecordReader(tmp_path / "x")
    assert next(reader) == b"1"
    reader.close()
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        next(reader)
    with pytest.raises(ValueError, match="closed"):
        reader.read_block(1)


def test_read_block_rejects_bad_count(tmp_path: Path) -> None:
    _write(tmp_path / "x", [b"1"])
    with TFRecordReader(tmp_path / "x") as reader, pytest.raises(ValueError, match="max_records"):
        reader.read_block(0)


# -- offsets and resuming --------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("buffer_size", [5, None])
def test_offset_and_resume(
    tmp_path: Path, compression: str | None, buffer_size: int | None
) -> None:
    path = tmp_path / "x"
    _write(path, RECORDS, compression)
    offsets = []
    with TFRecordReader(path, compression, buffer_size=buffer_size) as reader:
        offsets.append(reader.offset)
        for _ in reader:
            offsets.append(reader.offset)
    expected = np.cumsum([0] + [len(r) + 16 for r in RECORDS]).tolist()
    assert offsets == expected
    for k, offset in enumerate(offsets):
        got = _read_all(path, compression_type=compression, offset=offset, buffer_size=buffer_size)
        assert got == RECORDS[k:]


def test_offset_advances_with_read_block(tmp_path: Path) -> None:
    path = tmp_path / "x"
    _write(path, RECORDS)
    with TFRecordReader(path) as reader:
        reader.read_block(2)
        middle = reader.offset
        assert middle == 16 + 17
        rest = reader.read_block(100)
    assert rest == RECORDS[2:]
    assert _read_all(path, offset=middle) == RECORDS[2:]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_offset_past_end(tmp_path: Path, compression: str | None) -> None:
    path = tmp_path / "x"
    _write(path, [b"abc"], compression)
    assert _read_all(path, compression_type=compression, offset=19) == []
    with pytest.raises(ValueError, match=r"offset=20 is past the end of .*x"):
        TFRecordReader(path, compression, offset=20)


# -- corruption ------------------------------------------------------------------------------


def _corrupt(path: Path, position: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[position] ^= 0x40
    path.write_bytes(bytes(raw))


GOOD = [b"rec0" * 10, b"rec1", b"rec2" * 100, b"rec3" * 7, b"rec4"]
BAD_OFFSET = sum(len(r) + 16 for r in GOOD[:3])  # records 0-2 are fine, record 3 is not


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (0, "length CRC mismatch"),  # the length itself
        (9, "length CRC mismatch"),  # the stored length CRC
        (12 + 5, "data CRC mismatch"),  # the data
        (12 + len(GOOD[3]) + 2, "data CRC mismatch"),  # the stored data CRC
    ],
)
@pytest.mark.parametrize("mode", ["iter", "block"])
@pytest.mark.parametrize("buffer_size", [3, None])
def test_corrupt_record(
    tmp_path: Path, where: int, message: str, mode: str, buffer_size: int | None
) -> None:
    path = tmp_path / "bad.tfrecord"
    _write(path, GOOD)
    _corrupt(path, BAD_OFFSET + where)
    delivered: list[bytes] = []
    reader = TFRecordReader(path, buffer_size=buffer_size)
    with pytest.raises(DataLossError) as info:
        if mode == "iter":
            for record in reader:
                delivered.append(record)
        else:
            while block := reader.read_block(100):
                delivered.extend(block)
    assert delivered == GOOD[:3]
    text = str(info.value)
    assert message in text
    assert str(path) in text
    assert f"offset {BAD_OFFSET}" in text
    assert "ignore_errors()" in text
    assert info.value.path == str(path)
    assert info.value.offset == BAD_OFFSET
    assert reader.offset == BAD_OFFSET
    with pytest.raises(DataLossError, match=message):  # the error is sticky
        next(reader)
    reader.close()


def test_corrupt_length_in_a_straddling_record(tmp_path: Path) -> None:
    """The same error when the bad header is split across two buffer refills."""
    path = tmp_path / "bad.tfrecord"
    _write(path, GOOD)
    _corrupt(path, BAD_OFFSET + 2)
    with TFRecordReader(path, buffer_size=BAD_OFFSET + 5) as reader:
        assert reader.read_block(3) == GOOD[:3]
        with pytest.raises(DataLossError, match=f"offset {BAD_OFFSET} .*length CRC"):
            next(reader)


def test_check_crc_false_skips_the_data_check(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfrecord"
    _write(path, GOOD)
    _corrupt(path, BAD_OFFSET + 12)
    got = _read_all(path, check_crc=False)
    assert got[:3] == GOOD[:3] and got[4] == GOOD[4]
    assert got[3] != GOOD[3] and len(got[3]) == len(GOOD[3])


@pytest.mark.parametrize("cut", [1, 11, 12, 12 + 3, 12 + len(GOOD[3]) + 2])
@pytest.mark.parametrize("mode", ["iter", "block"])
@pytest.mark.parametrize("check_crc", [True, False])
def test_truncated_file(tmp_path: Path, cut: int, mode: str, check_crc: bool) -> None:
    path = tmp_path / "cut.tfrecord"
    _write(path, GOOD[:4])
    path.write_bytes(path.read_bytes()[: BAD_OFFSET + cut])
    delivered: list[bytes] = []
    with TFRecordReader(path, check_crc=check_crc) as reader:
        with pytest.raises(DataLossError) as info:
            if mode == "iter":
                delivered.extend(reader)
            else:
                while block := reader.read_block(2):
                    delivered.extend(block)
        assert delivered == GOOD[:3]
    text = str(info.value)
    assert "truncated" in text and str(path) in text and f"offset {BAD_OFFSET}" in text
    assert info.value.offset == BAD_OFFSET


def test_huge_corrupt_length_without_crc_check_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(struct.pack("<QI", 2**62, 0) + b"tiny")
    with TFRecordReader(path, check_crc=False) as reader:
        with pytest.raises(DataLossError, match="truncated record at offset 0"):
            next(reader)


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_corrupt_compressed_stream(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "bad.gz"
    records = [(b"record %d " % i) * 5 for i in range(2000)]
    _write(path, records, compression)
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 64):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    delivered: list[bytes] = []
    with TFRecordReader(path, compression, buffer_size=1024) as reader:
        with pytest.raises(DataLossError) as info:
            while block := reader.read_block(100):
                delivered.extend(block)
    # Usually zlib notices ("corrupted GZIP stream in ..."); if the damage still inflates,
    # a record CRC catches it. Either way the error names the file.
    assert str(path) in str(info.value)
    assert delivered == records[: len(delivered)]
    assert info.value.offset == sum(len(r) + 16 for r in delivered)
    assert 0 < len(delivered) < len(records)


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_truncated_compressed_stream(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "cut.gz"
    _write(path, [os.urandom(100) for _ in range(100)], compression)
    path.write_bytes(path.read_bytes()[:-30])
    delivered: list[bytes] = []
    with pytest.raises(DataLossError, match=f"offset .* of .*cut.gz: corrupted {compression}"):
        with TFRecordReader(path, compression) as reader:
            delivered.extend(reader)
    # Everything before the damage came out (the record CRCs vouch for it).
    assert len(delivered) >= 98


def test_not_gzip_at_all(tmp_path: Path) -> None:
    path = tmp_path / "plain"
    _write(path, [b"abc"])
    with pytest.raises(DataLossError, match=r"record at offset 0 of .*plain: corrupted GZIP"):
        _read_all(path, compression_type="GZIP")


# -- files written by TensorFlow -------------------------------------------------------------


def _manifest_tfrecords() -> list[tuple[str, dict[str, object]]]:
    manifest = DATA / "manifest.json"
    if not manifest.exists():
        return []
    files = json.loads(manifest.read_text())["files"]
    return [(name, entry) for name, entry in sorted(files.items()) if entry["kind"] == "tfrecord"]


@pytest.mark.skipif(not _manifest_tfrecords(), reason="no TensorFlow-written files in tests/data")
@pytest.mark.parametrize(("name", "entry"), _manifest_tfrecords())
@pytest.mark.parametrize("buffer_size", [3, None])
def test_reads_tensorflow_files(
    name: str, entry: dict[str, object], buffer_size: int | None
) -> None:
    expected = [base64.b64decode(r) for r in entry["records"]]  # type: ignore[attr-defined]
    compression = entry["compression_type"]
    assert _read_all(DATA / name, compression_type=compression, buffer_size=buffer_size) == expected
    with TFRecordReader(DATA / name, compression, buffer_size=buffer_size) as reader:  # type: ignore[arg-type]
        assert reader.read_block(5) == expected[:5]
        middle = reader.offset
    assert _read_all(DATA / name, compression_type=compression, offset=middle) == expected[5:]


@pytest.mark.skipif(not _manifest_tfrecords(), reason="no TensorFlow-written files in tests/data")
@pytest.mark.parametrize(
    ("name", "entry"), [(n, e) for n, e in _manifest_tfrecords() if not e["compression_type"]]
)
def test_writes_the_same_bytes_as_tensorflow(
    tmp_path: Path, name: str, entry: dict[str, object]
) -> None:
    records = [base64.b64decode(r) for r in entry["records"]]  # type: ignore[attr-defined]
    _write(tmp_path / name, records)
    assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(st.binary(max_size=300), max_size=30),
    compression=st.sampled_from(COMPRESSIONS),
    buffer_size=st.sampled_from([1, 13, 1000, None]),
    block=st.integers(1, 7),
)
def test_property_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[bytes],
    compression: str | None,
    buffer_size: int | None,
    block: int,
) -> None:
    path = tmp_path_factory.mktemp("prop") / "x.tfrecord"
    _write(path, records, compression)
    ends = np.cumsum([0] + [len(r) + 16 for r in records]).tolist()
    with TFRecordReader(path, compression, buffer_size=buffer_size) as reader:
        got, offsets = [], [reader.offset]
        while batch := reader.read_block(block):
            got.extend(batch)
            offsets.append(reader.offset)
    assert got == records
    assert offsets == ends[::block] + ([ends[-1]] if (len(ends) - 1) % block else [])
    # Record at a time, resuming from a mid-file offset.
    k = len(records) // 2
    assert _read_all(path, compression_type=compression, offset=ends[k]) == records[k:]


@pytest.mark.parametrize("bad", [0, 1, 299, 499])
@pytest.mark.parametrize("part", ["data", "stored CRC"])
@pytest.mark.parametrize("buffer_size", [4096, None])
def test_corrupt_record_in_a_bulk_checked_block(
    tmp_path: Path, bad: int, part: str, buffer_size: int | None
) -> None:
    """read_block checks long runs of small records with NumPy; the result must be the
    same as checking them one by one."""
    records = [b"%05d" % i * (1 + i % 7) for i in range(500)]
    path = tmp_path / "bad.tfrecord"
    _write(path, records)
    offset = sum(len(r) + 16 for r in records[:bad])
    _corrupt(path, offset + 12 + (1 if part == "data" else len(records[bad]) + 1))
    with TFRecordReader(path, buffer_size=buffer_size) as reader:
        if bad:  # the good records first, then the error
            assert reader.read_block(1000) == records[:bad]
        assert reader.offset == offset
        with pytest.raises(DataLossError, match=f"offset {offset} of .*data CRC mismatch"):
            reader.read_block(1000)
    # With the bad record skipped by hand (what ignore_errors() does per file), the rest reads.
    after = offset + len(records[bad]) + 16
    assert _read_all(path, offset=after) == records[bad + 1 :]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(st.binary(max_size=40), min_size=1, max_size=300),
    data=st.data(),
    buffer_size=st.sampled_from([7, 512, 2048, None]),
    block=st.sampled_from([0, 1, 5, 1000]),
)
def test_property_any_flipped_byte_is_caught_at_its_record(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[bytes],
    data: st.DataObject,
    buffer_size: int | None,
    block: int,
) -> None:
    """CRC-32C catches every error burst of up to 32 bits, so flipping any one byte must
    stop the reader exactly at the record holding it, after all the records before it."""
    path = tmp_path_factory.mktemp("flip") / "x.tfrecord"
    _write(path, records)
    starts = np.cumsum([0] + [len(r) + 16 for r in records]).tolist()
    where = data.draw(st.integers(0, starts[-1] - 1))
    _corrupt(path, where)
    bad = int(np.searchsorted(starts, where, side="right")) - 1
    got: list[bytes] = []
    with TFRecordReader(path, buffer_size=buffer_size) as reader:
        with pytest.raises(DataLossError) as info:
            if block:
                while batch := reader.read_block(block):
                    got.extend(batch)
            else:
                got.extend(reader)
    assert got == records[:bad]
    assert info.value.offset == starts[bad]


@pytest.mark.parametrize("bad", [0, 3, 7, 19])
@pytest.mark.parametrize("where", ["length", "data"])
@pytest.mark.parametrize("mode", ["iter", "block"])
def test_corrupt_big_records(tmp_path: Path, bad: int, where: str, mode: str) -> None:
    """Big records have their CRCs checked one by one, right after each copy."""
    records = [bytes([i]) * 3000 for i in range(20)]
    path = tmp_path / "big.tfrecord"
    _write(path, records)
    offset = 3016 * bad
    _corrupt(path, offset + (3 if where == "length" else 12 + 100))
    got: list[bytes] = []
    with TFRecordReader(path, buffer_size=16 << 10) as reader:
        with pytest.raises(DataLossError, match=f"offset {offset} .*{where} CRC mismatch"):
            if mode == "iter":
                got.extend(reader)
            else:
                while block := reader.read_block(6):
                    got.extend(block)
    assert got == records[:bad]


@pytest.mark.parametrize("buffer_size", [5, None])
def test_mixing_next_and_read_block(tmp_path: Path, buffer_size: int | None) -> None:
    records = [b"r%d" % i * (i + 1) for i in range(300)]
    path = tmp_path / "x"
    _write(path, records)
    ends = np.cumsum([0] + [len(r) + 16 for r in records]).tolist()
    got: list[bytes] = []
    with TFRecordReader(path, buffer_size=buffer_size) as reader:
        for size in [0, 3, 0, 0, 200, 0, 1000]:
            if size:
                got.extend(reader.read_block(size))
            else:
                got.append(next(reader))
            assert reader.offset == ends[len(got)]
        assert reader.read_block(5) == []
        with pytest.raises(StopIteration):
            next(reader)
    assert got == records


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_truncated_record_inside_a_complete_compressed_stream(
    tmp_path: Path, compression: str
) -> None:
    _write(tmp_path / "plain", [b"a" * 100, b"b" * 100])
    cut = (tmp_path / "plain").read_bytes()[: 116 + 50]
    pack = gzip.compress if compression == "GZIP" else zlib.compress
    path = tmp_path / "x"
    path.write_bytes(pack(cut))
    with TFRecordReader(path, compression) as reader:
        assert next(reader) == b"a" * 100
        with pytest.raises(DataLossError, match=r"truncated record at offset 116 .* 50 of its 116"):
            next(reader)


def test_resuming_past_damage_in_a_compressed_stream(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    _write(path, [(b"record %d " % i) * 5 for i in range(5000)], "GZIP")
    raw = bytearray(path.read_bytes())
    for i in range(100, 140):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataLossError, match=r"cannot reach offset 200000 of .*x\.gz"):
        TFRecordReader(path, "GZIP", offset=200_000)


def test_repr_names_path_and_offset(tmp_path: Path) -> None:
    _write(tmp_path / "x", [b"abc"])
    with TFRecordReader(tmp_path / "x") as reader:
        next(reader)
        assert repr(reader) == f"TFRecordReader({str(tmp_path / 'x')!r}, offset=19)"


# -- runs of equal-length records (framed with NumPy, CRCs checked by one call per run) ------


def _equal_records(n: int, size: int) -> list[bytes]:
    rng = np.random.default_rng(size)
    return [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for _ in range(n)]


@pytest.mark.parametrize("size", [0, 1, 100, 1000, 10_000])
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_equal_length_runs_take_the_bulk_path(
    tmp_path: Path, size: int, compression: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10 kB records: the buffer grows to hold a run of them, which then takes the bulk path.
    records = _equal_records(700 if size < 10_000 else 300, size)
    path = tmp_path / "x"
    _write(path, records, compression)
    taken: list[int] = []
    original = TFRecordReader._take_equal_run

    def spy(self: TFRecordReader, out: list[bytes], want: int) -> int:
        n = original(self, out, want)
        taken.append(n)
        return n

    monkeypatch.setattr(TFRecordReader, "_take_equal_run", spy)
    assert _read_all(path, compression_type=compression) == records
    # Most records came through the bulk path, so its run CRC held on valid data.
    assert sum(taken) > len(records) // 2


@pytest.mark.parametrize("bad", [0, 1, 17, 255, 256, 699])
@pytest.mark.parametrize("part", ["length", "length CRC", "data", "stored CRC"])
@pytest.mark.parametrize("mode", ["iter", "next", "block"])
def test_corrupt_record_in_an_equal_length_run(
    tmp_path: Path, bad: int, part: str, mode: str
) -> None:
    """One bad record in a run of equal-length records: every record before it is
    delivered, then the error names its offset, as on the record-by-record path."""
    records = _equal_records(700, 1000)
    path = tmp_path / "bad.tfrecord"
    _write(path, records)
    offset = 1016 * bad
    where = {"length": 1, "length CRC": 9, "data": 12 + 500, "stored CRC": 12 + 1000 + 2}[part]
    _corrupt(path, offset + where)
    got: list[bytes] = []
    with TFRecordReader(path) as reader:
        with pytest.raises(DataLossError, match=f"offset {offset} of ") as info:
            if mode == "iter":
                for record in reader:
                    got.append(record)
            elif mode == "next":
                while True:
                    got.append(next(reader))
            else:
                while block := reader.read_block(100):
                    got.extend(block)
        assert info.value.offset == offset
        assert reader.offset == offset
    assert got == records[:bad]


@pytest.mark.parametrize("bad", [0, 40, 99, 199])
@pytest.mark.parametrize("part", ["data", "stored CRC"])
@pytest.mark.parametrize("mode", ["iter", "block"])
def test_corrupt_big_record_in_an_equal_length_run(
    tmp_path: Path, bad: int, part: str, mode: str
) -> None:
    """Runs of records over 2 kB get one CRC call per record; a bad one is still exact."""
    records = _equal_records(200, 5000)
    path = tmp_path / "bad.tfrecord"
    _write(path, records)
    offset = 5016 * bad
    _corrupt(path, offset + (12 + 4000 if part == "data" else 12 + 5000 + 3))
    got: list[bytes] = []
    with TFRecordReader(path, buffer_size=1 << 20) as reader:
        with pytest.raises(DataLossError, match=f"offset {offset} of .*data CRC mismatch"):
            if mode == "iter":
                got.extend(reader)
            else:
                while block := reader.read_block(150):
                    got.extend(block)
    assert got == records[:bad]


def test_two_bad_records_in_one_run_are_caught(tmp_path: Path) -> None:
    records = _equal_records(200, 1000)
    path = tmp_path / "bad.tfrecord"
    _write(path, records)
    # The same change in two records of one run: the one-call run check must still fail.
    _corrupt(path, 1016 * 40 + 12 + 7)
    _corrupt(path, 1016 * 41 + 12 + 7)
    with TFRecordReader(path) as reader:
        got = reader.read_block(1000)
        with pytest.raises(DataLossError, match=f"offset {1016 * 40} of .*data CRC"):
            reader.read_block(1000)
    assert got == records[:40]


def test_iteration_keeps_raising_after_an_error(tmp_path: Path) -> None:
    records = _equal_records(100, 100)
    path = tmp_path / "bad.tfrecord"
    _write(path, records)
    _corrupt(path, 116 * 50 + 12)
    with TFRecordReader(path) as reader:
        it = iter(reader)
        got = [next(it) for _ in range(50)]
        for _ in range(3):  # an error never turns into a quiet end of the iteration
            with pytest.raises(DataLossError, match="offset 5800 "):
                next(it)
        with pytest.raises(DataLossError, match="offset 5800 "):
            next(reader)
    assert got == records[:50]


def test_closing_stops_an_iteration_in_progress(tmp_path: Path) -> None:
    path = tmp_path / "x"
    _write(path, _equal_records(100, 10))
    reader = TFRecordReader(path)
    it = iter(reader)
    next(it)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        next(it)
    assert reader.offset == 26


@pytest.mark.parametrize("buffer_size", [4096, None])
def test_offsets_stay_exact_when_mixing_iteration_next_and_blocks(
    tmp_path: Path, buffer_size: int | None
) -> None:
    records = [*_equal_records(600, 50), b"odd", *_equal_records(300, 70)]
    path = tmp_path / "x"
    _write(path, records)
    ends = np.cumsum([0] + [len(r) + 16 for r in records]).tolist()
    got: list[bytes] = []
    with TFRecordReader(path, buffer_size=buffer_size) as reader:
        it = iter(reader)
        for step in [1, 5, 0, 200, 1, 0, 2, 300, 0, 1000]:
            if step == 0:
                got.append(next(reader))
            elif step < 100:
                got.extend(next(it) for _ in range(step))
            else:
                got.extend(reader.read_block(step))
            assert reader.offset == ends[len(got)]
            # A new reader at the saved offset continues exactly there.
            with TFRecordReader(path, offset=reader.offset) as resumed:
                expected = records[len(got)] if len(got) < len(records) else None
                assert next(resumed, None) == expected
    assert got == records
