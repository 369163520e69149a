"""TFRecord files, byte-compatible with TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length            little-endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

where ``masked_crc32c(x) = ((crc >> 15 | crc << 17) + 0xa282ead8) mod 2**32`` and ``crc`` is
the CRC-32C (Castagnoli) of ``x``. The whole stream may be GZIP- or ZLIB-compressed.

Readers track ``offset``, the position of the next record in the uncompressed stream, so a
checkpoint can store ``(path, offset)`` and a new reader continues exactly there.

Reading is built around one idea: touch each byte as few times as possible, and cross into
Python as few times as possible per record. The file is read in chunks of ``buffer_size``
bytes (one copy from the page cache); records are sliced straight out of the chunk (one
copy, into the ``bytes`` object handed out); the CRC runs on a memoryview of the chunk (no
copy) while the chunk is still in the CPU cache. ``read_block`` parses many records per call
and is the fast path.
"""

from __future__ import annotations

import os
import struct
import weakref
import zlib
from types import TracebackType
from typing import Final, Union

import crc32c

from stoker.errors import DataLossError
from stoker.io._stream import (
    GZIP_WBITS,
    ZLIB_WBITS,
    ByteSource,
    _PlainSource,
    check_buffer_size,
    check_compression,
    open_source,
)

__all__ = ["TFRecordReader", "TFRecordWriter", "masked_crc32c"]

BytesLike = Union[bytes, bytearray, memoryview]

_MASK_DELTA: Final = 0xA282EAD8
_U32_MASK: Final = 0xFFFFFFFF
_HEADER_BYTES: Final = 12  # uint64 length + uint32 masked CRC of the length
_FOOTER_BYTES: Final = 4  # uint32 masked CRC of the data
_U64: Final = struct.Struct("<Q")
_U32: Final = struct.Struct("<I")
_HEADER: Final = struct.Struct("<QI")

# Measured with benchmarks/bench_tfrecord.py: chunks that stay in L2/L3 between the read
# and the CRC pass beat big ones (4 MiB chunks were ~35% slower than 256 KiB on a 2 MiB-L2
# machine). TensorFlow's TFRecordDataset defaults to 256 KiB as well.
_DEFAULT_BUFFER_BYTES: Final = 256 << 10
# A record larger than the buffer is read on its own; the buffer then grows to hold a few
# such records, up to this cap, so big records do not all take the slow path.
_MAX_ADAPTIVE_BUFFER_BYTES: Final = 16 << 20
# Valid (length, length CRC) headers seen so far. Lengths repeat a lot (fixed-size
# records), and a set lookup is ~4x cheaper than a CRC call plus masking in Python.
_MAX_CACHED_HEADERS: Final = 4096

_FIX = "the file is damaged — regenerate it, or skip bad files with ignore_errors()"


def masked_crc32c(data: BytesLike) -> int:
    """Returns TensorFlow's masked CRC-32C of ``data``, as stored in TFRecord files."""
    crc: int = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK


