"""Per-stage statistics: what each iterator node did, and where the time goes.

Every node of an iterator tree gets a recorder when it is built (``node.recorder``), linked
to its inputs' recorders as the tree is. With ``Options.stats`` (on by default) that is a
:class:`StageStats`; with ``Options(stats=False)`` it is :data:`NO_STATS`, whose methods do
nothing, and nodes are not counted at all.

What a stage records:

* ``elements``, ``time_s``: elements it delivered and the time spent inside its
  ``next()`` (its inputs' time included), counted by the node's base class;
* ``bytes``: a cheap estimate: the mean array bytes of the timed elements times the count;
* ``busy_s``: time its workers spent computing elements (parallel stages, summed over
  workers), reported with :meth:`StageStats.add`;
* ``wait_s``: time its consumer spent blocked waiting for its workers
  (:meth:`StageStats.add_wait`);
* ``info``: one-off facts, e.g. the executor ``map(executor="auto")`` chose and why.

``it.stats()`` on the iterator the user holds turns them into a :class:`StatsReport` (the
bottleneck and what would help); :func:`collect` gives the raw counters;
:func:`trace` writes a Chrome trace of a stretch of iteration.

Example::

    it = iter(ds)
    for _ in range(1000):
        next(it)
    print(it.stats())                 # table, bottleneck, advice
    print(stoker.stats.collect(it))   # {"map[1]": {"elements": 1000, ...}, ...}
"""

from __future__ import annotations

import random
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from stoker.stats._report import StageRecord, StatsReport, report
from stoker.stats._trace import Tracer, trace

if TYPE_CHECKING:
    from stoker.dataset import Dataset

__all__ = [
    "EVERY_CALL_S",
    "EXACT_CALLS",
    "NO_STATS",
    "Recorder",
    "SAMPLE_EVERY",
    "StageRecord",
    "StageStats",
    "StatsMethod",
    "StatsReport",
    "collect",
    "report",
    "stage_label",
    "stats_for",
    "trace",
    "tracer",
]

#: The active :class:`~stoker.stats._trace.Tracer` while a :func:`trace` block runs, else
#: None (the only thing counted nodes check when tracing is off).
tracer: Tracer | None = None


class Recorder(Protocol):
    """What nodes call; implemented by :class:`StageStats` and the no-op :data:`NO_STATS`."""

    enabled: bool

    def add(self, elements: int = 0, busy_s: float = 0.0) -> None: ...

    def add_wait(self, seconds: float) -> None: ...

    def set_info(self, key: str, value: Any) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


#: Mean interval between a node's own timed calls after its first :data:`EXACT_CALLS`.
SAMPLE_EVERY = 512
# Intervals between own samples: random in 1..1023 (mean 512), fixed so runs are comparable.
# (A node also times the calls its consumer makes it time, about as many again.) A timed
# call costs a few microseconds; at this rate that is a few hundredths of a microsecond
# per element, and a million elements still give thousands of samples per stage.
_INTERVALS = [random.Random(0x5704E7).randint(1, 2 * SAMPLE_EVERY - 1) for _ in range(256)]


