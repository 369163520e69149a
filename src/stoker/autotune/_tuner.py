"""The controller: knobs, meters, and the per-pipeline tuner thread.

A stage owns a :class:`Knob` (what the tuner may set: ``parallelism`` or ``buffer``) and
the knob's :class:`Meter` (what the stage did). The stage writes the meter on its own
threads and reads ``knob.value`` on its consumer's thread, applying a change there; the
tuner thread only reads meters and writes ``knob.value``. Nothing here references a
stage strongly: a knob holds its stage weakly, the pipeline's context holds the tuner,
and the tuner thread holds the tuner weakly, so dropping an iterator frees everything
and the thread ends within a few ticks.

Each knob is judged over a *window* (at least :data:`MIN_WINDOW_S` and
:data:`MIN_CALLS` finished calls, at most :data:`MAX_WINDOW_S`): its throughput, how busy
its workers were (``busy``: wall time computing over parallelism x window), the share of
that time on a CPU (``cpu_share``: a call that mostly waits shows a low share, one that
burns shows ~1), the cores it used (``cores``) and how long its consumer waited for it
(``wait_share``). The rules (docs/autotune.md):

* **grow** a stage its consumer waits for while its workers are busy, to what the
  consumer's demand needs by Little's law (at most :data:`MAX_STEP` times per step),
  capped by the CPU budget left by the other stages, ``io_concurrency``, the knob's bound
  and the RAM ledger's room; CPU shares are corrected for machine load (schedstat);
* **check** each growth (hill climbing): if throughput did not rise by :data:`GAIN`, go
  back and do not try above the old value for :data:`HOLD_S` (a GIL-holding function on
  threads, a consumer that is the real limit);
* **shrink** a stage whose workers idle for three windows (the consumer or the input is
  slower), to what its load needs;
* **rebalance**: when the CPU budget stops a bottleneck from growing, take a worker from a
  stage that is not limiting; when the stages use more cores than the budget, shrink.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import threading
import time
import weakref
from typing import Any

__all__ = [
    "BUSY_HIGH",
    "BUSY_LOW",
    "CORES_SLACK",
    "GAIN",
    "HOLD_S",
    "MAX_STEP",
    "MAX_WINDOW_S",
    "MIN_CALLS",
    "MIN_WINDOW_S",
    "MOVE_CPU",
    "PAID",
    "SETTLE_S",
    "TARGET_BUSY",
    "TICK_S",
    "TRIAL_WINDOW_S",
    "UNCHECKED_S",
    "WAITING_CPU",
    "WAIT_SHARE",
    "Knob",
    "Meter",
    "Tuner",
    "tuner_for",
]

_LOG = logging.getLogger("stoker.autotune")

#: How often the tuner thread looks at the meters. [Unit: second]
TICK_S = 0.02
#: A window lasts at least this long... [Unit: second]
MIN_WINDOW_S = 0.04
#: ...and holds this many finished calls, unless it reaches MAX_WINDOW_S.
MIN_CALLS = 8
#: [Unit: second]
MAX_WINDOW_S = 0.5
#: The window that judges a growth (the trial) lasts at least this long: a stage feeding
#: a batch of big elements delivers in bursts (the consumer stacks one batch, then pulls
#: the next), and on a shared machine its threads lose the CPU for tens of milliseconds
#: at a time, so one short window could report a fraction of the real rate and undo a
#: growth that paid. [Unit: second]
TRIAL_WINDOW_S = 0.2
#: A trial window whose throughput reached this many times the rate before the growth
#: closes at MIN_WINDOW_S: the growth paid.
PAID = 1.5
#: After a change, measurements start this much later (threads start, buffers fill).
#: [Unit: second]
SETTLE_S = 0.02
#: The consumer waiting this share of a window for a stage makes the stage *limiting*.
WAIT_SHARE = 0.02
#: Workers busy above this share: the stage is using what it has.
BUSY_HIGH = 0.6
#: Workers busy below this share for three windows: the stage has more than it needs.
BUSY_LOW = 0.35
#: Utilisation a growth aims at (Little's law with some slack).
TARGET_BUSY = 0.85
#: One growth multiplies parallelism by at most this.
MAX_STEP = 8
#: A growth must raise throughput by this factor to be kept.
GAIN = 1.05
#: After a growth that did not pay, do not try above the old value for this long.
#: [Unit: second]
HOLD_S = 2.0
#: After the executor changed under a knob, growths are not checked for this long.
#: [Unit: second]
UNCHECKED_S = 1.0
#: Calls whose CPU time is below this share of their wall time *wait* (I/O, sleep);
#: their workers count against the CPU budget by the cores they use, not one each.
WAITING_CPU = 0.2
#: Calls on worker processes below this CPU share move to threads: stricter than
#: WAITING_CPU, as a CPU-bound worker on a loaded machine also shows a low share.
MOVE_CPU = 0.1
#: Cores the stages may use beyond the budget, as a share of it, before they are cut
#: back (measurement noise; a worker's own overhead).
CORES_SLACK = 0.2
#: Largest prefetch buffer the tuner sets (the RAM ledger may stop it earlier).
MAX_BUFFER = 256
#: Consecutive idle ticks after which the thread ends (a new run wakes it again).
_IDLE_TICKS = 4
#: Contention is read at most this often, from at most this many threads and processes.
#: [Unit: second]
_CONTENTION_S = 0.1
_CONTENTION_THREADS = 8
_ATTR = "_stoker_tuner"
# The last value of each dataset's knobs: the next pass (epoch) starts there instead of
# ramping up again. Keyed by the dataset object (weakly) and the knob's kind.
_LAST: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()
_count = 0
_count_lock = threading.Lock()


class Meter:
    """What a stage did, written by the stage (plain adds: one writer per field, or the
    stage's own lock), read by the tuner.

    Attributes:
        calls: Calls (chunks, tasks, pulls) finished.
        elements: Elements those calls produced.
        busy_s: Wall time of those calls, summed over workers. [Unit: second]
        cpu_s: CPU time of those calls. [Unit: second]
        wait_s: Time the stage's consumer was blocked waiting for it. [Unit: second]
        full_s: Time a producer was blocked on a full buffer (prefetch). [Unit: second]
    """

    __slots__ = ("busy_s", "calls", "cpu_s", "elements", "full_s", "wait_s")

    def __init__(self) -> None:
        self.calls = 0
        self.elements = 0
        self.busy_s = 0.0
        self.cpu_s = 0.0
        self.wait_s = 0.0
        self.full_s = 0.0

    def add_call(self, elements: int, busy_s: float, cpu_s: float) -> None:
        self.calls += 1
        self.elements += elements
        self.busy_s += busy_s
        self.cpu_s += cpu_s

    def read(self) -> tuple[int, int, float, float, float, float]:
        return self.calls, self.elements, self.busy_s, self.cpu_s, self.wait_s, self.full_s


class Knob:
    """One setting of one stage.

    Args:
        owner: The stage's iterator (held weakly); the knob is live while its run is
            (``owner._run is not None``).
        kind: ``"parallelism"`` (calls at once) or ``"buffer"`` (elements ahead).
        value: The start value.
        tunable: ``False`` for an explicit integer: never changed, but counted against
            the CPU budget.
        hi: The largest value the stage supports.
        note: Why the knob is not tuned even though it is AUTOTUNE (processes).
        key: The stage's dataset: a tunable knob starts where the last pass of that
            dataset left it (held weakly).
    """

    def __init__(
        self,
        owner: Any,
        kind: str,
        value: int,
        tunable: bool,
        hi: int,
        note: str = "",
        key: Any = None,
    ):
        self._owner = weakref.ref(owner)
        self._key: weakref.ref[Any] | None = None
        if key is not None and tunable:
            try:
                self._key = weakref.ref(key)
                value = _LAST.get(key, {}).get(kind, value)
            except TypeError:  # not weakly referenceable
                self._key = None
        self.stage = str(getattr(owner, "stage", "?"))
        self.label = str(getattr(getattr(owner, "recorder", None), "label", self.stage))
        self.kind = kind
        self.value = max(1, int(value))
        self.start = self.value
        self.tunable = tunable
        self.lo = 1
        self.hi = max(self.value, int(hi))
        self.meter = Meter()
        self.changes = 0
        self.last: dict[str, Any] | None = None
        self.state = note or ("starting" if tunable else "explicit value: never changed")
        self.note = note
        # Last window's measurements.
        self.rate = 0.0
        self.prev_rate = 0.0  # the window before's (a phase change spoils one window)
        self.busy = 0.0
        self.cpu_share = 1.0
        self.cores = 0.0
        self.wait_share = 0.0
        self.full_share = 0.0
        self.latency = 0.0  # wall time per element of its calls [Unit: second]
        self.contention = 0.0  # share of runnable time waiting for a CPU (machine load)
        self.measured = False
        # The tuner's private state.
        self._t = time.perf_counter()
        self._m = self.meter.read()
        self._trial: tuple[int, float, float] | None = None
        self._ceiling = 0
        self._ceiling_latency = 0.0
        self._ceiling_until = 0.0
        self._slack = 0
        self._settle = False
        self._unchecked_until = 0.0
        self._probed = False  # the executor was probing when last sampled

    def active(self) -> bool:
        owner = self._owner()
        return owner is not None and getattr(owner, "_run", None) is not None

    @property
    def waiting(self) -> bool:
        """Its calls mostly wait (measured)."""
        return self.measured and self.cpu_share < WAITING_CPU

    @property
    def workers(self) -> float:
        """CPU-busy workers it counts for against the budget: one per call in flight for
        calls that burn CPU, none for calls that wait (their CPU use is held to the
        budget by the cores check instead)."""
        if self.kind != "parallelism":
            return 0.0
        if not self.measured:
            return float(self.value)
        return 0.0 if self.waiting else float(self.value)

    def elem_bytes(self) -> float:
        owner = self._owner()
        rec = getattr(owner, "recorder", None)
        n = getattr(rec, "elements", 0) or 0
        return float(getattr(rec, "bytes", 0) or 0) / n if n else 0.0

    def pids(self) -> list[int]:
        """Worker processes of the stage's executor, if any."""
        owner = self._owner()
        run = getattr(owner, "_run", None)
        try:
            return list(getattr(run, "pids", ()))
        except Exception:  # a closed executor
            return []

    def probing(self) -> bool:
        """The stage's executor is still measuring the function (``executor="auto"``: one
        call or one pair at a time, whatever the knob says)."""
        owner = self._owner()
        return bool(getattr(getattr(owner, "_run", None), "probing", False))

    def sample(self, now: float, contention: float = 0.0) -> bool:
        """Close the window if it is complete; True if it was. Windows start only once
        the executor has stopped probing (the probe's rate is not the stage's), and the
        growths of the next :data:`UNCHECKED_S` are not checked: the probe has just
        measured what a second thread buys.

        Args:
            now: The tuner's clock.
            contention: Share of runnable time spent waiting for a CPU (``_Contention``).
        """
        if self.probing():
            self._t, self._m = now, self.meter.read()
            self._probed = True
            return False
        if self._probed:
            # The probe found that a second thread pays (or the function would be on
            # processes, or its calls wait): the first growths after it are not checked
            # against windows of a few calls, as after any change of executor.
            self._probed = False
            self._unchecked_until = now + UNCHECKED_S
        dt = now - self._t
        if self._settle:
            if dt >= SETTLE_S:
                self._settle = False
                self._t, self._m = now, self.meter.read()
            return False
        m = self.meter.read()
        calls = m[0] - self._m[0]
        # Few long calls (chunks on processes) fill a window once they cover its time.
        enough = calls >= MIN_CALLS or (calls >= 2 and m[2] - self._m[2] >= dt)
        shortest = MIN_WINDOW_S
        trial = self._trial
        if trial is not None and dt < TRIAL_WINDOW_S:
            # Only a verdict *against* a growth needs the long window (bursts, a lost
            # CPU); one that clearly paid is kept at once, so a stage whose work just got
            # 20x slower ramps in a few short windows.
            if (m[1] - self._m[1]) / max(dt, 1e-9) < PAID * trial[1]:
                shortest = TRIAL_WINDOW_S
        if dt < shortest or (not enough and dt < MAX_WINDOW_S):
            return False
        d_el, d_busy, d_cpu, d_wait, d_full = (m[i] - self._m[i] for i in range(1, 6))
        self._t, self._m = now, m
        self.wait_share = min(1.0, d_wait / dt)
        self.full_share = min(1.0, d_full / dt)
        if calls == 0:  # stalled: nothing to judge but the wait
            self.rate = 0.0
            self.busy = 0.0
            self.cores = 0.0
            return False
        self.prev_rate, self.rate = self.rate, d_el / dt
        slots = self.value if self.kind == "parallelism" else 1
        self.busy = min(1.0, d_busy / (slots * dt))
        raw = d_cpu / d_busy if d_busy > 0 else 1.0
        self.cpu_share = min(1.0, raw / max(1.0 - contention, 0.1))
        self.contention = contention
        self.cores = d_cpu / dt if self.kind == "parallelism" else 0.0
        self.latency = d_busy / d_el if d_el else d_busy / calls
        self.measured = True
        return True

    def reset(self, reason: str) -> None:
        """The stage's executor changed under the knob (processes -> threads): forget
        the last window, the trial and the ceiling; the next growth is not checked
        against a window measured on the old executor."""
        self.restart_window(time.perf_counter())
        self._trial = None
        self._ceiling = 0
        # Chunks still finish on the old executor for a while: windows until then mix
        # both, so growths are not checked against them.
        self._unchecked_until = time.perf_counter() + UNCHECKED_S
        self.state = reason

    def restart_window(self, now: float) -> None:
        """A change was made: measure again after :data:`SETTLE_S`."""
        self._t, self._m = now, self.meter.read()
        self._settle = True

    def info(self) -> dict[str, Any]:
        """What the report shows (JSON-serialisable)."""
        return {
            "knob": self.kind,
            "value": self.value,
            "autotune": self.tunable,
            "start": self.start,
            "changes": self.changes,
            "last_change": dict(self.last) if self.last is not None else None,
            "state": self.state,
            "measured": {
                "rate": round(self.rate, 1),
                "busy": round(self.busy, 3),
                "cpu_share": round(self.cpu_share, 3),
                "cores": round(self.cores, 3),
                "wait_share": round(self.wait_share, 3),
                "full_share": round(self.full_share, 3),
                "contention": round(self.contention, 3),
            }
            if self.measured
            else None,
        }


def _similar(a: float, b: float, factor: float) -> bool:
    """``a`` within ``factor`` of ``b`` (either way)."""
    if a <= 0 or b <= 0:
        return True
    return b / factor <= a <= b * factor


def _ledger(ctx: Any) -> Any:
    """The pipeline's RAM ledger (:mod:`stoker.autotune._ram`), or None before it exists."""
    try:  # by name: the module lands on the ram branch (the contract in docs/autotune.md)
        _ram = importlib.import_module("stoker.autotune._ram")
    except ImportError:
        return None
    try:
        return _ram.ledger_for(ctx)
    except Exception:  # never let accounting break tuning
        _LOG.debug("stoker.autotune: no RAM ledger", exc_info=True)
        return None


class _Contention:
    """How much of the time our workers were *runnable* they spent waiting for a CPU
    (another process had it), from Linux's per-thread schedstat: what tells, on a loaded
    machine, a call that burns CPU but gets little of it from a call that waits.

    A call's wall time is its CPU time, its time runnable but not running, and its time
    blocked (I/O, sleep, a lock). With ``f`` the runnable share not running, the CPU a
    call *wants* is ``cpu / (1 - f)``; :class:`Tuner` divides measured CPU shares by
    ``1 - f``. Reading is cheap (a few threads, at most every :data:`_CONTENTION_S`);
    where schedstat is missing, ``f`` stays 0 (shares are taken as measured).
    """

    def __init__(self) -> None:
        self.f = 0.0
        self._last: dict[str, tuple[int, int]] = {}
        self._t = 0.0
        self._ok = os.path.exists("/proc/self/schedstat")

    def update(self, now: float, pids: list[int]) -> float:
        if not self._ok or now - self._t < _CONTENTION_S:
            return self.f
        self._t = now
        from stoker.exec.threads import POOL

        paths = [
            f"/proc/self/task/{t.native_id}/schedstat"
            for t in POOL.threads()[:_CONTENTION_THREADS]
            if t.native_id is not None
        ]
        paths += [f"/proc/{pid}/schedstat" for pid in pids[:_CONTENTION_THREADS]]
        run = delay = 0
        seen: dict[str, tuple[int, int]] = {}
        for path in paths:
            try:
                with open(path, "rb") as f:
                    fields = f.read().split()
                cpu_ns, delay_ns = int(fields[0]), int(fields[1])
            except (OSError, ValueError, IndexError):
                continue
            seen[path] = (cpu_ns, delay_ns)
            last = self._last.get(path)
            if last is not None:
                run += cpu_ns - last[0]
                delay += delay_ns - last[1]
        self._last = seen
        if run + delay > 2_000_000:  # 2 ms of runnable time: enough to judge
            share = delay / (run + delay)
            self.f = share if self.f == 0.0 else 0.5 * self.f + 0.5 * share
        return self.f


class Tuner:
    """The controller of one pipeline (``tuner_for(ctx)``); see the module docstring."""

    def __init__(self, ctx: Any):
        opts = ctx.options
        self.cpu_budget = int(opts.cpu_budget or 1)
        self.io_concurrency = int(opts.io_concurrency or 64)
        self.ram_budget = int(opts.ram_budget or (4 << 30))
        self._ctx = weakref.ref(ctx)
        self._refs: list[weakref.ref[Knob]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._woken = False
        self._t0 = time.perf_counter()
        self._over = 0  # consecutive windows over the CPU budget
        self._contention = _Contention()

    @property
    def contention(self) -> float:
        """Share of our workers' runnable time spent waiting for a CPU (0: none)."""
        return self._contention.f

    # -- stages ----------------------------------------------------------------------------

    def add(self, knob: Knob) -> Knob:
        """Register ``knob`` (held weakly); the stage calls :meth:`wake` when it starts."""
        with self._lock:
            self._refs = [r for r in self._refs if r() is not None]
            self._refs.append(weakref.ref(knob))
        return knob

    def knobs(self) -> list[Knob]:
        """The live knobs, in registration order."""
        with self._lock:
            refs = list(self._refs)
        return [k for k in (r() for r in refs) if k is not None]

    def wake(self) -> None:
        """A stage started a run: start the thread if it is not running."""
        global _count
        with self._lock:
            self._woken = True
            if self._thread is not None:
                return
            with _count_lock:
                _count += 1
                n = _count
            thread = threading.Thread(
                target=_loop, args=(weakref.ref(self),), name=f"stoker-autotune-{n}", daemon=True
            )
            self._thread = thread
        thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None

    # -- deciding --------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> bool:
        """Look at every knob once; False when no stage is running.

        Args:
            now: ``time.perf_counter()`` (tests pass their own clock).
        """
        knobs = [k for k in self.knobs() if k.active()]
        if not knobs:
            return False
        self._woken = False
        if now is None:
            now = time.perf_counter()
        pids: list[int] = []
        for k in knobs:
            pids.extend(k.pids())
        f = self._contention.update(now, pids)
        ready = [k for k in knobs if k.sample(now, f)]
        if not ready:
            return True
        par = [k for k in knobs if k.kind == "parallelism"]
        for k in ready:
            if not k.tunable:
                continue
            if k.kind == "parallelism":
                self._decide_parallelism(k, par, now)
            else:
                self._decide_buffer(k, now)
        self._enforce_cpu(par, now)
        return True

    def _set(self, k: Knob, value: int, reason: str, now: float) -> None:
        old, k.value = k.value, value
        k.changes += 1
        k.last = {"at_s": round(now - self._t0, 3), "from": old, "to": value, "reason": reason}
        k.state = reason
        k.restart_window(now)
        key = k._key() if k._key is not None else None
        if key is not None:
            _LAST.setdefault(key, {})[k.kind] = value
        _LOG.debug("%s: %s %d -> %d: %s", k.label, k.kind, old, value, reason)

    def _room(self, knobs: list[Knob]) -> int:
        """Bytes buffers may still grow by: the less of what the RAM ledger has free now
        and what the knobs' settings would hold once their buffers fill (a stage that has
        not filled its buffer yet holds less than it will)."""
        held = 0.0
        for k in knobs:
            per = 2 if k.kind == "parallelism" else 1
            held += per * k.value * k.elem_bytes()
        room = max(0, int(self.ram_budget - held))
        ctx = self._ctx()
        ledger = _ledger(ctx) if ctx is not None else None
        if ledger is not None:
            room = min(room, int(ledger.room()))
        return room

    def _cpu_left(self, k: Knob, par: list[Knob]) -> tuple[float, float]:
        """(cores, workers) of the budget the other stages leave to ``k``."""
        others = [o for o in par if o is not k and o.active()]
        cores = self.cpu_budget - sum(o.cores if o.measured else o.value for o in others)
        workers = self.cpu_budget - sum(o.workers for o in others)
        return cores, workers

    def _decide_parallelism(self, k: Knob, par: list[Knob], now: float) -> None:
        p = k.value
        trial, k._trial = k._trial, None
        if k._ceiling and not _similar(k.latency, k._ceiling_latency, 2.0):
            k._ceiling = 0  # the work changed: what did not pay before may now
        if trial is not None:
            old, old_rate, old_latency = trial
            # Calls slowing down by up to p_new/p_old is what sharing looks like (the GIL,
            # a saturated resource); far beyond that the work itself changed, and the two
            # windows cannot be compared: keep the growth, judge it afresh.
            comparable = _similar(k.latency, old_latency, 1.5 * p / max(old, 1))
            if comparable and k.rate < old_rate * GAIN:
                k._ceiling, k._ceiling_until = old, now + HOLD_S
                k._ceiling_latency = old_latency
                self._set(
                    k,
                    old,
                    f"{old}->{p} did not raise throughput ({old_rate:.0f} -> {k.rate:.0f} el/s): "
                    f"back to {old}, held for {HOLD_S:.0f} s",
                    now,
                )
                return
        limiting = k.wait_share > WAIT_SHARE and k.busy > BUSY_HIGH
        kind = "wait" if k.waiting else "burn CPU"
        why = (
            f"consumer waited {k.wait_share:.0%}, workers {k.busy:.0%} busy, calls {kind} "
            f"(cpu {k.cpu_share:.0%})"
        )
        if limiting:
            k._slack = 0
            # The consumer's demand, from its wait: it spends 1 - wait_share of its time
            # on its own work, so it could take rate / (1 - wait_share); Little's law
            # turns that into calls in flight at the measured utilisation. One step
            # grows by at most MAX_STEP (the estimate is as good as one window).
            demand = p * k.busy / max(1.0 - k.wait_share, 0.05) / TARGET_BUSY
            q = min(p * MAX_STEP, max(p + 1, math.ceil(demand)))
            caps: list[str] = []
            hi = k.hi if k.waiting else min(k.hi, max(self.cpu_budget, 1))
            if q > hi:
                bound = f"cpu_budget={self.cpu_budget}" if hi < k.hi else f"bound {hi}"
                q, caps = hi, [bound]
            if k._ceiling and now < k._ceiling_until and q > k._ceiling:
                q, caps = k._ceiling, ["a growth above it that did not pay"]
            cores_left, workers_left = self._cpu_left(k, par)
            q_cpu = p
            if k.cores > 1e-6:
                # The same slack as _enforce_cpu allows, so a growth is not undone there.
                slack = CORES_SLACK * self.cpu_budget + 0.1
                q_cpu = int(p * max(cores_left + slack, 0.0) / k.cores + 1e-9)
            if not k.waiting:
                q_cpu = min(q_cpu, int(workers_left + 1e-9))
            q_cpu = max(q_cpu, 1)
            if q > q_cpu:
                q, caps = max(q_cpu, min(p, q)), [f"cpu_budget={self.cpu_budget}"]
            per = 2 * k.elem_bytes()
            if q > p and per > 0:
                room = self._room(par)
                fits = p + int(room // per)
                if q > fits:
                    q, caps = max(p, fits), ["RAM budget"]
            if q > p:
                if now >= k._unchecked_until:
                    k._trial = (p, k.rate, k.latency)
                self._set(k, q, f"{why}: {p}->{q}", now)
                return
            k.state = f"limiting at {p} ({why}); held by {', '.join(caps) or 'its bound'}"
            if caps and caps[0].startswith("cpu_budget"):
                self._give_core(k, par, now)
            return
        if k.busy < BUSY_LOW and p > 1:
            k._slack += 1
            if k._slack >= 3:
                k._slack = 0
                q = max(1, p // 2, math.ceil(p * k.busy / BUSY_HIGH))
                if q < p:
                    side = "consumer keeps up" if k.wait_share <= WAIT_SHARE else "input is slow"
                    self._set(k, q, f"workers only {k.busy:.0%} busy ({side}): {p}->{q}", now)
                    return
        else:
            k._slack = 0
        k.state = (
            f"holding at {p}: {why}"
            if k.wait_share > WAIT_SHARE
            else f"holding at {p}: the consumer keeps up ({why})"
        )

    def _give_core(self, k: Knob, par: list[Knob], now: float) -> None:
        """The budget stops bottleneck ``k``: take a worker from a stage that has slack."""
        donors = [
            o
            for o in par
            if o is not k
            and o.tunable
            and o.active()
            and o.measured
            and not o.waiting
            and o.value > 1
            and (o.wait_share <= WAIT_SHARE or o.busy < BUSY_HIGH)
        ]
        if not donors:
            return
        o = min(donors, key=lambda d: d.busy)
        self._set(
            o,
            o.value - 1,
            f"gave a worker to {k.label}, the bottleneck under cpu_budget={self.cpu_budget} "
            f"(this stage: consumer waited {o.wait_share:.0%}, workers {o.busy:.0%} busy)",
            now,
        )

    def _enforce_cpu(self, par: list[Knob], now: float) -> None:
        """Stages together burning over the budget (growth under load, a phase change):
        shrink the one using the most cores."""
        live = [k for k in par if k.active() and k.measured]
        used = sum(k.cores for k in live)
        workers = sum(k.workers for k in live)
        if used <= self.cpu_budget * (1 + CORES_SLACK) + 0.1 and workers <= self.cpu_budget + 1e-9:
            self._over = 0
            return
        self._over += 1
        if self._over < 2:
            return
        self._over = 0
        tunable = [k for k in live if k.tunable and k.value > 1]
        if not tunable:
            return
        k = max(tunable, key=lambda t: t.cores)
        v = k.value
        q = v - 1
        if used > self.cpu_budget and k.cores > 0:
            q = min(q, math.ceil(v * max(0.0, 1 - (used - self.cpu_budget) / k.cores)))
        if workers > self.cpu_budget and not k.waiting:
            q = min(q, v - math.ceil(workers - self.cpu_budget - 1e-9))
        self._set(
            k,
            max(1, q),
            f"stages used {used:.1f} cores ({workers:.1f} CPU-busy workers) over "
            f"cpu_budget={self.cpu_budget}",
            now,
        )

    def _decide_buffer(self, k: Knob, now: float) -> None:
        b = k.value
        # A larger buffer helps when the producer keeps up on average but not at every
        # moment: the consumer waits at times, and at other times the producer waits
        # for room. A producer that never finds the buffer full is the bottleneck.
        if k.wait_share > WAIT_SHARE and k.full_share > 0.05 and b < k.hi:
            q = min(k.hi, b * 2)
            per = k.elem_bytes()
            if per > 0:
                fits = b + int(self._room([k]) // per)
                q = min(q, fits)
            if q > b:
                self._set(
                    k,
                    q,
                    f"consumer waited {k.wait_share:.0%} and the producer waited "
                    f"{k.full_share:.0%} for room (bursts): buffer {b}->{q}",
                    now,
                )
                return
            k.state = f"buffer {b}: would grow, but the RAM budget has no room"
            return
        if k.wait_share > WAIT_SHARE:
            k.state = (
                f"buffer {b}: the input is the bottleneck (the producer never waited for "
                "room); a larger buffer would not help"
            )
        else:
            k.state = f"buffer {b}: the consumer keeps up (waited {k.wait_share:.0%})"


def _loop(ref: weakref.ref[Tuner]) -> None:
    idle = 0
    while True:
        tuner = ref()
        if tuner is None:
            return
        try:
            busy = tuner.tick()
        except Exception:  # a bug here must not kill tuning silently, nor the pipeline
            _LOG.exception("stoker.autotune: tick failed")
            busy = True
        if busy:
            idle = 0
        else:
            idle += 1
            if idle >= _IDLE_TICKS:
                with tuner._lock:
                    if not tuner._woken:
                        tuner._thread = None
                        return
                    tuner._woken = False
                idle = 0
        del tuner
        time.sleep(TICK_S)


def tuner_for(ctx: Any) -> Tuner | None:
    """The pipeline's tuner, made on first use; None with ``Options(autotune=False)``."""
    tuner = getattr(ctx, _ATTR, None)
    if tuner is None:
        if not getattr(ctx.options, "autotune", False):
            return None
        tuner = Tuner(ctx)
        setattr(ctx, _ATTR, tuner)
    return tuner
