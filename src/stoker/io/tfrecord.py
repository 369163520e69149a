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

Reading is built around one idea: touch each byte as few times as possible, and do as little
Python work as possible per record. The file is read in chunks of ``buffer_size`` bytes (one
copy, from the page cache); each record is sliced straight out of the chunk into the
``bytes`` object handed out (the second and last copy). Only a record that straddles two
chunks is assembled from pieces. Records are framed and checked many per call:

* A run of records of one length (fixed-size records, the common case) is framed by one
  NumPy comparison of all its headers, sliced out by ``map`` with no Python frame per
  record, and its data CRCs are checked by a single CRC-32C call over the whole run (see
  ``TFRecordReader._take_equal_run`` for why that is exact for any one bad record).
* Other small records are framed by a tight ``struct`` loop; their data CRCs are computed by
  ``map`` and masked and compared as one NumPy array.
* Big records (over 2 kB) have each CRC computed right after the copy, while it is in cache.

``read_block`` hands such runs out directly. Iteration parses a run ahead and hands its
records out through ``itertools.chain``, so a record costs no Python call either; a bad
record is still reported only after every record before it was delivered.
"""

from __future__ import annotations

import itertools
import operator
import os
import struct
import zlib
from collections.abc import Iterator
from types import TracebackType
from typing import Final, Union

import crc32c
import numpy as np

from stoker.errors import DataLossError
from stoker.io._stream import (
    GZIP_WBITS,
    ZLIB_WBITS,
    StreamReader,
    _PlainSource,
    check_compression,
)

__all__ = ["TFRecordReader", "TFRecordWriter", "masked_crc32c"]

BytesLike = Union[bytes, bytearray, memoryview]

_MASK_DELTA: Final = 0xA282EAD8
_U32_MASK: Final = 0xFFFFFFFF
_HEADER_BYTES: Final = 12  # uint64 length + uint32 masked CRC of the length
_FOOTER_BYTES: Final = 4  # uint32 masked CRC of the data
_FRAME_BYTES: Final = _HEADER_BYTES + _FOOTER_BYTES
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
# read_block checks the data CRCs of at least this many records with NumPy (whose fixed
# cost, ~10 array calls, pays off from here on); fewer are checked one by one.
_MIN_BULK_RECORDS: Final = 64
# ... but only for records smaller than this: the bulk check reads each record again after
# the whole run was copied, when big records have left the L1/L2 cache (measured: 10 kB
# records ran ~20% slower in bulk, 100 B records ~35% faster).
_MAX_BULK_RECORD_BYTES: Final = 2048
# Iteration parses up to this many records ahead (at most one buffer's worth), so that
# small records get the bulk framing and CRC check too.
_ITER_BLOCK_RECORDS: Final = 4096
# A run of at least this many records of one length is framed with NumPy and its data CRCs
# are checked with one CRC-32C call over the whole run (see _take_equal_run); shorter runs
# go record by record, where NumPy's fixed cost (~10 calls) would not pay off.
_MIN_EQUAL_RUN: Final = 32
# A buffer that holds fewer than _MIN_EQUAL_RUN records of the size just read grows to this
# (records of 8-64 kB): measured with 10 kB records, 1 MiB chunks ran ~20% faster than
# 256 KiB ones, as the bulk path's fixed cost spreads over ~100 records instead of ~25.
_RUN_BUFFER_BYTES: Final = 1 << 20
# _take_equal_run caches one table per record length it has seen; a file of many distinct
# lengths clears it now and then instead of growing it.
_MAX_RUN_TABLES: Final = 64

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


class TFRecordReader(StreamReader):
    """Reads the records of a TFRecord file, checking their CRCs.

    Iterating yields each record as ``bytes``. ``read_block(n)`` returns up to ``n`` records
    per call and saves the Python call per record (about a third of the cost on 100-byte
    records); blocks of about 1 MiB of records are fastest.

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

    ``iter(reader)`` returns a C-level chain over the records parsed ahead (no Python call
    per record) that advances this reader; ``next(reader)``, ``read_block`` and iteration
    can be mixed, and ``offset`` is exact between any two of them.

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
        super().__init__(path, compression_type, offset, buffer_size, _DEFAULT_BUFFER_BYTES)
        self._check = bool(check_crc)
        # The stream from self._base on is in self._buf; the next record starts at _pos.
        self._base = offset
        self._buf = b""
        self._pos = 0
        self._end = 0
        self._eof = False
        self._error: DataLossError | None = None
        self._valid_headers: set[tuple[int, int]] = set()
        self._bulk_check = True  # check CRCs in bulk? (small records; the first run tells)
        # Records parsed ahead of the caller: what `_ahead` has not handed out yet of
        # `_block`. Both iteration (through a C-level chain) and __next__ take from the same
        # list iterator, so they can be mixed and `offset` stays exact (length_hint).
        self._block: list[bytes] = []
        self._ahead: Iterator[bytes] = iter(self._block)
        # Record length -> (12 header bytes, std CRC-32C of 0, 1, 2, ... valid frames).
        self._run_tables: dict[int, tuple[bytes, list[int]]] = {}
        self._skip_to_start(offset)

    @property
    def offset(self) -> int:
        """Byte offset, in the uncompressed stream, of the next record to be returned."""
        parsed = self._base + self._pos  # just past the last record parsed
        left = operator.length_hint(self._ahead)
        if not left:
            return parsed
        # Records parsed but not yet returned are still ahead of the reader.
        block = self._block
        return parsed - sum(map(len, block[len(block) - left :])) - left * _FRAME_BYTES

    def __iter__(self) -> Iterator[bytes]:
        # A chain over the parsed blocks: handing out a record costs no Python frame.
        return itertools.chain.from_iterable(iter(self._next_block, None))

    def __next__(self) -> bytes:
        record = next(self._ahead, None)
        if record is not None:
            return record
        block = self._take(_ITER_BLOCK_RECORDS, one_run=True)
        if not block:
            raise StopIteration
        self._set_block(block)
        return next(self._ahead)

    def _next_block(self) -> Iterator[bytes] | None:
        """Feeds ``__iter__``'s chain: the records parsed ahead, None at the end."""
        if not operator.length_hint(self._ahead):
            try:
                block = self._take(_ITER_BLOCK_RECORDS, one_run=True)
            except Exception:
                # The chain forgets its source once that raises; hand it an iterator that
                # raises instead (and keeps raising: the error is sticky), so iteration
                # never turns an error into a quiet end.
                return iter(self.__next__, None)
            if not block:
                return None
            self._set_block(block)
        return self._ahead

    def _set_block(self, block: list[bytes]) -> None:
        self._block = block
        self._ahead = iter(block)

    def read_block(self, max_records: int) -> list[bytes]:
        """Returns the next ``max_records`` records, fewer at the end, ``[]`` when done.

        Raises:
            ValueError: ``max_records`` < 1, or the reader is closed.
            stoker.errors.DataLossError: As for iteration. When a block reaches a bad
                record, the good records before it are returned and the next call raises.
        """
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            raise ValueError(f"max_records={max_records!r} must be an int >= 1")
        if not operator.length_hint(self._ahead):
            return self._take(max_records)
        # First what iteration has parsed already.
        out = list(itertools.islice(self._ahead, max_records))
        if len(out) < max_records:
            try:
                out += self._take(max_records - len(out))
            except DataLossError:
                pass  # kept in self._error; the next call raises it
        return out

    def _take(self, max_records: int, one_run: bool = False) -> list[bytes]:
        """Parses up to ``max_records`` records; with ``one_run``, stops after the first
        run of records that lie whole in the buffer (or one straddling record)."""
        out: list[bytes] = []
        append = out.append
        unpack_header = _HEADER.unpack_from
        unpack_u32 = _U32.unpack_from
        crc32 = crc32c.crc32c
        check = self._check
        valid = self._valid_headers
        try:
            while True:
                want = max_records - len(out)
                if want >= _MIN_EQUAL_RUN:
                    want -= self._take_equal_run(out, want)
                buf = self._buf
                pos = first = self._pos
                end = self._end
                done = len(out)
                bad_header = False
                if check and not self._bulk_check:
                    # Big records: check each CRC right after the copy, while it is in L1/L2.
                    while want and pos + _HEADER_BYTES <= end:
                        header = unpack_header(buf, pos)
                        if header not in valid and not self._header_ok(header, buf, pos):
                            bad_header = True
                            break
                        start = pos + _HEADER_BYTES
                        stop = start + header[0]
                        if stop + _FOOTER_BYTES > end:
                            break
                        record = buf[start:stop]
                        crc = crc32(record)
                        if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK != (
                            unpack_u32(buf, stop)[0]
                        ):
                            raise self._data_crc_error(pos, crc)
                        append(record)
                        pos = stop + _FOOTER_BYTES
                        want -= 1
                else:
                    # Small records: slice out the whole run, then check its CRCs in bulk.
                    while want and pos + _HEADER_BYTES <= end:
                        header = unpack_header(buf, pos)
                        if check and header not in valid and not self._header_ok(header, buf, pos):
                            bad_header = True
                            break
                        start = pos + _HEADER_BYTES
                        stop = start + header[0]
                        if stop + _FOOTER_BYTES > end:
                            break
                        append(buf[start:stop])
                        pos = stop + _FOOTER_BYTES
                        want -= 1
                    if check and len(out) > done:
                        self._verify_run(out, done, first)
                if len(out) > done:
                    self._bulk_check = pos - first < (len(out) - done) * _MAX_BULK_RECORD_BYTES
                self._pos = pos
                if bad_header:
                    self._check_header(unpack_header(buf, pos), pos)  # raises
                if not want or (one_run and out):
                    return out
                if not self._advance(out):
                    return out
        except DataLossError:
            if out:
                return out  # the error is kept in self._error and raised by the next call
            raise

    def _take_equal_run(self, out: list[bytes], want: int) -> int:
        """Appends up to ``want`` records from the buffer if they start a run of records of
        one length (the common case of fixed-size records); returns how many.

        Framing is one NumPy comparison of every header of the run against the first; the
        records are sliced out by ``map`` (no Python frame per record). With CRC checks on,
        records over 2 kB get one CRC call each (by ``map``, compared as one NumPy array);
        for smaller ones the data CRCs of the whole run are verified by a single call: the run is
        copied with each footer replaced by the plain (unmasked) CRC it claims, and the
        CRC-32C of ``header + data + crc32c(data)`` frames does not depend on the data (CRC
        linearity), so a run of ``n`` valid frames has one known CRC, computed once per
        record length from a synthetic run. One bad record always changes it (an error
        confined to one frame cannot cancel); several bad records in one run could cancel
        only with odds of about 2**-32, the same odds by which a damaged record passes its
        own CRC-32C. On a mismatch nothing is taken here: the record-by-record path below
        then checks each record and reports the bad one exactly.
        """
        buf = self._buf
        pos = self._pos
        end = self._end
        if pos + _HEADER_BYTES > end:
            return 0
        length: int = _U64.unpack_from(buf, pos)[0]
        size = length + _FRAME_BYTES
        n = min(want, (end - pos) // size)
        if (
            n < _MIN_EQUAL_RUN
            or buf[pos : pos + _HEADER_BYTES] != buf[pos + size : pos + size + _HEADER_BYTES]
        ):
            return 0
        check = self._check
        if check:
            header = _HEADER.unpack_from(buf, pos)
            if header not in self._valid_headers and not self._header_ok(header, buf, pos):
                return 0  # the record-by-record path reports the bad length CRC
        # Every header of the run (length and its CRC, 12 bytes) equal to the first one?
        headers = np.ndarray((n,), "V12", buf, pos, (size,))
        differ = np.flatnonzero(headers != headers[0])
        if differ.size:
            n = int(differ[0])
            if n < _MIN_EQUAL_RUN:
                return 0
        stop = pos + n * size
        first = pos + _HEADER_BYTES
        records: Iterator[bytes] = map(
            buf.__getitem__,
            map(slice, range(first, stop, size), range(first + length, stop, size)),
        )
        if check and length <= _MAX_BULK_RECORD_BYTES:
            frames = bytearray(memoryview(buf)[pos:stop])
            footers = np.ndarray((n,), "<u4", frames, _HEADER_BYTES + length, (size,))
            footers -= np.uint32(_MASK_DELTA)  # unmask in place: rotate right by 17
            footers[:] = (footers >> np.uint32(17)) | (footers << np.uint32(15))
            if crc32c.crc32c(frames) != self._valid_run_crc(buf, pos, length, n):
                return 0
        elif check:
            # Bigger records: copying the run would cost more than a CRC call per record
            # (~0.13 us of call overhead, the copy of 2 kB as much), so one call each, by map.
            taken = list(records)
            crcs = np.fromiter(map(crc32c.crc32c, taken), np.uint32, n)
            stored = np.ndarray((n,), "<u4", buf, first + length, (size,))
            masked = ((crcs >> 15) | (crcs << 17)) + np.uint32(_MASK_DELTA)
            if not np.array_equal(masked, stored):
                return 0
            records = iter(taken)
        out += records
        self._pos = stop
        return n

    def _valid_run_crc(self, buf: bytes, pos: int, length: int, n: int) -> int:
        """CRC-32C of ``n`` valid frames of ``length``-byte records, footers unmasked."""
        table = self._run_tables.get(length)
        if table is None:
            if len(self._run_tables) >= _MAX_RUN_TABLES:
                self._run_tables.clear()
            data = bytes(length)  # any data gives the same run CRC; zeros will do
            frame = bytes(buf[pos : pos + _HEADER_BYTES]) + data + _U32.pack(crc32c.crc32c(data))
            table = (frame, [0])
            self._run_tables[length] = table
        frame, crcs = table
        while len(crcs) <= n:
            crcs.append(crc32c.crc32c(frame, crcs[-1]))
        return crcs[n]

    def _verify_run(self, out: list[bytes], done: int, first: int) -> None:
        """Checks the data CRCs of ``out[done:]``, sliced from the buffer from ``first`` on.

        On a mismatch, drops the bad record and those after it from ``out`` and raises.
        Many records at once are checked with NumPy: the CRCs are computed by ``map`` (no
        Python frame per record) and masked and compared as arrays, which halves the
        per-record cost on small records. A few records are checked one by one.
        """
        buf = self._buf
        crc32 = crc32c.crc32c
        n = len(out) - done
        if n < _MIN_BULK_RECORDS:
            unpack_u32 = _U32.unpack_from
            pos = first
            for i in range(done, len(out)):
                record = out[i]
                stop = pos + _HEADER_BYTES + len(record)
                crc = crc32(record)
                if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK != (
                    unpack_u32(buf, stop)[0]
                ):
                    del out[i:]
                    raise self._data_crc_error(pos, crc)
                pos = stop + _FOOTER_BYTES
            return
        records = out[done:]
        crcs = np.fromiter(map(crc32, records), np.uint32, n)
        sizes = np.fromiter(map(len, records), np.int64, n)
        sizes += _HEADER_BYTES + _FOOTER_BYTES
        ends = np.cumsum(sizes)
        ends += first
        # Every (unaligned) little-endian uint32 of the buffer, one per byte offset.
        words = np.ndarray((len(buf) - 3,), dtype="<u4", buffer=buf, strides=(1,))
        stored = words[ends - _FOOTER_BYTES]
        masked = ((crcs >> 15) | (crcs << 17)) + np.uint32(_MASK_DELTA)
        bad = np.flatnonzero(masked != stored)
        if bad.size:
            k = int(bad[0])
            del out[done + k :]
            raise self._data_crc_error(int(ends[k] - sizes[k]), int(crcs[k]))

    def close(self) -> None:
        """Closes the file. Idempotent; iteration then raises ``ValueError``."""
        self._base = self.offset
        self._buf = b""
        self._block.clear()  # ends the iterator that iteration's chain may still hold
        self._pos = self._end = 0
        super().close()

    # -- slow path -------------------------------------------------------------------------

    def _advance(self, out: list[bytes]) -> bool:
        """Called when the buffer holds no whole record: loads the next chunk, or appends a
        record that straddles the chunk boundary to ``out``. False at the end."""
        if self._error is not None:
            raise self._error
        self._check_open()
        if self._eof:
            self._finalizer()  # done: release the file early
            return False
        try:
            if self._pos == self._end:
                self._set_buffer(self._pos, self._read(self._chunk))
                if self._end == 0:
                    self._eof = True
                    self._finalizer()
                    return False
            else:
                out.append(self._read_straddling())
            return True
        except DataLossError as exc:
            self._fail(exc)
            raise

    def _read_straddling(self) -> bytes:
        """Reads a record that starts in the buffer and ends beyond it."""
        record_offset = self._base + self._pos
        tail = self._buf[self._pos : self._end]
        self._set_buffer(self._pos, b"")  # the tail now lives in `tail`; offset stays put
        source = self._source
        read = self._read
        if len(tail) < _HEADER_BYTES:
            tail += read(_HEADER_BYTES - len(tail))
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
            data = tail[_HEADER_BYTES:] + read(length - (len(tail) - _HEADER_BYTES))
            footer = tail[_HEADER_BYTES + length :] + read(
                _FOOTER_BYTES - max(0, len(tail) - _HEADER_BYTES - length)
            )
        else:
            data = tail[_HEADER_BYTES : _HEADER_BYTES + length]
            footer = tail[_HEADER_BYTES + length :]
            footer += read(_FOOTER_BYTES - len(footer))
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
        elif total > self._chunk // _MIN_EQUAL_RUN and self._chunk < _RUN_BUFFER_BYTES:
            self._chunk = _RUN_BUFFER_BYTES  # room for a run of them
        # The next chunk is loaded by the next call, so an error there cannot lose `data`.
        self._set_buffer(total, b"")
        return data

    def _read(self, n: int) -> bytes:
        """Reads from the source; a damaged stream is reported at the current record."""
        try:
            return self._source.read(n)
        except DataLossError as exc:
            offset = self.offset
            raise DataLossError(
                f"cannot read the record at offset {offset} of {self.path}: {exc}",
                path=self.path,
                offset=offset,
            ) from None

    def _set_buffer(self, consumed: int, buf: bytes) -> None:
        """Replaces the buffer; ``consumed`` bytes of the old one are behind the reader."""
        self._base += consumed
        self._buf = buf
        self._pos = 0
        self._end = len(buf)

    def _header_ok(self, header: tuple[int, int], buf: bytes, pos: int) -> bool:
        """Checks a length CRC not seen before; remembers the header when it is right."""
        crc = crc32c.crc32c(buf[pos : pos + 8])
        if (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32_MASK != header[1]:
            return False
        if len(self._valid_headers) >= _MAX_CACHED_HEADERS:
            self._valid_headers.clear()
        self._valid_headers.add(header)
        return True

    def _check_header(
        self,
        header: tuple[int, int],
        pos: int,
        buf: bytes | None = None,
        record_offset: int | None = None,
    ) -> None:
        """Checks a length CRC not seen before; raises DataLossError if it is wrong."""
        data = self._buf if buf is None else buf
        if self._header_ok(header, data, pos):
            return
        if record_offset is None:
            record_offset = self._base + pos
            self._pos = pos
        crc = crc32c.crc32c(data[pos : pos + 8])
        raise self._fail(self._crc_error(record_offset, "length", header[1], crc))

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
