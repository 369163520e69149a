"""The Ray executor: a stage's chunks computed by Ray actors, on one host or a cluster.

It serves the same interface as the thread and process executors
(:class:`~stoker.exec._base.Executor`: ``submit`` chunks, ``poll`` completions), so the
stage keeps its semantics (order, ``deterministic=False``, errors, ``ignore_errors``,
checkpoints) whatever runs the function.

Design, from what Ray costs (measured on a 2-CPU machine, Ray 2.60: a call's round trip
1.4 ms, 0.5 ms per call when many are in flight, 6 ms for a 1 MB result; ``ray.init``
~10 s and ~0.5 GB):

* **Actors**, not tasks: each actor gets the stage's spec (the user's function),
  cloudpickled, once in its constructor; calls carry only elements.
* **Calls sized to the work**: consecutive chunks the stage submits are sent together in
  one call of about :data:`CALL_S` of measured work (``chunk_size=AUTOTUNE``), or of
  ``chunk_size`` elements; the first calls hold one element each, until a time is known.
* **Own dispatch**: each call goes to the least-loaded live actor, up to
  ``in_flight_per_actor`` calls each (``ray.util.ActorPool`` keeps one), so an actor
  always has its next call queued when it finishes one.
* **Credit window**: at most ``actors * in_flight_per_actor`` calls in flight, and no new
  call while the bytes in flight (elements sent plus results expected, measured) exceed
  ``max_bytes_in_flight``, unless nothing is in flight. Results are fetched when they
  are ready and their object references dropped at once; the stage's own window bounds
  what it holds. Result arrays are NumPy arrays read straight from Ray's object store:
  **read-only** (``arr.flags.writeable`` is False; copy one to change it in place).
* **Faults**: an actor that dies (``ray.kill``, its node lost, a segfault, the OOM
  killer) is replaced and the calls it had in flight are sent again, so no element is
  lost or delivered twice; a chunk that has killed :data:`MAX_ATTEMPTS` actors is
  raised as :class:`~stoker.errors.WorkerError`. An actor that cannot start (its
  constructor failed: the function's module is not importable on the cluster) is a
  ``WorkerError`` at once, never retried.
* **Scaling**: ``actors=(min, max)`` starts ``min`` actors and adds one (at most once a
  second) while calls wait for a free actor and the cluster has a free CPU.

Lifetime: actors are stopped (``ray.kill``) by :meth:`RayExecutor.close`; at the end of a
pass they are kept for the next pass of the same pipeline when an ``owner`` is given
(as worker processes are), and stop when the owner is collected. The cluster itself
is never shut down here (see :mod:`stoker.ray._cluster`).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import re
import sys
import threading
import time
import weakref
from typing import Any

import cloudpickle
import numpy as np

from stoker.errors import WorkerError
from stoker.exec._base import Completion, Executor, Failure
from stoker.exec._worker import RemoteFailure, RemoteTraceback
from stoker.options import AUTOTUNE
from stoker.ray import _cluster
from stoker.ray._actor import remote_class

__all__ = ["CALL_S", "MAX_ATTEMPTS", "RayExecutor", "RemoteTraceback"]

_LOG = logging.getLogger(__name__)

#: Work per call with ``chunk_size=AUTOTUNE``: ~50x the 0.5-1.5 ms a call costs, so the
#: hand-off stays a few percent. [Unit: second]
CALL_S = 0.03
#: Most elements in one call.
_MAX_CALL = 4096
#: A chunk whose calls killed this many actors is raised instead of sent again.
MAX_ATTEMPTS = 3
#: No actor answered within this long of starting: raised, naming the resources.
_START_TIMEOUT_S = 120.0
#: How often ``actors=(min, max)`` considers adding an actor. [Unit: second]
_GROW_EVERY_S = 1.0
_DEFAULT_MAX_BYTES = 256 << 20


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _text(err: BaseException) -> str:
    """Ray's message for ``err``, without its terminal colours."""
    return _ANSI.sub("", str(err)).strip()