def _interval(n: int, k: int) -> int:
    """Calls until the next own sample, after call ``n`` and ``k`` samples.

    Short at first (mean ``n / 64``) so a short run still has dozens of samples, then
    :data:`SAMPLE_EVERY` on average from about 8,000 calls on.
    """
    step = _INTERVALS[k & 255]
    if n < 64 * SAMPLE_EVERY:
        return max(1, step * n // (64 * SAMPLE_EVERY))
    return step


#: From this mean time per call on (seconds), the root times every call of the consumer.
EVERY_CALL_S = 5e-6
#: The first calls of every node are all timed: short runs (and the start, where workers
#: spin up) are measured exactly, and later calls are sampled.
EXACT_CALLS = 256


class StageStats:
    """Counters of one stage.

    The node's base class counts every element, times its first :data:`EXACT_CALLS` calls
    and then one call in about :data:`SAMPLE_EVERY` (at random intervals, more often in
    the first few thousand); :attr:`time_s` extrapolates (:attr:`consumer_s` for the root).
    These fields are written by the one thread pulling the node at a time (a node is never
    pulled by two threads at once, and the root is behind a lock), without a lock.
    ``add``, ``add_wait`` and ``set_info`` take a lock and may be called from any thread.
    """

    __slots__ = (
        "_lock",
        "acc",
        "busy_s",
        "byte_samples",
        "children",
        "elements",
        "every_call",
        "exact_s",
        "first_s",
        "first_t",
        "forcer",
        "info",
        "label",
        "next_sample",
        "node",
        "own_exact_s",
        "own_next",
        "own_sampled_s",
        "own_samples",
        "plain_s",
        "reported",
        "root",
        "sample_bytes",
        "sampled_s",
        "sampled_waits",
        "samples",
        "settled_s",
        "stage",
        "sync_kids",
        "thread",
        "wait_s",
        "waits0",
    )
    enabled = True

    def __init__(
        self, stage: str, label: str | None = None, children: list[Any] | None = None
    ) -> None:
        self.stage = stage
        #: What the report calls the stage: its op and function, e.g. ``map(decode)``.
        self.label = label or stage
        #: The recorders of the node's inputs (the tree, as the iterator tree is).
        self.children: list[StageStats] = [c for c in children or () if c.enabled]
        self.node: weakref.ref[Any] | None = None
        self.elements = 0
        self.next_sample = 0
        # The first call after the exact ones is a sample: an estimate always has one.
        self.own_next = EXACT_CALLS
        #: Set by the consumer's node while it takes an own sample (see timed_call).
        self.forcer: StageStats | None = None
        #: Time this node's inputs spent in calls it made them time.
        self.acc = 0.0
        self.own_exact_s = 0.0
        self.own_sampled_s = 0.0
        self.own_samples = 0
        self.sync_kids: list[StageStats] | None = None
        self.exact_s = 0.0
        self.sampled_s = 0.0
        self.samples = 0
        self.sample_bytes = 0
        self.byte_samples = 0
        self.thread: int | None = None
        self.first_t: float | None = None
        #: Set on the recorder of the node the user holds (see :attr:`consumer_s`).
        self.root = False
        #: The root's sampled calls: waits reported inside them (see :attr:`consumer_s`).
        self.sampled_waits = 0.0
        #: Waits reported in the consumer's thread when the exact calls ended.
        self.waits0 = 0.0
        #: The root times every call once its calls are slow enough for the clock not to
        #: matter (:data:`EVERY_CALL_S`); ``settled_s`` is the estimate at the switch and
        #: ``plain_s`` the time of the calls since.
        self.every_call = False
        #: The first call's time: start-up (opening files, starting workers, a first
        #: block), left out when deciding whether calls are slow.
        self.first_s = 0.0
        self.settled_s = 0.0
        self.plain_s = 0.0
        self.busy_s = 0.0
        self.wait_s = 0.0
        self.reported = 0
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, elements: int = 0, busy_s: float = 0.0) -> None:
        """Count ``elements`` delivered and ``busy_s`` seconds of worker time."""
        with self._lock:
            self.reported += elements
            self.busy_s += busy_s

    def add_wait(self, seconds: float) -> None:
        """Count time the consumer spent blocked waiting for this stage's workers."""
        with self._lock:
            self.wait_s += seconds

    def set_info(self, key: str, value: Any) -> None:
        """Record a one-off fact (an executor decision, a chosen buffer size)."""
        with self._lock:
            self.info[key] = value

    # -- written by the node's base class ------------------------------------------------

    def timed_call(self, base: Any, node: Any, n: int) -> Any:
        """Run ``base(node)`` (the node's own ``__next__``) timed; ``n`` elements so far.

        A call is an *own sample* in the first :data:`EXACT_CALLS` and then at random
        intervals: it makes the inputs pulled in this thread time their calls and report
        their time here, so the node's own time (its call minus its inputs') is measured
        within the same call. A call made while the consumer (a node's parent) is taking
        an own sample is timed for it and counts toward this node's total time only.
        """
        forcer = self.forcer
        own = n < EXACT_CALLS or n >= self.own_next or tracer is not None
        kids: list[StageStats] = []
        acc0 = 0.0
        if own:
            kids = self.sync_kids if self.sync_kids is not None else self._sync_kids()
            for c in kids:
                c.forcer = self
                c.next_sample = -1
            acc0 = self.acc
        w0 = self.consumer_waits() if self.root and n >= EXACT_CALLS else 0.0
        t0 = time.perf_counter()
        try:
            x = base(node)
        except BaseException:
            t1 = time.perf_counter()
            self._done(kids, forcer, t0, t1)
            if self.root and tracer is not None:
                tracer.wait(self, t0, t1)
            dt = t1 - t0
            self.exact_s += dt
            if own:
                self.own_exact_s += max(0.0, dt - (self.acc - acc0))
            self._reschedule(n)
            raise
        t1 = time.perf_counter()
        self._done(kids, forcer, t0, t1)
        dt = t1 - t0
        self.elements = n + 1
        if self.first_t is None:
            self.first_t = t0
            self.thread = threading.get_ident()
        if n < EXACT_CALLS:
            self.exact_s += dt
            self.own_exact_s += max(0.0, dt - (self.acc - acc0))
            if n == 0:
                self.first_s = dt
            if self.root and n == EXACT_CALLS - 1:
                self.waits0 = self.consumer_waits()
                self._maybe_time_every_call()
        else:
            self.sampled_s += dt
            self.samples += 1
            if self.root:
                self.sampled_waits += self.consumer_waits() - w0
                if self.every_call:
                    self.plain_s += dt
                else:
                    self._maybe_time_every_call()
            if own:
                self.own_sampled_s += max(0.0, dt - (self.acc - acc0))
                self.own_samples += 1
                self.own_next = n + 1 + _interval(n, self.own_samples)
        self.sample_bytes += nbytes(x)
        self.byte_samples += 1
        self._reschedule(n + 1)
        if self.root and tracer is not None:
            tracer.wait(self, t0, t1)
        return x

    def _maybe_time_every_call(self) -> None:
        calls = self.elements - 1
        if calls > 0 and (self.consumer_s - self.first_s) / calls >= EVERY_CALL_S:
            self.settled_s = self.consumer_s
            self.every_call = True

    def consumer_waits(self) -> float:
        """Waits reported so far by the stages pulled in the consumer's (this) thread.

        Parallel stages and prefetch report every time their consumer blocks
        (:meth:`add_wait`); the root adds those exactly to its sampled estimate.
        """
        thread = self.thread
        total = 0.0
        stack: list[StageStats] = [self]
        while stack:
            rec = stack.pop()
            if rec.thread == thread:
                total += rec.wait_s
                stack.extend(rec.children)
        return total

    def _sync_kids(self) -> list[StageStats]:
        """The inputs pulled in this node's thread (cached once every thread is known)."""
        if self.thread is None:
            return []
        kids = [c for c in self.children if c.thread == self.thread]
        if all(c.thread is not None for c in self.children):
            self.sync_kids = kids
        return kids

    def _done(
        self, kids: list[StageStats], forcer: StageStats | None, t0: float, t1: float
    ) -> None:
        for c in kids:
            c.forcer = None
            c._reschedule(c.elements)
        if forcer is not None:
            forcer.acc += t1 - t0
        if tracer is not None:
            tracer.stage(self, t0, t1)

    def _reschedule(self, n: int) -> None:
        if self.forcer is not None:
            self.next_sample = -1
        elif n < EXACT_CALLS:
            self.next_sample = n
        else:
            self.next_sample = self.own_next

    @property
    def consumer_calls(self) -> int:
        """The consumer's calls of ``next()`` that returned an element (the root's)."""
        return self.elements if self.root else 0

    @property
    def consumer_s(self) -> float:
        """Seconds the consumer spent blocked in the root's ``next()`` (0 for other nodes).

        The first :data:`EXACT_CALLS` calls are timed exactly, then about one in
        :data:`SAMPLE_EVERY` at random intervals. The estimate is the exact time, plus the
        sampled calls' mean time *without* the waits reported inside them times the calls
        not timed, plus every wait reported in the consumer's thread since the exact calls
        (stages that block on workers report each wait, so rare long waits are counted
        exactly, not extrapolated from a sample that may have missed them). Once the mean
        call (the first, start-up, left out) takes :data:`EVERY_CALL_S` or more (a
        pipeline of batches, a slow stage, stalls), every later call is timed: the clock
        then costs under 2% of a call, and the figure is exact from there on.
        """
        if not self.root:
            return 0.0
        if self.every_call:
            return self.settled_s + self.plain_s
        total = self.exact_s
        rest = self.elements - EXACT_CALLS
        if rest > 0 and self.samples:
            compute = max(0.0, self.sampled_s - self.sampled_waits) / self.samples
            total += compute * rest + max(0.0, self.consumer_waits() - self.waits0)
        return total

    @property
    def time_s(self) -> float:
        """Seconds spent inside the node's ``next()`` (estimated from the timed calls)."""
        if self.root:
            return self.consumer_s
        estimate = self.exact_s
        if self.samples:
            estimate += self.sampled_s / self.samples * max(0, self.elements - EXACT_CALLS)
        # A parallel stage's calls are mostly instant with a few long waits (a sample can
        # miss them); the waits it reports itself were spent inside next() too.
        return max(estimate, self.wait_s)

    @property
    def own_s(self) -> float:
        """Seconds inside this node's ``next()`` minus its inputs' (estimated)."""
        own = self.own_exact_s
        if self.own_samples:
            extra = max(0, self.elements - EXACT_CALLS)
            own += self.own_sampled_s / self.own_samples * extra
        return own

    @property
    def bytes(self) -> int:
        """Estimated bytes delivered: the mean sampled size times the element count."""
        if not self.byte_samples:
            return 0
        return int(self.sample_bytes / self.byte_samples * self.elements)

    def snapshot(self) -> dict[str, Any]:
        """A plain dict copy of the counters."""
        with self._lock:
            return {
                "label": self.label,
                "elements": self.elements,
                "time_s": self.time_s,
                "bytes": self.bytes,
                "busy_s": self.busy_s,
                "wait_s": self.wait_s,
                **self.info,
            }

    def __repr__(self) -> str:
        return f"<StageStats {self.stage} {self.snapshot()}>"


