"""Executors by name: what :func:`stoker.exec.make_executor` looks up.

An executor is one module that calls :func:`register_executor` with its name and a
factory taking an :class:`~stoker.exec._base.ExecutorRequest`. Built-in executors are
listed in :data:`_MODULES` and imported the first time their name is asked for, so
naming one never imports another (nor a heavy dependency a cluster executor may need).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from stoker.exec._base import Executor, ExecutorRequest, InlineExecutor

__all__ = ["executor_names", "make_executor", "register_executor"]

Factory = Callable[[ExecutorRequest], Executor]

#: Name -> module that registers it when imported.
_MODULES = {
    "auto": "stoker.exec.auto",
    "inline": "stoker.exec._registry",
    "process": "stoker.exec.processes",
    "ray": "stoker.ray",  # the [ray] extra; imports Ray only when a stage starts
    "thread": "stoker.exec.threads",
}
_lock = threading.Lock()
_FACTORIES: dict[str, Factory] = {}


def register_executor(name: str, factory: Factory) -> None:
    """Make ``map(executor=name)`` build executors with ``factory(request)``."""
    if not name or not isinstance(name, str):
        raise ValueError(f"register_executor(): name={name!r} must be a non-empty str")
    with _lock:
        _FACTORIES[name] = factory


def executor_names() -> tuple[str, ...]:
    """Every name :func:`make_executor` accepts, sorted."""
    with _lock:
        return tuple(sorted(set(_MODULES) | set(_FACTORIES)))


def make_executor(name: str, request: ExecutorRequest) -> Executor:
    """A new executor of kind ``name`` for the work ``request`` describes.

    Raises:
        ValueError: No executor has that name.
        TypeError: The executor cannot run this spec (e.g. processes need a picklable
            function).
    """
    with _lock:
        factory = _FACTORIES.get(name)
    if factory is None:
        module = _MODULES.get(name)
        if module is None:
            raise ValueError(f"executor={name!r} must be one of {executor_names()}")
        importlib.import_module(module)
        with _lock:
            factory = _FACTORIES[name]
    return factory(request)


register_executor("inline", lambda request: InlineExecutor(request.spec))
