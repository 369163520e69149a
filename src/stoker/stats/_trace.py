"""``with stoker.trace("trace.json"):`` — a Chrome trace of a stretch of iteration.

While the block runs, every counted node's ``next()`` becomes a complete (``"ph": "X"``)
event named after its stage, twice: on a track of its own per stage (named
``stage <name>``) and on the track of the thread that called it (the consumer, a prefetch
thread…), where the events nest as a flame chart. The consumer's calls of ``next()`` on the
iterator it holds are events named ``wait for input`` on its thread's track. Parallel
stages' workers get a track each: a worker thread's (named ``worker thread <name>``, in
this process) and a worker process's (its own ``pid``, named ``stoker worker process
<pid>``), with every chunk it computed as an ``X`` event named after the stage
(``map(decode)``), its ``args`` giving the stage and the chunk's element count. ``ts`` and
``dur`` are microseconds. The file is written, atomically, when the block exits, also when
the loop broke early or raised; it opens in Perfetto (ui.perfetto.dev) and
chrome://tracing.

Memory is bounded: after ``max_events`` events the rest are counted, not kept, and the
file's ``otherData`` says how many were dropped. Tracing needs ``Options.stats`` (the
default); with it off only the consumer's waits appear. Tracing off costs one global
check per ``next()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Tracer", "record_worker", "spec_label", "trace"]

_STAGE_TID_BASE = 1000


class Tracer:
    """Collects events; :func:`trace` installs one as ``stoker.stats.tracer``."""

    def __init__(self, max_events: int):
        self.max_events = max_events
        self.events: list[tuple[Any, int, float, float, int]] = []
        self.dropped = 0
        self.t0 = time.perf_counter()
        self.threads: dict[int, str] = {}

    def _add(self, kind: int, rec: Any, t0: float, t1: float) -> None:
        if len(self.events) >= self.max_events:
            self.dropped += 1
            return
        tid = threading.get_ident()
        if tid not in self.threads:
            self.threads[tid] = threading.current_thread().name
        self.events.append((rec, kind, t0, t1, tid))

    def stage(self, rec: Any, t0: float, t1: float) -> None:
        """A node's ``next()`` ran from ``t0`` to ``t1`` (``perf_counter`` seconds)."""
        self._add(0, rec, t0, t1)

    def wait(self, rec: Any, t0: float, t1: float) -> None:
        """The consumer waited in the root's ``next()`` from ``t0`` to ``t1``."""
        self._add(1, rec, t0, t1)

    def worker(
        self, label: str, t0: float, t1: float, elements: int, pid: int | None = None
    ) -> None:
        """A worker computed a chunk of ``elements`` from ``t0`` to ``t1`` (``perf_counter``
        seconds: one clock for every process of the machine, CLOCK_MONOTONIC).

        Called in the worker thread itself (``pid`` None: the track is this thread's), or
        by the parent for a worker process ``pid`` (the track is that process's).
        """
        if len(self.events) >= self.max_events:
            self.dropped += 1
            return
        if pid is None:
            tid = threading.get_ident()
            if tid not in self.threads:
                self.threads[tid] = threading.current_thread().name
            self.events.append(((label, elements, None), 2, t0, t1, tid))
        else:
            self.events.append(((label, elements, pid), 2, t0, t1, 0))

    def to_json(self) -> dict[str, Any]:
        pid = os.getpid()
        base = self.t0
        out: list[dict[str, Any]] = []
        # Small track ids: threads 1, 2, ... in order of appearance; stages from 1000.
        thread_tids: dict[int, int] = {}
        stage_tids: dict[int, int] = {}
        names: dict[int, str] = {}
        processes: dict[int, str] = {}
        workers: set[int] = set()
        # Worker processes' events carry the stage id (map[1]): name them as the stage.
        labels = {
            getattr(rec, "stage", "?"): getattr(rec, "label", "?")
            for rec, kind, *_ in self.events
            if kind == 0
        }
        for rec, kind, t0, t1, ident in self.events:
            if kind == 2:
                label, elements, wpid = rec
                label = labels.get(label, label)
                ts = (t0 - base) * 1e6
                dur = max(0.0, (t1 - t0) * 1e6)
                if wpid is not None:  # a worker process: its own pid, one track
                    processes.setdefault(wpid, f"stoker worker process {wpid}")
                    out.append(_worker_x(label, ts, dur, wpid, 1, elements))
                    continue
                tid = thread_tids.get(ident)
                if tid is None:
                    tid = thread_tids[ident] = len(thread_tids) + 1
                if tid not in workers:
                    workers.add(tid)
                    names[tid] = f"worker thread {self.threads.get(ident, ident)}"
                out.append(_worker_x(label, ts, dur, pid, tid, elements))
                continue
            tid = thread_tids.get(ident)
            if tid is None:
                tid = thread_tids[ident] = len(thread_tids) + 1
                names[tid] = f"thread {self.threads.get(ident, ident)}"
            ts = (t0 - base) * 1e6
            dur = max(0.0, (t1 - t0) * 1e6)
            label = getattr(rec, "label", "?")
            stage = getattr(rec, "stage", "?")
            if kind == 1:
                out.append(_x("wait for input", "wait", ts, dur, pid, tid, stage))
                continue
            stid = stage_tids.get(id(rec))
            if stid is None:
                stid = stage_tids[id(rec)] = _STAGE_TID_BASE + len(stage_tids)
                names[stid] = f"stage {label} ({stage})"
            out.append(_x(label, "stage", ts, dur, pid, stid, stage))
            out.append(_x(label, "stage", ts, dur, pid, tid, stage))
        meta: list[dict[str, Any]] = [
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": "stoker"}}
        ]
        for tid, name in names.items():
            meta.append(
                {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}}
            )
        for wpid, name in processes.items():
            meta.append(
                {"name": "process_name", "ph": "M", "pid": wpid, "tid": 0, "args": {"name": name}}
            )
            meta.append(
                {"name": "thread_name", "ph": "M", "pid": wpid, "tid": 1, "args": {"name": name}}
            )
        return {
            "traceEvents": meta + out,
            "displayTimeUnit": "ms",
            "otherData": {
                "producer": "stoker.trace",
                "max_events": self.max_events,
                "recorded_events": len(self.events),
                "dropped_events": self.dropped,
            },
        }