class _NoStats:
    """Stands in when stats are off: every method does nothing."""

    enabled = False
    children: tuple[StageStats, ...] = ()

    def add(self, elements: int = 0, busy_s: float = 0.0) -> None:
        pass

    def add_wait(self, seconds: float) -> None:
        pass

    def set_info(self, key: str, value: Any) -> None:
        pass

    def snapshot(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "NO_STATS"


#: The recorder of stages when ``Options.stats`` is off.
NO_STATS: Recorder = _NoStats()


def stats_for(options: Any, stage: str) -> Recorder:
    """A recorder for ``stage``: a :class:`StageStats` if ``options.stats``, else no-op.

    Nodes already have one (``node.recorder``); parallel stages that assign
    ``self.stats = stats_for(...)`` keep reporting into the node's own.
    """
    return StageStats(stage) if getattr(options, "stats", False) else NO_STATS


class StatsMethod:
    """What ``node.stats`` is: call it for the report; ``add``/``add_wait``/``set_info``
    forward to the node's recorder (for stages written when ``stats`` was the recorder)."""

    __slots__ = ("_node", "add", "add_wait", "enabled", "recorder", "set_info", "snapshot")

    def __init__(self, node: weakref.ref[Any], recorder: Recorder) -> None:
        self._node = node
        self.recorder = recorder
        self.enabled = recorder.enabled
        self.add = recorder.add
        self.add_wait = recorder.add_wait
        self.set_info = recorder.set_info
        self.snapshot = recorder.snapshot

    def __call__(self) -> StatsReport:
        node = self._node()
        if node is None:  # pragma: no cover - the handle is only reached through the node
            raise RuntimeError("the iterator is gone")
        return report(node)

    def __repr__(self) -> str:
        return "<bound method stats() of an iterator>"


def stage_label(dataset: Dataset) -> str:
    """``op`` or ``op(function_name)``, or the ``name=`` the user gave the stage."""
    if dataset._name:
        return dataset._name
    op = dataset._op_name
    fn = _stage_function(dataset)
    return f"{op}({fn})" if fn else op


def _stage_function(dataset: Dataset) -> str | None:
    from stoker.dataset import Dataset

    for value in vars(dataset).values():
        if callable(value) and not isinstance(value, (Dataset, type)):
            return str(getattr(value, "__name__", None) or type(value).__name__)
    return None


def nbytes(x: Any) -> int:
    """Array bytes of an element (its NumPy leaves, bytes and strings)."""
    t = type(x)
    if t is tuple or t is list:
        return sum(nbytes(v) for v in x)
    if t is dict:
        return sum(nbytes(v) for v in x.values())
    nb = getattr(x, "nbytes", None)
    if isinstance(nb, int):
        return nb
    if isinstance(x, (bytes, str)):
        return len(x)
    if isinstance(x, tuple):
        return sum(nbytes(v) for v in x)
    return 0


def walk(recorder: Any) -> list[tuple[int, StageStats]]:
    """``(depth, recorder)`` of a recorder tree, root first (inputs after their consumer)."""
    out: list[tuple[int, StageStats]] = []
    stack = [(0, recorder)] if recorder.enabled else []
    while stack:
        depth, rec = stack.pop()
        out.append((depth, rec))
        stack.extend((depth + 1, c) for c in reversed(rec.children))
    return out


def collect(iterator: Any) -> dict[str, dict[str, Any]]:
    """Counters of every stage of ``iterator``'s tree, keyed by stage name (``map[1]``).

    Empty when stats are off (``Options(stats=False)``).
    """
    recorder = getattr(iterator, "recorder", NO_STATS)
    return {rec.stage: rec.snapshot() for _, rec in walk(recorder)}


def _now() -> float:
    return time.perf_counter()
