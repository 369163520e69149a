"""``executor="auto"``: measure the function, then run it inline, on threads or processes.

The auto executor starts on the thread pool and runs the first elements through the
probe of :mod:`stoker.exec._gil` (alone, then in pairs: does a second thread help?). The
probe's elements are real elements: their outputs are delivered, nothing is computed
twice. Then it moves the work:

* **inline** for calls cheaper than a hand-off;
* **threads** for calls that wait (concurrency may then exceed the core count, bounded
  by ``io_concurrency``) or release the GIL;
* **processes** for calls that hold it. Threads keep computing while the workers start;
  chunks already on threads finish there (*draining*) while new ones go to the workers.

Decisions are kept per owner (the stage's dataset): the next pass (epoch) reuses the
decision without measuring again, and so takes back the worker processes the last pass
kept. ``info`` (and the stage's stats) says what runs and why.
"""

from __future__ import annotations

import dataclasses
import math
import time
import weakref
from collections.abc import Iterable
from typing import Any

from stoker.exec import _gil
from stoker.exec._base import Completion, Executor, ExecutorRequest, InlineExecutor
from stoker.exec._registry import register_executor
from stoker.exec.processes import make_process_executor, spec_bytes
from stoker.exec.shared_memory import Packed
from stoker.exec.threads import ThreadExecutor

__all__ = ["AutoExecutor", "remember"]

#: How often starting worker processes are checked for readiness. [Unit: second]
_READY_CHECK_S = 0.01
#: Wait for a starting or draining executor in steps this short. [Unit: second]
_QUICK_POLL_S = 0.005

# Decisions per owner: later passes reuse them instead of measuring again.
_DECISIONS: weakref.WeakKeyDictionary[Any, _gil.Decision] = weakref.WeakKeyDictionary()


