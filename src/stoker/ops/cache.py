"""``Dataset.cache``: compute a pass once, serve later passes from memory or a file.

The first *complete* pass over a cache fills it; every later pass (a later ``iter()``,
the next epoch of ``repeat()``) replays it, in the order of the pass that filled it. A
pass that stops early (``take`` after ``cache``, a ``break``, an exception) is discarded,
with a warning, and the next pass fills the cache again.

* ``cache()`` keeps the elements in a list on the dataset object, with arrays as
  read-only views (an in-place change raises instead of changing later epochs). Its
  bytes count in the pipeline's RAM ledger (:mod:`stoker.autotune._ram`) against
  ``Options.ram_budget``, together with every other buffer: while filling, as they are
  added (past the budget it stops caching and warns); while replaying, the whole cache,
  from the iterator's start until its pass ends or it is closed.
* ``cache(filename)`` writes the stoker cache format (:mod:`stoker.cache.format`) to a
  temporary file that is renamed to ``filename`` when the pass completes, under a lock
  that only one process holds (:mod:`stoker.cache._lock`; the others read the pipeline
  above for that pass). The file is keyed by a fingerprint of the pipeline above
  (:mod:`stoker.ops._cache_fingerprint`): a file from another pipeline, or a damaged one, is
  recomputed with a warning, never read. Files named in the pipeline that the filling
  pass itself changed (a log the map function appends to) are its *outputs*: they are
  recorded in the file's meta and left out of its key, so a second process reuses the
  cache; every other named file is an input, and a change to it means a recompute.

Checkpoints. While filling, the state is the input's state and the number of elements
delivered. A pass restored at element 0 fills the cache; one restored later only reads
the input (its first part is gone; the next pass fills the cache). While replaying, the
state is the position in the cache (restoring it is O(1)) and the input's state at the
start of the pass that filled it: if the cache is gone when the state is restored (a new
process, for the memory cache), that pass is recomputed up to the position, filling the
cache again.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

from stoker.autotune._ram import ledger_for
from stoker.cache._lock import try_lock
from stoker.cache.format import (
    CacheDamaged,
    CacheReader,
    CacheWriter,
    NotACacheFile,
    resolve_cache_path,
)
from stoker.dataset import Dataset
from stoker.errors import CacheError, CheckpointError
from stoker.iterator import DatasetIterator, IterContext, State, saved, snapshot
from stoker.ops._cache_fingerprint import Fingerprint, fingerprint
from stoker.ops._cache_sinks import (
    FileSink,
    MemorySink,
    StopWriting,
    abandon,
    remove_stale_temporaries,
)
from stoker.ops._common import UnaryDataset

__all__ = ["CacheDataset"]

_LOG = logging.getLogger(__name__)
#: Stands in for an unknown fingerprint: such a file is only valid in the process that wrote it.
_PROCESS_TOKEN = secrets.token_hex(8)
_RUNTIME = ("_lock", "_memory", "_memory_start", "_memory_bytes", "_over_budget", "_fp",
            "_reader", "_warned", "_completed")  # fmt: skip


class CacheDataset(UnaryDataset):
    """The dataset ``cache(filename)`` returns; see the module docstring."""

    _op_name = "cache"
    _fingerprint_exclude = _RUNTIME

    def __init__(self, input_dataset: Dataset, filename: Any, name: str | None):
        super().__init__(input_dataset, name)
        if not isinstance(filename, (str, bytes, os.PathLike)):
            raise TypeError(f"cache(): filename={filename!r} must be a str or path")
        self._filename = os.fsdecode(filename)
        self._init_runtime()
        if self._filename:
            self._target()  # a directory, device, FIFO... is refused at once

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._memory: list[Any] | None = None
        self._memory_start: Any = None
        self._memory_bytes = 0
        self._over_budget = False
        self._fp: Fingerprint | None = None
        self._reader: CacheReader | None = None
        self._warned: set[Any] = set()
        #: A pass completed the cache (in this process): a partial pass then loses nothing.
        self._completed = False

    # Datasets travel to worker processes: the cache contents and locks stay here.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in _RUNTIME}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._init_runtime()

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the complete memory cache (an estimate; 0 for file caches)."""
        return self._memory_bytes

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _CacheIterator(ctx, self)

    # -- helpers shared by this dataset's iterators ---------------------------------------

    def _warn(self, key: Any, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        if not sys.is_finalizing():
            warnings.warn(message, UserWarning, stacklevel=4)

    def _target(self) -> str:
        """The file the cache is read from and renamed to (a symbolic link's target).

        Raises:
            NotACacheFile: ``filename`` is not a regular file or a free name (see
                :func:`stoker.cache.format.resolve_cache_path`).
        """
        try:
            return resolve_cache_path(self._filename)
        except NotACacheFile as e:
            raise NotACacheFile(f"{e}. Pass another filename to cache().") from None

    def _fingerprint(self) -> tuple[str, Fingerprint]:
        fp = self._fp
        if fp is None:
            names = {os.path.abspath(self._filename), os.path.realpath(self._filename)}
            fp = self._fp = fingerprint(self._input, ignore_paths=tuple(sorted(names)))
            if not fp.known:
                self._warn(
                    "unknown",
                    f"cache({self._filename!r}): stoker cannot fingerprint part of the "
                    f"pipeline above it ({'; '.join(fp.unknown)}), so it cannot tell "
                    "whether a file written by another process is stale. The file will only "
                    "be reused by this process; each new process recomputes it. Define "
                    "__stoker_fingerprint__() on those objects, or pass plain values.",
                )
        return _key(fp, ()), fp

    def _key(self, outputs: Any) -> str:
        """The key of a cache file whose filling pass had ``outputs`` (from its meta): the
        fingerprint without those files (see :mod:`stoker.ops._cache_fingerprint`)."""
        return _key(self._fingerprint()[1], outputs)

    def _refresh_fingerprint(self) -> None:
        """Take the fingerprint again at the start of a filling pass if a file it names
        changed since, so that only what changes *during* the pass is an output."""
        with self._lock:
            fp = self._fp
            if fp is not None and fp.changed():
                self._fp = None

    def _file_reader(self) -> CacheReader | None:
        """The complete, matching cache file, or None (it must be computed)."""
        with self._lock:
            path = self._target()
            try:
                st = os.stat(path)
            except FileNotFoundError:
                self._reader = None
                return None
            except OSError as e:
                raise CacheError(f"cannot read cache file {path!r}: {e.strerror or e}") from e
            stat_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if self._reader is not None and self._reader.stat_key == stat_key:
                return self._reader
            self._fingerprint()
            try:
                reader = CacheReader(self._filename)
            except FileNotFoundError:
                return None
            except NotACacheFile as e:
                raise NotACacheFile(
                    f"{e}. Pass another filename to cache(), or delete the file."
                ) from None
            except CacheDamaged as e:
                self._warn(("damaged", stat_key), f"{e}; recomputing it from the pipeline")
                return None
            key = self._key(reader.meta.get("outputs"))
            if reader.fingerprint != key:
                reader.close()
                self._warn(
                    ("stale", stat_key),
                    f"cache file {path!r} was written by a different pipeline (fingerprint "
                    f"{reader.fingerprint[:16]}, this pipeline's is {key[:16]}); recomputing "
                    f"it. `python -m stoker cache-info {path}` shows what it holds.",
                )
                return None
            self._reader = reader
            self._completed = True
            return reader

    def _commit_memory(self, items: list[Any], start: Any, nbytes: int) -> None:
        with self._lock:
            self._completed = True
            if self._memory is None:  # two passes filled it at once: keep the first
                self._memory = items
                self._memory_start = start
                self._memory_bytes = nbytes


def _key(fp: Fingerprint, outputs: Any) -> str:
    names = [o for o in outputs if isinstance(o, str)] if isinstance(outputs, list) else []
    digest = fp.key(names)
    return digest if fp.known else f"{digest}-process-{_PROCESS_TOKEN}"


def _frozen_state(node: DatasetIterator) -> Any:
    """A JSON copy of ``node``'s state (later changes to the node cannot reach it), or None
    if the node cannot save its position."""
    try:
        return json.loads(json.dumps(saved(snapshot(node))))
    except (CheckpointError, TypeError, ValueError):
        return None


# -- the iterator ---------------------------------------------------------------------------


class _CacheIterator(DatasetIterator):
    OP = "cache"

    def __init__(self, ctx: IterContext, ds: CacheDataset):
        super().__init__(ctx, ds, ())
        self._ds = ds
        self._ctx_ = ctx
        self._file = bool(ds._filename)
        # Replaying: elements come from ``_buf`` (the whole memory cache, or a block of
        # decoded file records) through ``_it``, a list iterator over it (the fastest way
        # Python has to step through a list); the position in the cache is ``_base`` plus
        # how far ``_it`` is into ``_buf`` (:meth:`_position`).
        self._buf: list[Any] | None = None
        self._it: Iterator[Any] | None = None
        self._base = 0
        self._reader: CacheReader | None = None
        self._error: CacheError | None = None  # a corrupt record after the current block
        # Filling: ``_pos`` elements delivered so far.
        self._pos = 0
        self._start: Any = None  # the input's state at element 0 of the filling pass
        self._input: DatasetIterator | None = None
        self._sink: Any = None
        self._finalizer: Any = None
        self._write = False
        self._ledger = ledger_for(ctx)
        self._held = 0  # bytes of a replayed memory cache, reserved in the ledger
        weakref.finalize(self, self._ledger.release_all, self.stage)
        if not self._replay(0):
            self._fill(write=True)

    # -- modes ----------------------------------------------------------------------------

    def _replay(self, pos: int) -> bool:
        """Replay from element ``pos`` if a complete cache exists."""
        ds = self._ds
        reader = None
        if self._file:
            reader = ds._file_reader()
            if reader is None:
                return False
            n, start = reader.count, reader.meta.get("start_state")
        else:
            if ds._memory is None:
                return False
            n, start = len(ds._memory), ds._memory_start
        if pos > n:
            raise CheckpointError(
                f"stage {self.stage}: the state is at element {pos} of the cache, which "
                f"holds {n}; it was saved from a different cache"
            )
        self._drop_fill()
        self._reader = reader
        self._error = None
        if reader is not None:
            self._buf, self._base = [], pos
            self._it = iter(self._buf)
        else:
            memory = ds._memory
            assert memory is not None
            self._buf, self._base = memory, 0
            it = iter(memory)
            it.__setstate__(pos)  # type: ignore[attr-defined]  # list iterators have it
            self._it = it
            self._hold(ds._memory_bytes)
        self._start = start
        return True

    def _hold(self, nbytes: int) -> None:
        """Count ``nbytes`` (a replayed memory cache) in the ledger instead of what was."""
        old, self._held = self._held, nbytes
        if nbytes > old:
            self._ledger.reserve(self.stage, nbytes - old)
        elif nbytes < old:
            self._ledger.release(self.stage, old - nbytes)

    def _fill(self, write: bool) -> None:
        self._discard_sink(None)
        self._buf = self._reader = self._it = None
        self._hold(0)
        if self._input is None:
            self._input = self._ds._input._make_iterator(self._ctx_)
            self._inputs = (self._input,)
        self._write = write
        self._pos = 0

    def _drop_fill(self) -> None:
        self._discard_sink(None)
        if self._input is not None:
            self._input.close()
            self._input = None
            self._inputs = ()

    def _discard_sink(self, why: str | None) -> None:
        sink, self._sink = self._sink, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if sink is None:
            return
        if why is None:
            sink.discard()
        else:
            abandon(sink, self._ds, self.stage, why)

    def _open_sink(self) -> None:
        """Start writing at element 0, unless the cache cannot or need not be written."""
        ds = self._ds
        assert self._input is not None
        self._write = False
        if not self._file:
            if ds._over_budget or ds._memory is not None:
                return
            sink: Any = MemorySink(ds, self._ledger, self.stage)
        else:
            sink = self._open_file_sink()
            if sink is None:
                return
        self._start = _frozen_state(self._input)
        self._sink = sink
        self._finalizer = weakref.finalize(
            self, abandon, sink, ds, self.stage, "its iterator was dropped before the end"
        )

    def _open_file_sink(self) -> FileSink | None:
        ds = self._ds
        path = ds._target()
        try:
            lock = try_lock(path + ".lock")
        except OSError as e:
            raise CacheError(
                f"cannot create the lock file {path + '.lock'!r} of cache file {path!r}: "
                f"{e.strerror or e}. Check that the directory exists and is writable."
            ) from e
        if lock is None:
            _LOG.info(
                "%s: another process is writing %r; this pass reads its input", self.stage, path
            )
            return None
        try:
            ds._refresh_fingerprint()
            if ds._file_reader() is not None:  # another process completed it meanwhile
                lock.release()
                return None
            ds._fingerprint()
            remove_stale_temporaries(path)
            writer = CacheWriter(path, f"{path}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        except BaseException:
            lock.release()
            raise
        return FileSink(ds, lock, writer)

    # -- iteration ------------------------------------------------------------------------

    def __next__(self) -> Any:
        it = self._it
        if it is not None:
            for x in it:  # one element: no call to next(), no try/except
                return x
            return self._next_block()
        return self._next_filling()

    def _position(self) -> int:
        """Replaying: the position in the cache of the next element."""
        assert self._buf is not None and self._it is not None
        left: int = self._it.__length_hint__()  # type: ignore[attr-defined]
        return self._base + len(self._buf) - left

    def _next_block(self) -> Any:
        reader = self._reader
        if reader is None:  # the memory cache is one block
            self._hold(0)  # the pass is over: this iterator holds nothing any more
            raise StopIteration
        if self._error is not None:
            raise self._error
        assert self._buf is not None
        pos = self._base + len(self._buf)
        if pos >= reader.count:
            raise StopIteration
        block, self._error = reader.read_block(pos)
        self._buf, self._base = block, pos
        it = self._it = iter(block)
        for x in it:
            return x
        assert self._error is not None
        raise self._error

    def _next_filling(self) -> Any:
        if self._input is None:  # closed
            raise StopIteration
        if self._write and self._pos == 0:
            self._open_sink()
        try:
            x = next(self._input)
        except StopIteration:
            self._commit()
            raise
        except Exception as e:
            self._discard_sink(f"the pipeline above raised {type(e).__name__}")
            raise
        sink = self._sink
        if sink is not None:
            try:
                x = sink.add(x)
            except StopWriting as stop:
                self._discard_sink(None)
                x = stop.element
            except BaseException:
                self._discard_sink(None)
                raise
        self._pos += 1
        return x

    def _commit(self) -> None:
        sink, self._sink = self._sink, None
        if sink is None:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        sink.commit(self._start)

    # -- state ----------------------------------------------------------------------------

    def _get_state(self) -> State:
        if self._buf is not None:
            return {"mode": "replay", "pos": self._position(), "start": self._start}
        if self._input is None:
            raise CheckpointError(f"stage {self.stage} is closed; take its state before close()")
        return {"mode": "fill", "pos": self._pos, "input": self._input.get_state()}

    def _set_state(self, state: State) -> None:
        mode = state["mode"]
        pos = int(state["pos"])
        if mode == "replay":
            if self._replay(pos):
                return
            start = state.get("start")
            if start is None:
                where = f"file {self._ds._filename!r}" if self._file else "memory"
                raise CheckpointError(
                    f"stage {self.stage}: the state is at element {pos} of a complete cache, "
                    f"but there is no usable cache in {where} now, and the position of the "
                    "pipeline above at the start of the pass that filled it is unknown (it "
                    "cannot save its position). Restore where the cache exists, or restart "
                    "the epoch."
                )
            # Recompute the filling pass up to ``pos``, filling the cache on the way.
            self._fill(write=True)
            assert self._input is not None
            self._input.set_state(start)
            for done in range(pos):
                try:
                    self._next_filling()
                except StopIteration:
                    raise CheckpointError(
                        f"stage {self.stage}: the state is at element {pos} of the cache, but "
                        f"recomputing it from the pipeline above gave only {done} elements"
                    ) from None
            return
        if mode != "fill":
            raise ValueError(f"unknown cache mode {mode!r}")
        complete = (
            self._ds._file_reader() is not None if self._file else self._ds._memory is not None
        )
        self._fill(write=pos == 0 and not complete)
        assert self._input is not None
        self._input.set_state(state["input"])
        self._pos = pos

    def _close(self) -> None:
        # After close(), next() raises StopIteration (IteratorState.CLOSED).
        self._buf = self._reader = self._input = self._it = None
        self._discard_sink("the pass stopped before the end of the dataset")
        self._hold(0)
