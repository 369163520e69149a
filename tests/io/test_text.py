from __future__ import annotations

import base64
import gzip
import json
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stoker.errors import DataLossError
from stoker.io import TextLineReader

DATA = Path(__file__).resolve().parent.parent / "data"
COMPRESSIONS = [None, "GZIP", "ZLIB"]


def _reference_lines(data: bytes) -> list[bytes]:
    """TensorFlow's TextLineDataset, restated: split on \\n, drop every \\r, keep a last
    line without newline unless nothing is left of it."""
    pieces = data.split(b"\n")
    last = pieces.pop().replace(b"\r", b"")
    lines = [p.replace(b"\r", b"") for p in pieces]
    return [*lines, last] if last else lines


def _put(path: Path, data: bytes, compression: str | None) -> None:
    if compression == "GZIP":
        data = gzip.compress(data)
    elif compression == "ZLIB":
        data = zlib.compress(data)
    path.write_bytes(data)


def _lines(path: Path, **kwargs: object) -> list[bytes]:
    with TextLineReader(path, **kwargs) as reader:  # type: ignore[arg-type]
        return list(reader)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (b"\n", [b""]),
        (b"\n\n", [b"", b""]),
        (b"a", [b"a"]),
        (b"a\n", [b"a"]),
        (b"a\nb", [b"a", b"b"]),
        (b"a\r\nb\r\n", [b"a", b"b"]),
        (b"a\r\n\r\nb", [b"a", b"", b"b"]),
        (b"mid\rdle\n", [b"middle"]),  # TensorFlow drops every \r, not only before \n
        (b"a\n\r", [b"a"]),  # a last "line" of only \r is no line
        (b"a\nb\r", [b"a", b"b"]),
        (b"  spaced\t \n", [b"  spaced\t "]),
    ],
)
@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("buffer_size", [1, 2, None])
def test_lines(
    tmp_path: Path,
    data: bytes,
    expected: list[bytes],
    compression: str | None,
    buffer_size: int | None,
) -> None:
    path = tmp_path / "x.txt"
    _put(path, data, compression)
    assert _reference_lines(data) == expected
    assert _lines(path, compression_type=compression, buffer_size=buffer_size) == expected
    with TextLineReader(path, compression, buffer_size=buffer_size) as reader:
        got = []
        while block := reader.read_block(2):
            got.extend(block)
        assert reader.offset == len(data)
    assert got == expected


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("buffer_size", [3, None])
def test_offsets_and_resume(
    tmp_path: Path, compression: str | None, buffer_size: int | None
) -> None:
    data = b"first\r\nsecond\n\nfourth line is longer\nlast"
    path = tmp_path / "x.txt"
    _put(path, data, compression)
    expected = _reference_lines(data)
    with TextLineReader(path, compression, buffer_size=buffer_size) as reader:
        offsets = [reader.offset]
        for _ in reader:
            offsets.append(reader.offset)
    assert offsets == [0, 7, 14, 15, 37, 41]
    for k, offset in enumerate(offsets):
        got = _lines(path, compression_type=compression, offset=offset, buffer_size=buffer_size)
        assert got == expected[k:]


def test_offset_after_read_block(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(b"aa\nbbb\nc\n")
    with TextLineReader(path) as reader:
        assert reader.read_block(2) == [b"aa", b"bbb"]
        assert reader.offset == 7
        assert reader.offset == 7  # reading it twice changes nothing
        assert next(reader) == b"c"
        assert reader.offset == 9
        assert repr(reader) == f"TextLineReader({str(path)!r}, offset=9)"


def test_long_lines_across_many_buffers(tmp_path: Path) -> None:
    lines = [b"x" * 10_000, b"", b"y" * 3, b"z" * 70_000]
    path = tmp_path / "x.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert _lines(path, buffer_size=100) == lines


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"absent\.txt"):
        TextLineReader(tmp_path / "absent.txt")
    path = tmp_path / "x.txt"
    path.write_bytes(b"a\n")
    with pytest.raises(ValueError, match=r"'XZ'.*GZIP"):
        TextLineReader(path, "XZ")
    with pytest.raises(ValueError, match=r"offset=3 is past the end"):
        TextLineReader(path, offset=3)
    with pytest.raises(ValueError, match="buffer_size"):
        TextLineReader(path, buffer_size=-1)
    reader = TextLineReader(path)
    with pytest.raises(ValueError, match="max_lines"):
        reader.read_block(0)
    reader.close()
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        next(reader)


def test_corrupt_gzip_delivers_lines_before_the_damage(tmp_path: Path) -> None:
    lines = [b"line %d with some words" % i for i in range(20_000)]
    data = gzip.compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "x.txt.gz"
    path.write_bytes(data[: len(data) // 2])  # truncated mid-stream
    got: list[bytes] = []
    with TextLineReader(path, "GZIP", buffer_size=4096) as reader:
        with pytest.raises(DataLossError) as info:
            while block := reader.read_block(1000):
                got.extend(block)
        assert 0 < len(got) < len(lines) and got == lines[: len(got)]
        assert info.value.offset == sum(len(line) + 1 for line in got)
        assert reader.offset == info.value.offset
        with pytest.raises(DataLossError):  # sticky
            next(reader)
    text = str(info.value)
    assert str(path) in text and f"offset {info.value.offset}" in text and "GZIP" in text


def _manifest_text_files() -> list[tuple[str, dict[str, object]]]:
    manifest = DATA / "manifest.json"
    if not manifest.exists():
        return []
    files = json.loads(manifest.read_text())["files"]
    return [(name, entry) for name, entry in sorted(files.items()) if entry["kind"] == "text"]


@pytest.mark.skipif(not _manifest_text_files(), reason="no TensorFlow-read files in tests/data")
@pytest.mark.parametrize(("name", "entry"), _manifest_text_files())
@pytest.mark.parametrize("buffer_size", [1, 5, None])
def test_matches_tensorflow(name: str, entry: dict[str, object], buffer_size: int | None) -> None:
    expected = [base64.b64decode(line) for line in entry["lines"]]  # type: ignore[attr-defined]
    compression = entry["compression_type"]
    got = _lines(DATA / name, compression_type=compression, buffer_size=buffer_size)
    assert got == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"\xff"]), max_size=40).map(
        b"".join
    ),
    compression=st.sampled_from(COMPRESSIONS),
    buffer_size=st.sampled_from([1, 3, 64, None]),
    block=st.integers(1, 5),
)
def test_property_matches_reference(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    compression: str | None,
    buffer_size: int | None,
    block: int,
) -> None:
    path = tmp_path_factory.mktemp("text") / "x.txt"
    _put(path, data, compression)
    expected = _reference_lines(data)
    with TextLineReader(path, compression, buffer_size=buffer_size) as reader:
        got: list[bytes] = []
        offsets = [reader.offset]
        while batch := reader.read_block(block):
            got.extend(batch)
            offsets.append(reader.offset)
        assert reader.offset == len(data)  # offsets count raw bytes, \r and \n included
    assert got == expected
    # Every offset resumes exactly.
    for k, offset in enumerate(offsets):
        resumed = _lines(path, compression_type=compression, offset=offset)
        assert resumed == expected[k * block :]