class AutoExecutor(Executor):
    """See the module docstring."""

    def __init__(self, request: ExecutorRequest):
        self._current: Executor | None = None
        super().__init__()
        self._request = request
        self._starting: Executor | None = None  # processes, until their workers are up
        self._draining: list[Executor] = []  # replaced, finishing chunks in flight
        self._spec: bytes | None = None
        self._picklable: bool | None = None
        self._probe: _gil.GilProbe | None = None
        self._probe_tags: dict[int, int] = {}  # tag -> pair id (-1: alone)
        self._pair = -1  # the pair being submitted
        self._pair_submitted = 0
        self._next_pair = 0
        self._next_ready_check = 0.0
        self._tuned: int | None = None  # calls at once set by the AUTOTUNE controller
        self._burst = 0  # chunks the stage wants submitted at once (ThreadExecutor.burst)
        self.decision: _gil.Decision | None = _decision_for(request.owner)
        if self.decision is not None:
            self._apply(self.decision)
        else:
            # Cores the stage may use: no pairs measured when it may use only one.
            self._probe = _gil.GilProbe(min(request.cpu_budget, request.concurrency))
            self._set_info("thread", "measuring the function (auto)")
            self._switch(ThreadExecutor(request.spec, 2, request.max_threads))

    # -- what the stage sees ---------------------------------------------------------------

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self._current.kind if self._current is not None else "auto"

    @property
    def chunk_s(self) -> float:  # type: ignore[override]
        return self._current.chunk_s if self._current is not None else 0.0

    @property
    def slots(self) -> int:
        return self._current.slots if self._current is not None else 1

    @property
    def capacity(self) -> int:
        return self._current.capacity if self._current is not None else 1

    @property
    def parallelism(self) -> int:
        return self._current.parallelism if self._current is not None else 1

    @property
    def concurrency(self) -> int:
        """Calls at once on threads. Set by the AUTOTUNE controller (stoker.autotune):
        kept while measuring (the probe runs alone and in pairs), applied once threads
        run the work, and it replaces the one-shot waiting estimate."""
        current = self._current
        if isinstance(current, ThreadExecutor):
            return current.concurrency
        return self._tuned if self._tuned is not None else self.parallelism

    @concurrency.setter
    def concurrency(self, value: int) -> None:
        self._tuned = max(1, int(value))
        current = self._current
        if self._probe is None and isinstance(current, ThreadExecutor):
            current.concurrency = self._tuned

    @property
    def burst(self) -> int:
        """Chunks the stage wants submitted at once, passed to threads
        (:attr:`ThreadExecutor.burst <stoker.exec.threads.ThreadExecutor.burst>`)."""
        return self._burst

    @burst.setter
    def burst(self, value: int) -> None:
        self._burst = max(0, int(value))
        current = self._current
        if isinstance(current, ThreadExecutor):
            current.burst = self._burst

    @property
    def pids(self) -> list[int]:
        """Worker processes now computing (none on threads)."""
        pids: list[int] = []
        for ex in (self._current, *self._draining):
            pids.extend(getattr(ex, "pids", ()))
        return pids

    def ready(self) -> bool:
        return self._current is not None and self._current.ready()

    def accepting(self) -> bool:
        if self._starting is not None:
            self._maybe_switch()
        current = self._current
        if current is None:
            return False
        probe = self._probe
        if probe is None:
            return current.accepting()
        if probe.phase == "pairs":  # both calls of a pair are submitted together
            return self.in_flight == 0 or self._pair_submitted == 1
        return self.in_flight == 0

    def chunk_size(self, elem_s: float, elem_bytes: float) -> int:
        if self._probe is not None or self._current is None:
            return 1
        return self._current.chunk_size(elem_s, elem_bytes)

    def submit(self, tag: int, pass_id: list[int], items: list[tuple[int, Any]]) -> None:
        current = self._current
        if current is None:
            raise RuntimeError("AutoExecutor.submit() after close()")
        probe = self._probe
        if probe is not None:
            if probe.phase == "pairs":
                if self._pair_submitted != 1:
                    self._pair, self._pair_submitted = self._next_pair, 0
                    self._next_pair += 1
                self._pair_submitted += 1
                self._probe_tags[tag] = self._pair
            else:
                self._probe_tags[tag] = -1
            probe.nbytes += sum(_gil.nbytes_of(x) for _, x in items)
        current.submit(tag, pass_id, items)
        self.in_flight += 1

    def poll(self, timeout: float) -> list[Completion]:
        got: list[Completion] = []
        for ex in list(self._draining):
            got.extend(ex.poll(0.0))
            if not ex.in_flight:
                self._draining.remove(ex)
                getattr(ex, "close_soon", ex.close)()  # processes: reaped in the background
        if not got:
            current = self._current
            target = current if current is not None and current.in_flight else None
            if target is None:
                target = next((d for d in self._draining if d.in_flight), None)
            if target is not None:
                quick = bool(self._draining) or self._starting is not None
                got = target.poll(_QUICK_POLL_S if quick else timeout)
        self.in_flight -= len(got)
        probe = self._probe
        if probe is not None:
            for c in got:
                pair = self._probe_tags.pop(c.tag, None)
                if pair == -1:
                    probe.add_alone(c.busy_s, c.cpu_s)
                elif pair is not None:
                    probe.add_pair_member(pair, c.start, c.busy_s, c.cpu_s)
                probe.nbytes += sum(_gil.nbytes_of(r) for r in c.results)
            if probe.phase == "done":
                self._probe = None
                self._probe_tags.clear()
                probe.picklable = self._spec_bytes() is not None
                self._apply(probe.decision())
        return got

    def resolve(self, result: Any) -> Any:
        if type(result) is Packed:
            return result.unpack()
        return result

    def discard(self, results: Iterable[Any]) -> None:
        for r in results:
            if type(r) is Packed:
                r.release()

    def close(self, wait: bool = True) -> None:
        executors = [self._current, self._starting, *self._draining]
        self._current = self._starting = None
        self._draining = []
        self.in_flight = 0
        for ex in executors:
            if ex is not None:
                ex.close(wait)

    def release(self) -> None:
        """End of a pass: keep reusable workers (even still starting), close the rest."""
        keep = [self._current, self._starting]
        self._current = self._starting = None
        self.close()
        for ex in keep:
            if ex is not None:
                ex.release()

    def to_threads(self, concurrency: int, reason: str) -> bool:
        """Move the work from processes back to threads, now, or cancel processes still
        starting: the AUTOTUNE controller saw its calls mostly wait (the work changed
        since the probe). Chunks on the processes finish there. False if neither.
        """
        current = self._current
        if self._probe is not None or current is None:
            return False
        starting, self._starting = self._starting, None
        if starting is not None:  # processes chosen for work that has changed since
            starting.close()
        elif current.kind != "process":
            return False
        request = self._request
        self._tuned = max(1, int(concurrency))
        if self.decision is not None:
            self.decision = dataclasses.replace(
                self.decision, executor="thread", reason=reason, waiting=True
            )
            if request.owner is not None:
                _DECISIONS[request.owner] = self.decision
        self._set_info("thread", reason)
        if isinstance(current, ThreadExecutor):
            current.concurrency = self._tuned
        else:
            self._switch(ThreadExecutor(request.spec, self._tuned, request.max_threads))
        return True

    @property
    def probing(self) -> bool:
        """Still measuring the function (one call or one pair at a time)."""
        return self._probe is not None

    @property
    def starting(self) -> bool:
        """Worker processes are starting (threads compute meanwhile)."""
        return self._starting is not None

    # -- choosing --------------------------------------------------------------------------

    def _set_info(self, executor: str, reason: str, **extra: Any) -> None:
        self.info = {"executor": executor, "reason": reason, **extra}
        stats = self._request.stats
        if stats is not None:
            for key, value in self.info.items():
                stats.set_info(key, value)

    def _spec_bytes(self) -> bytes | None:
        if self._picklable is None:
            try:
                self._spec = spec_bytes(self._request)
                self._picklable = True
            except TypeError:
                self._picklable = False
        return self._spec

    def _switch(self, new: Executor) -> None:
        old, self._current = self._current, new
        if isinstance(new, ThreadExecutor):
            new.burst = self._burst
        if old is not None:
            if old.in_flight:
                self._draining.append(old)
            else:
                old.close()

    def _waiting_concurrency(self, decision: _gil.Decision) -> int:
        """Calls to keep in flight for waiting work: enough to keep the CPU budget busy
        (Little's law), capped by the I/O concurrency, never below the CPU budget."""
        request = self._request
        share = max(decision.cpu_share, 1e-3)
        want = math.ceil(request.cpu_budget / share)
        return max(request.cpu_budget, min(request.io_concurrency, want))

    def _apply(self, decision: _gil.Decision) -> None:
        request = self._request
        if request.owner is not None:
            _DECISIONS[request.owner] = decision
        concurrency = request.concurrency
        if decision.waiting and request.autotune:
            concurrency = self._waiting_concurrency(decision)
        if self._tuned is not None:  # the controller owns it
            concurrency = self._tuned
        extra = {k: v for k, v in decision.as_dict().items() if k not in ("executor", "reason")}
        executor = decision.executor
        if executor == "process":
            spec = self._spec_bytes()
            if spec is None:
                executor = "thread"
                decision = dataclasses.replace(decision, executor="thread")
            else:
                # Worker processes: as many as the budget allows, chosen once (the
                # controller tunes calls on threads, not the number of processes).
                workers = request.concurrency if self._tuned is not None else concurrency
                sized = dataclasses.replace(request, concurrency=workers)
                self._starting = make_process_executor(sized, spec)
        self.decision = decision
        self._set_info(executor, decision.reason, **extra)
        current = self._current
        if executor == "inline":
            self._switch(InlineExecutor(request.spec))
        elif isinstance(current, ThreadExecutor):
            current.concurrency = concurrency
        else:
            self._switch(ThreadExecutor(request.spec, concurrency, request.max_threads))

    def _maybe_switch(self) -> None:
        now = time.monotonic()
        if now < self._next_ready_check:
            return
        self._next_ready_check = now + _READY_CHECK_S
        starting = self._starting
        if starting is not None and starting.ready():
            self._starting = None
            self._switch(starting)


def _decision_for(owner: Any) -> _gil.Decision | None:
    if owner is None:
        return None
    try:
        return _DECISIONS.get(owner)
    except TypeError:  # not weakly referenceable
        return None


def remember(owner: Any, decision: _gil.Decision) -> None:
    """Make ``owner``'s next auto executor start from ``decision`` (tests)."""
    _DECISIONS[owner] = decision


register_executor("auto", AutoExecutor)
