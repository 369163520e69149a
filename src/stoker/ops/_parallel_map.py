"""``map(num_parallel_calls=...)``: the element function on threads or processes.

The consumer's thread drives everything: each ``next()`` pulls input elements (the input
is only ever touched from this thread), hands them in chunks to an executor
(:mod:`stoker.exec`), and collects finished chunks. ``deterministic=True`` returns
outputs in input order; ``False`` returns each as soon as it is done, so a slow element
holds back nothing but itself.

Bounds: at most ``capacity`` chunks are in flight (threads: ``2 * num_parallel_calls``,
at most ``num_parallel_calls`` of them computing, the others queued so that a thread
which finishes a chunk starts the next at once; processes: two per worker) and at most
``2 * slots * chunk`` elements (``slots``: ``num_parallel_calls``, or two per worker) are
pulled and not yet delivered. A chunk is one element unless elements are cheap: chunks
then grow until each costs ~0.2 ms on a thread or ~10 ms in a process (the executor's
``chunk_s``), so the consumer's side (one message, one wake-up, one unpickling per chunk)
stays near 2% of a core for processes. Element cost is measured as CPU time (waiting
counted at a quarter): on a busy machine wall time grows, and chunks sized by it would
shrink exactly when the consumer's per-chunk cost hurts most.

Bursts: a consumer that takes ``n`` elements per call and then computes on its own thread
(a sequential ``batch(n)`` stacking them) says so with
:meth:`~ParallelMapIterator.set_burst`. The window then covers at least
``n + slots * chunk`` elements and a thread executor queues that many chunks
(``ThreadExecutor.burst``), so the threads compute the next batch while the consumer
stacks this one, instead of finishing the few chunks in flight and idling. The calls
computed at once (the AUTOTUNE knob) and ``Options.ram_budget`` bound it as before.

AUTOTUNE (:mod:`stoker.autotune`): with ``num_parallel_calls=AUTOTUNE`` the stage starts at
one call and the pipeline's controller moves its calls at once while it runs (the stage
applies a new value at its next fill, on its own thread); calls on worker processes that
turn out to wait move to threads. An explicit integer is reported but never changed.

Cut chunks: a worker process cuts a chunk once it has run far longer than its elements
took before (:data:`~stoker.exec._base.CUT_FACTOR`; the work changed under it) and
returns what it computed; the elements it did not start go back on a queue this stage
submits from before it pulls anything new (to threads, once AUTOTUNE has moved the work
there). A cut chunk is judged on the time beyond what its elements used to take, so one
chunk is enough to see that the new work waits. ``it.executor_info["cut_chunks"]``
counts them.

The executor comes by name from :func:`stoker.exec.make_executor` (``"thread"``,
``"process"``, ``"auto"``, ...); this module sees only the executor interface.
``executor="auto"`` (:mod:`stoker.exec.auto`) measures the function on its first elements
and moves it inline, to threads, or to processes; ``it.executor_info`` and the stats say
which and why. Inline, ``next()`` calls the function directly.

Errors: a function's exception reaches the consumer as the same object with a note
naming the stage and element; a ``SystemExit`` raised in the function (on any executor)
becomes a :class:`~stoker.errors.WorkerError` of the stage (``Failure.throw``), and a
``KeyboardInterrupt`` passes and closes the iterator.

Checkpoints: the state is the input's position as of the first element not yet
delivered (an :class:`~stoker.ops._parallel_common.InputCursor` snapshot plus a skip
count), the function's element index there, and, for ``deterministic=False``, the
offsets of the few later elements already delivered, which a restore skips. Elements in
flight are recomputed after a restore. A sequential ``map`` state restores here too.
"""

from __future__ import annotations

import collections
import copy
import itertools
import logging
import math
import time
from typing import Any

from stoker.autotune import Knob, tuner_for
from stoker.autotune._ram import element_bytes
from stoker.autotune._tuner import MOVE_CPU, TARGET_BUSY
from stoker.errors import WorkerError
from stoker.exec import Completion, Executor, ExecutorRequest, Failure, make_executor
from stoker.exec._base import ElementFn
from stoker.iterator import IterContext, State
from stoker.ops._common import annotate, stop_iteration_error
from stoker.ops._parallel_common import POLL_S, InputCursor, ParallelIterator
from stoker.ops.map import MapDataset
from stoker.options import AUTOTUNE

