"""Text files read line by line, as ``tf.data.TextLineDataset`` reads them.

Lines are split on ``b"\\n"``, which is not part of the line. Like TensorFlow's
``BufferedInputStream::ReadLine``, every ``b"\\r"`` in a line is dropped (not only one before
the ``b"\\n"``), so ``b"a\\r\\n"`` and ``b"a\\rb\\n"`` read as ``b"a"`` and ``b"ab"``. Empty lines
are returned as ``b""``; a last line without a newline is returned too, unless nothing but
``b"\\r"`` is left of it.

The file is read in big chunks and each chunk is cut into lines with one ``bytes.split``,
so a line costs a list lookup, not a Python-level scan.
"""

from __future__ import annotations

import os
from typing import Final

from stoker.errors import DataLossError
from stoker.io._stream import StreamReader

__all__ = ["TextLineReader"]

# Same reasoning as the TFRecord reader: chunks that stay in cache, 256 KiB like TensorFlow.
_DEFAULT_BUFFER_BYTES: Final = 256 << 10


class TextLineReader(StreamReader):
    """Reads the lines of a text file as ``bytes``, without their line endings.

    Args:
        path: The file to read.
        compression_type: ``None`` or ``""`` (uncompressed), ``"GZIP"`` or ``"ZLIB"``.
        offset: Where to start, as a byte offset into the *uncompressed* stream; it must be
            the start of a line, normally a value of ``reader.offset`` saved earlier. On a
            compressed file the stream is decompressed and discarded up to ``offset``.
            [Unit: byte]
        buffer_size: How much to read at a time (default 256 KiB). Longer lines are still
            read whole. [Unit: byte]

    Attributes:
        path: The file being read.
        offset: Byte offset, in the uncompressed stream, of the next line to be returned.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A bad ``compression_type``, ``buffer_size`` or ``offset`` (also an
            ``offset`` past the end of the stream).
        stoker.errors.DataLossError: While reading: the compressed stream is corrupt or
            truncated. The lines before the damage are returned first.

    Example::

        with TextLineReader("/tmp/x.csv") as r:
            header = next(r)
            for line in r:
                ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        compression_type: str | None = None,
        offset: int = 0,
        buffer_size: int | None = None,
    ):
        super().__init__(path, compression_type, offset, buffer_size, _DEFAULT_BUFFER_BYTES)
        # The lines of the current chunk: _lines[_i:] are still to be returned. _raw holds
        # the same lines before "\r" removal (it is _lines when there was none), for offsets.
        self._lines: list[bytes] = []
        self._raw: list[bytes] = []
        self._i = 0
        self._n = 0
        self._base = offset  # stream offset where _raw[0] starts
        self._next_base = offset  # stream offset just past _raw[-1] (and its newline)
        self._carry: list[bytes] = []  # bytes after the last newline read so far
        self._carry_bytes = 0
        self._offset_cache = (0, offset)  # (line index, its offset), see `offset`
        self._eof = False
        self._error: DataLossError | None = None
        self._skip_to_start(offset)

    @property
    def offset(self) -> int:
        """Byte offset, in the uncompressed stream, of the next line to be returned."""
        i = self._i
        if i == self._n:
            return self._next_base
        # Each raw line was followed by one b"\n" (only the very last line of a file may
        # lack it, and then i == _n above). Cached, so calling this per line stays O(1).
        j, off = self._offset_cache  # j <= i: both only grow until the next chunk
        off += sum(map(len, self._raw[j:i])) + (i - j)
        self._offset_cache = (i, off)
        return off

    def __iter__(self) -> TextLineReader:
        return self

    def __next__(self) -> bytes:
        i = self._i
        if i < self._n:
            self._i = i + 1
            return self._lines[i]
        while self._refill():
            if self._n:
                self._i = 1
                return self._lines[0]
        raise StopIteration

    def read_block(self, max_lines: int) -> list[bytes]:
        """Returns the next ``max_lines`` lines, fewer at the end, ``[]`` when done.

        Raises:
            ValueError: ``max_lines`` < 1, or the reader is closed.
            stoker.errors.DataLossError: As for iteration; lines before the damage are
                returned first and the next call raises.
        """
        if isinstance(max_lines, bool) or not isinstance(max_lines, int) or max_lines < 1:
            raise ValueError(f"max_lines={max_lines!r} must be an int >= 1")
        out: list[bytes] = []
        want = max_lines
        try:
            while True:
                i = self._i
                take = min(self._n - i, want)
                if take:
                    if out:
                        out += self._lines[i : i + take]
                    else:
                        out = self._lines[i : i + take]
                    self._i = i + take
                    want -= take
                    if not want:
                        return out
                if not self._refill():
                    return out
        except DataLossError:
            if out:
                return out  # kept in self._error; the next call raises it
            raise

    def _refill(self) -> bool:
        """Loads the lines of the next chunk (maybe none); False at the end of the file."""
        if self._error is not None:
            raise self._error
        self._check_open()
        if self._eof:
            return False
        base = self._next_base
        while True:
            try:
                chunk = self._source.read(self._chunk)
            except DataLossError as exc:
                # Park the reader at the first undelivered line, then make the error sticky.
                self._lines, self._raw, self._i, self._n = [], [], 0, 0
                self._base = self._next_base = base
                self._error = DataLossError(
                    f"cannot read the line at offset {base} of {self.path}: {exc}",
                    path=self.path,
                    offset=base,
                )
                raise self._error from None
            if not chunk:
                self._eof = True
                self._finalizer()  # done: release the file early
                raw = [b"".join(self._carry)] if self._carry else []
                self._carry = []
                lines = [line.replace(b"\r", b"") for line in raw]
                if lines and not lines[0]:
                    lines = []  # TensorFlow drops a last line that was only "\r"s
                self._set_lines(base, lines, raw if lines else [], base + self._carry_bytes)
                return bool(lines)
            parts = chunk.split(b"\n")
            last = parts.pop()
            if not parts:  # no newline in this chunk: part of a (long) line
                self._carry.append(last)
                self._carry_bytes += len(last)
                continue
            if self._carry:
                self._carry.append(parts[0])
                parts[0] = b"".join(self._carry)
            next_base = base + self._carry_bytes + len(chunk) - len(last)
            self._carry = [last] if last else []
            self._carry_bytes = len(last)
            if b"\r" in chunk or b"\r" in parts[0]:
                self._set_lines(base, [p.replace(b"\r", b"") for p in parts], parts, next_base)
            else:
                self._set_lines(base, parts, parts, next_base)
            return True

    def _set_lines(self, base: int, lines: list[bytes], raw: list[bytes], next_base: int) -> None:
        self._lines = lines
        self._raw = raw
        self._i = 0
        self._n = len(lines)
        self._base = base
        self._next_base = next_base
        self._offset_cache = (0, base)
