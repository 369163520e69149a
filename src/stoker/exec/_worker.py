"""The main loop of a worker process (``python -c "...; main(fd)"``).

Protocol on the socket (objects through :class:`~stoker.exec.shared_memory.Endpoint`)::

    parent -> worker   ("init", spec_bytes, worker_index, seed, max_ring_bytes)   once
                       ("task", tag, pass_id, [(index, element), ...], splittable)
                       ("stop",)
    worker -> parent   ("ready", pid) | ("init_failed", traceback_text)   once
                       ("done", tag, results, busy_s, cpu_s, nbytes, start, delay_s)
                                                                   per task, in order

``spec_bytes`` is the stage's element-function spec pickled with cloudpickle, shipped once
per worker. A ``splittable`` task may come back *cut*, with fewer results than items:
the worker stops a chunk once it has run :data:`~stoker.exec._base.CUT_FACTOR` times as
long as its elements took in the last chunks (the work changed under it), and the parent
hands the elements not started to the stage again. An element whose function raised
comes back as a :class:`RemoteFailure`; one holding large arrays as a
:class:`~stoker.exec.shared_memory.Packed`, its arrays left in the worker's ring until
the consumer takes the element.

Seeding: with a seed, the global ``random`` and ``np.random`` generators are reseeded
from ``(seed, pass, element index)`` before every element, so augmentations that use
them are the same whichever worker computes an element, run after run. Without one,
each worker seeds them once from fresh entropy and its index, so workers never repeat
each other's draws (a forked worker would copy its parent's state).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import time
import traceback
from typing import Any

import cloudpickle
import numpy as np

from stoker.exec._base import CUT_FACTOR, CUT_MIN_S, ElementFn, Failure, run_chunk
from stoker.exec.shared_memory import OOB_MIN_BYTES, Endpoint, PeerClosed

__all__ = ["RemoteFailure", "RemoteTraceback", "main", "mix_seed"]

_MASK64 = (1 << 64) - 1

#: True in a worker process once :func:`main` runs (libraries ask, e.g. stoker.image keeps
#: OpenCV to one thread there: the workers already use every core).
SERVING = False


def mix_seed(*values: int) -> int:
    """A 64-bit seed from several integers (splitmix64 folding; fast in pure Python)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & _MASK64
        h ^= h >> 29
    return h


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker; set as its ``__cause__``."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class RemoteFailure:
    """An exception raised in a worker, as it travels back to the parent.

    Attributes:
        exc_bytes: The exception pickled with cloudpickle (``None`` if it would not pickle).
        type_name: ``module.QualName`` of the exception type.
        message: ``str(exc)``.
        traceback: The formatted traceback from the worker.
    """

    __slots__ = ("exc_bytes", "message", "traceback", "type_name")

    def __init__(self, exc: BaseException):
        t = type(exc)
        self.type_name = f"{t.__module__}.{t.__qualname__}"
        self.message = str(exc)
        self.traceback = "".join(traceback.format_exception(t, exc, exc.__traceback__))
        try:
            self.exc_bytes: bytes | None = cloudpickle.dumps(exc)
        except Exception:
            self.exc_bytes = None

    def rebuild(self, where: str) -> BaseException:
        """The exception again in the parent, its worker traceback as ``__cause__``;
        ``where`` (e.g. "a worker process") names the worker in a stand-in's message."""
        exc: Any = None
        if self.exc_bytes is not None:
            try:
                exc = cloudpickle.loads(self.exc_bytes)
            except Exception:
                exc = None
        if not isinstance(exc, BaseException):
            exc = RuntimeError(
                f"{self.type_name}: {self.message} (raised in {where}; the exception "
                "itself could not be pickled, so this stands in for it)"
            )
        exc.__cause__ = RemoteTraceback(self.traceback)
        return exc  # type: ignore[no-any-return]

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.exc_bytes, self.type_name, self.message, self.traceback)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.exc_bytes, self.type_name, self.message, self.traceback = state


def _seeded(fn: ElementFn, seed: int, pass_id: list[int]) -> ElementFn:
    def call(index: int, element: Any) -> Any:
        s = mix_seed(seed, *pass_id, index)
        random.seed(s)
        np.random.seed(s & 0xFFFFFFFF)
        return fn(index, element)

    return call


def _has_array(x: Any, depth: int = 0) -> bool:
    """Whether ``x`` holds an array worth leaving in shared memory until it is used."""
    if isinstance(x, np.ndarray):
        return x.nbytes >= OOB_MIN_BYTES
    if depth < 3 and isinstance(x, (tuple, list)):
        return any(_has_array(v, depth + 1) for v in x)
    if depth < 3 and isinstance(x, dict):
        return any(_has_array(v, depth + 1) for v in x.values())
    return False


