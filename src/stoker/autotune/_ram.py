"""The RAM ledger: one per pipeline, counting every byte pulled and not yet delivered.

``Options(ram_budget=BYTES)`` bounds what the stages of one pipeline hold *in total*:
parallel stages' results buffered and calls in flight, prefetch buffers, shuffle buffers
and memory caches. Each of them *reserves* the bytes of an element when it takes it
(:meth:`RamLedger.reserve`) and *releases* them when it hands the element on
(:meth:`RamLedger.release`); the AUTOTUNE controller reads :meth:`RamLedger.room` and
:meth:`RamLedger.by_stage` before it grows a buffer or a stage's parallelism.

A stage with no room stops pulling ahead (:meth:`RamLedger.admits` says whether it may
take one more element; :meth:`RamLedger.wait_room` blocks a background thread until it
may) and goes on once the consumer takes elements. The one-element guarantee: a stage
that holds nothing may always take an element, however big, so a pipeline whose single
element exceeds the budget still flows, one element at a time per stage, and nothing
deadlocks. What the stages hold is then at most the budget plus one element per stage.

Bytes are a fast estimate (:func:`element_bytes`): the array data of an element (its
NumPy leaves, ``bytes`` and strings, as the stats count them) plus a fixed
:data:`ELEMENT_OVERHEAD` for the Python objects around it.

The ledger hangs on the pipeline's :class:`~stoker.iterator.IterContext` (every node's
``_ctx``); :func:`ledger_for` makes it on first use.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from stoker.stats import nbytes as _array_bytes

__all__ = ["ELEMENT_OVERHEAD", "RamLedger", "SLACK", "StageRam", "element_bytes", "ledger_for"]

#: Bytes counted per element on top of its array data (object headers, containers).
ELEMENT_OVERHEAD = 64
#: A stage account tells the ledger of changes once they add up to this. [Unit: byte]
SLACK = 64 << 10

_ATTR = "_stoker_ram"
_CREATE = threading.Lock()
_ndarray = np.ndarray
_SCALARS = (int, float, complex, bool, type(None), np.number, np.bool_)
#: Types whose every instance has the same estimate (Python and NumPy scalars).
_FIXED: dict[type, int] = {}


def element_bytes(x: Any) -> int:
    """Estimated bytes one element holds: its array bytes plus :data:`ELEMENT_OVERHEAD`.

    Cheap: an array is one attribute read, a scalar one dict lookup; tuples, lists and
    dicts are walked; anything else is what the stats count (:func:`stoker.stats.nbytes`).
    """
    t = type(x)
    if t is _ndarray:
        return x.nbytes + ELEMENT_OVERHEAD  # type: ignore[no-any-return]
    n = _FIXED.get(t)
    if n is not None:
        return n
    if t is tuple or t is list or t is dict:
        return _walk(x) + ELEMENT_OVERHEAD
    n = _array_bytes(x) + ELEMENT_OVERHEAD
    if isinstance(x, _SCALARS):
        _FIXED[t] = n
    return n


def _walk(x: Any) -> int:
    t = type(x)
    if t is _ndarray:
        return x.nbytes  # type: ignore[no-any-return]
    if t is tuple or t is list:
        n = 0
        for v in x:
            n += _walk(v)
        return n
    if t is dict:
        n = 0
        for v in x.values():
            n += _walk(v)
        return n
    if t in _FIXED:
        return 0
    return _array_bytes(x)


class RamLedger:
    """What the stages of one pipeline hold, against ``budget`` bytes.

    Thread-safe: stages reserve and release from the consumer's thread and from their
    own background threads. :meth:`held`, :meth:`room` and :meth:`admits` read without
    the lock (a moment's staleness only moves a decision by one element).

    Args:
        budget: Bytes all stages together may hold (``Options.ram_budget``). [Unit: byte]
    """

    __slots__ = ("_cond", "_held", "_lock", "_stages", "_waiting", "budget", "peak")

    def __init__(self, budget: int):
        if budget < 1:
            raise ValueError(f"RamLedger: budget={budget!r} must be a positive number of bytes")
        #: Bytes all stages together may hold. [Unit: byte]
        self.budget = int(budget)
        #: The most held at once so far. [Unit: byte]
        self.peak = 0
        self._lock = threading.Lock()  # taken directly on hot paths (C, unlike Condition's)
        self._cond = threading.Condition(self._lock)
        self._held = 0
        self._stages: dict[str, int] = {}
        self._waiting = 0

    def reserve(self, stage: str, nbytes: int) -> None:
        """``stage`` now holds ``nbytes`` more (it took an element). Never waits."""
        if nbytes <= 0:
            return
        with self._lock:
            self._stages[stage] = self._stages.get(stage, 0) + nbytes
            held = self._held = self._held + nbytes
            if held > self.peak:
                self.peak = held

    def release(self, stage: str, nbytes: int) -> None:
        """``stage`` holds ``nbytes`` fewer (it handed an element on).

        Never below zero: releasing more than a stage holds releases what it holds.
        """
        if nbytes <= 0:
            return
        with self._lock:
            have = self._stages.get(stage, 0)
            n = nbytes if nbytes < have else have
            if n == have:
                self._stages.pop(stage, None)
            else:
                self._stages[stage] = have - n
            self._held -= n
            if self._waiting:
                self._cond.notify_all()

    def release_all(self, stage: str) -> int:
        """``stage`` holds nothing any more (it closed or dropped its buffers); returns
        the bytes it held."""
        with self._lock:
            n = self._stages.pop(stage, 0)
            self._held -= n
            if self._waiting and n:
                self._cond.notify_all()
        return n

    def held(self) -> int:
        """Bytes held by all stages now. [Unit: byte]"""
        return self._held

    def held_by(self, stage: str) -> int:
        """Bytes ``stage`` holds now. [Unit: byte]"""
        return self._stages.get(stage, 0)

    def room(self) -> int:
        """``budget - held``, at least 0. [Unit: byte]"""
        room = self.budget - self._held
        return room if room > 0 else 0

    def by_stage(self) -> dict[str, int]:
        """Bytes each stage holds now (stages holding nothing are left out)."""
        with self._lock:
            return dict(self._stages)

    def fits(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more fit in the budget now."""
        return self._held + nbytes <= self.budget

    def admits(self, stage: str, nbytes: int) -> bool:
        """Whether ``stage`` may take an element of about ``nbytes`` now: it fits in the
        room, or the stage holds nothing (the one-element guarantee)."""
        return self._held + nbytes <= self.budget or not self._stages.get(stage, 0)

    def wait_room(self, stage: str, nbytes: int, timeout: float) -> bool:
        """Block until :meth:`admits` (or ``timeout`` seconds); returns whether it does.

        Background threads call it in their own poll loop, so they still see a stop
        request within ``timeout``.
        """
        if self.admits(stage, nbytes):
            return True
        with self._cond:
            self._waiting += 1
            try:
                if not self.admits(stage, nbytes):
                    self._cond.wait(timeout)
                return self.admits(stage, nbytes)
            finally:
                self._waiting -= 1

    def __repr__(self) -> str:
        return f"<RamLedger held={self._held:,} budget={self.budget:,} peak={self.peak:,}>"


class StageRam:
    """One stage's account for elements it keys itself (a parallel stage's ``seq``).

    Remembers what each key reserved, so a release is exact even when the element
    changed on the way (an input replaced by its output), and keeps a running estimate
    of an element's bytes for :meth:`admits`. Small changes are passed on to the ledger
    in batches of :data:`SLACK` bytes (so small elements do not take its lock each), and
    at once whenever the stage holds nothing: the ledger is behind by less than
    ``SLACK`` per stage, never when a stage empties. Used from one thread at a time.
    """

    __slots__ = ("_delta", "_held", "_in", "_keys", "_out", "ledger", "stage")

    def __init__(self, ledger: RamLedger, stage: str):
        self.ledger = ledger
        self.stage = stage
        self._in = 0.0  # running estimates of an input's and an output's bytes
        self._out = 0.0
        self._keys: dict[int, int] = {}
        self._held = 0  # what this stage holds
        self._delta = 0  # of that, what the ledger has not been told yet

    @property
    def expect(self) -> float:
        """Running estimate of one element's bytes (input or output, the larger)."""
        return self._in if self._in > self._out else self._out

    @property
    def held(self) -> int:
        """Bytes this stage holds (reserved and not released). [Unit: byte]"""
        return self._held

    def _add(self, n: int) -> None:
        held = self._held = self._held + n
        d = self._delta + n
        if held and -SLACK < d < SLACK:
            self._delta = d
            return
        self._delta = 0
        if d > 0:
            self.ledger.reserve(self.stage, d)
        elif d < 0:
            self.ledger.release(self.stage, -d)

    def admits(self, n: int = 1) -> bool:
        """Whether ``n`` more elements of the expected size may be taken now: they fit,
        or this stage holds nothing (the one-element guarantee)."""
        return not self._held or self.ledger.fits(int(n * self.expect) + self._delta)

    def cap(self, n: int) -> int:
        """``n`` elements, or fewer (at least one) if only fewer fit in the room now: a
        chunk of calls is never bigger than the budget allows."""
        e = self.expect
        if e <= 0 or n <= 1:
            return n
        fit = int((self.ledger.room() - self._delta) // e)
        return n if fit >= n else fit if fit > 1 else 1

    def hold(self, key: int, nbytes: int) -> None:
        """Reserve for ``key``: at least the expected size (an output may be larger)."""
        e = self._in
        self._in = float(nbytes) if nbytes > e else 0.9 * e + 0.1 * nbytes
        out = int(self._out)
        n = nbytes if nbytes > out else out
        self._keys[key] = n
        self._add(n)

    def update(self, key: int, nbytes: int) -> None:
        """``key``'s element now takes ``nbytes`` (its result arrived)."""
        old = self._keys.get(key)
        if old is None:
            return
        e = self._out
        self._out = float(nbytes) if nbytes > e else 0.9 * e + 0.1 * nbytes
        if nbytes != old:
            self._keys[key] = nbytes
            self._add(nbytes - old)

    def drop(self, key: int) -> None:
        """``key``'s element was handed on (or discarded)."""
        n = self._keys.pop(key, 0)
        if n:
            self._add(-n)

    def clear(self) -> None:
        """Release everything this stage holds (close, restore)."""
        self._keys.clear()
        self._held = self._delta = 0
        self.ledger.release_all(self.stage)


def ledger_for(ctx: Any) -> RamLedger:
    """The RAM ledger of the pipeline ``ctx`` belongs to, made on first use with
    ``ctx.options.ram_budget`` as its budget."""
    ledger: RamLedger | None = getattr(ctx, _ATTR, None)
    if ledger is not None:
        return ledger
    with _CREATE:
        ledger = getattr(ctx, _ATTR, None)
        if ledger is None:
            budget = ctx.options.ram_budget
            if not budget:
                from stoker.options import _default_ram_budget

                budget = _default_ram_budget()
            ledger = RamLedger(int(budget))
            setattr(ctx, _ATTR, ledger)
    return ledger
