"""Safety nets that stop workers at interpreter exit.

Explicit ``close()`` is the normal path, and ``weakref.finalize`` on each iterator covers
dropped iterators. What is still running when the interpreter exits is stopped here:

* ``threading._register_atexit`` runs before the interpreter joins non-daemon threads and
  before daemon threads are frozen mid-call (cpython#104690 added it for
  ``concurrent.futures``); a test checks that this private API still exists.
* ``atexit`` is the fallback if it is gone.

Anything registered is held weakly, so registering never keeps an object alive.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["at_exit", "exiting", "is_finalizing"]

_LOG = logging.getLogger(__name__)

_lock = threading.RLock()  # reentrant: finalizers run by the gc may unregister
_callbacks: weakref.WeakValueDictionary[int, _Stoppable] = weakref.WeakValueDictionary()
_counter = 0
_exiting = False
_installed = False


class _Stoppable(Protocol):
    """Anything with ``stop_at_exit()`` (weakly referenceable)."""

    def stop_at_exit(self) -> None: ...


def is_finalizing() -> bool:
    """True while the interpreter shuts down: joining threads then can deadlock.

    Grain skips joins here for the same reason (cpython#123940).
    """
    return sys.is_finalizing()


def exiting() -> bool:
    """True once the exit hooks have started running."""
    return _exiting


def at_exit(obj: _Stoppable) -> Callable[[], None]:
    """Call ``obj.stop_at_exit()`` at interpreter exit unless it is gone by then.

    Returns:
        A function that unregisters ``obj`` (call it when ``obj`` stops by itself).
    """
    global _counter
    with _lock:
        _install()
        _counter += 1
        key = _counter
        _callbacks[key] = obj

    def unregister() -> None:
        with _lock:
            _callbacks.pop(key, None)

    return unregister


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(_run)
        except RuntimeError:  # pragma: no cover - interpreter already shutting down
            pass
    atexit.register(_run)


def _run() -> None:
    global _exiting
    _exiting = True
    with _lock:
        objs = list(_callbacks.values())
        _callbacks.clear()
    # Newest first: outer stages (registered later) stop before the inputs they drain.
    for obj in reversed(objs):
        try:
            obj.stop_at_exit()
        except Exception:  # pragma: no cover - best effort at exit
            _LOG.debug("stoker: error while stopping %r at exit", obj, exc_info=True)
