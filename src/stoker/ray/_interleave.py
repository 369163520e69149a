"""``interleave(..., executor="ray")``: inner datasets opened and read on Ray actors.

Each input element's dataset (``map_func(element)``, iterated) is opened and read by one
Ray actor (:class:`~stoker.ray._reader.FileReader`), which sends its elements back in
calls of about :data:`~stoker.ray.executor.CALL_S` of reading each. The driver replays the
sequential interleave's order step by step (``cycle_length`` slots in turn,
``block_length`` elements each, an empty slot taking the next input element), exactly as
:mod:`stoker.ops._parallel_interleave` does on threads; only where elements come from
changes. ``deterministic=False`` passes over a slot with nothing received yet for one that
has elements; each slot's own elements stay in order.

Read-ahead: the next ``cycle_length`` input elements are pulled ahead (on the consumer's
thread, the only one touching the input) and their datasets opened on the actors, so a
new file's latency hides behind the current ones. Each open input element has at most one
call in flight, sent when what it has buffered is no more than its last call brought
(double buffering): a slot holds at most two calls' worth.

Faults: an actor that dies is replaced; the input elements it was reading are read again
by the new actor from the count of elements already received (the dataset opened anew,
that many elements pulled and dropped), so nothing is lost or delivered twice. Calls that
had finished before the actor died are collected first; the one that was running is
blamed, and an input element whose reading killed
:data:`~stoker.ray.executor.MAX_ATTEMPTS` actors is raised as
:class:`~stoker.errors.WorkerError`.

Errors: ``map_func`` raising (or returning no Dataset) is raised at the input element's
turn, as the sequential op does; an element of the inner dataset that raised is raised at
its place with the actor's traceback as ``__cause__``, and reading goes on after it.

The cycle itself (futures, turns, blocks, the checkpoint state) is
:class:`~stoker.ops._interleave_cycle.ReadAheadCycle`, shared with the other two
interleaves; this module supplies the slots: input elements read on actors.

Checkpoints: the sequential op's format, each open slot's inner position being its inner
state when it was opened (``None``: from the start) plus ``skip`` elements delivered since;
a state of the sequential or the threads' interleave restores here too.

Actors are kept at the end of a pass for the same dataset's next pass (as the map executor
keeps its own), and stop when the iterator is closed mid-pass or the dataset is collected.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import logging
import sys
import time
import weakref
from typing import Any

import cloudpickle

from stoker.errors import WorkerError
from stoker.exec._base import Failure
from stoker.iterator import IterContext, State
from stoker.ops._common import annotate, stop_iteration_error
from stoker.ops._interleave_cycle import ENDED, NOT_READY, ReadAheadCycle
from stoker.ops._parallel_common import POLL_S, ParallelIterator
from stoker.ops.interleave import InterleaveDataset
from stoker.options import AUTOTUNE
from stoker.ray import _cluster
from stoker.ray._reader import remote_reader
from stoker.ray.executor import CALL_S, MAX_ATTEMPTS, _kill, _park, _take_parked, _text

__all__ = ["RayInterleaveIterator"]

_LOG = logging.getLogger(__name__)

#: Most elements one call brings back.
_MAX_ITEMS = 4096
#: Most bytes of elements one call brings back (at least one element). [Unit: byte]
_MAX_CALL_BYTES = 16 << 20
#: No call answered within this long of the pass starting: raised. [Unit: second]
_START_TIMEOUT_S = 120.0

_runs = itertools.count()  # tells an actor kept from an earlier pass that a new one began


class _File:
    """One input element of the cycle (or ahead of it) and what the driver holds of it."""

    __slots__ = (
        "actor",
        "attempts",
        "before",
        "buffer",
        "closed",
        "consumed",
        "element",
        "ended",
        "last_n",
        "open_error",
        "ordinal",
        "received",
        "ref",
        "skip0",
        "state",
    )

    def __init__(self, ordinal: int, element: Any, before: Any):
        self.ordinal = ordinal
        self.element = element
        self.before = before  # the outer input's snapshot before this element was pulled
        self.state: Any = None  # inner state it resumes from (a restored checkpoint)
        self.skip0 = 0  # elements after ``state`` delivered before the restore
        self.received = 0  # elements (and errors) received since ``state`` + ``skip0``
        self.consumed = 0  # of those, delivered to the consumer
        self.buffer: collections.deque[Any] = collections.deque()
        self.ended = False  # the actor saw the dataset end (the buffer holds the rest)
        self.open_error: BaseException | None = None
        self.actor: _Reader | None = None
        self.ref: Any = None  # the call in flight, if any
        self.last_n = 0  # elements the last call brought
        self.attempts = 0  # actors that died reading it
        self.closed = False


class _Reader:
    """One actor and the input elements it reads."""

    __slots__ = ("files", "handle", "index")

    def __init__(self, handle: Any, index: int):
        self.handle = handle
        self.index = index
        self.files: set[_File] = set()


class _Readers:
    """The run of one pass: the actors and the calls in flight. Holds nothing of the
    iterator (its finalizer closes this when the iterator is dropped)."""

    def __init__(
        self,
        stage: str,
        fn_bytes: bytes,
        inner_options: dict[str, Any],
        actors: int | None,
        root_pass: int,
        stats: Any,
        owner: Any,
    ):
        from stoker.ray import config

        cfg = config()
        self._ray = _cluster.import_ray()
        self._where = _cluster.connect(cfg.address)
        self.stage = stage
        self._fn_bytes = fn_bytes
        self._inner_options = inner_options
        self._root_pass = root_pass
        self._stats = stats
        self._options: dict[str, Any] = {
            "num_cpus": cfg.num_cpus,
            "max_restarts": 0,  # replaced here, with their input elements read again
            "max_task_retries": 0,
            "scheduling_strategy": "SPREAD",
            **(cfg.ray_options or {}),
        }
        if actors is None:
            want = cfg.actors
            if want is None:
                want = int(self._ray.cluster_resources().get("CPU", 1))
            elif isinstance(want, tuple):
                want = int(want[1])
            actors = int(want)
        self._n = max(1, actors)
        self._run_id = next(_runs)
        self._owner = owner
        self._key = (
            "interleave",
            hashlib.blake2b(fn_bytes, digest_size=16).digest(),
            repr(sorted(inner_options.items())),
            repr(sorted(self._options.items())),
        )
        self._calls: dict[Any, tuple[int, _File, _Reader]] = {}
        self._seq = 0
        self._next_index = 0
        self._readers: list[_Reader] = []
        self._handles: list[Any] = []
        self._finalizer = weakref.finalize(self, _kill, self._handles)
        self._answered = False
        self._started = time.monotonic()
        # Why the run cannot go on: a message, not the exception, whose traceback would hold
        # the iterator's frames (a cycle only the garbage collector breaks).
        self._broken: str | None = None
        self.restarts = 0
        self.calls = 0
        for reader in _take_parked(owner, self._key) or ():
            if len(self._readers) < self._n:
                self._adopt(reader)
            else:
                _kill([reader.handle])
        while len(self._readers) < self._n:
            self._start_actor()

    @property
    def actors(self) -> int:
        return len(self._readers)

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    @property
    def actor_handles(self) -> list[Any]:
        """The Ray actor handles (tests kill one with ``ray.kill``)."""
        return [r.handle for r in self._readers]

    def _start_actor(self) -> _Reader:
        cls = remote_reader().options(**self._options)
        path = [p for p in sys.path if p]
        handle = cls.remote(self._fn_bytes, self.stage, self._inner_options, path)
        reader = _Reader(handle, self._next_index)
        self._adopt(reader)
        return reader

    def _adopt(self, reader: _Reader) -> None:
        reader.files = set()
        self._readers.append(reader)
        self._handles.append(reader.handle)
        self._next_index = max(self._next_index, reader.index + 1)

    # -- calls -----------------------------------------------------------------------------

    def add(self, f: _File) -> None:
        """Give an input element to the actor reading the fewest, and start reading."""
        reader = min(self._readers, key=lambda r: len(r.files))
        f.actor = reader
        reader.files.add(f)
        self.pump(f)

    def pump(self, f: _File) -> None:
        """Send ``f``'s next call if it has none in flight and little buffered."""
        if f.closed or f.ended or f.ref is not None or len(f.buffer) > f.last_n:
            return
        if self._broken is not None:
            raise WorkerError(self._broken)
        reader = f.actor
        assert reader is not None
        ref = reader.handle.read.remote(
            self._run_id,
            f.ordinal,
            f.element,
            f.state,
            f.skip0 + f.received,
            self._root_pass,
            _MAX_ITEMS,
            CALL_S,
            _MAX_CALL_BYTES,
        )
        f.ref = ref
        self._calls[ref] = (self._seq, f, reader)
        self._seq += 1
        self.calls += 1

    def drop(self, f: _File) -> None:
        """``f`` leaves the cycle (exhausted): forget it."""
        f.closed = True
        f.buffer.clear()
        if f.actor is not None:
            f.actor.files.discard(f)
        if f.ref is not None:
            self._calls.pop(f.ref, None)
            f.ref = None

    def wait(self, timeout: float) -> None:
        """Collect the calls that finish within ``timeout`` (all that are ready)."""
        if self._broken is not None:
            raise WorkerError(self._broken)
        if not self._calls:
            return
        ray = self._ray
        refs = list(self._calls)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and len(refs) > 1:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        calls = self._calls
        # Oldest first: an actor runs its calls in send order.
        ready.sort(key=lambda r: calls[r][0] if r in calls else -1)
        for ref in ready:
            self._collect(ref)
        del ready, refs
        if not self._answered and time.monotonic() - self._started > _START_TIMEOUT_S:
            free = ray.available_resources()
            raise self._fail(
                WorkerError(
                    f"stage {self.stage}: no Ray actor answered within "
                    f"{_START_TIMEOUT_S:.0f} s on {self._where} (each asks for "
                    f"{self._options.get('num_cpus')} CPU; free now: {free})"
                )
            )

    def _collect(self, ref: Any) -> None:
        entry = self._calls.pop(ref, None)
        if entry is None:
            return
        _, f, reader = entry
        exceptions = self._ray.exceptions
        try:
            value = self._ray.get(ref)
        except exceptions.RayActorError as e:
            self._calls[ref] = entry  # found with the actor's other calls
            self._died(reader, e)
            return
        except exceptions.RayTaskError as e:  # the call itself failed, not map_func
            f.ref = None
            f.buffer.append(
                Failure(
                    RuntimeError(
                        f"stage {self.stage}: a Ray actor could not read input "
                        f"element {f.ordinal}: {_text(e)}"
                    )
                )
            )
            f.ended = True
            return
        except exceptions.RayError as e:  # result lost with its node: read it again
            _LOG.warning("stoker.ray: %s: call lost (%s); sending it again", self.stage, e)
            f.ref = None
            self.pump(f)
            return
        finally:
            del ref
        f.ref = None
        self._apply(f, value)

    def _apply(self, f: _File, value: Any) -> None:
        from stoker.exec._worker import RemoteFailure

        self._answered = True
        open_error, items, ended, busy_s, _cpu_s = value
        f.attempts = 0
        if f.closed:
            return
        self._stats.add(busy_s=busy_s)
        if open_error is not None:
            f.open_error = open_error.rebuild("a Ray actor")
            f.ended = True
            return
        for i, r in enumerate(items):
            if type(r) is RemoteFailure:
                items[i] = Failure(r.rebuild("a Ray actor"))
        f.buffer.extend(items)
        f.received += len(items)
        f.last_n = len(items)
        f.ended = bool(ended)
        self.pump(f)

    # -- faults ----------------------------------------------------------------------------

    def _died(self, reader: _Reader, err: BaseException) -> None:
        if getattr(err, "actor_init_failed", False):
            raise self._fail(
                WorkerError(
                    f"stage {self.stage}: a Ray actor could not start (is map_func's module "
                    "importable on the cluster? ship it with stoker.ray.configure("
                    f"ray_options={{'runtime_env': ...}})): {_text(err)}"
                )
            )
        ray = self._ray
        mine = sorted(
            ((r, e) for r, e in self._calls.items() if e[2] is reader), key=lambda re_: re_[1][0]
        )
        blamed: _File | None = None
        for ref, (_, f, _) in mine:
            del self._calls[ref]
            f.ref = None
            if blamed is not None:
                continue  # waited behind the running one: not to blame, sent again below
            ready, _ = ray.wait([ref], num_returns=1, timeout=0)
            try:
                if not ready:
                    raise TimeoutError
                value = ray.get(ref, timeout=0)
            except (TimeoutError, ray.exceptions.RayError):
                blamed = f  # this one was running when the actor died
                continue
            self._apply(f, value)
        del mine
        first_line = (_text(err).splitlines() or [type(err).__name__])[0]
        if blamed is not None:
            blamed.attempts += 1
            if blamed.attempts >= MAX_ATTEMPTS:
                raise self._fail(
                    WorkerError(
                        f"stage {self.stage}: Ray actors died {blamed.attempts} times while "
                        f"reading input element {blamed.ordinal} (after {blamed.received} "
                        f"of its elements; does it crash the process?); last: {first_line}"
                    )
                )
        self._readers.remove(reader)
        try:
            self._handles.remove(reader.handle)
        except ValueError:
            pass
        _kill([reader.handle])
        files = list(reader.files)
        _LOG.warning(
            "stoker.ray: %s: actor %d died (%s); replacing it and reading its %d input "
            "element(s) again from where they were",
            self.stage,
            reader.index,
            first_line,
            len(files),
        )
        self.restarts += 1
        new = self._start_actor()
        for f in sorted(files, key=lambda f: f.ordinal):
            f.actor = new
            new.files.add(f)
            self.pump(f)

    def _fail(self, err: WorkerError) -> WorkerError:
        self._broken = str(err)
        self.close()
        return err

    # -- lifetime --------------------------------------------------------------------------

    def close(self, wait: bool = True) -> None:
        del wait  # ray.kill does not block
        self._calls.clear()
        self._readers = []
        self._finalizer()

    def release(self) -> None:
        """End of a pass: keep the actors for the owner's next pass when idle; else close."""
        readers = list(self._readers)
        if (
            self._broken is None
            and self._owner is not None
            and not self._calls
            and readers
            and _park(self._owner, self._key, readers)
        ):
            self._finalizer.detach()
            self._handles.clear()
            self._readers = []
            return
        self.close()