def _x(name: str, cat: str, ts: float, dur: float, pid: int, tid: int, stage: str) -> Any:
    return {
        "name": name,
        "cat": cat,
        "ph": "X",
        "ts": round(ts, 3),
        "dur": round(dur, 3),
        "pid": pid,
        "tid": tid,
        "args": {"stage": stage},
    }


def _worker_x(label: str, ts: float, dur: float, pid: int, tid: int, elements: int) -> Any:
    stage = label.split("(")[0]
    return {
        "name": label,
        "cat": "worker",
        "ph": "X",
        "ts": round(ts, 3),
        "dur": round(dur, 3),
        "pid": pid,
        "tid": tid,
        "args": {"stage": label, "op": stage, "elements": elements},
    }


def spec_label(spec: Any) -> str:
    """What a worker's events are called: the stage label of the dataset behind ``spec``
    (``map(decode)``), or the spec's type name."""
    from stoker.dataset import Dataset
    from stoker.stats import stage_label

    if isinstance(spec, Dataset):
        return stage_label(spec)
    return type(spec).__name__


def record_worker(
    label: str, t0: float, busy_s: float, elements: int, pid: int | None = None
) -> None:
    """Record one chunk a worker computed, when a :func:`trace` runs (else nothing)."""
    import stoker.stats as stats

    tracer = stats.tracer
    if tracer is not None:
        tracer.worker(label, t0, t0 + busy_s, elements, pid)


@contextlib.contextmanager
def trace(path: str | os.PathLike[str], max_events: int = 200_000) -> Iterator[Tracer]:
    """Write a Chrome trace-event JSON file of the iteration inside the ``with`` block.

    Args:
        path: Where to write the trace (written when the block exits, even on error).
        max_events: Events kept (about 150 bytes each); later ones are counted as dropped.

    Example::

        with stoker.trace("trace.json"):
            for batch in ds.take(100):
                train_step(batch)
        # open trace.json in ui.perfetto.dev
    """
    import stoker.stats as stats

    if stats.tracer is not None:
        raise RuntimeError("stoker.trace(): another trace is already running")
    if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
        raise ValueError(f"trace(): max_events={max_events!r} must be a positive int")
    import stoker.iterator as iterator

    tracer = Tracer(max_events)
    stats.tracer = tracer
    iterator._tracing = True
    try:
        yield tracer
    finally:
        iterator._tracing = False
        stats.tracer = None
        data = tracer.to_json()
        target = os.fspath(path)
        tmp = f"{target}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, target)
