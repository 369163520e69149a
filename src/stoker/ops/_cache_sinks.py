"""Where a filling pass of ``cache()`` puts its elements: a list, or a cache file.

A sink exists from the first element of a pass that writes to its end. ``commit`` makes
the cache complete; ``discard`` throws the partial fill away (nothing partial is ever
read back). :func:`abandon` discards and tells the user, once per dataset.
"""

from __future__ import annotations

import datetime
import glob
import os
import socket
import stat
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from stoker.autotune._ram import RamLedger
from stoker.cache._lock import WriterLock
from stoker.cache.format import CacheWriter

if TYPE_CHECKING:
    from stoker.ops.cache import CacheDataset

__all__ = [
    "FileSink",
    "MemorySink",
    "StopWriting",
    "abandon",
    "freeze",
    "remove_stale_temporaries",
]


class StopWriting(Exception):
    """The sink gave up (over the RAM budget); the element is still delivered."""

    def __init__(self, element: Any):
        self.element = element


def freeze(x: Any) -> Any:
    """``x`` with read-only arrays, so that no consumer can change a later epoch's data."""
    t = type(x)
    if t is np.ndarray:
        if x.flags.writeable:
            x = x.view()
            x.flags.writeable = False
        return x
    if t is tuple:
        return tuple([freeze(v) for v in x])
    if t is dict:
        return {k: freeze(v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(t, "_fields"):
        return t(*[freeze(v) for v in x])
    return x


def _nbytes(x: Any) -> int:
    """Estimated bytes ``x`` holds: array data plus Python object headers."""
    t = type(x)
    if t is np.ndarray:
        n = int(x.nbytes) + 112
        if x.dtype.hasobject:
            n += sum(sys.getsizeof(v) for v in x.ravel().tolist())
        return n
    if isinstance(x, tuple):
        return sys.getsizeof(x) + sum(_nbytes(v) for v in x)
    if t is dict:
        return sys.getsizeof(x) + sum(_nbytes(v) for v in x.values())
    return sys.getsizeof(x)


class MemorySink:
    """The list a memory cache fills, its bytes reserved in the pipeline's RAM ledger.

    Past ``Options.ram_budget`` (this cache and every other buffer of the pipeline
    together) it gives up with a warning: the partial list is dropped and its bytes
    released. On commit the list goes to the dataset and the bytes are released here; an
    iterator replaying it reserves them again (:mod:`stoker.ops.cache`).
    """

    def __init__(self, ds: CacheDataset, ledger: RamLedger, stage: str):
        self.ds = ds
        self.items: list[Any] = []
        self.nbytes = 0
        self.ledger = ledger
        self.budget = ledger.budget
        self.stage = stage
        self.where = "cache() in memory"

    @property
    def count(self) -> int:
        return len(self.items)

    def add(self, x: Any) -> Any:
        x = freeze(x)
        self.items.append(x)
        n = _nbytes(x)
        self.nbytes += n
        ledger = self.ledger
        ledger.reserve(self.stage, n)
        if ledger.held() > self.budget:
            count, nbytes, others = len(self.items), self.nbytes, ledger.held() - self.nbytes
            self.discard()
            self.ds._over_budget = True
            self.ds._warn(
                "budget",
                f"{self.stage}: {self.where} would hold more than Options.ram_budget = "
                f"{self.budget:,} bytes after {count} elements ({nbytes:,} bytes, with "
                f"{others:,} bytes in the pipeline's other buffers), so it stopped caching: "
                "every pass computes the pipeline above it. Cache on disk with "
                "cache(filename), or raise Options(ram_budget=...) with with_options().",
            )
            raise StopWriting(x)
        return x

    def commit(self, start: Any) -> None:
        self.ds._commit_memory(self.items, start, self.nbytes)
        self.ledger.release(self.stage, self.nbytes)
        self.items = []

    def discard(self) -> None:
        self.items = []
        self.ledger.release(self.stage, self.nbytes)
        self.nbytes = 0


class FileSink:
    def __init__(self, ds: CacheDataset, lock: WriterLock, writer: CacheWriter):
        self.ds = ds
        self.lock = lock
        self.writer = writer
        self.where = f"cache({ds._filename!r})"

    @property
    def count(self) -> int:
        return self.writer.count

    def add(self, x: Any) -> Any:
        self.writer.append(x)
        return x

    def commit(self, start: Any) -> None:
        _, fp = self.ds._fingerprint()
        # Named files that this pass changed are its outputs, not its inputs: recorded,
        # and left out of the key (see stoker.ops._cache_fingerprint).
        outputs = fp.changed()
        meta = {
            "fingerprint": self.ds._key(outputs),
            "outputs": outputs,
            "fingerprint_known": fp.known,
            "unknown": list(fp.unknown),
            "pipeline": fp.pipeline,
            "source_files": fp.files,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "writer": {"pid": os.getpid(), "host": socket.gethostname()},
            "versions": {
                "python": sys.version.split()[0],
                "numpy": np.__version__,
                "stoker": _stoker_version(),
            },
            "start_state": start,
        }
        try:
            self.writer.commit(meta)
        finally:
            self.lock.release()
        self.ds._completed = True

    def discard(self) -> None:
        self.writer.abort()
        self.lock.release()


def _stoker_version() -> str:
    return str(getattr(sys.modules.get("stoker"), "__version__", "unknown"))


def abandon(sink: Any, ds: CacheDataset, stage: str, why: str) -> None:
    """Discard a partial fill, saying so once per dataset."""
    n = sink.count
    sink.discard()
    if ds._completed:  # e.g. zip(ds, ds): the other iterator completed the cache
        return
    ds._warn(
        "partial",
        f"{stage}: {sink.where} saw only {n} elements: {why}. The partial cache was "
        "discarded and the next pass computes it again; a cache is only kept after a "
        "complete pass. To cache part of a dataset, put take() before cache(): "
        "ds.take(k).cache(), not ds.cache().take(k).",
    )


def remove_stale_temporaries(path: str) -> None:
    # Called with the writer lock held: any temporary file is a dead writer's.
    for tmp in glob.glob(glob.escape(path) + ".tmp-*"):
        try:
            if stat.S_ISREG(os.lstat(tmp).st_mode):  # only what a writer could have made
                os.unlink(tmp)
        except OSError:
            pass
