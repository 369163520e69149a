"""The stoker cache file, format version 1: one file, written once, read by ``mmap``.

Layout (little-endian; offsets in bytes)::

    0     header, 64 bytes: magic b"STKCACHE", version u32, header size u32 (128),
          file size u64, record count u64, index offset u64, meta offset u64,
          meta length u64, index crc32c u32, meta crc32c u32
    64    crc32c of the 64 header bytes (u32), zeros up to 128
    128   records, each 8-aligned (see :mod:`stoker.cache._codec`), their array data
          aligned to 64 bytes (16 for arrays under 1 KiB)
    ...   index: record count x u64, the offset of every record
    ...   meta: UTF-8 JSON (fingerprint, element specs, shapes, counts, provenance)
    end   b"STKC-END"

The header is written last: a writer reserves it, streams the records to a temporary file,
appends the index and meta, then fills in the header, ``fsync``\\ s and renames the file to
its final name. A file under the final name is therefore always complete; a header whose
file size does not match the file, or any CRC mismatch, means outside damage.
"""

from __future__ import annotations

import bisect
import errno
import json
import mmap
import os
import stat
import struct
import sys
from typing import Any

import crc32c
import numpy as np

from stoker.cache._codec import RECORD_HEADER, Encoder
from stoker.cache._decode import Decoder, compile_decoder
from stoker.errors import CacheError

__all__ = [
    "FORMAT_VERSION",
    "CacheDamaged",
    "CacheReader",
    "CacheWriter",
    "NotACacheFile",
    "check_replaceable",
    "resolve_cache_path",
]

FORMAT_VERSION = 1
MAGIC = b"STKCACHE"
END_MAGIC = b"STKC-END"
_HEADER = struct.Struct("<8sIIQQQQQII")
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE = 128
_BUFFER_BYTES = 1 << 20
_BLOCK_BYTES = 1 << 20
_BLOCK_RECORDS = 1024


class CacheDamaged(CacheError):
    """A stoker cache file that cannot be used as it is: truncated, corrupt, other version."""


class NotACacheFile(CacheError):
    """A path that is not a stoker cache (another file, a directory, a device, a FIFO...);
    stoker never writes to it, nor replaces it."""


#: Opening with these flags never blocks (a FIFO without a writer, a device) and never
#: follows a symbolic link that appeared after the path was checked.
_SAFE_OPEN = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _kind(mode: int) -> str:
    """What a file of ``mode`` is, with an article: "a directory", "a FIFO (named pipe)"."""
    for test, what in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return what
    return "not a regular file"  # pragma: no cover - doors, whiteouts, event ports


def resolve_cache_path(path: str) -> str:
    """The name a cache at ``path`` is read from and renamed to, after checking what is there.

    Only ``lstat``/``stat`` are used: nothing is opened. A missing path is returned as it
    is; a regular file too; a symbolic link to a regular file gives the file it points to
    (so the link is kept and its target is the cache).

    Raises:
        NotACacheFile: ``path`` exists and is not a regular file (a directory, a device,
            a FIFO, a socket), or is a symbolic link to one, or a dangling or looping
            symbolic link. The message names the path and what it is.
        CacheError: ``path`` cannot be checked (e.g. permission denied on a directory).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError as e:
        raise CacheError(f"cannot check cache file {path!r}: {e.strerror or e}") from e
    if stat.S_ISREG(st.st_mode):
        return path
    if not stat.S_ISLNK(st.st_mode):
        raise NotACacheFile(
            f"cache file {path!r} exists and is {_kind(st.st_mode)}, not a regular file: it "
            "is not a stoker cache, and stoker never opens, writes or replaces it"
        )
    real = os.path.realpath(path)
    try:
        target = os.stat(path)
    except FileNotFoundError:
        raise NotACacheFile(
            f"cache file {path!r} is a symbolic link to {real!r}, which does not exist; "
            "stoker does not create a file through a dangling link"
        ) from None
    except OSError as e:
        raise NotACacheFile(
            f"cache file {path!r} is a symbolic link that cannot be followed: {e.strerror or e}"
        ) from None
    if not stat.S_ISREG(target.st_mode):
        raise NotACacheFile(
            f"cache file {path!r} is a symbolic link to {real!r}, which is "
            f"{_kind(target.st_mode)}, not a regular file: it is not a stoker cache, and "
            "stoker never opens, writes or replaces it"
        )
    return real


def _open_regular(path: str) -> int:
    """A read-only descriptor of the regular file ``path`` (opened without blocking).

    Raises:
        FileNotFoundError: Nothing is at ``path``.
        NotACacheFile: ``path`` is not a regular file (it changed since it was checked).
    """
    fd = os.open(path, _SAFE_OPEN)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotACacheFile(
                f"cache file {path!r} is {_kind(mode)}, not a regular file: it is not a "
                "stoker cache, and stoker never writes or replaces it"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _looks_like_cache(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a stoker cache, complete or not."""
    n = len(MAGIC)
    return head[:n] == MAGIC or head[:n] == bytes(len(head[:n])) or MAGIC.startswith(head[:n])


