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
then grow until each costs ~0.2 ms on a thread or ~5 ms in a process, so hand-off
overhead stays small.

``executor="auto"`` measures the function on its first elements (:mod:`stoker.exec._gil`)
and moves it inline, to threads, or to processes; ``it.executor_info`` and the stats
say which and why. While worker processes start, threads keep computing.

Checkpoints: the state is the input's position as of the first element not yet
delivered (an :class:`~stoker.ops._parallel_common.InputCursor` snapshot plus a skip
count), the function's element index there, and, for ``deterministic=False``, the
offsets of the few later elements already delivered, which a restore skips. Elements in
flight are recomputed after a restore. A sequential ``map`` state restores here too.
"""

from __future__ import annotations

import collections
import copy
import functools
import hashlib
import itertools
import math
import time
import weakref
from typing import Any

import cloudpickle

from stoker.errors import WorkerError
from stoker.exec import _gil
from stoker.exec._base import Completion, ElementFn, Executor, Failure, InlineExecutor
from stoker.exec.processes import ProcessExecutor, WorkerGroup, park, take_parked
from stoker.exec.shared_memory import Packed
from stoker.exec.threads import ThreadExecutor
from stoker.iterator import DatasetIterator, IteratorState, IterContext, State
from stoker.ops._common import annotate, stop_iteration_error
from stoker.ops._parallel_common import InputCursor
from stoker.ops.map import MapDataset
from stoker.options import AUTOTUNE
from stoker.stats import stats_for

__all__ = ["ParallelMapIterator"]

#: Longest single wait before checking again (closing, dead workers, Ctrl-C).
_POLL_S = 0.1
#: Chunk sizes aim at this much work per chunk. [Unit: second]
_THREAD_CHUNK_S = 200e-6
_PROCESS_CHUNK_S = 5e-3
_MAX_CHUNK = 64
#: And at most this many bytes of arrays per chunk moved by processes. [Unit: byte]
_CHUNK_BYTES = 4 << 20
#: How often starting worker processes are checked for readiness. [Unit: second]
_READY_CHECK_S = 0.01
#: Waiting for chunks in flight before parking workers on set_state(). [Unit: second]
_DRAIN_TIMEOUT_S = 2.0
_TIDY_EVERY = 64

# executor="auto" decisions, per dataset: later passes (epochs) reuse them instead of
# measuring again, and so take back the worker processes the last pass parked.
_DECISIONS: weakref.WeakKeyDictionary[MapDataset, _gil.Decision] = weakref.WeakKeyDictionary()


class _Run:
    """The executors of one running pass. Holds no reference to the iterator, so the
    iterator can be collected and its finalizer can close this."""

    def __init__(self) -> None:
        self.current: Executor | None = None
        self.starting: ProcessExecutor | None = None
        self.draining: list[Executor] = []

    def switch(self, new: Executor) -> None:
        old, self.current = self.current, new
        if old is not None:
            if old.in_flight:
                self.draining.append(old)
            else:
                old.close()

    def close(self, join: bool = True) -> None:
        """Stop every executor; ``join=False`` (finalizers) does not wait for threads."""
        executors = [self.current, self.starting, *self.draining]
        self.current = self.starting = None
        self.draining = []
        for ex in executors:
            if isinstance(ex, ThreadExecutor):
                ex.close(join=join)
            elif ex is not None:
                ex.close()

    def release(self) -> None:
        """End of a pass: park reusable workers, close the rest."""
        keep = [self.current, self.starting]
        self.current = self.starting = None
        self.close()
        for ex in keep:
            if ex is not None:
                ex.release()  # processes (still starting or not) are parked

    def drain_and_release(self) -> None:
        """Wait briefly for chunks in flight (results dropped), then :meth:`release`."""
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        try:
            for ex in [self.current, *self.draining]:
                while ex is not None and ex.in_flight and time.monotonic() < deadline:
                    for c in ex.poll(_POLL_S):
                        release_packed(c.results)
        except WorkerError:
            self.close()
            return
        self.release()


def release_packed(values: Any) -> None:
    """Give back the shared memory of results that will never be delivered."""
    for r in values:
        if type(r) is Packed:
            r.release()


def _detached(ds: MapDataset) -> MapDataset:
    """``ds`` without its input: what worker processes need to make element functions."""
    d = copy.copy(ds)
    d.__dict__.update(_input=None, _inputs=())
    d.__dict__.pop("_root_passes", None)
    return d


class ParallelMapIterator(DatasetIterator):
    """See the module docstring."""

    OP = "parallel_map"

    def __init__(self, ctx: IterContext, ds: MapDataset):
        self._input = ds._input._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))
        self._ds = ds
        opts = ctx.options
        self._opts = opts
        self._epoch = ctx.take_pass(ds)
        det = ds._deterministic if ds._deterministic is not None else opts.deterministic
        self._deterministic = bool(det)
        npc = ds._num_parallel_calls
        self._autotune = npc is None or npc == AUTOTUNE
        self._cpu = int(opts.cpu_budget or 1)
        self._requested = self._cpu if self._autotune else int(npc)  # type: ignore[arg-type]
        self._max_threads = self._cpu + int(opts.io_concurrency or 64)
        self._cursor = InputCursor(self._input)
        self._index = 0  # element index (random_map's) of the next input element
        self._pending: dict[int, int] = {}  # seq -> element index; pulled, not delivered
        self._results: dict[int, Any] = {}  # seq -> output | Failure (function's or input's)
        self._ready: collections.deque[int] = collections.deque()  # deterministic=False
        self._chunks: dict[int, list[int]] = {}  # tag -> seqs
        self._tags = itertools.count()
        self._ahead: set[int] = set()  # seqs above the frontier already delivered
        self._end = False
        self._barrier = False  # an input error is pending: pull no further until delivered
        self._broken: str | None = None  # why the executor cannot go on (a dead worker)
        self._run = _Run()
        self._finalizer = weakref.finalize(self, self._run.close, False)
        self._probe: _gil.GilProbe | None = None
        self._probe_tags: dict[int, int] = {}  # tag -> pair id (-1: alone)
        self._pairs = itertools.count()
        self._decision: _gil.Decision | None = None
        self._chunk = 1
        self._elem_s = 0.0  # moving average of compute time per element
        self._elem_bytes = 0.0  # moving average of array bytes a process moves per element
        self._next_ready_check = 0.0
        self._fast: ElementFn | None = None  # inline: call directly from __next__
        self._marked = False  # the cursor took snapshots since the inline path last ran
        self._delivered = 0
        self._spec: bytes | None = None
        self.stats = stats_for(opts, self.stage)
        #: The executor in use and why (``executor="auto"`` fills in its measurements).
        self.executor_info: dict[str, Any] = {}

    # -- starting and choosing the executor ------------------------------------------------

    def _start(self) -> None:
        self.lifecycle = IteratorState.RUNNING
        kind = self._ds._executor
        if self._decision is None and kind == "auto":
            self._decision = _DECISIONS.get(self._ds)
        if self._decision is not None:  # a later pass, or restarted after set_state()
            self._apply(self._decision)
        elif kind == "thread":
            self._set_info("thread", 'executor="thread"')
            self._run.switch(self._threads(self._requested))
        elif kind == "process":
            self._set_info("process", 'executor="process"')
            ex = self._processes(self._requested, required=True)
            assert ex is not None
            self._run.switch(ex)
        else:
            # Cores this stage may use: no pairs measured when it may use only one.
            self._probe = _gil.GilProbe(min(self._cpu, self._requested))
            self._set_info("thread", "measuring the function (auto)")
            self._run.switch(self._threads(2))

    def _set_info(self, executor: str, reason: str, **extra: Any) -> None:
        self.executor_info = {"executor": executor, "reason": reason, **extra}
        for key, value in self.executor_info.items():
            self.stats.set_info(key, value)

    def _threads(self, concurrency: int) -> ThreadExecutor:
        return ThreadExecutor(self._ds, concurrency, self._max_threads)

    def _spec_bytes(self) -> bytes | None:
        if self._spec is None:
            try:
                self._spec = cloudpickle.dumps(_detached(self._ds))
            except Exception:
                return None
        return self._spec

    def _processes(self, concurrency: int, required: bool) -> ProcessExecutor | None:
        spec = self._spec_bytes()
        if spec is None:
            if not required:
                return None
            try:
                spec = cloudpickle.dumps(_detached(self._ds))
            except Exception as e:
                raise TypeError(
                    f"{self.stage}: executor='process' needs a function cloudpickle can "
                    f"pickle; {type(e).__name__}: {e}. Use executor='thread'."
                ) from e
        n = max(1, min(concurrency, self._cpu))
        # Parked workers belong to this dataset: they serve its next pass (the next epoch)
        # and stop when the dataset is collected.
        owner = self._ds
        key = (n, self._opts.seed, hashlib.blake2b(spec, digest_size=16).digest())
        group = take_parked(owner, key)
        if group is None:
            ram = int(self._opts.ram_budget or 1 << 32)
            group = WorkerGroup(spec, n, self._opts.seed, max(64 << 20, ram // (8 * n)))
        return ProcessExecutor(group, self.stage, functools.partial(park, owner, key))

    def _waiting_concurrency(self, decision: _gil.Decision) -> int:
        """Calls to keep in flight for waiting work: enough to keep the CPU budget busy
        (Little's law), capped by the I/O concurrency, never below the CPU budget."""
        share = max(decision.cpu_share, 1e-3)
        want = math.ceil(self._cpu / share)
        return max(self._cpu, min(int(self._opts.io_concurrency or 64), want))

    def _apply(self, decision: _gil.Decision) -> None:
        self._decision = _DECISIONS[self._ds] = decision
        concurrency = self._requested
        if decision.waiting and self._autotune:
            concurrency = self._waiting_concurrency(decision)
        extra = {k: v for k, v in decision.as_dict().items() if k not in ("executor", "reason")}
        executor = decision.executor
        if executor == "process":
            starting = self._processes(concurrency, required=False)
            if starting is None:
                executor = "thread"
                decision = _gil.Decision(**{**decision.as_dict(), "executor": "thread"})
            else:
                self._run.starting = starting
        self._set_info(executor, decision.reason, **extra)
        current = self._run.current
        if executor == "inline":
            self._run.switch(InlineExecutor(self._ds))
            self._fast = self._inline_fn()
        elif isinstance(current, ThreadExecutor):
            current.concurrency = concurrency
        else:
            self._run.switch(self._threads(concurrency))

    def _maybe_switch(self) -> None:
        now = time.monotonic()
        if now < self._next_ready_check:
            return
        self._next_ready_check = now + _READY_CHECK_S
        starting = self._run.starting
        if starting is not None and starting.ready():
            self._run.starting = None
            self._run.switch(starting)

    # -- the pipeline ----------------------------------------------------------------------

    def __next__(self) -> Any:
        fast = self._fast
        if fast is not None and not self._pending and not self._ahead:
            return self._next_inline(fast)
        if self.lifecycle is not IteratorState.RUNNING:
            if self.lifecycle is IteratorState.CLOSED:
                raise StopIteration
            self._start()
        if self._broken is not None:
            raise WorkerError(self._broken)
        if self._end and not self._pending:
            self._finish()
            raise StopIteration
        try:
            while True:
                if self._fast is None or (self._ahead and not self._pending):
                    self._fill()  # inline: finish what is pending, pull nothing ahead
                seq = self._take()
                if seq is not None:
                    return self._deliver(seq)
                if not self._pending:
                    if self._end:
                        self._finish()
                        raise StopIteration
                    if self._fast is not None and not self._ahead:
                        return self._next_inline(self._fast)
                    continue
                self._wait()
        except WorkerError as e:
            # Its message, not the exception: the iterator must not hold an exception whose
            # traceback holds the iterator (a cycle only the garbage collector breaks).
            self._broken = str(e)
            self._run.close()
            raise
        except KeyboardInterrupt:
            self.close()
            raise

    def _inline_fn(self) -> ElementFn:
        if self._ds._rng:
            return self._ds.element_fn(self._epoch)
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
            self._finish()
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
            raise
        except BaseException as e:  # SystemExit: as on threads, an error of the stage
            Failure(e).throw(self.stage, i)
        if self.stats.enabled:
            self.stats.add(elements=1)
        return out

    def _finish(self) -> None:
        run = self._run
        if run.current is not None or run.starting is not None or run.draining:
            run.release()

    def _fill(self) -> None:
        run = self._run
        if run.starting is not None:
            self._maybe_switch()
        probe = self._probe
        if probe is not None and probe.phase == "done":
            self._probe = None
            probe.picklable = self._spec_bytes() is not None
            self._apply(probe.decision())
            probe = None
        ex = run.current
        assert ex is not None
        if probe is not None:
            self._fill_probe(ex, probe)
            return
        chunk = self._chunk
        capacity = ex.capacity
        window = 2 * ex.slots * chunk
        pending = self._pending
        while (
            not self._end
            and not self._barrier
            and ex.in_flight < capacity
            and len(pending) + chunk <= window
        ):
            items, seqs = self._pull(chunk)
            if items:
                tag = next(self._tags)
                self._chunks[tag] = seqs
                ex.submit(tag, self._epoch, items)

    def _fill_probe(self, ex: Executor, probe: _gil.GilProbe) -> None:
        if ex.in_flight or self._end or self._barrier or len(self._pending) >= 4:
            return
        pair = -1 if probe.phase == "alone" else next(self._pairs)
        for _ in range(1 if pair < 0 else 2):
            items, seqs = self._pull(1)
            if not items:
                return
            probe.nbytes += _gil.nbytes_of(items[0][1])
            tag = next(self._tags)
            self._chunks[tag] = seqs
            self._probe_tags[tag] = pair
            ex.submit(tag, self._epoch, items)

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
        if not self._deterministic:
            self._ahead.add(seq)
        self._delivered += 1
        if self._delivered % _TIDY_EVERY == 0:
            self._tidy()
        self.stats.add(elements=1)
        if type(r) is Packed:
            return r.unpack()  # arrays copied out of shared memory just in time
        if type(r) is Failure:
            if r.from_input:
                self._barrier = False
            elif isinstance(r.exc, StopIteration):
                r.exc = None
                raise stop_iteration_error(self.stage, self._ds._fn) from None
            else:
                annotate(r.exc, self.stage, self._ds._fn, index)  # type: ignore[arg-type]
            r.throw(self.stage, index)
        return r

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
        run = self._run
        got: list[Completion] = []
        for ex in list(run.draining):
            got.extend(ex.poll(0.0))
            if not ex.in_flight:
                run.draining.remove(ex)
                ex.close()
        if not got:
            current = run.current
            target = current if current is not None and current.in_flight else None
            if target is None:
                target = next((d for d in run.draining if d.in_flight), None)
            if target is None:
                raise RuntimeError(f"{self.stage}: internal error: waiting with nothing in flight")
            quick = bool(run.draining) or run.starting is not None
            if self.stats.enabled:
                start = time.perf_counter()
                got = target.poll(0.005 if quick else _POLL_S)
                self.stats.add_wait(time.perf_counter() - start)
            else:
                got = target.poll(0.005 if quick else _POLL_S)
        self._accept(got)

    def _accept(self, completions: list[Completion]) -> None:
        probe = self._probe
        for c in completions:
            seqs = self._chunks.pop(c.tag, None)
            if seqs is None:
                continue
            n = len(seqs)
            per = c.busy_s / n
            self._elem_s = per if self._elem_s == 0.0 else 0.8 * self._elem_s + 0.2 * per
            self._elem_bytes = 0.8 * self._elem_bytes + 0.2 * c.nbytes / n
            self.stats.add(busy_s=c.busy_s)
            if probe is not None:
                pair = self._probe_tags.pop(c.tag, None)
                if pair == -1:
                    probe.add_alone(c.busy_s, c.cpu_s)
                elif pair is not None:
                    probe.add_pair_member(pair, c.start, c.busy_s)
                probe.nbytes += sum(_gil.nbytes_of(r) for r in c.results)
            results = self._results
            if self._deterministic:
                for seq, r in zip(seqs, c.results, strict=True):
                    results[seq] = r
            else:
                for seq, r in zip(seqs, c.results, strict=True):
                    results[seq] = r
                    self._ready.append(seq)
        if completions and probe is None:
            self._chunk = self._chunk_size()

    def _chunk_size(self) -> int:
        ex = self._run.current
        if ex is None or ex.kind == "inline" or self._elem_s <= 0.0:
            return 1
        target = _PROCESS_CHUNK_S if ex.kind == "process" else _THREAD_CHUNK_S
        chunk = min(_MAX_CHUNK, round(target / self._elem_s))
        if self._elem_bytes > 0:  # shared memory holds a window of chunks: keep it small
            chunk = min(chunk, int(_CHUNK_BYTES // self._elem_bytes))
        return max(1, chunk)

    # -- state -----------------------------------------------------------------------------

    def set_state(self, state: State) -> None:
        """Restore; also accepts a sequential ``map`` state (same pipeline, no parallelism)."""
        if isinstance(state, dict) and state.get("op") == "map":
            state = {**state, "op": self.OP}
        super().set_state(state)

    def _get_state(self) -> State:
        frontier = self._frontier()
        index = self._pending[frontier] if self._pending else self._index
        input_state, skip = self._cursor.position(frontier)
        return {
            "input": input_state,
            "skip": skip,
            "index": index,
            "epoch": list(self._epoch),
            "ahead": sorted(s - frontier for s in self._ahead if s > frontier),
        }

    def _set_state(self, state: State) -> None:
        skip = int(state.get("skip", 0))
        ahead = {int(a) for a in state.get("ahead", [])}
        index = int(state["index"])
        epoch = [int(e) for e in state["epoch"]]
        self._stop_run()
        release_packed(self._results.values())
        self._cursor.restore(state["input"], skip)
        self._index = index
        self._epoch = epoch
        self._ctx.restore_pass(self._ds, epoch)
        self._ahead = ahead
        self._pending.clear()
        self._results.clear()
        self._ready.clear()
        self._chunks.clear()
        self._probe_tags.clear()
        self._end = self._barrier = False
        self._broken = None
        if self._fast is not None:
            self._fast = self._inline_fn()

    def _stop_run(self) -> None:
        if self.lifecycle is not IteratorState.RUNNING:
            return
        run = self._run
        self._finalizer.detach()
        run.drain_and_release()
        self._run = _Run()
        self._finalizer = weakref.finalize(self, self._run.close, False)
        self._probe = None
        self._fast = None
        self.lifecycle = IteratorState.NOT_STARTED

    def _close(self) -> None:
        self._fast = None
        self._finalizer.detach()
        self._run.close()