def _nbytes(x: Any, depth: int = 0) -> int:
    """Array and bytes payload of ``x`` (nested tuples, lists and dicts, 3 levels)."""
    if isinstance(x, np.ndarray):
        return int(x.nbytes)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return len(x)
    if depth < 3 and isinstance(x, (tuple, list)):
        return sum(_nbytes(v, depth + 1) for v in x)
    if depth < 3 and isinstance(x, dict):
        return sum(_nbytes(v, depth + 1) for v in x.values())
    return 0


class _Actor:
    """One actor and what the driver knows of it."""

    __slots__ = ("handle", "index", "outstanding", "ping", "ready", "started")

    def __init__(self, handle: Any, index: int):
        self.handle = handle
        self.index = index
        self.outstanding = 0  # calls sent, not yet returned
        self.ping: Any = handle.ping.remote()  # resolves once the constructor ran
        self.ready = False
        self.started = time.monotonic()


class _Call:
    """One remote call: several of the stage's chunks, for one pass."""

    __slots__ = ("actor", "chunks", "nbytes", "pass_id", "seq", "size")

    def __init__(
        self,
        seq: int,
        actor: _Actor,
        pass_id: list[int],
        chunks: list[tuple[int, Any]],
        nbytes: int,
    ):
        self.seq = seq  # send order: an actor runs its calls in this order
        self.actor = actor
        self.pass_id = pass_id
        self.chunks = chunks  # [(tag, items)]
        self.size = sum(len(items) for _, items in chunks)
        self.nbytes = nbytes  # estimate: elements sent + results expected


def _kill(handles: list[Any]) -> None:
    """Stop actors (finalizers, close); never raises."""
    if not handles or sys.is_finalizing():
        return
    try:
        import ray

        if not ray.is_initialized():
            return
        for h in handles:
            try:
                ray.kill(h, no_restart=True)
            except Exception:
                pass
    except Exception:  # pragma: no cover - best effort
        pass
    handles.clear()


# -- actors kept between passes ------------------------------------------------------------

_park_lock = threading.Lock()
_parked: weakref.WeakKeyDictionary[Any, dict[Any, list[Any]]] = weakref.WeakKeyDictionary()
_park_finalizers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _park(owner: Any, key: Any, actors: list[Any]) -> bool:
    try:
        with _park_lock:
            slot = _parked.setdefault(owner, {})
            if key in slot:
                return False
            slot[key] = actors
            if owner not in _park_finalizers:
                # The owner (the dataset) collected: its kept actors stop.
                _park_finalizers[owner] = weakref.finalize(owner, _kill_parked, slot)
    except TypeError:  # owner cannot be weakly referenced
        return False
    return True


def _kill_parked(slot: dict[Any, list[Any]]) -> None:
    handles = [a.handle for actors in slot.values() for a in actors]
    slot.clear()
    _kill(handles)


def _take_parked(owner: Any, key: Any) -> list[Any] | None:
    try:
        with _park_lock:
            slot = _parked.get(owner)
            return slot.pop(key, None) if slot else None
    except TypeError:
        return None


def clear_parked() -> None:
    """Stop every kept actor (tests; :func:`stoker.ray.shutdown`)."""
    with _park_lock:
        slots = list(_parked.values())
        _parked.clear()
    for slot in slots:
        _kill_parked(slot)