def check_replaceable(path: str) -> None:
    """Check that a finished cache may be renamed to ``path``: nothing is there, or a
    regular file that is a stoker cache (complete, damaged or never completed) or empty.

    Raises:
        NotACacheFile: Anything else is there (another file, a directory, a device, a
            FIFO, a socket, a symbolic link).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise NotACacheFile(
            f"cache file {path!r} became {_kind(st.st_mode)} while the cache was being "
            "filled; stoker does not replace it, and kept nothing"
        )
    fd = _open_regular(path)
    try:
        head = os.read(fd, len(MAGIC))
    finally:
        os.close(fd)
    if not _looks_like_cache(head):
        raise NotACacheFile(
            f"cache file {path!r} became a file that is not a stoker cache while the cache "
            "was being filled; stoker does not replace it, and kept nothing"
        )


class CacheWriter:
    """Streams records to ``tmp_path``; :meth:`commit` makes ``path`` appear complete.

    Args:
        path: The final name of the cache file.
        tmp_path: The temporary file to write (created; must not exist).

    Raises:
        CacheError: The temporary file cannot be created.
    """

    def __init__(self, path: str, tmp_path: str):
        self.path = path
        self.tmp_path = tmp_path
        try:
            self._f: Any = open(tmp_path, "xb", buffering=_BUFFER_BYTES)
        except OSError as e:
            raise CacheError(
                f"cannot create cache file {tmp_path!r} for {path!r}: {e.strerror or e}. "
                "Check that the directory exists and is writable, or pick another filename."
            ) from e
        self._encoder = Encoder()
        self._offsets: list[int] = []
        self._pos = 0
        self._closed = False
        self._write(bytes(HEADER_SIZE))

    @property
    def count(self) -> int:
        """Records written so far."""
        return len(self._offsets)

    def _write(self, data: Any) -> None:
        self._f.write(data)
        self._pos += memoryview(data).nbytes

    def _failed(self, e: OSError, doing: str) -> CacheError:
        self.abort()
        if e.errno == errno.ENOSPC:
            hint = "The disk is full: free space or pick a filename on a disk with room."
        elif e.errno == errno.EDQUOT:
            hint = "The disk quota is exhausted: free space or pick another filename."
        else:
            hint = "Check the disk and the directory's permissions, or pick another filename."
        return CacheError(
            f"cannot write cache file {self.path!r} (while {doing}): "
            f"{e.strerror or e}. Nothing was kept; the next pass will try again. {hint}"
        )

    def append(self, element: Any) -> None:
        """Add one record.

        Raises:
            CacheError: The element cannot be stored (the writer stays usable) or the
                write failed (the temporary file is removed and the writer closed).
        """
        buffers, _ = self._encoder.encode(element, self._pos)
        start = self._pos
        try:
            for b in buffers:
                self._write(b)
        except OSError as e:
            raise self._failed(e, f"writing element {len(self._offsets)}") from e
        self._offsets.append(start)

    def commit(self, meta: dict[str, Any]) -> None:
        """Write the index, ``meta`` and header; fsync; rename to the final name.

        Raises:
            CacheError: A write, fsync or rename failed; nothing is left behind.
        """
        enc = self._encoder
        meta = {
            **meta,
            "count": len(self._offsets),
            "data_bytes": enc.data_bytes,
            "specs": enc.specs,
            "shapes": enc.shapes,
        }
        meta_bytes = json.dumps(meta, separators=(",", ":"), allow_nan=True).encode()
        index = np.asarray(self._offsets, dtype="<u8").tobytes()
        try:
            index_offset = self._pos
            self._write(index)
            meta_offset = self._pos
            self._write(meta_bytes)
            self._write(END_MAGIC)
            header = _HEADER.pack(
                MAGIC,
                FORMAT_VERSION,
                HEADER_SIZE,
                self._pos,
                len(self._offsets),
                index_offset,
                meta_offset,
                len(meta_bytes),
                crc32c.crc32c(index),
                crc32c.crc32c(meta_bytes),
            )
            self._f.flush()
            self._f.seek(0)
            self._f.write(header + _HEADER_CRC.pack(crc32c.crc32c(header)))
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._closed = True
            check_replaceable(self.path)
            os.replace(self.tmp_path, self.path)
        except NotACacheFile:
            self.abort()
            raise
        except OSError as e:
            raise self._failed(e, "finishing the file") from e
        _fsync_dir(os.path.dirname(os.path.abspath(self.path)))

    def abort(self) -> None:
        """Close and delete the temporary file; idempotent."""
        if not self._closed:
            self._closed = True
            try:
                self._f.close()
            except OSError:
                pass
        try:
            os.unlink(self.tmp_path)
        except OSError:
            pass


def _fsync_dir(path: str) -> None:
    # The rename is durable only once the directory entry is on disk (ext4, xfs).
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


class CacheReader:
    """A complete cache file, mapped read-only; elements are decoded on demand.

    Arrays of the elements it returns are read-only views of the mapping (no copy).

    Args:
        path: The cache file; a symbolic link to one is followed. Nothing that is not a
            regular file is ever opened (see :func:`resolve_cache_path`).

    Raises:
        FileNotFoundError: There is no file at ``path``.
        NotACacheFile: ``path`` is not a stoker cache (another file, a directory, a
            device, a FIFO, a socket, a dangling symbolic link).
        CacheDamaged: The file is a stoker cache that cannot be used (truncated, corrupt
            header/index/meta, other format version).
    """

    def __init__(self, path: str):
        self.path = path
        real = resolve_cache_path(path)
        self._shown = repr(path) if real == path else f"{path!r} (a symbolic link to {real!r})"
        fd = _open_regular(real)
        try:
            st = os.fstat(fd)
            self.stat_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            size = st.st_size
            if size == 0:
                raise CacheDamaged(self._message("is empty"))
            self._mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        try:
            self._parse(size)
        except BaseException:
            self._mm.close()
            raise

    def _message(self, what: str) -> str:
        return f"cache file {self._shown} {what}"

    def _parse(self, size: int) -> None:
        mm = self._mm
        if mm[: len(MAGIC)] != MAGIC:
            if _looks_like_cache(mm[: len(MAGIC)]):
                raise CacheDamaged(self._message("has no header (it was never completed)"))
            raise NotACacheFile(
                self._message("exists and is not a stoker cache; stoker never overwrites it")
            )
        if size < HEADER_SIZE:
            raise CacheDamaged(self._message(f"is truncated ({size} bytes)"))
        fields = _HEADER.unpack_from(mm, 0)
        (_, version, header_size, file_size, count, index_offset, meta_offset, meta_len,
         index_crc, meta_crc) = fields  # fmt: skip
        if crc32c.crc32c(mm[: _HEADER.size]) != _HEADER_CRC.unpack_from(mm, _HEADER.size)[0]:
            raise CacheDamaged(self._message("has a corrupt header (CRC mismatch)"))
        if version != FORMAT_VERSION:
            raise CacheDamaged(
                self._message(f"has format version {version}; this stoker reads {FORMAT_VERSION}")
            )
        if file_size != size:
            raise CacheDamaged(
                self._message(
                    f"is truncated or extended: {size} bytes, its header says {file_size}"
                )
            )
        if not (
            header_size <= index_offset
            and index_offset + 8 * count == meta_offset
            and meta_offset + meta_len + len(END_MAGIC) == size
            and mm[size - len(END_MAGIC) :] == END_MAGIC
        ):
            raise CacheDamaged(self._message("has an inconsistent layout"))
        index = mm[index_offset:meta_offset]
        if crc32c.crc32c(index) != index_crc:
            raise CacheDamaged(self._message("has a corrupt record index (CRC mismatch)"))
        meta_bytes = mm[meta_offset : meta_offset + meta_len]
        if crc32c.crc32c(meta_bytes) != meta_crc:
            raise CacheDamaged(self._message("has corrupt metadata (CRC mismatch)"))
        try:
            meta = json.loads(meta_bytes)
            self._decoders: list[Decoder] = [compile_decoder(s) for s in meta["specs"]]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CacheDamaged(self._message(f"has unreadable metadata ({e})")) from None
        self.meta: dict[str, Any] = meta
        self.count = int(count)
        self._size = size
        self._index_offset = index_offset
        if sys.byteorder == "little":
            self._mv = memoryview(mm)
            self._index: Any = self._mv[index_offset:meta_offset].cast("Q")
        else:  # pragma: no cover - big-endian hosts
            self._mv = memoryview(mm)
            self._index = np.frombuffer(index, "<u8").tolist()

    def __len__(self) -> int:
        return self.count

    @property
    def fingerprint(self) -> str:
        return str(self.meta.get("fingerprint", ""))

    def _corrupt(self, i: int, offset: int, why: str) -> CacheError:
        return CacheError(
            f"cache file {self._shown} is corrupt: record {i} at byte offset {offset} {why}. "
            "The elements before it were correct. Delete the file; the next pass recomputes it."
        )

    def read(self, i: int) -> Any:
        """Element ``i`` (0 <= i < count), checked against its CRC.

        Raises:
            CacheError: The record is corrupt.
        """
        mm = self._mm
        off = self._index[i]
        crc, sid, plen = RECORD_HEADER.unpack_from(mm, off)
        end = off + RECORD_HEADER.size + plen
        if end > self._index_offset:
            raise self._corrupt(i, off, "runs past the record area")
        if crc32c.crc32c(self._mv[off + 4 : end]) != crc:
            raise self._corrupt(i, off, "does not match its CRC")
        try:
            return self._decoders[sid](mm, off)
        except (IndexError, ValueError, TypeError, struct.error, UnicodeDecodeError) as e:
            raise self._corrupt(i, off, f"cannot be decoded ({e})") from None

    def read_block(
        self, start: int, max_bytes: int = _BLOCK_BYTES, max_records: int = _BLOCK_RECORDS
    ) -> tuple[list[Any], CacheError | None]:
        """Elements ``start``, ``start + 1``, ... (at least one, unless at the end).

        One call decodes up to ``max_records`` records or about ``max_bytes`` of them: far
        less per-element overhead than :meth:`read`, and arrays are still views.

        Returns:
            The elements, and the error of the record that follows them if it is corrupt
            (the elements before a corrupt record are delivered first).
        """
        index = self._index
        stop = min(self.count, start + max_records)
        if stop - start > 1:
            limit = index[start] + max_bytes
            stop = max(start + 1, bisect.bisect_right(index, limit, start, stop))
        mm, mv, decoders = self._mm, self._mv, self._decoders
        unpack, crc32 = RECORD_HEADER.unpack_from, crc32c.crc32c
        end_of_records = self._index_offset
        out: list[Any] = []
        append = out.append
        i = off = start
        try:
            for i in range(start, stop):
                off = index[i]
                crc, sid, plen = unpack(mm, off)
                end = off + 16 + plen
                if end > end_of_records:
                    return out, self._corrupt(i, off, "runs past the record area")
                if crc32(mv[off + 4 : end]) != crc:
                    return out, self._corrupt(i, off, "does not match its CRC")
                append(decoders[sid](mm, off))
        except (IndexError, ValueError, TypeError, struct.error, UnicodeDecodeError) as e:
            return out, self._corrupt(i, off, f"cannot be decoded ({e})")
        return out, None

    def verify(self) -> None:
        """Read every record (CRC and decoding). Raises CacheError at the first bad one."""
        for i in range(self.count):
            self.read(i)

    def close(self) -> None:
        """Unmap the file, unless returned arrays still use it (then GC unmaps it)."""
        try:
            self._index.release()
            self._mv.release()
        except (AttributeError, BufferError):
            pass
        try:
            self._mm.close()
        except BufferError:
            pass
