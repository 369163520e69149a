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
from stoker.iterator import IterContext, State, saved, snapshot
from stoker.ops._common import annotate, stop_iteration_error
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
_END = object()  # the slot's dataset is exhausted
_NOT_READY = object()  # deterministic=False: nothing received yet


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


class RayInterleaveIterator(ParallelIterator):
    """See the module docstring."""

    OP = "ray_interleave"
    SEQUENTIAL_OP = "interleave"
    _run: _Readers | None

    def __init__(self, ctx: IterContext, ds: InterleaveDataset):
        super().__init__(ctx, ds)
        self._ds = ds
        opts = ctx.options
        det = ds._deterministic if ds._deterministic is not None else opts.deterministic
        self._deterministic = bool(det)
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
        cycle = ds._cycle_length
        self._slots: list[_File | None] = [None] * cycle
        self._futures: collections.deque[_File] = collections.deque()
        self._cycle = 0
        self._block = 0
        self._skips = 0
        self._end = False
        self._input_end = False
        self._input_error: tuple[BaseException, Any] | None = None
        self._open = 0
        self._pulled = 0  # ordinals that entered the cycle
        self._next_ordinal = 0  # ordinals pulled (cycle + futures)
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

    # -- the cycle (the sequential op's loop) ---------------------------------------------

    def _top_up_futures(self) -> None:
        while (
            len(self._futures) < len(self._slots)
            and not self._input_end
            and self._input_error is None
        ):
            before = snapshot(self._input)
            try:
                element = next(self._input)
            except StopIteration:
                self._input_end = True
                return
            except Exception as e:
                self._input_error = (e, before)
                return
            f = _File(self._next_ordinal, element, before)
            self._next_ordinal += 1
            self._futures.append(f)
            self._readers.add(f)

    def _next(self) -> Any:
        slots = self._slots
        while not self._end or self._open:
            self._top_up_futures()
            f = slots[self._cycle]
            if f is not None:
                item = self._take(f)
                if item is _NOT_READY:
                    self._advance_cycle()
                    continue
                if item is _END:
                    self._retire(f)
                    self._advance_cycle()
                    continue
                if type(item) is Failure:  # raised in its place; the turn does not move
                    failure, item = item, None
                    failure.throw(self.stage)
                self._block += 1
                if self._block == self._ds._block_length:
                    self._advance_cycle()
                self.stats.add(elements=1)
                return item
            if not self._end:
                if self._enter_future():
                    continue
                self._end = True
                continue
            self._advance_cycle()
        self._release_run()
        raise StopIteration

    def _take(self, f: _File) -> Any:
        """``f``'s next element (or Failure), :data:`_END`, or (deterministic=False)
        :data:`_NOT_READY`."""
        run = self._readers
        if not f.buffer and not f.ended:
            if not self._deterministic:
                run.pump(f)
                if self._skips < len(self._slots):
                    self._skips += 1
                    return _NOT_READY
                self._skips = 0
                self._wait(run)
                if not f.buffer and not f.ended:
                    return _NOT_READY
            while not f.buffer and not f.ended:
                run.pump(f)
                self._wait(run)
        self._skips = 0
        if f.buffer:
            item = f.buffer.popleft()
            f.consumed += 1
            run.pump(f)
            return item
        if f.open_error is not None:
            # map_func raised: as the sequential op, the slot stays empty at this turn and
            # takes the next input element on the next call.
            exc, f.open_error = f.open_error, None
            self._slots[self._cycle] = None
            self._open -= 1
            run.drop(f)
            if isinstance(exc, StopIteration):
                raise stop_iteration_error(self.stage, self._ds._fn) from None
            if not str(exc).startswith(f"{self.stage}: "):
                annotate(exc, self.stage, self._ds._fn, f.ordinal)
            failure = Failure(exc)
            del exc  # see Failure.throw()
            failure.throw(self.stage, f.ordinal)
        return _END

    def _wait(self, run: _Readers) -> None:
        if self.stats.enabled:
            start = time.perf_counter()
            run.wait(POLL_S)
            self.stats.add_wait(time.perf_counter() - start)
        else:
            run.wait(POLL_S)

    def _enter_future(self) -> bool:
        """Put the next future in the empty slot at the cycle; False at the input's end."""
        if not self._futures:
            if self._input_error is not None:
                failure = Failure(self._input_error[0], from_input=True)
                self._input_error = None
                failure.throw(self.stage)
            if self._input_end:
                return False
            self._top_up_futures()
            return True
        f = self._futures.popleft()
        self._pulled = f.ordinal + 1
        self._slots[self._cycle] = f
        self._open += 1
        return True

    def _retire(self, f: _File) -> None:
        self._readers.drop(f)
        self._slots[self._cycle] = None
        self._open -= 1

    def _advance_cycle(self) -> None:
        self._block = 0
        self._cycle = (self._cycle + 1) % len(self._slots)

    # -- state -----------------------------------------------------------------------------

    def set_state(self, state: State) -> None:
        """Restore; also accepts a state of the sequential or the threads' interleave
        (same pipeline): their slots are an inner state plus a count, as here."""
        if isinstance(state, dict) and state.get("op") == "parallel_interleave":
            state = {**state, "op": self.OP}
        super().set_state(state)

    def _get_state(self) -> State:
        open_slots = [f for f in self._slots if f is not None]
        if open_slots:
            first = min(open_slots, key=lambda f: f.ordinal)
            base, input_state = first.ordinal, saved(first.before)
        elif self._futures:
            base, input_state = self._pulled, saved(self._futures[0].before)
        elif self._input_error is not None:
            base, input_state = self._pulled, saved(self._input_error[1])
        else:
            base, input_state = self._pulled, self._input.get_state()
        return {
            "input": input_state,
            "base": base,
            "pulled": self._pulled,
            "slots": [
                None
                if f is None
                else {"ordinal": f.ordinal, "state": f.state, "skip": f.skip0 + f.consumed}
                for f in self._slots
            ],
            "cycle": self._cycle,
            "block": self._block,
            "end": self._end,
        }

    def _restore(self, state: State) -> None:
        slot_states = state["slots"]
        if len(slot_states) != len(self._slots):
            raise ValueError(
                f"state has {len(slot_states)} slots, cycle_length is {len(self._slots)}"
            )
        self._slots = [None] * len(self._slots)
        self._futures.clear()
        self._input_error = None
        self._input_end = False
        self._input.set_state(state["input"])
        base, pulled = int(state["base"]), int(state["pulled"])
        wanted = {s["ordinal"]: (i, s) for i, s in enumerate(slot_states) if s}
        for ordinal in range(base, pulled):
            before = snapshot(self._input)
            element = next(self._input)
            if ordinal not in wanted:
                continue
            i, s = wanted[ordinal]
            f = _File(ordinal, element, before)
            f.state = s.get("state")
            f.skip0 = int(s.get("skip", 0))
            self._slots[i] = f
        self._open = len(wanted)
        self._pulled = self._next_ordinal = pulled
        self._cycle = int(state["cycle"])
        self._block = int(state["block"])
        self._end = bool(state["end"])
        self._input_end = self._end

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