class RayExecutor(Executor):
    """Runs one stage's chunks on Ray actors.

    Most code names it by string, ``map(..., executor="ray")`` (configured with
    :func:`stoker.ray.configure`); build one directly to drive it yourself.

    Args:
        spec: Makes the element function of each pass (``element_fn(pass_id)``); pickled
            with cloudpickle and sent to each actor once. Must not hold the pipeline's
            input. Already-pickled ``bytes`` are accepted.
        stage: Stage name, for errors.
        address: Which cluster: ``"auto"`` (a running one), ``"host:port"``,
            ``"ray://host:port"``, or ``None`` (start a local one if none is running,
            owned by stoker); see :mod:`stoker.ray._cluster`.
        actors: ``(min, max)`` actors, or ``n`` for ``(n, n)``. Default: ``(1, CPUs of
            the cluster)``.
        in_flight_per_actor: Calls sent to an actor before its first returns (>= 1).
        chunk_size: Elements per call, or ``AUTOTUNE`` (calls of ~:data:`CALL_S` of work).
        max_bytes_in_flight: Bytes of elements and results in flight at once (one call
            always goes). [Unit: byte]
        num_cpus: CPUs Ray reserves for each actor (may be fractional).
        seed: ``Options.seed``: the actors' global generators are seeded from it per
            element (as worker processes do).
        owner: Keep the actors after a pass for this object's next pass (held weakly).
        ray_options: More ``actor.options(...)`` (``resources``, ``runtime_env``,
            ``scheduling_strategy``, ...).

    Example::

        class Double:  # element_fn(pass_id) -> f(index, element)
            def element_fn(self, pass_id):
                return lambda index, x: 2 * x

        ex = RayExecutor(Double(), address=None, actors=2)
        ex.submit(0, [0], [(0, 1), (1, 2)])  # tag 0, pass [0], elements 1 and 2
        completions = ex.poll(10.0)  # [Completion(tag=0, results=[2, 4])] once done
        ex.close()
    """

    kind = "ray"

    def __init__(
        self,
        spec: Any,
        stage: str = "map",
        *,
        address: str | None = "auto",
        actors: int | tuple[int, int] | None = None,
        in_flight_per_actor: int = 2,
        chunk_size: int = AUTOTUNE,
        max_bytes_in_flight: int = _DEFAULT_MAX_BYTES,
        num_cpus: float = 1.0,
        seed: int | None = None,
        owner: Any = None,
        ray_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        if isinstance(in_flight_per_actor, bool) or int(in_flight_per_actor) < 1:
            raise ValueError(f"in_flight_per_actor={in_flight_per_actor!r} must be >= 1")
        if chunk_size != AUTOTUNE and (isinstance(chunk_size, bool) or int(chunk_size) < 1):
            raise ValueError(f"chunk_size={chunk_size!r} must be >= 1 or AUTOTUNE")
        if int(max_bytes_in_flight) < 1:
            raise ValueError(f"max_bytes_in_flight={max_bytes_in_flight!r} must be >= 1")
        if not num_cpus >= 0:
            raise ValueError(f"num_cpus={num_cpus!r} must be >= 0")
        self._ray = _cluster.import_ray()
        if isinstance(spec, (bytes, bytearray)):
            spec_bytes = bytes(spec)
        else:
            try:
                spec_bytes = cloudpickle.dumps(spec)
            except Exception as e:
                raise TypeError(
                    f"{stage}: executor='ray' needs a function cloudpickle can pickle; "
                    f"{type(e).__name__}: {e}"
                ) from e
        self._where = _cluster.connect(address)
        lo, hi = self._resolve_actors(actors)
        self._stage = stage
        self._spec_bytes = spec_bytes
        self._seed = seed
        self._min, self._max = lo, hi
        self._per_actor = int(in_flight_per_actor)
        self._fixed = None if chunk_size == AUTOTUNE else int(chunk_size)
        self._max_bytes = int(max_bytes_in_flight)
        self._options: dict[str, Any] = {
            "num_cpus": num_cpus,
            "max_restarts": 0,  # stoker replaces dead actors itself, and resends their calls
            "max_task_retries": 0,
            "scheduling_strategy": "SPREAD",  # actors across nodes: more CPUs, not one host's
            **(ray_options or {}),
        }
        self._owner = owner
        self._key = (
            hashlib.blake2b(spec_bytes, digest_size=16).digest(),
            seed,
            repr(sorted(self._options.items())),
        )
        self._queue: collections.deque[tuple[int, list[int], list[tuple[int, Any]]]] = (
            collections.deque()
        )
        self._queued = 0  # elements in the queue
        self._calls: dict[Any, _Call] = {}  # object ref -> call
        self._attempts: dict[int, int] = {}  # tag -> actors its calls have killed
        self._bytes = 0  # estimate of bytes in flight
        self._elem_s = 0.0  # measured compute time per element (moving average)
        self._in_bytes = 0.0  # bytes sent per element (moving average)
        self._out_bytes = 0.0  # bytes of results per element (moving average)
        self._stage_chunk = 1.0  # elements in the last chunk the stage submitted
        self._next_index = 0
        self._next_grow = 0.0
        self._closed = False
        self._broken: WorkerError | None = None
        self.restarts = 0  # actors replaced after dying
        self.calls = 0  # remote calls made
        self._actors: list[_Actor] = []
        self._handles: list[Any] = []  # what the finalizer kills
        self._finalizer = weakref.finalize(self, _kill, self._handles)
        kept = _take_parked(owner, self._key) if owner is not None else None
        for actor in kept or ():
            self._adopt(actor)
        while len(self._actors) < lo:
            self._start_actor()
        self.info: dict[str, Any] = {"executor": "ray"}
        self._update_info()

    # -- actors ----------------------------------------------------------------------------

    def _resolve_actors(self, actors: int | tuple[int, int] | None) -> tuple[int, int]:
        if actors is None:
            cpus = int(self._ray.cluster_resources().get("CPU", 1))
            return 1, max(1, cpus)
        if isinstance(actors, int) and not isinstance(actors, bool):
            lo = hi = actors
        elif isinstance(actors, tuple) and len(actors) == 2:
            lo, hi = (int(a) for a in actors)
        else:
            raise ValueError(f"actors={actors!r} must be an int or a (min, max) tuple")
        if lo < 1 or hi < lo:
            raise ValueError(f"actors={actors!r} needs 1 <= min <= max")
        return lo, hi

    def _adopt(self, actor: _Actor) -> None:
        actor.outstanding = 0
        self._actors.append(actor)
        self._handles.append(actor.handle)
        self._next_index = max(self._next_index, actor.index + 1)

    def _start_actor(self) -> _Actor:
        cls = remote_class().options(**self._options)
        path = [p for p in sys.path if p]
        handle = cls.remote(self._spec_bytes, self._seed, self._next_index, path)
        actor = _Actor(handle, self._next_index)
        self._adopt(actor)
        return actor

    def _maybe_grow(self) -> None:
        if len(self._actors) >= self._max or not self._queue:
            return
        now = time.monotonic()
        if now < self._next_grow:
            return
        self._next_grow = now + _GROW_EVERY_S
        if any(a.outstanding < self._per_actor for a in self._actors):
            return
        need = float(self._options.get("num_cpus") or 0)
        free = float(self._ray.available_resources().get("CPU", 0.0))
        if free >= max(need, 1e-9):
            self._start_actor()
            self._update_info()

    @property
    def actors(self) -> int:
        """Actors serving the stage now."""
        return len(self._actors)

    @property
    def bytes_in_flight(self) -> int:
        """Estimated bytes of the calls in flight (elements sent + results expected)."""
        return self._bytes

    @property
    def calls_in_flight(self) -> int:
        """Remote calls sent and not yet collected."""
        return len(self._calls)

    @property
    def actor_handles(self) -> list[Any]:
        """The Ray actor handles (tests kill one with ``ray.kill``)."""
        return [a.handle for a in self._actors]

    # -- sizes -----------------------------------------------------------------------------

    def _call_size(self) -> int:
        """Elements per call."""
        if self._fixed is not None:
            return self._fixed
        if self._elem_s <= 0.0:
            return 1
        size = max(1, min(_MAX_CALL, round(CALL_S / self._elem_s)))
        per = self._in_bytes + self._out_bytes
        if per > 0:  # the whole window of calls must fit the byte credit
            calls = max(1, len(self._actors) * self._per_actor)
            size = min(size, max(1, int(self._max_bytes // (calls * per))))
        return size

    def _per_call(self) -> int:
        """Stage chunks per call."""
        return max(1, math.ceil(self._call_size() / max(1.0, self._stage_chunk)))

    @property
    def slots(self) -> int:
        return max(1, len(self._actors)) * self._per_actor * self._per_call()

    @property
    def capacity(self) -> int:
        # One more call's worth per actor waits here, ready to go when a call returns (and
        # shows _maybe_grow() that the actors are all busy).
        return self.slots + max(1, len(self._actors)) * self._per_call()

    @property
    def parallelism(self) -> int:
        return len(self._actors)

    def ready(self) -> bool:
        return any(a.ready for a in self._actors) or self._check_pings(0.0)

    def accepting(self) -> bool:
        return self.in_flight < self.capacity

    def chunk_size(self, elem_s: float, elem_bytes: float) -> int:
        """Elements per chunk the stage should submit: one call's worth."""
        del elem_s, elem_bytes  # measured here, on the actors, instead
        return self._call_size()

    # -- submit and poll -------------------------------------------------------------------

    def _live(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise RuntimeError("RayExecutor used after close()")

    def submit(self, tag: int, pass_id: list[int], items: list[tuple[int, Any]]) -> None:
        self._live()
        if not items:
            raise ValueError("submit(): empty chunk")
        n = len(items)
        self._stage_chunk = float(n)  # the stage sizes chunks by chunk_size(): the last one
        if self._in_bytes == 0.0 or self.calls < 8:
            per = sum(_nbytes(x) for _, x in items) / n
            self._in_bytes = per if self._in_bytes == 0.0 else 0.8 * self._in_bytes + 0.2 * per
        self._queue.append((tag, list(pass_id), items))
        self._queued += n
        self.in_flight += 1
        self._dispatch()

    def _dispatch(self) -> None:
        queue = self._queue
        size = self._call_size()
        per_elem = self._in_bytes + self._out_bytes
        while queue:
            actor = min(self._actors, key=lambda a: a.outstanding)
            if actor.outstanding >= self._per_actor:
                return
            if self._calls and self._bytes >= self._max_bytes:
                return
            if self._queued < size and actor.outstanding > 0 and self._calls:
                return  # a partial call waits for more chunks, or for an idle actor
            pass_id = queue[0][1]
            chunks: list[tuple[int, Any]] = []
            n = 0
            while queue and n < size and queue[0][1] == pass_id:
                tag, _, items = queue.popleft()
                chunks.append((tag, items))
                n += len(items)
            self._queued -= n
            self._send(actor, pass_id, chunks, int(n * per_elem))

    def _send(
        self, actor: _Actor, pass_id: list[int], chunks: list[tuple[int, Any]], nbytes: int
    ) -> None:
        ref = actor.handle.run.remote(pass_id, chunks)
        self._calls[ref] = _Call(self.calls, actor, pass_id, chunks, nbytes)
        actor.outstanding += 1
        self._bytes += nbytes
        self.calls += 1

    def _check_pings(self, timeout: float) -> bool:
        """Mark actors whose constructor ran; raise if one could not start."""
        pings = [a.ping for a in self._actors if not a.ready]
        if not pings:
            return any(a.ready for a in self._actors)
        done, _ = self._ray.wait(pings, num_returns=len(pings), timeout=timeout)
        for actor in [a for a in self._actors if not a.ready and a.ping in done]:
            try:
                self._ray.get(actor.ping)
            except self._ray.exceptions.RayActorError as e:
                self._actor_died(actor, e)
                continue
            actor.ready = True
            actor.ping = None
        now = time.monotonic()
        if not any(a.ready for a in self._actors) and all(
            now - a.started > _START_TIMEOUT_S for a in self._actors
        ):
            free = self._ray.available_resources()
            raise self._fail(
                WorkerError(
                    f"stage {self._stage}: no Ray actor started within "
                    f"{_START_TIMEOUT_S:.0f} s on {self._where} (each asks for "
                    f"{self._options.get('num_cpus')} CPU; free now: {free})"
                )
            )
        return any(a.ready for a in self._actors)

    def poll(self, timeout: float) -> list[Completion]:
        self._live()
        out: list[Completion] = []
        self._dispatch()
        if self._calls:
            ray = self._ray
            refs = list(self._calls)
            if not any(a.ready for a in self._actors):
                # Still starting: check the constructors too, so one that fails is
                # reported instead of waited on.
                waited = min(timeout, 0.5)
                ready, _ = ray.wait(refs, num_returns=1, timeout=waited)
                if not ready:
                    self._check_pings(0.0)
            else:
                ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
            if ready and len(refs) > 1:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            # Oldest first: an actor runs its calls in send order, so a call that
            # finished before its actor died is collected before the death is seen.
            calls = self._calls
            ready.sort(key=lambda r: calls[r].seq if r in calls else -1)
            for ref in ready:
                self._collect(ref, out)
            del ready, refs
            self._dispatch()
            self._maybe_grow()
        self.in_flight -= len(out)
        return out

    def _collect(self, ref: Any, out: list[Completion]) -> None:
        call = self._calls.pop(ref, None)
        if call is None:
            return  # its actor died and the call was sent again
        actor = call.actor
        actor.outstanding -= 1
        self._bytes -= call.nbytes
        exceptions = self._ray.exceptions
        try:
            value = self._ray.get(ref)
        except exceptions.RayActorError as e:
            self._calls[ref] = call  # so _lost() finds it with the actor's other calls
            actor.outstanding += 1
            self._bytes += call.nbytes
            self._actor_died(actor, e, out)
            return
        except exceptions.RayTaskError as e:
            # Raised by the call itself, not by the function (the actor catches those):
            # a result that Ray cannot serialize, or element_fn() failing.
            text = (
                f"stage {self._stage}: a Ray actor could not compute or return this element's "
                f"chunk (a result Ray cannot serialize?): {_text(e)}"
            )
            # One exception per element: each is raised (and let go of) on its own.
            value = [
                (tag, [Failure(TypeError(text)) for _ in items], 0.0, 0.0)
                for tag, items in call.chunks
            ]
        except exceptions.RayError as e:  # result lost with its node: compute it again
            _LOG.warning("stoker.ray: %s: call lost (%s); sending it again", self._stage, e)
            self._requeue([call])
            return
        finally:
            del ref
        self._complete(call, value, out)

    def _complete(self, call: _Call, value: Any, out: list[Completion]) -> None:
        actor = call.actor
        if not actor.ready:
            actor.ready = True
            actor.ping = None
        busy = 0.0
        nbytes = 0
        for tag, results, busy_s, cpu_s in value:
            self._attempts.pop(tag, None)
            chunk_bytes = 0
            for i, r in enumerate(results):
                if type(r) is RemoteFailure:
                    results[i] = Failure(r.rebuild("a Ray actor"))
                else:
                    chunk_bytes += _nbytes(r)
            nbytes += chunk_bytes
            busy += busy_s
            out.append(Completion(tag, results, busy_s, cpu_s, nbytes=chunk_bytes))
        if call.size and busy > 0.0:
            per = busy / call.size
            self._elem_s = per if self._elem_s == 0.0 else 0.7 * self._elem_s + 0.3 * per
        if call.size:
            per_b = nbytes / call.size
            self._out_bytes = per_b if self.calls <= 1 else 0.8 * self._out_bytes + 0.2 * per_b

    # -- faults ----------------------------------------------------------------------------

    def _salvage(self, actor: _Actor, out: list[Completion]) -> None:
        """Collect the calls of a dead actor that had finished before it died."""
        ray = self._ray
        mine = sorted(
            ((r, c) for r, c in self._calls.items() if c.actor is actor), key=lambda rc: rc[1].seq
        )
        for ref, call in mine:
            ready, _ = ray.wait([ref], num_returns=1, timeout=0)
            if not ready:
                break  # the calls behind a running one have not run either
            try:
                value = ray.get(ref, timeout=0)
            except ray.exceptions.RayError:
                break  # this one was running (or waiting) when the actor died
            del self._calls[ref]
            actor.outstanding -= 1
            self._bytes -= call.nbytes
            self._complete(call, value, out)

    def _actor_died(
        self, actor: _Actor, err: BaseException, out: list[Completion] | None = None
    ) -> None:
        if getattr(err, "actor_init_failed", False):
            raise self._fail(
                WorkerError(
                    f"stage {self._stage}: a Ray actor could not start (is the function's "
                    "module importable on the cluster? ship it with "
                    f"ray_options={{'runtime_env': ...}}): {_text(err)}"
                )
            )
        if out is not None:
            self._salvage(actor, out)
        lost = sorted((c for c in self._calls.values() if c.actor is actor), key=lambda c: c.seq)
        for ref in [r for r, c in self._calls.items() if c.actor is actor]:
            del self._calls[ref]
        for c in lost:
            self._bytes -= c.nbytes
        self._actors.remove(actor)
        try:
            self._handles.remove(actor.handle)
        except ValueError:
            pass
        _kill([actor.handle])
        first_line = (_text(err).splitlines() or [type(err).__name__])[0]
        _LOG.warning(
            "stoker.ray: %s: actor %d died (%s); replacing it and sending its %d call(s) again",
            self._stage,
            actor.index,
            first_line,
            len(lost),
        )
        self.restarts += 1
        if lost:
            # An actor runs its calls one after another: the oldest was running when it
            # died, the others waited behind it and are not to blame.
            running = lost[0]
            for tag, _ in running.chunks:
                self._attempts[tag] = self._attempts.get(tag, 0) + 1
            attempts = max(self._attempts[tag] for tag, _ in running.chunks)
            if attempts >= MAX_ATTEMPTS:
                indices = [i for _, items in running.chunks for i, _ in items]
                raise self._fail(
                    WorkerError(
                        f"stage {self._stage}: Ray actors died {attempts} times while "
                        f"computing elements {indices[0]}..{indices[-1]} (the function "
                        f"crashes its process on one of them?); last: {first_line}"
                    )
                )
        self._requeue(lost)
        self._start_actor()
        self._update_info()

    def _requeue(self, calls: list[_Call]) -> None:
        """Put the calls' chunks back at the head of the queue, in their order."""
        for call in reversed(calls):
            call.actor.outstanding = max(0, call.actor.outstanding)
            for tag, items in reversed(call.chunks):
                self._queue.appendleft((tag, call.pass_id, items))
                self._queued += len(items)

    def _fail(self, err: WorkerError) -> WorkerError:
        self._broken = err
        self._shutdown_actors()
        return err

    def _update_info(self) -> None:
        self.info.update(
            executor="ray",
            cluster=self._where,
            actors=len(self._actors),
            restarts=self.restarts,
        )

    # -- lifetime --------------------------------------------------------------------------

    def _shutdown_actors(self) -> None:
        self._queue.clear()
        self._queued = 0
        self._calls.clear()
        self._bytes = 0
        self._actors = []
        self._finalizer()  # kills what self._handles holds

    def close(self, wait: bool = True) -> None:
        """Stop this stage's actors (the cluster keeps running); idempotent."""
        del wait  # ray.kill does not block
        self._closed = True
        self.in_flight = 0
        self._shutdown_actors()

    def release(self) -> None:
        """End of a pass: keep the actors for the owner's next pass when idle; else close."""
        if (
            not self._closed
            and self._broken is None
            and self._owner is not None
            and self.in_flight == 0
            and not self._calls
            and self._actors
        ):
            actors = list(self._actors)
            if _park(self._owner, self._key, actors):
                self._finalizer.detach()
                self._handles.clear()
                self._actors = []
                self._closed = True
                return
        self.close()

    def __repr__(self) -> str:
        return (
            f"<RayExecutor stage={self._stage!r} actors={len(self._actors)} "
            f"calls_in_flight={len(self._calls)} queued={len(self._queue)}>"
        )
