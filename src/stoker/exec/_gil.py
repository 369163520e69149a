"""Does a function hold the GIL? Measure it on the first elements, then pick an executor.

``map(executor="auto")`` runs its first elements through the thread pool in two phases:

1. **alone**: one call at a time. Gives the wall time of a call and its CPU time
   (``time.thread_time``). A call whose CPU time is well below its wall time waits (on
   I/O, a lock, a sleep): threads serve it, and many may wait at once.
2. **in pairs**: two calls started together on two threads. If the function releases the
   GIL, the pair takes about as long as one call alone; if it holds it, twice as long.
   ``speedup = 2 * alone / pair`` is what a second thread buys. Single calls and pairs
   alternate, and medians are compared, so a busy moment on a shared machine does not
   decide. Pairs whose second call started only as the first ended say nothing: a
   GIL-bound call keeps the other thread from starting, but so, now and then, does a
   pool thread woken late (on this 2-core machine up to a third of the pairs of a
   GIL-free NumPy call ran one after the other, which made it look GIL-bound). Where at least
   ``_OVERLAPPED_MIN`` pairs ran overlapped (``OVERLAP`` of the shorter call), the median
   is over those; where none did, the function held the GIL.

Two calls at once may each take more CPU time than one alone: the cores share caches
and memory bandwidth (sorting two 800 kB arrays at once on this machine: 1.15x each).
That is not the GIL's doing, and worker processes would pay it too, so the median CPU
time of a call in the overlapped pairs over alone's (the *slowdown*, at most
``MAX_SLOWDOWN``) scales both sides: threads count as releasing the GIL when
``speedup * slowdown`` reaches ``THREAD_SPEEDUP``, and the processes' estimate is divided
by it.

On a shared machine a call may also wait for a core that other programs hold; a pair
then looks slow whether or not the function holds the GIL, and a busy moment would send a
GIL-free function to worker processes. Where Linux reports it
(``/proc/self/task/<tid>/schedstat``), the time the pool's threads spent runnable but
waiting for a core is read after each call alone and each pair. For big elements
(``BIG_ELEMENT_BYTES``: images), processes are chosen only if the timings less those
waits (a call alone less all of its wait, a pair, two threads waiting at once, less
half) also say so. Not for every function: a GIL-bound one hands the GIL over at every
switch, and on a busy machine the thread it wakes waits for a core too, which would be
taken off as if it were not the GIL's.

The waits for a core say more when the pool's threads also report their CPU time in
pairs: of the two threads' time over a pair (twice its span), what they spent neither on
a CPU nor runnable, they spent *blocked* (on the GIL, or another lock). A function that
holds the GIL keeps one of the two blocked for about half of that (a thread that waits
for the GIL starts its call late); one that releases it is hardly blocked, however slow
its pairs were for want of a core. On a busy machine a thread handed the GIL may wait
for a core too, which hides that pair's blocked time: the median over the pairs decides.
Two threads then run ``2 * (1 - blocked share)`` times one, weighed against processes
by the same cost model; a function with big elements whose pairs were slow but not
blocked stays on threads (:meth:`GilProbe.decision`). Only for big elements: where no
core is free at all, the second call of a pair may start only after the first ended,
GIL or not, and its wait reads as a wait for a core; small elements then keep the
timings as measured, as processes cost them little.

The first call is not counted (it pays for lazy imports, first allocations and caches),
and each phase takes at least five calls.

What processes cost per element is estimated from the bytes that cross (the element in,
the result out, counted per call the probe ran), and they must beat the threads by a
margin: they cost start-up, memory and a copy of every result, and the estimate is rough.
Image maps are the case in point: 600 kB float32 results, OpenCV releasing the GIL.

:func:`decide` turns the measurements into a :class:`Decision`. It is a pure function, so
tests drive it with made-up numbers. The probe's elements are real elements: their outputs
are delivered, nothing is computed twice.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Decision", "GilProbe", "decide", "nbytes_of", "runqueue_wait_s"]

#: Calls cheaper than this are run inline: handing one to a thread costs about as much.
INLINE_BELOW_S = 30e-6
#: CPU time below this share of wall time means the call mostly waits.
WAITING_CPU_SHARE = 0.5
#: Two threads must beat one by this factor to count as releasing the GIL. The partly
#: GIL-bound NumPy map of our benchmarks reaches 1.48, which processes beat (2.05x).
THREAD_SPEEDUP = 1.7
#: What moving one element to a worker and back costs the parent (pickling, a socket
#: round trip shared by a chunk), and the copy speed of shared memory, on our machine.
PROCESS_OVERHEAD_S = 40e-6
SHM_BYTES_PER_S = 2.5e9
#: Processes must be estimated this much faster than threads to be chosen.
PROCESS_MARGIN = 1.15
#: Elements this big (in plus out) go to processes only if the timings less the waits
#: for a core agree: moving them is what a wrong choice costs most. [Unit: byte]
BIG_ELEMENT_BYTES = 64 << 10

_POOL_THREAD_PREFIX = "stoker-thread"  # exec.threads.POOL's thread names

#: Share of the shorter call of a pair that must overlap the other for the pair to say
#: how the two threads shared the interpreter.
OVERLAP = 0.5
_OVERLAPPED_MIN = 2
#: A call's CPU time in a pair over alone, at most: beyond that is noise.
MAX_SLOWDOWN = 1.5

# Phase lengths: enough calls for a stable median, bounded in time for slow functions.
_ALONE_MIN_CALLS, _ALONE_MAX_CALLS, _ALONE_MIN_S, _ALONE_MAX_S = 5, 64, 5e-3, 0.1
_PAIRS_MIN, _PAIRS_MAX, _PAIRS_MIN_S, _PAIRS_MAX_S = 5, 64, 10e-3, 0.2


@dataclasses.dataclass(frozen=True)
class Decision:
    """The executor chosen for a stage and why.

    Attributes:
        executor: ``"inline"``, ``"thread"`` or ``"process"``.
        reason: One sentence a user can read in the stats.
        call_s: Mean wall time of a call alone. [Unit: second]
        cpu_share: CPU time / wall time of a call alone.
        speedup: Throughput of two threads over one (``None`` if not measured).
        waiting: The calls mostly wait, so concurrency may exceed the core count.
    """

    executor: str
    reason: str
    call_s: float
    cpu_share: float
    speedup: float | None = None
    waiting: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def decide(
    call_s: float,
    cpu_s: float,
    speedup: float | None,
    cpu_budget: int,
    bytes_per_element: int = 0,
    picklable: bool = True,
    slowdown: float = 1.0,
) -> Decision:
    """Pick an executor from probe measurements (see the module docstring).

    Args:
        call_s: Median wall time of a call alone. [Unit: second]
        cpu_s: Median CPU time of a call alone. [Unit: second]
        speedup: Throughput of two threads over one, or None if not measured.
        cpu_budget: Cores the stage may use.
        bytes_per_element: Bytes of an element in plus its result out. [Unit: byte]
        picklable: The function can be sent to a worker process.
        slowdown: A call's CPU time when two run at once over its CPU time alone: the
            cores share caches and memory bandwidth, and worker processes would share
            them too, so what two threads lose to it is not the GIL's.
    """
    share = cpu_s / call_s if call_s > 0 else 1.0
    slowdown = min(max(1.0, slowdown), MAX_SLOWDOWN)
    shared = (
        f"; a call's CPU time in pairs was {slowdown:.2f}x alone's (shared caches and "
        "memory, which processes share too)"
        if slowdown > 1.05
        else ""
    )
    us = call_s * 1e6
    if call_s < INLINE_BELOW_S:
        return Decision(
            "inline",
            f"a call takes {us:.1f} us, less than a hand-off to a thread costs: inline wins",
            call_s,
            share,
            speedup,
        )
    if share < WAITING_CPU_SHARE:
        return Decision(
            "thread",
            f"a call waits most of its {us:.0f} us (CPU {share:.0%} of wall time): threads, "
            "and concurrency is not capped at the core count",
            call_s,
            share,
            speedup,
            waiting=True,
        )
    if cpu_budget < 2 or speedup is None:
        return Decision(
            "thread",
            f"one call at a time (CPU budget or num_parallel_calls {cpu_budget}): no second "
            "core to use",
            call_s,
            share,
            speedup,
        )
    if speedup * slowdown >= THREAD_SPEEDUP:
        return Decision(
            "thread",
            f"releases the GIL: two threads run {speedup:.2f}x one{shared}",
            call_s,
            share,
            speedup,
        )
    overhead = PROCESS_OVERHEAD_S + 2 * bytes_per_element / SHM_BYTES_PER_S
    process_speedup = cpu_budget * call_s / (call_s + overhead) / slowdown
    if not picklable:
        return Decision(
            "thread",
            f"holds the GIL (two threads: {speedup:.2f}x) but cannot be pickled for a "
            "worker process; staying on threads",
            call_s,
            share,
            speedup,
        )
    if process_speedup <= speedup * PROCESS_MARGIN:
        return Decision(
            "thread",
            f"two threads run {speedup:.2f}x one; moving {bytes_per_element} bytes per "
            f"element to processes would cost about as much (they would reach "
            f"~{process_speedup:.1f}x){shared}",
            call_s,
            share,
            speedup,
        )
    return Decision(
        "process",
        f"holds the GIL: two threads run {speedup:.2f}x one; {cpu_budget} processes "
        f"should reach ~{process_speedup:.1f}x{shared}",
        call_s,
        share,
        speedup,
    )


def nbytes_of(x: Any) -> int:
    """Bytes of the arrays, bytes and strings in an element (nested tuples/dicts/lists)."""
    if isinstance(x, np.ndarray):
        return int(x.nbytes)
    if isinstance(x, (bytes, bytearray, str)):
        return len(x)
    if isinstance(x, (tuple, list)):
        return sum(nbytes_of(v) for v in x)
    if isinstance(x, dict):
        return sum(nbytes_of(v) for v in x.values())
    return 8


def runqueue_wait_s() -> float | None:
    """Time the pool's threads (``stoker-thread-*``, which run the probe's calls) have
    spent runnable but waiting for a core, summed over those alive now (Linux
    ``/proc/self/task/<tid>/schedstat``); None where that cannot be read. Other threads of
    the process are left out: their waits say nothing about the calls."""
    total, read = 0, False
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None or not thread.name.startswith(_POOL_THREAD_PREFIX):
            continue
        try:
            with open(f"/proc/self/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[1])
            read = True
        except (OSError, ValueError, IndexError):
            continue  # not Linux, or the thread ended meanwhile
    return total / 1e9 if read else None


class GilProbe:
    """Collects the two phases' measurements; the stage feeds it and asks what to do next.

    Args:
        cpu_budget: Cores the stage may use.
        waits: Reads the process's total wait for a core (:func:`runqueue_wait_s`);
            tests pass their own.
    """

    def __init__(
        self, cpu_budget: int, waits: Callable[[], float | None] = runqueue_wait_s
    ) -> None:
        self.cpu_budget = cpu_budget
        self.alone: list[tuple[float, float]] = []  # (wall, cpu) per call
        self.pairs: list[float] = []  # wall time of each pair, start to last end
        # Time spent waiting for a core during each call alone / each pair (0 if unknown).
        self.alone_waits: list[float] = []
        self.pair_waits: list[float] = []
        # Per pair: the members' CPU times summed (None if not reported).
        self.pair_cpu: list[float | None] = []
        # Per pair: the share of its shorter call that the other call overlapped.
        self.pair_overlap: list[float] = []
        self._waits_read = False  # the waits for a core could be read at least once
        self._waits = waits
        self._last_wait = waits()
        self._waits_read = self._last_wait is not None
        self.nbytes = 0  # of every element submitted and every result received
        self.picklable = True
        self.warmup: tuple[float, float] | None = None  # the first call, not counted
        self._pair_open: dict[int, list[tuple[float, float, float | None]]] = {}
        self._calls = 0  # calls finished (alone, warm-up and pair members)

    @property
    def phase(self) -> str:
        """What to run next: ``"alone"``, ``"pairs"``, or ``"done"``.

        After a few calls alone (are calls cheap? do they wait?), single calls and pairs
        alternate, so both see the same machine: on a shared machine the load changes
        from one moment to the next, and comparing calls alone measured while it was
        busy with pairs measured while it was idle would invent a speedup.
        """
        alone_done = self._alone_done()
        if len(self.alone) < _ALONE_MIN_CALLS or (self._skip_pairs() and not alone_done):
            return "alone"
        if self._skip_pairs():
            return "done"
        pairs_done = self._pairs_done()
        if alone_done and pairs_done:
            return "done"
        behind = len(self.pairs) < len(self.alone) - _ALONE_MIN_CALLS + 1
        return "pairs" if (behind and not pairs_done) or alone_done else "alone"

    def _alone_done(self) -> bool:
        n = len(self.alone)
        total = sum(w for w, _ in self.alone)
        return (
            n >= _ALONE_MAX_CALLS
            or total >= _ALONE_MAX_S
            or (n >= _ALONE_MIN_CALLS and total >= _ALONE_MIN_S)
        )

    def _skip_pairs(self) -> bool:
        call_s, cpu_s = self._means()
        return (
            self.cpu_budget < 2
            or call_s < INLINE_BELOW_S
            or (call_s > 0 and cpu_s / call_s < WAITING_CPU_SHARE)
        )

    def _pairs_done(self) -> bool:
        n = len(self.pairs)
        total = sum(self.pairs)
        return (
            n >= _PAIRS_MAX or total >= _PAIRS_MAX_S or (n >= _PAIRS_MIN and total >= _PAIRS_MIN_S)
        )

    def _means(self, discount_waits: bool = False) -> tuple[float, float]:
        """Median wall and CPU time of a call alone (the wall less the wait for a core
        with ``discount_waits``): a call the OS preempted (a noisy machine) must not
        decide for all of them."""
        if not self.alone:
            return 0.0, 0.0
        waits = self.alone_waits if discount_waits else [0.0] * len(self.alone)
        return (
            statistics.median(max(c, w - wt) for (w, c), wt in zip(self.alone, waits, strict=True)),
            statistics.median(c for _, c in self.alone),
        )

    def _unit_wait(self) -> float:
        """Wait for a core since the last call alone or pair ended."""
        now = self._waits()
        if now is None:
            return 0.0
        self._waits_read = True
        last, self._last_wait = self._last_wait, now
        if last is None:  # no pool thread yet when the probe began: from now on
            return 0.0
        return max(0.0, now - last)  # a thread that ended takes its total with it

    def add_alone(self, wall: float, cpu: float) -> None:
        """A call run alone finished (the very first one is the warm-up, not counted)."""
        self._calls += 1
        wait = self._unit_wait()
        if self.warmup is None:
            self.warmup = (wall, cpu)
            return
        self.alone.append((wall, cpu))
        self.alone_waits.append(wait)

    def add_pair_member(
        self, pair: int, start: float, wall: float, cpu: float | None = None
    ) -> None:
        """One call of pair ``pair`` finished (its thread's CPU time ``cpu`` if known); the
        pair counts when both have."""
        self._calls += 1
        members = self._pair_open.setdefault(pair, [])
        members.append((start, start + wall, cpu))
        if len(members) == 2:
            del self._pair_open[pair]
            self.pairs.append(max(e for _, e, _ in members) - min(s for s, _, _ in members))
            self.pair_waits.append(self._unit_wait())
            cpus = [c for _, _, c in members]
            self.pair_cpu.append(None if None in cpus else sum(c or 0.0 for c in cpus))
            (s1, e1, _), (s2, e2, _) = members
            shorter = max(1e-9, min(e1 - s1, e2 - s2))
            self.pair_overlap.append(max(0.0, min(e1, e2) - max(s1, s2)) / shorter)

    def blocked_share(self) -> float | None:
        """Median share of a pair's two threads' time (from the first call's start to the
        last one's end) spent blocked: neither on a CPU nor waiting for one (see the
        module docstring). None without the pairs' CPU times or
        the waits for a core."""
        if not self._waits_read or not self.pairs or None in self.pair_cpu:
            return None
        # Two threads over the pair's span, less their CPU time and their waits for a
        # core: the rest they spent blocked, in a call or before starting one (a thread
        # that waits for the GIL starts its call only once it has it).
        shares = [
            max(0.0, 2 * span - (cpu or 0.0) - wait) / (2 * span)
            for span, cpu, wait in zip(self.pairs, self.pair_cpu, self.pair_waits, strict=True)
            if span > 0
        ]
        return statistics.median(shares) if shares else None

    def _measured(self, discount_waits: bool) -> Decision:
        call_s, cpu_s = self._means(discount_waits)
        speedup = None
        if self.pairs:
            # Both threads of a pair wait for cores at once: half the wait is the pair's.
            waits = self.pair_waits if discount_waits else [0.0] * len(self.pairs)
            spans = [p - wt / 2 for p, wt in zip(self.pairs, waits, strict=True)]
            overlapped = [
                span for span, o in zip(spans, self.pair_overlap, strict=True) if o >= OVERLAP
            ]
            pair_s = statistics.median(overlapped if len(overlapped) >= _OVERLAPPED_MIN else spans)
            # Two threads cannot do more than twice the work: above that is noise.
            speedup = min(2.0, 2 * call_s / max(pair_s, 1e-9))
        per_call = self.nbytes // max(1, self._calls)
        return decide(
            call_s, cpu_s, speedup, self.cpu_budget, per_call, self.picklable, self.slowdown()
        )

    def slowdown(self) -> float:
        """Median CPU time of a call in the pairs that overlapped over a call's alone (1.0
        where unknown): what running two at once costs each, the GIL aside."""
        cpus = [
            c / 2
            for c, o in zip(self.pair_cpu, self.pair_overlap, strict=True)
            if c is not None and o >= OVERLAP
        ]
        _, cpu_s = self._means()
        if len(cpus) < _OVERLAPPED_MIN or cpu_s <= 0:
            return 1.0
        return statistics.median(cpus) / cpu_s

    def decision(self) -> Decision:
        """From the timings as measured; for big elements, processes also need the pairs'
        blocked time to say so where it is known, and the timings less the waits for a
        core (see the module docstring)."""
        raw = self._measured(discount_waits=False)
        if raw.executor != "process" or self.nbytes // max(1, self._calls) < BIG_ELEMENT_BYTES:
            return raw
        blocked = self.blocked_share()
        if blocked is not None:
            # What a second thread buys, judged by the blocked time instead of the pairs'
            # wall time; the same cost model then weighs processes against it.
            call_s, cpu_s = self._means()
            per_call = self.nbytes // max(1, self._calls)
            speedup = 2.0 * (1.0 - min(blocked, 0.5))
            judged = decide(
                call_s,
                cpu_s,
                speedup,
                self.cpu_budget,
                per_call,
                self.picklable,
                self.slowdown(),
            )
            if judged.executor != "process":
                return dataclasses.replace(
                    judged,
                    reason=f"{judged.reason} (from the time its calls were blocked in pairs, "
                    f"{blocked:.0%}: the pairs were slow, {raw.speedup or 0:.2f}x as "
                    "measured, for want of a core, which processes would not add)",
                )
        if not any(self.alone_waits) and not any(self.pair_waits):
            return raw
        discounted = self._measured(discount_waits=True)
        if discounted.executor == "process":
            return raw
        return dataclasses.replace(
            discounted,
            reason=f"{discounted.reason} (timings less the waits for a core that other "
            f"programs held; as measured, two threads ran {raw.speedup or 0:.2f}x one)",
        )