__all__ = ["ParallelMapIterator"]

_LOG = logging.getLogger("stoker.autotune")

#: Waiting for chunks in flight before keeping workers on set_state(). [Unit: second]
_DRAIN_TIMEOUT_S = 2.0
_TIDY_EVERY = 64
#: Chunks at least this long whose CPU time is under MOVE_CPU of it *wait*: on worker
#: processes, two in a row move the work to threads (AUTOTUNE). [Unit: second]
_WAITING_CHUNK_S = 2e-3


def _detached(ds: MapDataset) -> MapDataset:
    """``ds`` without its input: what executors need to make element functions (worker
    processes get it pickled)."""
    d = copy.copy(ds)
    d.__dict__.update(_input=None, _inputs=())
    d.__dict__.pop("_root_passes", None)
    return d


class ParallelMapIterator(ParallelIterator):
    """See the module docstring."""

    OP = "parallel_map"
    SEQUENTIAL_OP = "map"
    _run: Executor | None

    def __init__(self, ctx: IterContext, ds: MapDataset):
        super().__init__(ctx, ds)
        self._ds = ds
        opts = ctx.options
        # Resolved options (IterContext): the budgets are set.
        assert opts.cpu_budget and opts.io_concurrency and opts.ram_budget
        self._pass_id = ctx.take_pass(ds)
        det = ds._deterministic if ds._deterministic is not None else opts.deterministic
        self._deterministic = bool(det)
        npc = ds._num_parallel_calls
        self._autotune = npc is None or npc == AUTOTUNE
        cpu = opts.cpu_budget
        requested = cpu if self._autotune else int(npc)  # type: ignore[arg-type]
        self._request = ExecutorRequest(
            spec=_detached(ds),
            stage=self.stage,
            concurrency=requested,
            cpu_budget=cpu,
            io_concurrency=opts.io_concurrency,
            ram_budget=opts.ram_budget,
            seed=opts.seed,
            autotune=self._autotune,
            owner=ds,  # workers kept after a pass serve this dataset's next pass
            stats=self.stats,
            splittable=True,  # cut chunks' rest goes back on _requeue
        )
        self._cursor = InputCursor(self._input)
        self._index = 0  # element index (random_map's) of the next input element
        self._pending: dict[int, int] = {}  # seq -> element index; pulled, not delivered
        self._results: dict[int, Any] = {}  # seq -> output | Failure (function's or input's)
        self._ready: collections.deque[int] = collections.deque()  # deterministic=False
        self._chunks: dict[int, list[int]] = {}  # tag -> seqs
        # Cut chunks' elements not started (Completion.rest), with their seqs: submitted
        # again before anything new is pulled.
        self._requeue: collections.deque[tuple[list[int], list[tuple[int, Any]]]] = (
            collections.deque()
        )
        self._tags = itertools.count()
        self._ahead: set[int] = set()  # seqs above the frontier already delivered
        self._end = False
        self._barrier = False  # an input error is pending: pull no further until delivered
        self._broken: str | None = None  # why the executor cannot go on (a dead worker)
        self._chunk = 1
        self._elem_s = 0.0  # moving average of compute time per element
        self._elem_bytes = 0.0  # moving average of array bytes a process moves per element
        self._fast: ElementFn | None = None  # inline: call directly from __next__
        self._marked = False  # the cursor took snapshots since the inline path last ran
        self._delivered = 0
        self._last: Executor | None = None  # the last executor, for executor_info
        # AUTOTUNE (stoker.autotune): the tuner sets knob.value, this thread applies it.
        self._tuner = tuner_for(ctx)
        self._knob: Knob | None = None
        if self._tuner is not None:
            self._knob = self._tuner.add(
                Knob(
                    self,
                    "parallelism",
                    1 if self._autotune else requested,
                    tunable=self._autotune,
                    hi=opts.io_concurrency,
                    key=ds,
                )
            )
        self._applied: tuple[int, str] | None = None  # (value, executor kind) applied
        self._waiting_chunks = 0  # consecutive chunks that mostly waited
        self._latency = 0.0  # wall time per element of the last chunk [Unit: second]
        # Wall and CPU time per element of the last whole chunk. [Unit: second]
        self._wall_el = self._cpu_el = 0.0
        self._cuts = 0  # chunks that came back cut (Completion.rest)
        # Elements pending on the executor the work moved away from: the window grows by
        # them until they are delivered, so the new executor is fed while they drain.
        self._draining = 0
        self._burst = 0  # elements the consumer takes per call (set_burst)

    def set_burst(self, n: int) -> None:
        """The consumer takes ``n`` elements per call, then computes on its own thread (a
        sequential ``batch(n)``): keep about that many submitted, so that the workers do
        not idle while it does."""
        self._burst = max(0, int(n))

    @property
    def executor_info(self) -> dict[str, Any]:
        """The executor in use and why (``executor="auto"`` adds its measurements)."""
        ex = self._run if self._run is not None else self._last
        info = dict(ex.info) if ex is not None else {}
        if self._cuts:  # chunks worker processes cut (the work slowed down under them)
            info["cut_chunks"] = self._cuts
        return info

    # -- the run: an executor --------------------------------------------------------------

    def _new_run(self) -> Executor:
        name = self._ds._executor
        if name == "auto" and self._ctx.options.executor:  # Options.executor: the default
            name = self._ctx.options.executor
        ex = make_executor(name, self._request)
        if name != "auto":
            ex.info = {"executor": ex.kind, "reason": f"executor={name!r}"}
            for key, value in ex.info.items():
                self.stats.set_info(key, value)
        self._last = ex
        if ex.kind == "inline":
            self._fast = self._inline_fn()
        if self._tuner is not None:
            self._applied = None
            self._tune(ex)
            self._tuner.wake()
        return ex

    def _to_threads(self, ex: Executor, knob: Knob) -> None:
        """Calls on processes that mostly wait belong on threads, many in flight."""
        to_threads = getattr(ex, "to_threads", None)
        if to_threads is None:  # executor="process": the user's choice
            return
        on_processes = ex.kind == "process"
        reason = f"AUTOTUNE: calls wait (CPU under {MOVE_CPU:.0%} of their time): " + (
            "moved to threads" if on_processes else "staying on threads, not processes"
        )
        # Calls in flight to keep the throughput the consumer has been getting, now that
        # each call takes `latency` (Little's law); the tuner grows it from there.
        value = knob.value
        rate = max(knob.rate, knob.prev_rate)  # the window the change fell in is low
        if rate > 0 and self._latency > 0:
            keep = math.ceil(rate * self._latency / TARGET_BUSY)
            value = max(value, min(keep, self._request.io_concurrency))
        if to_threads(value, reason):
            _LOG.debug("%s: %s, %d calls in flight", knob.label, reason, value)
            knob.value = value
            self._waiting_chunks = 0
            if on_processes:
                self._draining = len(self._pending)
            knob.tunable, knob.note = True, ""
            knob.reset(reason)
            self._applied = None

    def _tune(self, ex: Executor) -> None:
        """Apply the knob's value to the executor (this thread owns the executor)."""
        knob = self._knob
        assert knob is not None
        kind = ex.kind
        if kind == "process":
            if knob.tunable:
                # Worker processes are started once, at the CPU budget: a start-up decision.
                knob.value = ex.parallelism
                knob.tunable = False
                knob.state = knob.note = (
                    f"processes: {ex.parallelism} workers, chosen at start-up (cpu_budget)"
                )
        elif isinstance(getattr(type(ex), "concurrency", None), property):
            ex.concurrency = knob.value  # type: ignore[attr-defined]
        self._applied = (knob.value, kind)

    def _quiesce(self, run: Executor) -> None:
        run.discard(self._results.values())
        run.finish(_DRAIN_TIMEOUT_S)  # keeps the workers for the restored pass

    def _close(self) -> None:
        self._fast = None
        super()._close()

    # -- the pipeline ----------------------------------------------------------------------

    def __next__(self) -> Any:
        fast = self._fast
        if fast is not None and not self._pending and not self._ahead:
            return self._next_inline(fast)
        return super().__next__()

    def _next(self) -> Any:
        if self._broken is not None:
            raise WorkerError(self._broken)
        if self._end and not self._pending:
            self._release_run()
            raise StopIteration
        try:
            while True:
                if self._fast is None or self._requeue or (self._ahead and not self._pending):
                    self._fill()  # inline: finish what is pending, pull nothing ahead
                seq = self._take()
                if seq is not None:
                    return self._deliver(seq)
                if not self._pending:
                    if self._end:
                        self._release_run()
                        raise StopIteration
                    if self._fast is not None and not self._ahead:
                        return self._next_inline(self._fast)
                    continue
                self._wait()
        except WorkerError as e:
            # Its message, not the exception: the iterator must not hold an exception whose
            # traceback holds the iterator (a cycle only the garbage collector breaks).
            self._broken = str(e)
            run = self._take_run()
            if run is not None:
                run.close()
            raise

    def _inline_fn(self) -> ElementFn:
        if self._ds._rng:
            return self._ds.element_fn(self._pass_id)
        fn = self._ds._fn
        return lambda _i, x: fn(*x) if type(x) is tuple else fn(x)

    def _next_inline(self, fn: ElementFn) -> Any:
        # Nothing pending: the input's own position is the checkpoint, so the cursor's
        # snapshots are not needed (position() asks the input when it has none).
        cursor = self._cursor
        if self._marked:
            cursor.forget_all()
            self._marked = False
        try:
            x = next(self._input)
        except StopIteration:
            self._end = True
            self._release_run()
            raise
        except Exception:
            cursor.seq += 1
            raise
        cursor.seq += 1
        i = self._index
        self._index = i + 1
        try:
            out = fn(i, x)
        except StopIteration:
            raise stop_iteration_error(self.stage, self._ds._fn) from None
        except Exception as e:
            annotate(e, self.stage, self._ds._fn, i)
            raise
        except KeyboardInterrupt:
            self.close()
            raise
        except BaseException as e:  # SystemExit: as on threads, an error of the stage
            Failure(e).throw(self.stage, i)
        if self.stats.enabled:
            self.stats.add(elements=1)
        return out

    def _fill(self) -> None:
        ex = self._run
        assert ex is not None
        knob = self._knob
        if knob is not None and self._applied != (knob.value, ex.kind):
            self._tune(ex)
        chunk = self._chunk
        requeue = self._requeue
        while requeue and ex.accepting():  # pulled already: pending, held in the ledger
            seqs, items = requeue.popleft()
            if len(items) > chunk:
                requeue.appendleft((seqs[chunk:], items[chunk:]))
                seqs, items = seqs[:chunk], items[:chunk]
            tag = next(self._tags)
            self._chunks[tag] = seqs
            ex.submit(tag, self._pass_id, items)
        window = self._window(ex.slots, chunk)
        if self._burst and hasattr(ex, "burst"):  # threads (also under "auto")
            ex.burst = -(-window // chunk)
        window += self._draining
        pending = self._pending
        ram = self._ram
        chunk = ram.cap(chunk)  # Options.ram_budget: no chunk bigger than the room
        while (
            not requeue
            and not self._end
            and not self._barrier
            and len(pending) + chunk <= window
            and ex.accepting()
            and ram.admits(chunk)  # Options.ram_budget: no room, no pulling ahead
        ):
            items, seqs = self._pull(chunk)
            if items:
                tag = next(self._tags)
                self._chunks[tag] = seqs
                ex.submit(tag, self._pass_id, items)

    def _window(self, slots: int, chunk: int) -> int:
        """Elements to keep pulled and not yet delivered (the module docstring)."""
        window = 2 * slots * chunk
        if self._burst:  # set_burst(): the next burst computed while the consumer works
            window = max(window, self._burst + slots * chunk)
        return window

    def _pull(self, n: int) -> tuple[list[tuple[int, Any]], list[int]]:
        """Up to ``n`` input elements as ``(index, element)`` with their seqs."""
        items: list[tuple[int, Any]] = []
        seqs: list[int] = []
        cursor, ahead, pending = self._cursor, self._ahead, self._pending
        self._marked = True
        while len(items) < n:
            seq = cursor.seq
            try:
                x = cursor.pull()
            except StopIteration:
                self._end = True
                break
            except Exception as e:
                if seq in ahead:  # delivered before the checkpoint we resumed from
                    ahead.discard(seq)
                    continue
                pending[seq] = self._index
                self._results[seq] = Failure(e, from_input=True)
                if not self._deterministic:
                    self._ready.append(seq)
                self._barrier = True
                break
            if seq in ahead:
                ahead.discard(seq)
                self._index += 1
                continue
            pending[seq] = self._index
            self._ram.hold(seq, element_bytes(x))
            items.append((self._index, x))
            seqs.append(seq)
            self._index += 1
        return items, seqs

    def _take(self) -> int | None:
        if self._deterministic:
            for head in self._pending:
                return head if head in self._results else None
            return None
        return self._ready.popleft() if self._ready else None

    def _deliver(self, seq: int) -> Any:
        index = self._pending.pop(seq)
        r = self._results.pop(seq)
        self._ram.drop(seq)
        if not self._deterministic:
            self._ahead.add(seq)
        self._delivered += 1
        if self._delivered % _TIDY_EVERY == 0:
            self._tidy()
        if self._draining:
            self._draining -= 1
        self.stats.add(elements=1)
        if type(r) is Failure:
            if r.from_input:
                self._barrier = False
            elif isinstance(r.exc, StopIteration):
                r.exc = None
                raise stop_iteration_error(self.stage, self._ds._fn) from None
            else:
                annotate(r.exc, self.stage, self._ds._fn, index)  # type: ignore[arg-type]
            r.throw(self.stage, index)
        run = self._run
        return run.resolve(r) if run is not None else r

    def _frontier(self) -> int:
        for seq in self._pending:
            return seq
        return self._cursor.seq

    def _tidy(self) -> None:
        frontier = self._frontier()
        self._cursor.forget_before(frontier)
        if self._ahead and not self._deterministic:
            self._ahead = {s for s in self._ahead if s >= frontier}

    def _wait(self) -> None:
        ex = self._run
        assert ex is not None
        if not ex.in_flight:
            raise RuntimeError(f"{self.stage}: internal error: waiting with nothing in flight")
        knob = self._knob
        if self.stats.enabled or knob is not None:
            start = time.perf_counter()
            got = ex.poll(POLL_S)
            waited = time.perf_counter() - start
            self.stats.add_wait(waited)
            if knob is not None:
                knob.meter.wait_s += waited
        else:
            got = ex.poll(POLL_S)
        self._accept(ex, got)

    def _accept(self, ex: Executor, completions: list[Completion]) -> None:
        results = self._results
        meter = self._knob.meter if self._knob is not None else None
        for c in completions:
            seqs = self._chunks.pop(c.tag, None)
            if seqs is None:
                continue
            n = len(c.results)
            busy_s, cpu_s = c.busy_s, c.cpu_s  # what the waiting test judges
            if c.rest:  # cut by the worker: the rest is computed again, from here
                self._cuts += 1
                self._requeue.append((seqs[n:], c.rest))
                seqs = seqs[:n]
                if not n:
                    continue
                # Its last elements took far longer than those before them: judge the time
                # beyond what the chunk's elements used to take. Time the worker waited
                # for a CPU (a busy machine preempting it) counts as CPU it wanted: a
                # preempted chunk is cut too, and its calls did not start to wait.
                busy_s = max(0.0, busy_s - n * self._wall_el)
                cpu_s = max(0.0, cpu_s + c.delay_s - n * self._cpu_el)
            else:
                self._wall_el, self._cpu_el = c.busy_s / n, c.cpu_s / n
            self._latency = c.busy_s / n
            if meter is not None:
                meter.add_call(n, c.busy_s, c.cpu_s)
                # CPU a call got over what it would have got on a free machine.
                free = 1.0 - self._tuner.contention if self._tuner is not None else 1.0
                if busy_s > _WAITING_CHUNK_S and cpu_s < MOVE_CPU * busy_s * free:
                    # One long chunk is a measurement; short ones need a second.
                    self._waiting_chunks += 2 if busy_s > 5 * _WAITING_CHUNK_S else 1
                else:
                    self._waiting_chunks = 0
            # What an element costs is its CPU time: wall time beyond that is waiting, or
            # other processes' load preempting the worker, and sizing chunks by it would
            # shrink them (and multiply the consumer's per-chunk cost) exactly when the
            # machine is busy. Waiting still counts a quarter, so chunks of calls that
            # mostly wait stay short.
            per = max(c.cpu_s, 0.25 * c.busy_s) / n
            self._elem_s = per if self._elem_s == 0.0 else 0.8 * self._elem_s + 0.2 * per
            self._elem_bytes = 0.8 * self._elem_bytes + 0.2 * c.nbytes / n
            self.stats.add(busy_s=c.busy_s)
            # Processes hand results over in shared memory: Completion.nbytes counts them.
            moved = c.nbytes // n
            ram = self._ram
            if self._deterministic:
                for seq, r in zip(seqs, c.results, strict=True):
                    results[seq] = r
                    ram.update(seq, element_bytes(r) + moved)
            else:
                for seq, r in zip(seqs, c.results, strict=True):
                    results[seq] = r
                    ram.update(seq, element_bytes(r) + moved)
                    self._ready.append(seq)
        if completions:
            knob = self._knob
            if (
                knob is not None
                and self._waiting_chunks >= 2
                and (ex.kind == "process" or getattr(ex, "starting", False))
            ):
                self._to_threads(ex, knob)
            self._chunk = ex.chunk_size(self._elem_s, self._elem_bytes)
            if self._fast is None and ex.kind == "inline":
                self._fast = self._inline_fn()

    # -- state -----------------------------------------------------------------------------

    def _get_state(self) -> State:
        frontier = self._frontier()
        index = self._pending[frontier] if self._pending else self._index
        input_state, skip = self._cursor.position(frontier)
        return {
            "input": input_state,
            "skip": skip,
            "index": index,
            "epoch": list(self._pass_id),
            "ahead": sorted(s - frontier for s in self._ahead if s > frontier),
        }

    def _restore(self, state: State) -> None:
        skip = int(state.get("skip", 0))
        ahead = {int(a) for a in state.get("ahead", [])}
        index = int(state["index"])
        pass_id = [int(e) for e in state["epoch"]]
        self._fast = None
        self._cursor.restore(state["input"], skip)
        self._index = index
        self._pass_id = pass_id
        self._ctx.restore_pass(self._ds, pass_id)
        self._ahead = ahead
        self._pending.clear()
        self._results.clear()
        self._ready.clear()
        self._chunks.clear()
        self._requeue.clear()
        self._end = self._barrier = False
        self._broken = None
        self._draining = 0

    # -- visibility ------------------------------------------------------------------------

    def stage_info(self) -> dict[str, Any]:
        info = self._stage_info()
        if self._knob is not None:
            info["autotune"] = self._knob.info()
        return info

    def _stage_info(self) -> dict[str, Any]:
        ex = self._run
        pending, buffered = len(self._pending), len(self._results)
        if ex is None:
            knob = self._knob
            return {
                "parallelism": knob.value if knob is not None else self._request.concurrency,
                "executor": self._last.kind if self._last is not None else self._ds._executor,
                "buffered": buffered,
                "in_flight": 0,
                "capacity": 0,
            }
        return {
            "parallelism": ex.parallelism,
            "executor": ex.kind,
            "buffered": buffered,
            "in_flight": max(0, pending - buffered),
            "capacity": self._window(ex.slots, self._chunk),
        }
