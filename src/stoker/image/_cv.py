"""The one place that imports OpenCV, so a missing extra gives one clear message.

It also keeps OpenCV's own thread pool out of the way of a parallel pipeline. OpenCV
splits a large ``cvtColor`` or ``resize`` over a pool of its own (one thread per core);
inside ``map(..., num_parallel_calls=...)`` the pipeline already runs one call per core,
so that pool's threads only contend with the pipeline's for the same cores (and spin
while they wait for work): on the seed's image pipeline they cost about a third more CPU
per image. So the first time a stoker.image op runs on one of the pipeline's worker
threads or in a worker process, :func:`pipeline_threads` sets OpenCV to one thread
(``cv2.setNumThreads(1)``, process-wide), unless the program has already chosen a
thread count of its own (``cv2.getNumThreads()`` differs from OpenCV's default). Ops
called outside a pipeline's workers leave OpenCV as it is.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

__all__ = ["cv2", "pipeline_threads"]

try:
    import cv2 as _cv2
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("stoker.image needs OpenCV and Pillow: pip install 'stoker[images]'") from e

cv2: Any = _cv2

#: OpenCV's thread count when stoker.image was imported: a different count later was set
#: by the program, and is kept.
DEFAULT_THREADS: int = int(_cv2.getNumThreads())
#: Names of the threads stoker's thread executors run calls on (exec.threads).
_WORKER_THREAD_PREFIX = "stoker-thread"
_lock = threading.Lock()
_done = False  # set once OpenCV has been pinned (or left as the program chose)


def _in_pipeline_worker() -> bool:
    if threading.current_thread().name.startswith(_WORKER_THREAD_PREFIX):
        return True
    worker = sys.modules.get("stoker.exec._worker")
    return bool(getattr(worker, "SERVING", False))


def pipeline_threads() -> None:
    """Set OpenCV to one thread if this call runs on a pipeline's worker (see the module
    docstring); a no-op after the first time, and outside the workers."""
    global _done
    if _done or not _in_pipeline_worker():
        return
    with _lock:
        if not _done:
            if int(cv2.getNumThreads()) == DEFAULT_THREADS:
                cv2.setNumThreads(1)
            _done = True
