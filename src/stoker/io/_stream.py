"""Byte sources shared by the record and line readers.

A source hands out the *uncompressed* byte stream of one file in pieces: ``read(n)`` returns
exactly ``n`` bytes, or fewer only at the end of the stream. Plain files are read with an
unbuffered ``FileIO``, so each ``read`` is one copy from the page cache into a fresh ``bytes``
object that the readers then slice records out of. GZIP and ZLIB files go through a
``zlib.decompressobj`` directly (not ``gzip.GzipFile``, which adds a Python-level CRC pass
and a second buffer on top of the same zlib code).

Offsets are positions in the uncompressed stream, so a reader can checkpoint
``(path, offset)`` whatever the compression; a compressed source seeks by decompressing and
discarding up to the offset.
"""

from __future__ import annotations

import io
import os
import weakref
import zlib
from types import TracebackType
from typing import Final, Protocol, TypeVar

from stoker.errors import DataLossError

__all__ = [
    "ByteSource",
    "StreamReader",
    "check_buffer_size",
    "check_compression",
    "open_source",
    "skip_to",
]

COMPRESSION_TYPES: Final = ("", "GZIP", "ZLIB")

# zlib window bits: 16 + MAX_WBITS reads a gzip wrapper; MAX_WBITS reads a zlib wrapper.
# TensorFlow's ZlibCompressionOptions use exactly these (window_bits = MAX_WBITS, plus 16
# for GZIP), so its files and ours decode the same way.
GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
ZLIB_WBITS: Final = zlib.MAX_WBITS

# How much compressed input is handed to zlib per call. Larger inputs do not speed up
# inflate; 256 KiB matches TensorFlow's default zlib input buffer.
_COMPRESSED_CHUNK_BYTES: Final = 256 << 10
# Cap on one allocation when a caller asks for a huge read (a corrupt length with
# check_crc=False): the stream is read in pieces and ends in a truncation error instead of
# one giant allocation.
_MAX_PIECE_BYTES: Final = 64 << 20


def check_compression(compression_type: str | None) -> str:
    """Returns the canonical compression name ("", "GZIP" or "ZLIB").

    Raises:
        ValueError: ``compression_type`` is not one of the supported names.
    """
    value = "" if compression_type is None else compression_type
    if not isinstance(value, str) or value.upper() not in COMPRESSION_TYPES:
        raise ValueError(
            f"compression_type={compression_type!r} is not supported; "
            'use None, "", "GZIP" or "ZLIB"'
        )
    return value.upper()


def check_buffer_size(buffer_size: int | None, default: int) -> int:
    """Returns ``buffer_size`` or ``default``; rejects non-positive sizes."""
    if buffer_size is None:
        return default
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size <= 0:
        raise ValueError(f"buffer_size={buffer_size!r} must be a positive int [Unit: byte]")
    return buffer_size


class ByteSource(Protocol):
    """The uncompressed byte stream of one file."""

    path: str

    def read(self, n: int) -> bytes:
        """Returns the next ``n`` bytes, fewer only at the end of the stream."""
        ...

    def skip(self, n: int) -> int:
        """Skips up to ``n`` bytes; returns how many were skipped (fewer at the end)."""
        ...

    def close(self) -> None:
        """Releases the file. Idempotent."""
        ...


