"""What every benchmark script shares: the command-line contract, rows, and measuring a cell.

The contract (the runner, ``python -m benchmarks``, relies on it): every
``benchmarks/bench_*.py`` takes ``--quick`` (tiny sizes, for CI's smoke run; its numbers mean
nothing), ``--json PATH`` and ``--peer-python PYTHON`` (an interpreter that has the peers:
tf.data, torch, grain), and with ``--json`` writes::

    {"benchmark": NAME, "rows": [ROW, ...]}

    ROW = {"workload": str, "peer": str, "value": float, "unit": str,
           "limit": float | None, "ratio_to_limit": float | None,
           "peak_rss_mb": float | None, "cpu_s": float | None, "note": str}

``peer`` is ``"stoker"``, ``"stoker-<variant>"``, ``"tf.data"``, ``"torch"``, ``"grain"``,
``"serial"`` or ``"limit"``; ``unit`` is ``"el/s"``, ``"MB/s"``, ``"img/s"`` (higher is
better) or ``"us/el"``, ``"ms"`` (lower is better). ``ratio_to_limit`` is value / limit for
rates and limit / value for costs, so 1.0 is the limit and higher is always better.

This module imports neither stoker nor any peer: a peer's half of a benchmark runs in
another interpreter (``--peer-python``) that imports this file too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LOWER_IS_BETTER",
    "Cell",
    "add_contract_args",
    "measure",
    "ratio",
    "row",
    "run_peer_child",
    "write_json",
]

#: Units where a smaller value is better; the ratio to the limit is then limit / value.
LOWER_IS_BETTER = frozenset({"us/el", "ms", "s"})

# How often the RSS of child processes (worker processes of a peer) is sampled.
_CHILD_SAMPLE_S = 0.25


def add_contract_args(parser: argparse.ArgumentParser) -> None:
    """Adds ``--quick``, ``--json`` and ``--peer-python`` to a script's parser."""
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, for CI's smoke run (numbers mean nothing)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the rows to PATH as JSON")
    parser.add_argument(
        "--peer-python",
        metavar="PYTHON",
        default="",
        help="an interpreter with the peers (tensorflow, torch, grain); they run in it",
    )


def ratio(value: float | None, limit: float | None, unit: str) -> float | None:
    """Value relative to the limit, higher is better (see the module docstring)."""
    if value is None or limit is None or value <= 0 or limit <= 0:
        return None
    return limit / value if unit in LOWER_IS_BETTER else value / limit


@dataclass
class Cell:
    """What :func:`measure` saw of one cell: wall and CPU seconds, peak RSS in MB."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float | None = None
    _children_peak_mb: float = field(default=0.0, repr=False)


def row(
    workload: str,
    peer: str,
    value: float,
    unit: str,
    limit: float | None = None,
    cell: Cell | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One row of the JSON contract."""
    return {
        "workload": workload,
        "peer": peer,
        "value": float(value),
        "unit": unit,
        "limit": None if limit is None else float(limit),
        "ratio_to_limit": ratio(value, limit, unit),
        "peak_rss_mb": None if cell is None or cell.peak_rss_mb is None else cell.peak_rss_mb,
        "cpu_s": None if cell is None else round(cell.cpu_s, 4),
        "note": note,
    }


def write_json(path: str | None, benchmark: str, rows: Iterable[dict[str, Any]]) -> None:
    """Writes ``{"benchmark": ..., "rows": [...]}`` to ``path`` (nothing if ``path`` is None)."""
    if not path:
        return
    with open(path, "w") as f:
        json.dump({"benchmark": benchmark, "rows": list(rows)}, f, indent=1)
        f.write("\n")


def _reset_peak_rss() -> bool:
    """Resets this process's peak RSS (Linux: VmHWM); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb(reset_ok: bool) -> float:
    """This process's peak RSS since the reset (or since it started) in MB."""
    if reset_ok:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _children() -> list[Any]:
    try:
        import psutil

        return list(psutil.Process().children(recursive=True))
    except Exception:  # psutil missing, or a process vanished while listed
        return []


def _children_cpu(children: list[Any]) -> dict[int, float]:
    out = {}
    for child in children:
        try:
            t = child.cpu_times()
            out[child.pid] = t.user + t.system
        except Exception:  # exited meanwhile
            pass
    return out


@contextmanager
def measure() -> Iterator[Cell]:
    """Measures the ``with`` body: wall seconds, CPU seconds and peak RSS, children included.

    CPU is this process's plus that of its child processes (live ones through psutil, exited
    ones through ``os.times``). Peak RSS is this process's high-water mark during the body
    (reset at its start on Linux) plus the largest total RSS of its live children, sampled
    every 0.25 s (short-lived children between samples are caught by ``RUSAGE_CHILDREN``).
    """
    cell = Cell()
    reset_ok = _reset_peak_rss()
    before = os.times()
    cpu_before = time.process_time()
    children_before = _children_cpu(_children())
    child_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stop = threading.Event()
    last_children: list[Any] = []

    def sample() -> None:
        while not stop.wait(_CHILD_SAMPLE_S):
            children = _children()
            last_children[:] = children
            total = 0
            for child in children:
                try:
                    total += child.memory_info().rss
                except Exception:
                    pass
            cell._children_peak_mb = max(cell._children_peak_mb, total / (1 << 20))

    sampler = threading.Thread(target=sample, name="bench-rss-sampler", daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        yield cell
    finally:
        cell.wall_s = time.perf_counter() - start
        stop.set()
        sampler.join()
        cpu_self = time.process_time() - cpu_before
        after = os.times()
        children_after = _children_cpu(_children() or last_children)
        live = sum(t - children_before.get(pid, 0.0) for pid, t in children_after.items())
        exited = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        cell.cpu_s = cpu_self + live + exited
        grown = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        children_mb = cell._children_peak_mb
        if grown > child_maxrss:  # a child that exited during the body was the biggest yet
            children_mb = max(children_mb, grown / 1024)
        cell.peak_rss_mb = round(_peak_rss_mb(reset_ok) + children_mb, 1)


def run_peer_child(
    peer_python: str, script: str, args: list[str], timeout_s: float = 1800
) -> tuple[Any, str]:
    """Runs ``script`` with ``peer_python`` and ``args`` (which make it print its results as
    JSON on its last stdout line); returns (the parsed JSON, ""), or ([], why) on failure."""
    import subprocess

    cmd = [peer_python, script, *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"peers not run ({peer_python}): {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return [], f"peers not run ({peer_python}): {last}"
    lines = proc.stdout.strip().splitlines()
    for line in proc.stdout.splitlines():
        if line.startswith("skipped:"):
            print(line)
    try:
        return json.loads(lines[-1]), ""
    except (IndexError, ValueError):
        return [], f"peers not run ({peer_python}): no JSON on the last line of its output"
