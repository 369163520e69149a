"""Connecting to Ray: which cluster, who owns it, and failing fast when it is not there.

``address`` (of :func:`connect` and :class:`~stoker.ray.RayExecutor`):

* ``"auto"`` (the default): a cluster that already runs: the one this process is already
  connected to (``ray.init()`` called before), else ``RAY_ADDRESS``, else the one
  ``ray start --head`` started on this machine. None of those: a :class:`ConnectionError`
  that says so. Never a silent local cluster instead.
* ``"host:port"`` or ``"ray://host:port"``: that cluster. One that cannot be reached is a
  :class:`ConnectionError` naming it within :data:`CONNECT_TIMEOUT_S` (a TCP probe answers
  in seconds; Ray's own connect gives up after about 20 s).
* ``None``: the cluster this process is already connected to, else ``RAY_ADDRESS`` when it
  is set (an error if unreachable, as above), else a new local cluster on this machine.
  stoker *owns* a cluster it starts: it shuts it down at interpreter exit (or at
  :func:`shutdown`). A cluster stoker did not start is never shut down by stoker; only
  the actors stoker created on it are stopped.

``ray.init`` must run on the main thread (a driver started from another thread lost its
connection to the cluster a minute later in Ray 2.60). A stage that first needs Ray on
another thread (under ``prefetch``, or iterated by a loader thread) raises a
``RuntimeError`` saying so, unless :func:`stoker.ray.connect` ran on the main thread first.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
from typing import Any

__all__ = ["CONNECT_TIMEOUT_S", "connect", "import_ray", "owns_cluster", "shutdown"]

#: The longest :func:`connect` takes to report an unreachable cluster. [Unit: second]
CONNECT_TIMEOUT_S = 60.0
#: TCP probe of ``host:port`` before handing the address to Ray. [Unit: second]
_PROBE_TIMEOUT_S = 5.0

_lock = threading.Lock()
_owned = False  # stoker called ray.init() that started a local cluster
_address: str | None = None  # what we connected to, for messages


def import_ray() -> Any:
    """``import ray``, or an ImportError giving the pip command."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "stoker.ray needs Ray: pip install 'stoker[ray]' (or pip install 'ray>=2.9')"
        ) from e
    return ray


def owns_cluster() -> bool:
    """Whether the Ray cluster in use was started by stoker (and is shut down by it)."""
    return _owned


def _probe(address: str, where: str) -> None:
    """Raise ConnectionError (naming ``where``) if ``host:port`` accepts no TCP connection."""
    target = address.removeprefix("ray://")
    if "://" in target:
        return  # a scheme we do not know: Ray decides
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    host = host.strip("[]") or "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=_PROBE_TIMEOUT_S):
            pass
    except OSError as e:
        raise ConnectionError(
            f"stoker.ray: cannot reach the Ray cluster at {where} ({e}). Is it running "
            "(`ray status` on its head node) and is the port open from here?"
        ) from None


def connect(address: str | None = "auto", *, num_cpus: int | None = None) -> str:
    """Connect this process to Ray once (see the module docstring for ``address``).

    Args:
        address: ``"auto"``, ``"host:port"``, ``"ray://host:port"`` or ``None``.
        num_cpus: CPUs of a local cluster stoker starts (``address=None`` only); default:
            Ray's (every CPU of the machine).

    Returns:
        A description of the cluster, for messages.

    Raises:
        ConnectionError: The cluster cannot be reached (names the address).
        ImportError: Ray is not installed.
    """
    global _owned, _address
    if address is not None and not isinstance(address, str):
        raise TypeError(f"address={address!r} must be a str or None")
    ray = import_ray()
    with _lock:
        if ray.is_initialized():
            return _address or "the Ray cluster this process is connected to"
        if threading.current_thread() is not threading.main_thread():
            # Seen with Ray 2.60: a driver started from another thread lost its GCS
            # connection a minute later and Ray ended the process.
            raise RuntimeError(
                "stoker.ray: Ray is not started yet, and this is not the main thread (a "
                "prefetch or interleave thread runs this stage). Call "
                f"stoker.ray.connect({address!r}) on the main thread before iterating."
            )
        env = os.environ.get("RAY_ADDRESS") or None
        if address is None and env is None:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                configure_logging=False,
                log_to_driver=True,
            )
            _owned = True
            _address = "a local Ray cluster started by stoker"
            atexit.register(shutdown)
            return _address
        target = env if address in (None, "auto") and env is not None else address
        assert target is not None
        where = f"RAY_ADDRESS={env!r}" if target == env else f"address={target!r}"
        if target != "auto":
            _probe(target, where)
        try:
            ray.init(address=target, configure_logging=False)
        except ConnectionError as e:
            hint = (
                " Start one with `ray start --head`, set RAY_ADDRESS, or pass address=None "
                "to let stoker start a local cluster."
                if target == "auto"
                else ""
            )
            raise ConnectionError(
                f"stoker.ray: cannot connect to the Ray cluster at {where}: {e}.{hint}"
            ) from None
        _owned = False
        _address = f"the Ray cluster at {target}"
        return _address


def shutdown() -> None:
    """Shut Ray down if stoker started the cluster; otherwise only disconnect nothing.

    A cluster stoker connected to (``"auto"``, an address) is left running, as are the
    other drivers' actors on it.
    """
    global _owned, _address
    with _lock:
        if not _owned:
            return
        _owned = False
        _address = None
    try:
        import ray

        ray.shutdown()
    except Exception:  # pragma: no cover - at exit, best effort
        pass