def _sendable(results: list[Any]) -> list[Any]:
    out = []
    for r in results:
        try:
            cloudpickle.dumps(r)
        except Exception as e:
            try:
                raise TypeError(
                    f"the map function returned a {type(r).__name__} that cannot be sent "
                    f"back from the worker process ({type(e).__name__}: {e}); return NumPy "
                    'arrays, scalars, bytes, tuples or dicts, or use executor="thread"'
                ) from None
            except TypeError as err:
                r = RemoteFailure(err)
        out.append(r)
    return out


def _run_delay() -> float:
    """Seconds this process has waited for a CPU while runnable (Linux schedstat; 0.0
    where it is missing): what tells a chunk preempted on a busy machine from one whose
    calls wait. [Unit: second]"""
    try:
        with open("/proc/self/schedstat", "rb") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, ValueError, IndexError):
        return 0.0


def main(fd: int) -> None:
    """Serve tasks on socket ``fd`` until told to stop or the parent goes away."""
    global SERVING
    SERVING = True
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    endpoint = Endpoint(socket.socket(fileno=fd))
    try:
        _serve(endpoint)
    except PeerClosed:
        pass  # the parent exited or dropped us: nothing left to do
    finally:
        endpoint.close()


def _serve(endpoint: Endpoint) -> None:
    msg = endpoint.recv()
    if msg[0] != "init":
        raise RuntimeError(f"stoker worker: expected init, got {msg[0]!r}")
    _, spec_bytes, worker_index, seed, max_ring_bytes = msg
    endpoint.max_ring_bytes = max_ring_bytes
    try:
        spec = cloudpickle.loads(spec_bytes)
    except BaseException:
        endpoint.send(("init_failed", traceback.format_exc()))
        return
    del spec_bytes
    base = seed if seed is not None else int.from_bytes(os.urandom(8), "little")
    worker_seed = mix_seed(base, worker_index, 0x5EED)
    random.seed(worker_seed)
    np.random.seed(worker_seed & 0xFFFFFFFF)
    endpoint.send(("ready", os.getpid()))
    fns: dict[tuple[int, ...], ElementFn] = {}
    per_s = 0.0  # wall time per element of the last chunks (0: not measured yet)
    while True:
        msg = endpoint.recv()
        if msg[0] == "stop":
            return
        _, tag, pass_id, items, splittable = msg
        key = tuple(pass_id)
        fn = fns.get(key)
        if fn is None:
            fn = spec.element_fn(list(pass_id))
            if seed is not None:
                fn = _seeded(fn, seed, list(pass_id))
            fns[key] = fn
        cut_s = 0.0
        if splittable and per_s > 0.0:
            cut_s = max(CUT_MIN_S, CUT_FACTOR * per_s * len(items))
        delay = _run_delay()
        done = run_chunk(fn, tag, items, time.process_time, cut_s)
        delay = _run_delay() - delay
        if done.results:
            # Slow to rise: a chunk that mixes old elements and slower new ones must not
            # let the next chunk run long before it is cut.
            per = done.busy_s / len(done.results)
            per_s = per if per_s == 0.0 or per < per_s else 0.8 * per_s + 0.2 * per
        del msg, items
        results = []
        nbytes = 0
        for r in done.results:
            if type(r) is Failure:
                assert r.exc is not None
                r = RemoteFailure(r.exc)
            elif _has_array(r):
                try:
                    packed = endpoint.pack(r)
                except Exception:
                    packed = None  # unpicklable: _sendable() below reports it
                if packed is not None:
                    nbytes += sum(n for _, n in packed.descs)
                    r = packed
            results.append(r)
        try:
            endpoint.send(
                ("done", tag, results, done.busy_s, done.cpu_s, nbytes, done.start, delay)
            )
        except PeerClosed:
            raise
        except Exception:
            # Some output cannot be pickled: fail those elements, send the rest.
            endpoint.send(
                (
                    "done",
                    tag,
                    _sendable(results),
                    done.busy_s,
                    done.cpu_s,
                    nbytes,
                    done.start,
                    delay,
                )
            )
        # Idle, a worker keeps no reference to its last outputs (Options.ram_budget).
        done = results = r = packed = None  # type: ignore[assignment]


if __name__ == "__main__":  # pragma: no cover - started as a module for debugging
    main(int(sys.argv[1]))
