"""Worker processes: for Python code that holds the GIL.

A :class:`WorkerGroup` is a set of worker processes serving one stage's element function.
Each worker is a fresh interpreter (``subprocess`` with the parent's ``sys.path``; the
equivalent of multiprocessing's "spawn", never a fork of a process that has threads) that
imports only stoker, NumPy and cloudpickle before it receives the function, cloudpickled
once. Unlike multiprocessing's spawn it does not re-import the user's ``__main__``, so
scripts need no ``if __name__ == "__main__":`` guard.

Elements travel in chunks over a socket per worker, arrays through shared memory
(:mod:`stoker.exec.shared_memory`). Each worker gets at most two chunks at a time (one to
compute, one queued), so a worker never idles waiting for the parent and a slow element
delays at most one queued chunk behind it. For a stage that takes them back
(``ExecutorRequest.splittable``: parallel ``map``), a worker cuts a chunk whose elements
take far longer than the last ones did, and the elements it did not start go back to the
stage (``Completion.rest``): when the work turns from 0.3 ms of CPU into 4 ms of waiting,
a chunk sized for the old work does not hold up the pipeline for a hundred milliseconds.

Lifetime: a group starts when its stage's first element is requested. When a pass ends
normally (the iterator is exhausted) the group is *parked* on the stage's function, and
the next iterator of the same pipeline (the next epoch) takes it back without starting a
process. Everything else (``close()``, a dropped or interrupted iterator, an error) stops
it: workers get a stop message, then ``SIGTERM``, then ``SIGKILL``. A parked group stops
when its function is garbage-collected and at interpreter exit.

A worker that dies (segfault, ``os._exit``, the OOM killer) is noticed within
:data:`_IO_TIMEOUT_S` of the parent waiting for it and raised as
:class:`~stoker.errors.WorkerError` naming the stage and the exit code or signal.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

import cloudpickle

import stoker.stats as _stats
from stoker.errors import WorkerError
from stoker.exec import _shutdown
from stoker.exec._base import Completion, Executor, ExecutorRequest, Failure
from stoker.exec._registry import register_executor
from stoker.exec._worker import RemoteFailure, RemoteTraceback
from stoker.exec.shared_memory import Endpoint, Packed, PeerClosed
from stoker.stats import _trace

__all__ = [
    "ProcessExecutor",
    "RemoteTraceback",
    "WorkerGroup",
    "describe_exit",
    "live_worker_pids",
    "make_process_executor",
    "park",
    "spec_bytes",
    "take_parked",
]

_LOG = logging.getLogger(__name__)

#: Socket timeout: the longest a wait goes without checking the worker is alive.
_IO_TIMEOUT_S = 0.5
#: A worker that has not started by then is reported as failed.
_START_TIMEOUT_S = 120.0
#: After the stop message, how long workers get to exit before SIGTERM, then SIGKILL.
_STOP_TIMEOUT_S = 2.0
_KILL_TIMEOUT_S = 2.0
#: Socket buffers; frames are small (arrays go through shared memory) so this is ample.
_SOCKET_BUFFER_BYTES = 1 << 20

_WORKER_CODE = (
    "import sys; sys.path[:0] = {path!r}; from stoker.exec._worker import main; main({fd})"
)


def describe_exit(returncode: int | None) -> str:
    """How a process ended, in words, with the likely cause."""
    if returncode is None:
        return "closed its connection but is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        text = f"was killed by {name} (signal {-returncode})"
        if -returncode == signal.SIGKILL:
            text += "; the kernel's OOM killer sends SIGKILL when memory runs out"
        elif -returncode == signal.SIGSEGV:
            text += " (a segmentation fault, usually in native code the function called)"
        return text
    if returncode == 0:
        return "exited unexpectedly with code 0"
    return f"exited with code {returncode} (sys.exit() or os._exit() in the function?)"


class _Worker:
    """One worker process and the parent's end of its socket."""

    def __init__(self, index: int, init: tuple[Any, ...], max_ring_bytes: int):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for s in (parent, child):
            for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                try:
                    s.setsockopt(socket.SOL_SOCKET, opt, _SOCKET_BUFFER_BYTES)
                except OSError:  # pragma: no cover - capped by the kernel; fine
                    pass
        code = _WORKER_CODE.format(path=[p for p in sys.path if p], fd=child.fileno())
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        parent.settimeout(_IO_TIMEOUT_S)
        self.index = index
        self.pid = self.proc.pid
        self.endpoint = Endpoint(parent, max_ring_bytes, check=self._check_alive)
        self.ready = False
        self.outstanding = 0
        self.started = time.monotonic()
        self.endpoint.send(init)

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise PeerClosed(f"worker {self.pid} exited")

    def stop(self) -> None:
        """Ask to stop, then terminate, then kill; close the socket. Idempotent."""
        proc = self.proc
        if proc.poll() is None:
            try:
                self.endpoint.sock.settimeout(0.1)
                self.endpoint.send(("stop",))
            except Exception:
                pass
        try:
            proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(_KILL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.endpoint.close()


def _stop_workers(workers: list[_Worker]) -> None:
    # Send every stop message first so the workers exit in parallel, then reap them. A
    # worker still computing would read it only after its chunk, whose results nobody
    # wants any more: it gets SIGTERM at once.
    for w in workers:
        if w.proc.poll() is None:
            try:
                if w.outstanding:
                    w.proc.terminate()
                else:
                    w.endpoint.sock.settimeout(0.1)
                    w.endpoint.send(("stop",))
            except Exception:
                pass
    for w in workers:
        try:
            w.stop()
        except Exception:  # pragma: no cover - best effort
            _LOG.debug("stoker: error stopping worker %s", w.pid, exc_info=True)


_live_lock = threading.Lock()
_live: weakref.WeakSet[WorkerGroup] = weakref.WeakSet()


def live_worker_pids() -> list[int]:
    """Pids of every worker process stoker runs now (parked groups included)."""
    with _live_lock:
        groups = list(_live)
    return [w.pid for g in groups for w in g.workers if w.proc.poll() is None]


class WorkerGroup:
    """``n`` worker processes serving one element-function spec.

    Args:
        spec_bytes: ``cloudpickle.dumps`` of an object with ``element_fn(pass_id)``.
        n: Number of workers.
        seed: Seed for the workers' global random generators (see ``_worker``).
        max_ring_bytes: Largest shared-memory ring per direction and worker. [Unit: byte]
    """

    def __init__(self, spec_bytes: bytes, n: int, seed: int | None, max_ring_bytes: int):
        self.workers: list[_Worker] = []
        try:
            for i in range(n):
                init = ("init", spec_bytes, i, seed, max_ring_bytes)
                self.workers.append(_Worker(i, init, max_ring_bytes))
        except BaseException:
            _stop_workers(self.workers)
            raise
        self._finalizer = weakref.finalize(self, _stop_workers, list(self.workers))
        self._unregister = _shutdown.at_exit(self)
        self.broken: BaseException | None = None
        with _live_lock:
            _live.add(self)

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self.broken is None

    def close(self) -> None:
        """Stop every worker; idempotent."""
        self._unregister()
        self._finalizer()

    def stop_at_exit(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return f"<WorkerGroup pids={[w.pid for w in self.workers]} alive={self.alive}>"


# -- parking between passes -----------------------------------------------------------------

_park_lock = threading.Lock()
_parked: weakref.WeakKeyDictionary[Any, dict[Any, WorkerGroup]] = weakref.WeakKeyDictionary()


def park(owner: Any, key: Any, group: WorkerGroup) -> bool:
    """Keep ``group`` for the next :func:`take_parked` with the same owner and key.

    ``owner`` is held weakly: when it is collected the group stops. Returns False (and
    the caller should close the group) if it cannot be kept.
    """
    if not group.alive or _shutdown.exiting():
        return False
    try:
        with _park_lock:
            slot = _parked.setdefault(owner, {})
            if key in slot:
                return False
            slot[key] = group
    except TypeError:  # owner cannot be weakly referenced
        return False
    return True


def take_parked(owner: Any, key: Any) -> WorkerGroup | None:
    """The group parked for ``owner`` and ``key``, removed from the park; or None."""
    try:
        with _park_lock:
            slot = _parked.get(owner)
            group = slot.pop(key, None) if slot else None
    except TypeError:
        return None
    if group is not None and not group.alive:
        group.close()
        return None
    return group


def clear_parked() -> None:
    """Stop every parked group (tests; ``stoker.exec.shutdown()``)."""
    with _park_lock:
        groups = [g for slot in _parked.values() for g in slot.values()]
        _parked.clear()
    for g in groups:
        g.close()


# -- the executor ---------------------------------------------------------------------------


class ProcessExecutor(Executor):
    """Runs chunks on a :class:`WorkerGroup`.

    Args:
        group: The workers (the executor owns them until :meth:`close` or :meth:`release`).
        stage: Stage name, for errors.
        on_release: Called with the group by :meth:`release` to park it; returns False
            if it was not kept (the group is then stopped).
    """

    kind = "process"
    chunk_s = 10e-3
    chunk_bytes = 4 << 20

    def __init__(
        self, group: WorkerGroup, stage: str, on_release: Any = None, splittable: bool = False
    ):
        super().__init__()
        self._group: WorkerGroup | None = group
        self._stage = stage
        self._on_release = on_release
        # Items of chunks in flight, by tag, when chunks may come back cut (their rest is
        # handed back to the stage from here: the worker does not send items back).
        self._splittable = splittable
        self._items: dict[int, list[tuple[int, Any]]] = {}
        self._selector = selectors.DefaultSelector()
        for w in group.workers:
            self._selector.register(w.endpoint.sock, selectors.EVENT_READ, w)
            w.outstanding = 0
        self._n = len(group.workers)
        self.concurrency = self._n

    @property
    def slots(self) -> int:
        return 2 * self._n

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self._group.workers] if self._group is not None else []

    def ready(self) -> bool:
        group = self._live_group()
        if all(w.ready for w in group.workers):
            return True
        self._pump(0.0, [])
        return all(w.ready for w in group.workers)

    def _live_group(self) -> WorkerGroup:
        group = self._group
        if group is None:
            raise RuntimeError("ProcessExecutor used after close()")
        if group.broken is not None:
            raise group.broken
        return group

    def wait_ready(self) -> None:
        """Block until every worker has started (checking they are alive meanwhile)."""
        group = self._live_group()
        while not all(w.ready for w in group.workers):
            self._pump(_IO_TIMEOUT_S, [])
            now = time.monotonic()
            for w in group.workers:
                if not w.ready and now - w.started > _START_TIMEOUT_S:
                    raise self._fail(
                        WorkerError(
                            f"stage {self._stage}: worker process {w.pid} did not start "
                            f"within {_START_TIMEOUT_S:.0f} s"
                        )
                    )

    def submit(self, tag: int, pass_id: list[int], items: list[tuple[int, Any]]) -> None:
        group = self._live_group()
        if not all(w.ready for w in group.workers):
            self.wait_ready()
        worker = min(group.workers, key=lambda w: w.outstanding)
        splittable = self._splittable and len(items) > 1
        try:
            worker.endpoint.send(("task", tag, pass_id, items, splittable))
        except PeerClosed:
            raise self._died(worker) from None
        if splittable:
            self._items[tag] = items
        worker.outstanding += 1
        self.in_flight += 1

    def poll(self, timeout: float) -> list[Completion]:
        self._live_group()
        out: list[Completion] = []
        self._pump(timeout, out)
        self.in_flight -= len(out)
        return out

    def _pump(self, timeout: float, out: list[Completion]) -> None:
        for key, _ in self._selector.select(timeout):
            worker: _Worker = key.data
            try:
                msg = worker.endpoint.recv()
            except PeerClosed:
                raise self._died(worker) from None
            kind = msg[0]
            if kind == "done":
                _, tag, results, busy_s, cpu_s, nbytes, start, delay_s = msg
                worker.outstanding -= 1
                for i, r in enumerate(results):
                    if type(r) is Packed:
                        worker.endpoint.hold(r)  # before any send: acks must cover it
                    elif type(r) is RemoteFailure:
                        results[i] = Failure(r.rebuild("a worker process"))
                items = self._items.pop(tag, None)
                rest = items[len(results) :] if items and len(results) < len(items) else None
                done = Completion(tag, results, busy_s, cpu_s, start, nbytes, worker.pid, rest)
                done.delay_s = delay_s
                out.append(done)
                if _stats.tracer is not None:  # the worker process's track in stoker.trace
                    _trace.record_worker(self._stage, start, busy_s, len(results), worker.pid)
            elif kind == "ready":
                worker.ready = True
            elif kind == "init_failed":
                raise self._fail(
                    WorkerError(
                        f"stage {self._stage}: worker process {worker.pid} could not load "
                        f"the function (is its module importable there?):\n{msg[1]}"
                    )
                )

    def _died(self, worker: _Worker) -> WorkerError:
        try:
            code = worker.proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        return self._fail(
            WorkerError(
                f"stage {self._stage}: worker process {worker.pid} (worker {worker.index + 1} "
                f"of {self._n}) {describe_exit(code)}. The elements it was computing are "
                "lost; the iterator cannot continue."
            )
        )

    def _fail(self, err: WorkerError) -> WorkerError:
        group = self._group
        if group is not None:
            group.broken = err
        self.close()
        return err

    def resolve(self, result: Any) -> Any:
        if type(result) is Packed:
            return result.unpack()  # zero-copy views of shared memory
        return result

    def discard(self, results: Iterable[Any]) -> None:
        for r in results:
            if type(r) is Packed:
                r.release()

    @property
    def parallelism(self) -> int:
        return self._n

    def close(self, wait: bool = True) -> None:
        # Workers are stopped either way (stop message, SIGTERM, SIGKILL): a process left
        # running is a leak, and its reaping is quick next to a thread mid-call.
        del wait
        group, self._group = self._group, None
        self.in_flight = 0
        self._items.clear()
        self._selector.close()
        if group is not None:
            group.close()

    def close_soon(self) -> None:
        """:meth:`close`, the workers stopped and reaped on a background thread: an
        executor replaced mid-pass (``executor="auto"`` moving to threads) must not stall
        the consumer while its interpreters exit."""
        group, self._group = self._group, None
        self.in_flight = 0
        self._items.clear()
        self._selector.close()
        if group is not None:
            threading.Thread(target=group.close, name="stoker-reap", daemon=True).start()

    def release(self) -> None:
        """Park the workers for the next pass when idle and healthy; otherwise stop them."""
        group = self._group
        if (
            group is not None
            and self.in_flight == 0
            and group.alive
            and self._on_release is not None
            and self._on_release(group)
        ):
            self._group = None
            self._selector.close()
            return
        self.close()


def spec_bytes(request: ExecutorRequest) -> bytes:
    """``request.spec`` pickled for the workers.

    Raises:
        TypeError: cloudpickle cannot pickle it (the message says what to do).
    """
    try:
        return cloudpickle.dumps(request.spec)  # type: ignore[no-any-return]
    except Exception as e:
        raise TypeError(
            f"{request.stage}: executor='process' needs a function cloudpickle can pickle; "
            f"{type(e).__name__}: {e}. Use executor='thread'."
        ) from e


def make_process_executor(request: ExecutorRequest, spec: bytes | None = None) -> ProcessExecutor:
    """A :class:`ProcessExecutor` on ``request.concurrency`` workers (at most the CPU
    budget), taking back the workers ``request.owner``'s last pass kept, if any."""
    if spec is None:
        spec = spec_bytes(request)
    n = max(1, min(request.concurrency, request.cpu_budget))
    owner = request.owner
    key = (n, request.seed, hashlib.blake2b(spec, digest_size=16).digest())
    group = take_parked(owner, key) if owner is not None else None
    if group is None:
        ring = max(64 << 20, request.ram_budget // (8 * n))
        group = WorkerGroup(spec, n, request.seed, ring)
    on_release = functools.partial(park, owner, key) if owner is not None else None
    return ProcessExecutor(group, request.stage, on_release, request.splittable)


register_executor("process", make_process_executor)
