"""Executors: where parallel stages run user functions.

* :class:`InlineExecutor`: on the consumer's thread (cheap functions).
* :class:`ThreadExecutor`: on the process-wide, leased thread pool :data:`POOL`, for code
  that releases the GIL (NumPy, OpenCV, Pillow, file and network I/O).
* :class:`ProcessExecutor`: on persistent worker processes with shared-memory hand-off,
  for Python code that holds the GIL.

All three serve one interface (:class:`Executor`: submit chunks, poll completions), as a
cluster executor will. ``map(executor="auto")`` measures which fits (:mod:`._gil`).
"""

from __future__ import annotations

from stoker.exec._base import Completion, Executor, Failure, InlineExecutor
from stoker.exec.processes import ProcessExecutor, WorkerGroup, clear_parked, live_worker_pids
from stoker.exec.threads import POOL, ThreadExecutor, ThreadPool

__all__ = [
    "POOL",
    "Completion",
    "Executor",
    "Failure",
    "InlineExecutor",
    "ProcessExecutor",
    "ThreadExecutor",
    "ThreadPool",
    "WorkerGroup",
    "live_worker_pids",
    "shutdown",
]


def shutdown() -> None:
    """Stop worker processes kept between passes (they restart when next needed)."""
    clear_parked()
