"""The code a Ray actor runs: one stage's element function, shipped once.

:class:`StageActor` is a plain class; :func:`remote_class` wraps it with ``ray.remote`` the
first time it is needed, so importing this module does not import Ray. The actor gets the
stage's spec (``element_fn(pass_id)``), cloudpickled, and the driver's ``sys.path`` in
its constructor; every call then
carries only elements: ``run(pass_id, [(tag, [(index, element), ...]), ...])`` returns
``[(tag, results, busy_s, cpu_s), ...]``, one entry per chunk, an element whose function
raised replaced by a :class:`~stoker.exec._worker.RemoteFailure` (the exception pickled
with its traceback as text).

Seeding matches worker processes: with ``Options.seed`` the global ``random`` and
``np.random`` generators are reseeded from ``(seed, pass, element index)`` before each
element, so results do not depend on which actor computed an element; without one, each
actor seeds them once from fresh entropy and its index.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import time
from typing import Any

import cloudpickle
import numpy as np

from stoker.exec._worker import RemoteFailure, mix_seed

__all__ = ["StageActor", "remote_class"]

ElementFn = Any  # f(index, element) -> output


class StageActor:
    """Computes chunks of one stage (see the module docstring)."""

    def __init__(self, spec_bytes: bytes, seed: int | None, index: int, path: list[str]):
        # The driver's import path, where it exists here (on the driver's own machine: all
        # of it), so the function's modules import as they do for worker processes; on
        # other machines they must be installed or shipped (runtime_env).
        sys.path[:0] = [p for p in path if p not in sys.path and os.path.isdir(p)]
        self._spec = cloudpickle.loads(spec_bytes)
        self._seed = seed
        base = seed if seed is not None else int.from_bytes(os.urandom(8), "little")
        worker_seed = mix_seed(base, index, 0x5EED)
        random.seed(worker_seed)
        np.random.seed(worker_seed & 0xFFFFFFFF)
        self._fns: dict[tuple[int, ...], ElementFn] = {}

    def ping(self) -> int:
        """The actor's pid, once it is up (its constructor ran)."""
        return os.getpid()

    def _fn(self, pass_id: list[int]) -> ElementFn:
        key = tuple(pass_id)
        fn = self._fns.get(key)
        if fn is None:
            fn = self._spec.element_fn(list(pass_id))
            if self._seed is not None:
                fn = functools.partial(_seeded, fn, self._seed, tuple(pass_id))
            self._fns[key] = fn
        return fn

    def run(
        self, pass_id: list[int], chunks: list[tuple[int, list[tuple[int, Any]]]]
    ) -> list[tuple[int, list[Any], float, float]]:
        """Compute every chunk; one ``(tag, results, busy_s, cpu_s)`` per chunk."""
        fn = self._fn(pass_id)
        out = []
        for tag, items in chunks:
            start, cpu = time.perf_counter(), time.process_time()
            results: list[Any] = []
            append = results.append
            for index, element in items:
                try:
                    append(fn(index, element))
                except BaseException as e:  # delivered to the consumer, never lost
                    append(RemoteFailure(e))
            busy, used = time.perf_counter() - start, time.process_time() - cpu
            out.append((tag, [_sendable(r) for r in results], busy, used))
        return out


_PLAIN = (np.ndarray, np.generic, int, float, complex, bool, str, bytes, type(None))


def _plain(x: Any, depth: int = 0) -> bool:
    """Whether ``x`` certainly serializes (arrays, scalars, nested tuples/lists/dicts)."""
    if isinstance(x, _PLAIN):
        return not isinstance(x, np.ndarray) or x.dtype != object
    if depth < 3 and isinstance(x, (tuple, list)):
        return all(_plain(v, depth + 1) for v in x)
    if depth < 3 and isinstance(x, dict):
        return all(_plain(v, depth + 1) for v in x.values())
    return False


def _sendable(r: Any) -> Any:
    """``r``, or a RemoteFailure when Ray could not send it back (checked only for
    results that are not plain arrays and scalars)."""
    if type(r) is RemoteFailure or _plain(r):
        return r
    try:
        cloudpickle.dumps(r)
    except Exception as e:
        try:
            raise TypeError(
                f"the map function returned a {type(r).__name__} that cannot be sent back "
                f"from the Ray actor ({type(e).__name__}: {e}); return NumPy arrays, "
                "scalars, bytes, tuples or dicts"
            ) from None
        except TypeError as err:
            return RemoteFailure(err)
    return r


def _seeded(fn: ElementFn, seed: int, pass_id: tuple[int, ...], index: int, x: Any) -> Any:
    s = mix_seed(seed, *pass_id, index)
    random.seed(s)
    np.random.seed(s & 0xFFFFFFFF)
    return fn(index, x)


@functools.cache
def remote_class() -> Any:
    """``ray.remote(StageActor)`` (made once; Ray is imported here)."""
    import ray

    return ray.remote(StageActor)
