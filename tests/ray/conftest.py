"""One local Ray cluster for the whole test session (``ray.init`` costs ~10 s and ~0.5 GB).

Every test here needs Ray (``pytest.importorskip``). The cluster has 4 logical CPUs (Ray
keeps a started worker process per CPU, so actors start without waiting for a Python to
boot; the tests' actors reserve none), starts with a hard timeout, and is shut down as
soon as the session leaves this directory. Tests take it through the ``ray_cluster``
fixture (autouse in this directory).
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Keep the test cluster on the loopback interface. Ray takes the machine's outward-facing
# address as the node's (``ray._private.services.get_node_ip_address``) unless cluster mode
# is off, which this variable does; it must be set before ``ray`` is first imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


#: ray.init() that has not returned by then fails the session's first Ray test.
_START_TIMEOUT_S = 90


def _alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"ray.init() did not return within {_START_TIMEOUT_S} s")


_started: list[Any] = []  # the ray module, once a test here started it


def _start(ray: Any) -> None:
    _started[:] = [ray]
    if ray.is_initialized():
        return
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(_START_TIMEOUT_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ray.init(
                num_cpus=4,
                include_dashboard=False,
                configure_logging=False,
                log_to_driver=False,
                object_store_memory=200 << 20,
            )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    node_ip = ray.util.get_node_ip_address()
    if node_ip != "127.0.0.1":
        raise RuntimeError(f"the test cluster must listen on loopback only, not on {node_ip}")


@pytest.fixture(scope="session")
def _ray_session() -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray's own import-time deprecation warnings
        ray = pytest.importorskip("ray")
    _start(ray)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The cluster stops as soon as the session leaves this directory (after the last
    test's fixtures are torn down): its raylet and workers are this process's children,
    which tests/test_leaks.py counts as leaks."""
    try:
        return (yield)
    finally:
        here = Path(__file__).parent
        if nextitem is None or here not in Path(nextitem.path).parents:
            for ray in _started:
                if ray.is_initialized():
                    from stoker.ray.executor import clear_parked

                    clear_parked()
                    ray.shutdown()


@pytest.fixture(autouse=True)
def ray_cluster(_ray_session: Any) -> Iterator[Any]:
    """The session's Ray module, connected. Actors reserve no CPU here (``num_cpus=0``),
    so kept actors of one test never block the next test's from starting."""
    import stoker.ray

    _start(_ray_session)  # again, if an earlier test outside this directory stopped it
    old = stoker.ray.configure(num_cpus=0)
    try:
        yield _ray_session
    finally:
        stoker.ray.configure(num_cpus=old.num_cpus)


@pytest.fixture(autouse=True, scope="module")
def _stop_kept_actors() -> Iterator[None]:
    """Actors kept between passes stop after each module (stoker did not start this
    cluster: only its actors stop)."""
    yield
    import stoker.ray

    stoker.ray.shutdown()


@pytest.fixture
def assert_stopped(ray_cluster: Any) -> Callable[[Any], None]:
    """Asserts an actor is gone: calls to it fail (``ray.kill`` acts asynchronously)."""

    def check(handle: Any) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                ray_cluster.get(handle.ping.remote(), timeout=10)
            except ray_cluster.exceptions.RayActorError:
                return
            time.sleep(0.1)
        raise AssertionError(f"actor {handle} still answers after close()")

    return check
