"""File sources: ``list_files``, ``TFRecordDataset`` and ``TextLineDataset``.

A reader dataset is a dataset of file names interleaved (``num_parallel_reads``) or
flat-mapped into one single-file dataset per name, as in tf.data. A single-file iterator's
state is the byte offset of its next record, so a resume seeks instead of re-reading.
"""

from __future__ import annotations

import glob
import operator
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from stoker.dataset import Dataset
from stoker.errors import DataLossError
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.options import AUTOTUNE, UNKNOWN_CARDINALITY

__all__ = ["TFRecordDataset", "TextLineDataset", "list_files"]

_COMPRESSION = (None, "", "GZIP", "ZLIB")


def list_files(
    file_pattern: str | Sequence[str], shuffle: bool | None, seed: int | None, name: str | None
) -> Dataset:
    patterns = [file_pattern] if isinstance(file_pattern, (str, os.PathLike)) else file_pattern
    names: set[str] = set()
    for pattern in patterns:
        pattern = os.fspath(pattern)
        matched = glob.glob(pattern)
        if not matched:
            raise FileNotFoundError(f"list_files(): no files matched pattern {pattern!r}")
        names.update(matched)
    ds = Dataset.from_tensor_slices(np.array(sorted(names)), name=name)
    if shuffle is None or shuffle:
        ds = ds.shuffle(len(names), seed=seed)
    return ds


def _file_names(filenames: Any, op: str) -> Dataset:
    if isinstance(filenames, Dataset):
        return filenames
    if isinstance(filenames, (str, bytes, os.PathLike)):
        filenames = [filenames]
    if isinstance(filenames, np.ndarray):
        filenames = filenames.ravel().tolist()
    try:
        filenames = list(filenames)
    except TypeError:
        raise TypeError(
            f"{op}(): filenames={filenames!r} must be a path (str, bytes or os.PathLike), "
            f"a list of paths or a Dataset of paths; got {type(filenames).__name__}"
        ) from None
    names = []
    for i, f in enumerate(filenames):
        if not isinstance(f, (str, bytes, os.PathLike)):
            raise TypeError(
                f"{op}(): filenames[{i}]={f!r} must be a path (str, bytes or os.PathLike); "
                f"got {type(f).__name__}"
            )
        names.append(os.fsdecode(f))
    if not names:
        raise ValueError(f"{op}(): filenames must not be empty")
    return Dataset.from_tensor_slices(np.array(names))


def _check_compression(op: str, compression_type: str | None) -> str | None:
    if compression_type not in _COMPRESSION:
        raise ValueError(
            f"{op}(): compression_type={compression_type!r} must be one of None, '', 'GZIP', 'ZLIB'"
        )
    return compression_type or None


class _ReaderDataset(Dataset):
    """Names → records, flat-mapped or interleaved over ``num_parallel_reads`` files."""

    _reader_op = "reader"

    def __init__(
        self,
        filenames: Any,
        compression_type: str | None = None,
        buffer_size: int | None = None,
        num_parallel_reads: int | None = None,
        name: str | None = None,
    ):
        self._compression = _check_compression(self._reader_op, compression_type)
        self._buffer_size = buffer_size
        names = _file_names(filenames, self._reader_op)

        def one_file(path: Any) -> Dataset:
            return _SingleFileDataset(type(self)._reader_op, str(path), self._compression)

        if num_parallel_reads is None:
            inner = names.flat_map(one_file, name=name)
        else:
            reads = num_parallel_reads
            inner = names.interleave(
                one_file,
                cycle_length=None if reads == AUTOTUNE else reads,
                block_length=1,
                num_parallel_calls=reads,
                name=name,
            )
        super().__init__((inner,), name)
        self._op_name = self._reader_op
        self._inner = inner
        # One TFRecord file named up front: its records come straight from the file's
        # node, without a flat_map in between (a Python call level less per record).
        self._single: _SingleFileDataset | None = None
        single = _single_name(filenames)
        if num_parallel_reads is None and self._reader_op == "TFRecordDataset" and single:
            self._single = _SingleFileDataset(self._reader_op, single, self._compression)
            self._single._name = name

    def _cardinality(self) -> int:
        return UNKNOWN_CARDINALITY

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        single = self._single
        if single is not None:
            if ctx.root_dataset is self:  # the file's node is the root (see IterContext)
                ctx.root_dataset = single
            return single._make_iterator(ctx)
        return self._inner._make_iterator(ctx)


def _single_name(filenames: Any) -> str | None:
    if isinstance(filenames, (str, bytes, os.PathLike)):
        return os.fsdecode(filenames)
    if isinstance(filenames, (list, tuple)) and len(filenames) == 1:
        (f,) = filenames
        if isinstance(f, (str, bytes, os.PathLike)):
            return os.fsdecode(f)
    return None