class _PlainSource:
    """An uncompressed file: reads straight from the OS, no Python-level buffer."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = io.FileIO(path, "rb")

    def read(self, n: int) -> bytes:
        data = self._file.read(min(n, _MAX_PIECE_BYTES))
        if len(data) == n or not data:
            return data
        # A short read mid-file (rare on regular files; possible on pipes and FUSE): keep
        # reading so the caller sees "fewer bytes" only at the end of the stream.
        pieces = [data]
        got = len(data)
        while got < n:
            data = self._file.read(min(n - got, _MAX_PIECE_BYTES))
            if not data:
                break
            pieces.append(data)
            got += len(data)
        return b"".join(pieces)

    def skip(self, n: int) -> int:
        here = self._file.tell()
        size = os.fstat(self._file.fileno()).st_size
        target = min(here + n, max(size, here))
        self._file.seek(target)
        return target - here

    def remaining(self) -> int:
        """Bytes left in the file now (it may still grow)."""
        return os.fstat(self._file.fileno()).st_size - self._file.tell()

    def close(self) -> None:
        self._file.close()


class _ZlibSource:
    """A GZIP or ZLIB file, inflated incrementally with a bounded output per call."""

    def __init__(self, path: str, compression: str) -> None:
        self.path = path
        self._name = compression
        self._wbits = GZIP_WBITS if compression == "GZIP" else ZLIB_WBITS
        self._file = io.FileIO(path, "rb")
        self._inflate = zlib.decompressobj(self._wbits)
        self._started = False  # has any compressed input been read?
        self._done = False
        self._input = b""  # compressed bytes read but not yet given to zlib
        self._pending: DataLossError | None = None  # raised by the next read()
        self._produced = 0  # uncompressed bytes handed out so far

    def _error(self, what: str) -> DataLossError:
        return DataLossError(
            f"corrupted {self._name} stream after {self._produced} uncompressed bytes "
            f"({what}); the file is damaged — regenerate it, or skip bad files with "
            "ignore_errors()",
            path=self.path,
            offset=self._produced,
        )

    def _inflate_some(self, limit: int) -> bytes:
        """Returns up to ``limit`` (> 0) more bytes; b"" only at the end of the stream."""
        while not self._done:
            inflate = self._inflate
            try:
                if inflate.unconsumed_tail:
                    out = inflate.decompress(inflate.unconsumed_tail, limit)
                elif inflate.eof:
                    if not self._next_member():
                        self._done = True
                    continue
                else:
                    data = self._input or self._file.read(_COMPRESSED_CHUNK_BYTES)
                    self._input = b""
                    if not data:
                        if self._started:
                            raise self._error("the stream ends before its end marker")
                        self._done = True  # an empty file is an empty stream
                        continue
                    self._started = True
                    out = inflate.decompress(data, limit)
            except zlib.error as exc:
                raise self._error(str(exc)) from None
            if out:
                self._produced += len(out)
                return out
        return b""

    def _next_member(self) -> bool:
        """After one stream ends: starts the next gzip member, if the file holds one."""
        if self._wbits != GZIP_WBITS:
            return False  # a zlib stream has one member; TensorFlow ignores what follows
        rest = self._inflate.unused_data
        while not rest.strip(b"\0"):
            # Zero padding between or after members is allowed, as in the gzip module.
            rest = self._file.read(_COMPRESSED_CHUNK_BYTES)
            if not rest:
                return False
        self._inflate = zlib.decompressobj(self._wbits)
        self._input = rest.lstrip(b"\0")
        return True

    def read(self, n: int) -> bytes:
        if self._pending is not None:
            raise self._pending
        pieces: list[bytes] = []
        got = 0
        while got < n:
            try:
                out = self._inflate_some(min(n - got, _MAX_PIECE_BYTES))
            except DataLossError as exc:
                if not pieces:
                    raise
                # Hand out what was decoded before the damage; the next read raises.
                self._pending = exc
                break
            if not out:
                break
            pieces.append(out)
            got += len(out)
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    def skip(self, n: int) -> int:
        skipped = 0
        while skipped < n:
            out = self.read(min(n - skipped, 4 << 20))
            if not out:
                break
            skipped += len(out)
        return skipped

    def close(self) -> None:
        self._file.close()


def open_source(path: str | os.PathLike[str], compression: str) -> ByteSource:
    """Opens ``path`` for reading its uncompressed stream.

    Raises:
        FileNotFoundError: The file does not exist (the builtin error names it).
    """
    name = os.fspath(path)
    if compression:
        return _ZlibSource(name, compression)
    return _PlainSource(name)


def skip_to(source: ByteSource, offset: int) -> None:
    """Moves a fresh source to ``offset`` in its uncompressed stream.

    Raises:
        ValueError: The stream is shorter than ``offset``.
        DataLossError: The compressed stream is damaged before ``offset``.
    """
    try:
        skipped = source.skip(offset)
    except DataLossError as exc:
        raise DataLossError(
            f"cannot reach offset {offset} of {source.path}: {exc}",
            path=source.path,
            offset=exc.offset,
        ) from None
    if skipped < offset:
        raise ValueError(
            f"offset={offset} is past the end of {source.path} ({skipped} bytes "
            "uncompressed); pass an offset saved from reader.offset"
        )


_Reader = TypeVar("_Reader", bound="StreamReader")


class StreamReader:
    """What the record and line readers share: argument checks, opening the source at an
    offset, closing it exactly once (also when the reader is dropped unclosed), the context
    manager and the repr. Subclasses parse the stream and define ``offset``.

    Args:
        path: The file to read.
        compression_type: ``None``/``""``, ``"GZIP"`` or ``"ZLIB"``.
        offset: Where to start in the uncompressed stream. [Unit: byte]
        buffer_size: How much to read at a time; ``None`` for ``default_buffer_size``.
            [Unit: byte]
        default_buffer_size: The subclass's default read size. [Unit: byte]

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A bad ``compression_type``, ``buffer_size`` or ``offset`` (also an
            ``offset`` past the end of the stream).
        stoker.errors.DataLossError: The compressed stream is damaged before ``offset``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        compression_type: str | None,
        offset: int,
        buffer_size: int | None,
        default_buffer_size: int,
    ) -> None:
        compression = check_compression(compression_type)
        self._chunk = check_buffer_size(buffer_size, default_buffer_size)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset={offset!r} must be an int >= 0 [Unit: byte]")
        self.path = os.fspath(path)
        self._source: ByteSource = open_source(self.path, compression)
        # Closes the file when the reader is dropped unclosed; calling it closes it now.
        self._finalizer = weakref.finalize(self, self._source.close)
        self._closed = False

    def _skip_to_start(self, offset: int) -> None:
        """Moves the fresh source to ``offset``; closes the reader if that fails."""
        if offset:
            try:
                skip_to(self._source, offset)
            except BaseException:
                self.close()
                raise

    @property
    def offset(self) -> int:
        """Byte offset, in the uncompressed stream, of the next element to be returned."""
        raise NotImplementedError

    def _check_open(self) -> None:
        """Raises ``ValueError`` if the reader was closed."""
        if self._closed:
            raise ValueError(f"read from a closed {type(self).__name__} for {self.path}")

    def close(self) -> None:
        """Closes the file. Idempotent; reading then raises ``ValueError``."""
        self._closed = True
        self._finalizer()

    def __enter__(self: _Reader) -> _Reader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, offset={self.offset})"