class RayInterleaveIterator(ReadAheadCycle[_File], ParallelIterator):
    """See the module docstring: the cycle's slots read on Ray actors."""

    OP = "ray_interleave"
    _run: _Readers | None

    def __init__(self, ctx: IterContext, ds: InterleaveDataset):
        super().__init__(ctx, ds)
        self._init_cycle(ds)
        opts = ctx.options
        npc = ds._num_parallel_calls
        self._actors = None if npc is None or npc == AUTOTUNE else int(npc)
        try:
            self._fn_bytes = cloudpickle.dumps(ds._fn)
        except Exception as e:
            raise TypeError(
                f"{self.stage}: executor='ray' needs a map_func cloudpickle can pickle; "
                f"{type(e).__name__}: {e}"
            ) from e
        self._inner_options = {
            "deterministic": opts.deterministic,
            "seed": opts.seed,
            "stats": False,
        }
        self._last: _Readers | None = None

    @property
    def _readers(self) -> _Readers:
        run = self._run
        assert run is not None, "used before the run started"
        return run

    def _new_run(self) -> _Readers:
        run = _Readers(
            self.stage,
            self._fn_bytes,
            self._inner_options,
            self._actors,
            self._ctx.root_pass,
            self.stats,
            self._ds,  # actors kept after a pass serve this dataset's next pass
        )
        self._last = run  # for executor_info and calls after the pass
        for f in self._slots:  # restored by set_state()
            if f is not None:
                run.add(f)
        return run

    # -- the cycle's hooks (stoker.ops._interleave_cycle) ---------------------------------

    def _new_slot(self, ordinal: int, element: Any, before: Any) -> _File:
        return _File(ordinal, element, before)

    def _read_future(self, slot: _File) -> None:
        """Give the new future to an actor, which opens it and starts reading."""
        self._readers.add(slot)

    def _take(self, f: _File) -> Any:
        """``f``'s next element, :data:`~stoker.ops._interleave_cycle.ENDED`, or
        (deterministic=False) :data:`~stoker.ops._interleave_cycle.NOT_READY`; an element
        that failed is raised in its place (the turn does not move)."""
        run = self._readers
        if not f.buffer and not f.ended:
            if not self._deterministic:
                run.pump(f)
                if self._skips < len(self._slots):
                    self._skips += 1
                    return NOT_READY
                self._skips = 0
                self._wait(run)
                if not f.buffer and not f.ended:
                    return NOT_READY
            while not f.buffer and not f.ended:
                run.pump(f)
                self._wait(run)
        self._skips = 0
        if f.buffer:
            item = f.buffer.popleft()
            f.consumed += 1
            run.pump(f)
            if type(item) is Failure:
                failure, item = item, None  # see Failure.throw()
                failure.throw(self.stage)
            return item
        if f.open_error is not None:
            # map_func raised: as the sequential op, the slot stays empty at this turn and
            # takes the next input element on the next call.
            exc, f.open_error = f.open_error, None
            self._retire(f)
            if isinstance(exc, StopIteration):
                raise stop_iteration_error(self.stage, self._ds._fn) from None
            if not str(exc).startswith(f"{self.stage}: "):
                annotate(exc, self.stage, self._ds._fn, f.ordinal)
            failure = Failure(exc)
            del exc  # see Failure.throw()
            failure.throw(self.stage, f.ordinal)
        return ENDED

    def _wait(self, run: _Readers) -> None:
        if self.stats.enabled:
            start = time.perf_counter()
            run.wait(POLL_S)
            self.stats.add_wait(time.perf_counter() - start)
        else:
            run.wait(POLL_S)

    def _drop(self, slot: _File) -> None:
        self._readers.drop(slot)

    # -- state -----------------------------------------------------------------------------

    def set_state(self, state: State) -> None:
        """Restore; also accepts a state of the sequential or the threads' interleave
        (same pipeline): their slots are an inner state plus a count, as here."""
        if isinstance(state, dict) and state.get("op") == "parallel_interleave":
            state = {**state, "op": self.OP}
        super().set_state(state)

    def _slot_state(self, slot: _File) -> dict[str, Any]:
        return {"ordinal": slot.ordinal, "state": slot.state, "skip": slot.skip0 + slot.consumed}

    def _clear_slots(self) -> None:
        """Nothing to release: the old run, and with it every call, is gone."""

    def _restored_slot(
        self, ordinal: int, element: Any, before: Any, slot_state: dict[str, Any]
    ) -> _File:
        f = _File(ordinal, element, before)
        f.state = slot_state.get("state")
        f.skip0 = int(slot_state.get("skip", 0))
        return f

    # -- visibility ------------------------------------------------------------------------

    @property
    def executor_info(self) -> dict[str, Any]:
        run = self._run if self._run is not None else self._last
        return {
            "executor": "ray",
            "actors": run.actors if run is not None else 0,
            "restarts": run.restarts if run is not None else 0,
        }

    def stage_info(self) -> dict[str, Any]:
        run = self._run
        try:
            files = [f for f in list(self._slots) if f is not None] + list(self._futures)
        except RuntimeError:  # changed under us: the consumer thread is at work
            files = []
        return {
            "parallelism": run.actors if run is not None else (self._actors or 0),
            "executor": "ray",
            "buffered": sum(len(f.buffer) for f in files),
            "in_flight": run.in_flight if run is not None else 0,
            "capacity": 2 * _MAX_ITEMS * 2 * len(self._slots),
        }