class TFRecordWriter:
    """Writes records to a TFRecord file, byte-identical to TensorFlow's writer.

    Args:
        path: The file to create (an existing file is truncated).
        compression_type: ``None`` or ``""`` (uncompressed), ``"GZIP"`` or ``"ZLIB"``.
            Uncompressed output is byte-identical to ``tf.io.TFRecordWriter``; compressed
            output uses the same zlib settings as TensorFlow (default level, memLevel 9,
            gzip or zlib wrapper) and decodes to the identical stream.

    Raises:
        ValueError: ``compression_type`` is not supported.

    Example::

        with TFRecordWriter("/tmp/x.tfrecord") as w:
            w.write(b"hello")
    """

    def __init__(self, path: str | os.PathLike[str], compression_type: str | None = None):
        self._compression = check_compression(compression_type)
        self.path = os.fspath(path)
        self._deflate: zlib._Compress | None = None
        if self._compression:
            wbits = GZIP_WBITS if self._compression == "GZIP" else ZLIB_WBITS
            # memLevel 9 as in TensorFlow's ZlibCompressionOptions (zlib's default is 8).
            self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, wbits, 9)
        self._file = open(self.path, "wb")
        self._closed = False

    def write(self, record: BytesLike) -> None:
        """Appends one record.

        Raises:
            TypeError: ``record`` is not bytes-like.
            ValueError: The writer is closed.
        """
        if self._closed:
            raise ValueError(f"write() on a closed TFRecordWriter for {self.path}")
        if isinstance(record, str):
            raise TypeError("TFRecordWriter.write() takes bytes, not str; encode it first")
        data = memoryview(record)
        if data.format != "B" or data.ndim != 1:
            data = data.cast("B")
        length = _U64.pack(data.nbytes)
        header = length + _U32.pack(masked_crc32c(length))
        footer = _U32.pack(masked_crc32c(data))
        if self._deflate is None:
            self._file.write(header)
            self._file.write(data)
            self._file.write(footer)
        else:
            deflate = self._deflate
            self._file.write(deflate.compress(header))
            self._file.write(deflate.compress(data))
            self._file.write(deflate.compress(footer))

    def flush(self) -> None:
        """Pushes everything written so far to the OS; a reader can then decode it all."""
        if self._closed:
            return
        if self._deflate is not None:
            self._file.write(self._deflate.flush(zlib.Z_SYNC_FLUSH))
        self._file.flush()

    def close(self) -> None:
        """Finishes the stream and closes the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._deflate is not None:
                self._file.write(self._deflate.flush(zlib.Z_FINISH))
        finally:
            self._file.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class TFRecordReader:
    """Reads the records of a TFRecord file, checking their CRCs.

    Iterating yields each record as ``bytes``. ``read_block(n)`` returns up to ``n`` records
    per call and is several times faster per record on small records.

    Args:
        path: The file to read.
        compression_type: ``None`` or ``""`` (uncompressed), ``"GZIP"`` or ``"ZLIB"``.
        offset: Where to start, as a byte offset into the *uncompressed* stream; it must be a
            record boundary, normally a value of ``reader.offset`` saved earlier. On a
            compressed file the stream is decompressed and discarded up to ``offset``, so
            resuming late in a big compressed file costs time proportional to ``offset``.
            [Unit: byte]
        check_crc: Verify both CRCs of every record (the default, as in TensorFlow). With
            ``False`` a corrupt length is only noticed when the file ends early.
        buffer_size: How much to read from the file at a time (default 256 KiB). Records
            larger than this are still read whole. [Unit: byte]

    Attributes:
        path: The file being read.
        offset: Byte offset, in the uncompressed stream, of the next record to be returned.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A bad ``compression_type``, ``buffer_size`` or ``offset`` (also an
            ``offset`` past the end of the stream).
        stoker.errors.DataLossError: While reading: a record's length or data CRC does not
            match, or the file ends inside a record, or the compressed stream is corrupt.
            The message names the file and the offset of the bad record. Every record before
            the bad one is returned first. After the error the reader keeps raising it.

    The reader is not thread-safe; one thread should use it at a time.

    Example::

        with TFRecordReader("/tmp/x.tfrecord") as r:
            for record in r:
                ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        compression_type: str | None = None,
        offset: int = 0,
        check_crc: bool = True,
        buffer_size: int | None = None,
    ):
        compression = check_compression(compression_type)
        self._chunk = check_buffer_size(buffer_size, _DEFAULT_BUFFER_BYTES)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset={offset!r} must be an int >= 0 [Unit: byte]")
        self.path = os.fspath(path)
        self._source: ByteSource = open_source(self.path, compression)
        self._finalizer = weakref.finalize(self, self._source.close)
        self._check = bool(check_crc)
        # The stream from self._base on is in self._buf; the next record starts at _pos.
        self._base = offset
        self._buf = b""
        self._mv = memoryview(self._buf)
        self._pos = 0
        self._end = 0
        self._eof = False
        self._closed = False
        self._error: DataLossError | None = None
        self._valid_headers: set[tuple[int, int]] = set()
        if offset:
            skipped = self._source.skip(offset)
            if skipped < offset:
                self.close()
                raise ValueError(
                    f"offset={offset} is past the end of {self.path} "
                    f"({skipped} bytes uncompressed); pass an offset saved from reader.offset"
                )

    @property
    def offset(self) -> int:
        """Byte offset, in the uncompressed stream, of the next record to be returned."""
        return self._base + self._pos

    def __iter__(self) -> TFRecordReader:
        return self

    def __next__(self) -> bytes:
        # Fast path: the whole next record is in the buffer. Kept inline (no helper calls)
        # because it runs once per record.
        buf = self._buf
        pos = self._pos
        if pos + _HEADER_BYTES <= self._end:
            header = _HEADER.unpack_from(buf, pos)
            start = pos + _HEADER_BYTES
            stop = start + header[0]
            if stop + _FOOTER_BYTES <= self._end:
                if self._check:
                    if header not in self._valid_headers:
                        self._check_header(header, pos)
                    crc = crc32c.crc32c(self._mv[start:stop])
                    if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK != (
                        _U32.unpack_from(buf, stop)[0]
                    ):
                        raise self._data_crc_error(pos, crc)
                self._pos = stop + _FOOTER_BYTES
                return buf[start:stop]
        record = self._slow_next()
        if record is None:
            raise StopIteration
        return record

    def read_block(self, max_records: int) -> list[bytes]:
        """Returns the next ``max_records`` records, fewer at the end, ``[]`` when done.

        Raises:
            ValueError: ``max_records`` < 1, or the reader is closed.
            stoker.errors.DataLossError: As for iteration. When a block reaches a bad
                record, the good records before it are returned and the next call raises.
        """
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            raise ValueError(f"max_records={max_records!r} must be an int >= 1")
        out: list[bytes] = []
        append = out.append
        unpack_header = _HEADER.unpack_from
        unpack_u32 = _U32.unpack_from
        crc32 = crc32c.crc32c
        check = self._check
        valid = self._valid_headers
        want = max_records
        try:
            while True:
                buf = self._buf
                mv = self._mv
                pos = self._pos
                end = self._end
                while want and pos + _HEADER_BYTES <= end:
                    header = unpack_header(buf, pos)
                    start = pos + _HEADER_BYTES
                    stop = start + header[0]
                    if stop + _FOOTER_BYTES > end:
                        break
                    if check:
                        if header not in valid:
                            self._check_header(header, pos)
                        crc = crc32(mv[start:stop])
                        if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK != (
                            unpack_u32(buf, stop)[0]
                        ):
                            raise self._data_crc_error(pos, crc)
                    append(buf[start:stop])
                    pos = stop + _FOOTER_BYTES
                    want -= 1
                self._pos = pos
                if not want:
                    return out
                record = self._slow_next()
                if record is None:
                    return out
                append(record)
                want -= 1
        except DataLossError:
            if out:
                return out  # the error is kept in self._error and raised by the next call
            raise

    def close(self) -> None:
        """Closes the file. Idempotent; iteration then raises ``ValueError``."""
        self._closed = True
        self._buf = b""
        self._mv = memoryview(self._buf)
        self._base += self._pos
        self._pos = self._end = 0
        self._finalizer()

    def __enter__(self) -> TFRecordReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TFRecordReader({self.path!r}, offset={self.offset})"

    # -- slow path -------------------------------------------------------------------------

    def _slow_next(self) -> bytes | None:
        """Returns the next record when the buffer does not hold all of it; None at the end."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ValueError(f"read from a closed TFRecordReader for {self.path}")
        if self._eof:
            self._finalizer()  # done: release the file early
            return None
        try:
            if self._pos == self._end:
                # Nothing left over: load the next chunk, then take the fast path.
                self._set_buffer(self._pos, self._source.read(self._chunk))
                if self._end == 0:
                    self._eof = True
                    self._finalizer()
                    return None
                return next(self, None)
            return self._read_straddling()
        except DataLossError as exc:
            self._fail(exc)
            raise

    def _read_straddling(self) -> bytes:
        """Reads a record that starts in the buffer and ends beyond it."""
        record_offset = self._base + self._pos
        tail = self._buf[self._pos : self._end]
        self._set_buffer(self._pos, b"")  # the tail now lives in `tail`; offset stays put
        source = self._source
        if len(tail) < _HEADER_BYTES:
            tail += source.read(_HEADER_BYTES - len(tail))
            if len(tail) < _HEADER_BYTES:
                raise self._truncated(record_offset, f"{len(tail)} of the 12 header bytes")
        header = _HEADER.unpack_from(tail, 0)
        if self._check and header not in self._valid_headers:
            self._check_header(header, 0, tail, record_offset)
        length = header[0]
        total = _HEADER_BYTES + length + _FOOTER_BYTES
        if isinstance(source, _PlainSource) and total - len(tail) > source.remaining():
            # Fail before allocating: a corrupt length (check_crc=False) can be huge.
            got = len(tail) + source.remaining()
            raise self._truncated(record_offset, f"{got} of its {total} bytes")
        if len(tail) <= _HEADER_BYTES + length:
            data = tail[_HEADER_BYTES:] + source.read(length - (len(tail) - _HEADER_BYTES))
            footer = tail[_HEADER_BYTES + length :] + source.read(
                _FOOTER_BYTES - max(0, len(tail) - _HEADER_BYTES - length)
            )
        else:
            data = tail[_HEADER_BYTES : _HEADER_BYTES + length]
            footer = tail[_HEADER_BYTES + length :]
            footer += source.read(_FOOTER_BYTES - len(footer))
        if len(data) < length or len(footer) < _FOOTER_BYTES:
            got = _HEADER_BYTES + len(data) + len(footer)
            raise self._truncated(record_offset, f"{got} of its {total} bytes")
        if self._check:
            crc = crc32c.crc32c(data)
            stored = _U32.unpack(footer)[0]
            if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK != stored:
                raise self._crc_error(record_offset, "data", stored, crc)
        # Records bigger than the buffer: grow it so the next ones take the fast path.
        if total > self._chunk // 4 and self._chunk < _MAX_ADAPTIVE_BUFFER_BYTES:
            self._chunk = min(4 * total, _MAX_ADAPTIVE_BUFFER_BYTES)
        self._set_buffer(total, self._source.read(self._chunk))
        if self._end == 0:
            self._eof = True
        return data

    def _set_buffer(self, consumed: int, buf: bytes) -> None:
        """Replaces the buffer; ``consumed`` bytes of the old one are behind the reader."""
        self._base += consumed
        self._buf = buf
        self._mv = memoryview(buf)
        self._pos = 0
        self._end = len(buf)

    def _check_header(
        self,
        header: tuple[int, int],
        pos: int,
        buf: bytes | None = None,
        record_offset: int | None = None,
    ) -> None:
        """Checks a length CRC not seen before; raises DataLossError if it is wrong."""
        data = self._mv if buf is None else memoryview(buf)
        crc = crc32c.crc32c(data[pos : pos + 8])
        if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK != header[1]:
            if record_offset is None:
                record_offset = self._base + pos
                self._pos = pos
            raise self._fail(self._crc_error(record_offset, "length", header[1], crc))
        if len(self._valid_headers) >= _MAX_CACHED_HEADERS:
            self._valid_headers.clear()
        self._valid_headers.add(header)

    def _data_crc_error(self, pos: int, crc: int) -> DataLossError:
        self._pos = pos
        length = _HEADER.unpack_from(self._buf, pos)[0]
        stored = _U32.unpack_from(self._buf, pos + _HEADER_BYTES + length)[0]
        return self._fail(self._crc_error(self._base + pos, "data", stored, crc))

    def _crc_error(self, offset: int, what: str, stored: int, crc: int) -> DataLossError:
        computed = (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK
        return DataLossError(
            f"corrupted record at offset {offset} of {self.path}: {what} CRC mismatch "
            f"(stored 0x{stored:08x}, computed 0x{computed:08x}); {_FIX}",
            path=self.path,
            offset=offset,
        )

    def _truncated(self, offset: int, got: str) -> DataLossError:
        return DataLossError(
            f"truncated record at offset {offset} of {self.path}: the file ends after "
            f"{got}; {_FIX}",
            path=self.path,
            offset=offset,
        )

    def _fail(self, exc: DataLossError) -> DataLossError:
        """Makes ``exc`` sticky: every later read raises it (the stream cannot go on)."""
        if self._error is None:
            self._error = exc
            self._end = self._pos  # force every later read onto the slow path
        return self._error
