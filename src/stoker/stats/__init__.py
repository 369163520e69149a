"""Per-stage statistics: what each iterator node did and how long it waited.

A node asks :func:`stats_for` for its recorder when it is built. With
``Options(stats=True)`` that is a :class:`StageStats`; otherwise it is :data:`NO_STATS`,
whose methods do nothing, so recording costs one attribute lookup and a call.

What a stage records:

* ``elements``: elements it delivered;
* ``busy_s``: time its workers spent computing elements (summed over workers);
* ``wait_s``: time its consumer spent blocked in ``next()`` waiting for it;
* ``info``: one-off facts, e.g. the executor ``map(executor="auto")`` chose and why.

:func:`collect` gathers the stats of every node of an iterator tree. The autotune
controller reads the same objects.

Example::

    ds = ds.with_options(stoker.Options(stats=True))
    it = iter(ds)
    ...
    print(stoker.stats.collect(it))  # {"map[1]": {"elements": 100, "busy_s": ...}}
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["NO_STATS", "Recorder", "StageStats", "collect", "stats_for"]


class Recorder(Protocol):
    """What nodes call; implemented by :class:`StageStats` and the no-op :data:`NO_STATS`."""

    enabled: bool

    def add(self, elements: int = 0, busy_s: float = 0.0) -> None: ...

    def add_wait(self, seconds: float) -> None: ...

    def set_info(self, key: str, value: Any) -> None: ...

    def record_self_time(self) -> contextlib.AbstractContextManager[None]: ...

    def snapshot(self) -> dict[str, Any]: ...


class StageStats:
    """Counters of one stage; safe to update from several threads."""

    enabled = True

    def __init__(self, stage: str):
        self.stage = stage
        self.elements = 0
        self.busy_s = 0.0
        self.wait_s = 0.0
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, elements: int = 0, busy_s: float = 0.0) -> None:
        """Count ``elements`` delivered and ``busy_s`` seconds of worker time."""
        with self._lock:
            self.elements += elements
            self.busy_s += busy_s

    def add_wait(self, seconds: float) -> None:
        """Count time the consumer spent blocked waiting for this stage."""
        with self._lock:
            self.wait_s += seconds

    def set_info(self, key: str, value: Any) -> None:
        """Record a one-off fact (an executor decision, a chosen buffer size)."""
        with self._lock:
            self.info[key] = value

    @contextlib.contextmanager
    def record_self_time(self) -> Iterator[None]:
        """Count the time spent inside the ``with`` block as busy time."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(busy_s=time.perf_counter() - start)

    def snapshot(self) -> dict[str, Any]:
        """A plain dict copy of the counters."""
        with self._lock:
            return {
                "elements": self.elements,
                "busy_s": self.busy_s,
                "wait_s": self.wait_s,
                **self.info,
            }

    def __repr__(self) -> str:
        return f"<StageStats {self.stage} {self.snapshot()}>"


class _NoStats:
    """Stands in when stats are off: every method does nothing."""

    enabled = False

    def add(self, elements: int = 0, busy_s: float = 0.0) -> None:
        pass

    def add_wait(self, seconds: float) -> None:
        pass

    def set_info(self, key: str, value: Any) -> None:
        pass

    def record_self_time(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def snapshot(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "NO_STATS"


#: The recorder of stages when ``Options.stats`` is off.
NO_STATS: Recorder = _NoStats()


def stats_for(options: Any, stage: str) -> Recorder:
    """The recorder for ``stage``: a :class:`StageStats` if ``options.stats``, else no-op."""
    return StageStats(stage) if getattr(options, "stats", False) else NO_STATS


def collect(iterator: Any) -> dict[str, dict[str, Any]]:
    """Stats of every node in ``iterator``'s tree that records any, keyed by stage name."""
    ctx = getattr(iterator, "_ctx", None)
    nodes = getattr(ctx, "nodes", None) or [iterator]
    out: dict[str, dict[str, Any]] = {}
    for node in nodes:
        recorder = getattr(node, "stats", None)
        if recorder is not None and recorder.enabled:
            out[node.stage] = recorder.snapshot()
    return out
