"""The code a Ray actor runs for ``interleave(..., executor="ray")``: whole inner datasets.

:class:`FileReader` gets the interleave's ``map_func`` (cloudpickled, once, in its
constructor) and opens input elements' datasets on request: ``read(run, ordinal,
element, state, skip, ...)`` runs ``map_func(element)``, makes its iterator (restored to ``state``
when one is given, then ``skip`` elements pulled and dropped) and returns the next
elements, as many as fit one call (:data:`~stoker.ray.executor.CALL_S` of reading, a byte
cap, an element cap). The iterator stays open in the actor, so the next call for the same
input element at the position the last one ended continues it; a call at any other
position (after the driver lost an actor, or restored a checkpoint) opens the dataset
again and skips to it. An exception raised while reading ends the call, in its place,
so the elements after it come in the next call exactly as a local iterator would go on.

Inner datasets iterate as their own pipelines in the actor, with the pipeline's
``deterministic`` and ``seed`` options and its root pass (so their random ops draw what
they draw locally); their parallel ops use the actor's node's CPUs.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import Any

import cloudpickle

from stoker.exec._worker import RemoteFailure
from stoker.ray._actor import _sendable

__all__ = ["FileReader", "ReadResult", "remote_reader"]

#: ``(open_error, items, ended, busy_s, cpu_s)``: ``open_error`` is a RemoteFailure when
#: ``map_func`` raised (or returned no Dataset); ``items`` hold elements and RemoteFailures.
ReadResult = tuple[Any, list[Any], bool, float, float]


def _payload(x: Any) -> int:
    import numpy as np

    if isinstance(x, np.ndarray):
        return int(x.nbytes)
    if isinstance(x, (bytes, bytearray)):
        return len(x)
    if isinstance(x, (tuple, list)):
        return sum(_payload(v) for v in x[:64])
    if isinstance(x, dict):
        return sum(_payload(v) for v in list(x.values())[:64])
    return 64


class FileReader:
    """Reads inner datasets of one interleave stage (see the module docstring)."""

    def __init__(
        self, fn_bytes: bytes, stage: str, options: dict[str, Any], path: list[str]
    ) -> None:
        sys.path[:0] = [p for p in path if p not in sys.path and os.path.isdir(p)]
        self._fn = cloudpickle.loads(fn_bytes)
        self._stage = stage
        self._options = options
        self._open: dict[int, tuple[int, Any]] = {}  # ordinal -> (position, iterator)
        self._run = -1  # the driver's pass these open iterators belong to

    def ping(self) -> int:
        """The actor's pid, once it is up."""
        return os.getpid()

    def _iterator(self, element: Any, ordinal: int, root_pass: int) -> Any:
        from stoker.dataset import Dataset
        from stoker.iterator import IterContext
        from stoker.ops._common import call, func_name
        from stoker.options import Options

        inner = call(self._fn, element)
        if not isinstance(inner, Dataset):
            raise TypeError(
                f"{self._stage}: {func_name(self._fn)}() must return a stoker Dataset, got "
                f"{type(inner).__name__} for input element {ordinal}"
            )
        return inner._make_iterator(IterContext(Options(**self._options), root_pass))

    def read(
        self,
        run: int,
        ordinal: int,
        element: Any,
        state: Any,
        position: int,
        root_pass: int,
        max_items: int,
        max_s: float,
        max_bytes: int,
    ) -> ReadResult:
        """The elements of input element ``ordinal``'s dataset from ``position`` (pulls
        after ``state``) on; ``ended`` once it is exhausted (and closed here)."""
        start, cpu = time.perf_counter(), time.process_time()
        if run != self._run:  # kept from an earlier pass: what it had open is stale
            self.forget(list(self._open))
            self._run = run
        entry = self._open.pop(ordinal, None)
        if entry is not None and entry[0] != position:
            entry[1].close()
            entry = None
        if entry is None:
            try:
                it = self._iterator(element, ordinal, root_pass)
                if state is not None:
                    it.set_state(state)
            except BaseException as e:  # delivered to the consumer at the element's turn
                return RemoteFailure(e), [], True, *_took(start, cpu)
            for _ in range(position):
                try:
                    next(it)
                except StopIteration:
                    break
                except Exception:
                    pass  # delivered before: its place is counted, not raised again
        else:
            it = entry[1]
        items: list[Any] = []
        nbytes = 0
        ended = False
        deadline = start + max_s
        while len(items) < max_items:
            try:
                x = next(it)
            except StopIteration:
                ended = True
                break
            except BaseException as e:  # ends the call in its place; the next one goes on
                items.append(RemoteFailure(e))
                break
            items.append(_sendable(x))
            nbytes += _payload(x)
            if nbytes >= max_bytes or time.perf_counter() >= deadline:
                break
        if ended:
            it.close()
        else:
            self._open[ordinal] = (position + len(items), it)
        return None, items, ended, *_took(start, cpu)

    def forget(self, ordinals: list[int]) -> None:
        """Close the datasets of input elements the driver no longer reads."""
        for o in ordinals:
            entry = self._open.pop(o, None)
            if entry is not None:
                entry[1].close()


def _took(start: float, cpu: float) -> tuple[float, float]:
    return time.perf_counter() - start, time.process_time() - cpu


@functools.cache
def remote_reader() -> Any:
    """``ray.remote(FileReader)`` (made once; Ray is imported here)."""
    import ray

    return ray.remote(FileReader)
