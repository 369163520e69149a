"""Which cluster ``address`` means: unreachable ones fail fast, naming the address.

Run in a fresh interpreter: this test session's own process is already connected to
its local cluster, and ``connect()`` reuses a connection it finds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

import stoker.ray

_SRC = str(Path(stoker.ray.__file__).resolve().parents[2])

_SCRIPT = r"""
import sys, time
from stoker.ray import RayExecutor, connect, owns_cluster
import ray

def attempt(label, **kwargs):
    start = time.monotonic()
    try:
        connect(**kwargs)
    except ConnectionError as e:
        print(label, "ConnectionError", round(time.monotonic() - start, 1), str(e))
    else:
        print(label, "connected", ray.is_initialized(), owns_cluster())
    assert not ray.is_initialized(), "a failed connect must not start a local cluster"

import threading
caught = []
def in_thread():
    try:
        connect("auto")
    except RuntimeError as e:
        caught.append(str(e))
t = threading.Thread(target=in_thread)
t.start()
t.join(30)
print("thread", "main thread" in caught[0] if caught else "no error")
assert not ray.is_initialized()

attempt("refused", address="127.0.0.1:1")
attempt("ray-client", address="ray://127.0.0.1:1")
attempt("env", address="auto")  # RAY_ADDRESS is set by the test

import os
del os.environ["RAY_ADDRESS"]
print("local", connect(None, num_cpus=1), owns_cluster(), ray.is_initialized())
import stoker.ray
stoker.ray.shutdown()  # stoker started it: stoker stops it
print("stopped", ray.is_initialized(), owns_cluster())
"""


def test_unreachable_addresses_fail_fast_and_none_starts_an_owned_cluster() -> None:
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:2", "PYTHONPATH": _SRC}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert lines["thread"] == "thread True"  # ray.init is never tried off the main thread
    assert "ConnectionError" in lines["refused"] and "'127.0.0.1:1'" in lines["refused"]
    assert "ConnectionError" in lines["ray-client"]
    assert "'ray://127.0.0.1:1'" in lines["ray-client"]
    # address="auto" with RAY_ADDRESS set goes there, and names it; never a local cluster.
    assert "ConnectionError" in lines["env"] and "RAY_ADDRESS='127.0.0.1:2'" in lines["env"]
    # address=None with nothing running: a local cluster that stoker owns, and stops.
    assert lines["local"].endswith("True True"), lines["local"]
    assert lines["stopped"] == "stopped False False"
    for key in ("refused", "ray-client", "env"):
        assert float(lines[key].split()[2]) < 60, lines[key]
    assert time.monotonic() - start < 120


def test_connect_reuses_the_connection_of_this_process(ray_cluster: object) -> None:
    assert "connected" in stoker.ray.connect("10.255.255.1:6379")  # never dialled
    assert not stoker.ray.owns_cluster()
    with pytest.raises(TypeError, match="address"):
        stoker.ray.connect(6379)  # type: ignore[arg-type]


def test_without_ray_the_error_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from stoker.ray import _cluster

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'stoker\[ray\]'"):
        _cluster.import_ray()
    with pytest.raises(ImportError, match=r"stoker\[ray\]"):
        stoker.ray.RayExecutor(object())