class TFRecordDataset(_ReaderDataset):
    """Records of TFRecord files as ``bytes``, like ``tf.data.TFRecordDataset``.

    Args:
        filenames: A path, a list of paths, or a dataset of paths.
        compression_type: ``None``/``""``, ``"GZIP"`` or ``"ZLIB"``.
        buffer_size: Read buffer size in bytes (accepted for compatibility). [Unit: byte]
        num_parallel_reads: Files read at once (interleaved one record at a time, in
            tf.data's order); ``None`` reads them one after another.
        name: Stage name.

    Corrupt or truncated records raise :class:`~stoker.errors.DataLossError` naming the
    file and byte offset, after every record before them has been delivered.

    Example::

        ds = TFRecordDataset(["a.tfrecord", "b.tfrecord"]).map(stoker.io.parse_example)
    """

    _reader_op = "TFRecordDataset"


class TextLineDataset(_ReaderDataset):
    """Lines of text files as ``bytes`` without the line ending, like tf.data's."""

    _reader_op = "TextLineDataset"


class _SingleFileDataset(Dataset):
    def __init__(self, kind: str, path: str, compression: str | None):
        super().__init__((), None)
        self._op_name = kind
        self._kind = kind
        self._path = path
        self._compression = compression

    def _open(self, offset: int) -> Any:
        if self._kind == "TFRecordDataset":
            from stoker.io.tfrecord import TFRecordReader

            return TFRecordReader(self._path, self._compression, offset=offset)
        from stoker.io.text import TextLineReader

        return TextLineReader(self._path, self._compression, offset=offset)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        if self._kind == "TFRecordDataset":
            return _TFRecordFileIterator(ctx, self)
        return _SingleFileIterator(ctx, self)


class _SingleFileIterator(DatasetIterator):
    OP = "file"

    def __init__(self, ctx: IterContext, ds: _SingleFileDataset):
        super().__init__(ctx, ds, ())
        self._ds = ds
        self._reader: Any = None
        self._offset = 0
        self._failed = False

    def __next__(self) -> Any:
        if self._reader is None:
            if self._failed:
                raise StopIteration
            self._reader = self._ds._open(self._offset)
        try:
            return next(self._reader)
        except DataLossError:
            # The rest of a damaged file cannot be trusted; with ignore_errors() the
            # pipeline moves on to the next file instead of hitting the same record again.
            self._failed = True
            self._close()
            raise

    def _get_state(self) -> State:
        offset = self._reader.offset if self._reader is not None else self._offset
        return {"path": self._ds._path, "offset": int(offset), "failed": self._failed}

    def _set_state(self, state: State) -> None:
        if state["path"] != self._ds._path:
            raise ValueError(f"state is for file {state['path']!r}, not {self._ds._path!r}")
        self._close()
        self._offset = int(state["offset"])
        self._failed = bool(state["failed"])

    def _close(self) -> None:
        if self._reader is not None:
            self._offset = self._reader.offset
            self._reader.close()
            self._reader = None


# Records handed out per block: the reader parses them in one pass, CRCs checked, and the
# node serves them from the block's own iterator.
_RECORDS_PER_BLOCK = 4096
_TFRECORD_FRAME_BYTES = 16  # length (8), its CRC (4), the data's CRC (4)


class _TFRecordFileIterator(_SingleFileIterator):
    """One TFRecord file, its records served from parsed blocks.

    Handing out a record is one call of a list iterator's ``__next__`` (no call into the
    reader per record); the reader parses the next block (``read_block``) when this one
    ends. The position in a state is the reader's minus the records still in the block.
    """

    def __init__(self, ctx: IterContext, ds: _SingleFileDataset):
        super().__init__(ctx, ds)
        self._block: list[bytes] = []
        self._ahead: Iterator[bytes] = iter(self._block)
        self._next_record = self._ahead.__next__

    def __next__(self) -> Any:
        try:
            return self._next_record()
        except StopIteration:
            return self._next_block()

    def _next_block(self) -> Any:
        if self._reader is None:
            if self._failed:
                raise StopIteration
            self._reader = self._ds._open(self._offset)
        try:
            # Good records before a bad one come first; the next call raises.
            block = self._reader.read_block(_RECORDS_PER_BLOCK)
        except DataLossError:
            self._failed = True
            self._close()
            raise
        if not block:
            raise StopIteration
        self._block = block
        self._ahead = iter(block)
        self._next_record = self._ahead.__next__
        return self._next_record()

    def _position(self) -> int:
        offset = self._reader.offset if self._reader is not None else self._offset
        left = operator.length_hint(self._ahead)
        if left:
            block = self._block
            offset -= sum(map(len, block[len(block) - left :])) + left * _TFRECORD_FRAME_BYTES
        return int(offset)

    def _get_state(self) -> State:
        return {"path": self._ds._path, "offset": self._position(), "failed": self._failed}

    def _set_state(self, state: State) -> None:
        super()._set_state(state)
        self._drop_block()

    def _close(self) -> None:
        if self._reader is not None:
            offset = self._position()
            super()._close()
            self._offset = offset
        self._drop_block()

    def _drop_block(self) -> None:
        self._block = []
        self._ahead = iter(self._block)
        self._next_record = self._ahead.__next__
