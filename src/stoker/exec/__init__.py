"""Executors: where parallel stages run user functions.

* ``"inline"``: on the consumer's thread (cheap functions).
* ``"thread"``: on the process-wide, leased thread pool, for code that releases the GIL
  (NumPy, OpenCV, Pillow, file and network I/O).
* ``"process"``: on persistent worker processes with shared-memory hand-off, for Python
  code that holds the GIL.
* ``"auto"``: measures the function on its first elements and moves it to one of those.

Every executor serves one interface (:class:`Executor`: submit chunks, poll completions),
and a stage gets one by name from :func:`make_executor`; a new executor (a cluster) is one
module that calls :func:`register_executor`.
"""

from __future__ import annotations

from stoker.exec._base import Completion, Executor, ExecutorRequest, Failure
from stoker.exec._registry import executor_names, make_executor, register_executor

__all__ = [
    "Completion",
    "Executor",
    "ExecutorRequest",
    "Failure",
    "executor_names",
    "live_worker_pids",
    "make_executor",
    "register_executor",
    "shutdown",
]


def live_worker_pids() -> list[int]:
    """Pids of every worker process stoker runs now (kept ones included)."""
    from stoker.exec.processes import live_worker_pids as pids

    return pids()


def shutdown() -> None:
    """Stop worker processes kept between passes (they restart when next needed)."""
    from stoker.exec.processes import clear_parked

    clear_parked()
