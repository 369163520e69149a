"""The budgets hold: ``cpu_budget=1`` uses about one core; ``ram_budget`` bounds resident memory.

Workloads:

* ``cpu_budget=1, <pipeline>``: a CPU-bound pipeline (a GIL-holding Python map, a NumPy map
  that releases the GIL, and both chained), every map ``num_parallel_calls=AUTOTUNE`` with
  ``executor="auto"``, a fast consumer. The value is the cores it used: process CPU time
  (children included) / wall time, against the budget of 1. The same pipeline with the
  machine's default budget is shown beside it (``stoker-default``).
* ``ram_budget=64 MiB, <pipeline>``: 8 MB elements and a slow consumer (it sleeps per
  element), with prefetch(AUTOTUNE), a parallel map AUTOTUNE, shuffle(32), a memory cache
  of 10 elements (80 MB: over the budget, so it stops caching and the second epoch
  recomputes), and all of them together. The value is the peak growth of
  this process's resident memory over the run (sampled every 2 ms in a thread; worker
  processes' own memory is in the note), against the budget; ``stoker-unbounded`` is the
  same pipeline with a budget far above what it would hold. ``held`` in the note is the
  RAM ledger's peak (what the stages had reserved at most).

    python benchmarks/bench_budget.py            # full size
    python benchmarks/bench_budget.py --quick    # tiny, CI smoke run (numbers mean nothing)

Every figure is the median of ``--runs`` runs (peak memory: the largest).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import _common as common
import numpy as np

MB = 1 << 20


def gil_map(x: Any) -> int:
    """Pure Python work: holds the GIL (~1 ms)."""
    s = 0
    for i in range(20_000):
        s += i * i
    return s + int(x)


def numpy_map(x: Any) -> float:
    """NumPy work that releases the GIL (~1 ms)."""
    a = np.random.default_rng(int(x) % 1000).random(60_000)
    return float(np.sort(a)[100])


def _cpu_pipelines(n: int) -> dict[str, Callable[[Any], Any]]:
    import stoker as sk

    auto: Any = sk.AUTOTUNE

    def gil(opts: Any) -> Any:
        return sk.Dataset.range(n).map(gil_map, num_parallel_calls=auto).with_options(opts)

    def numpy(opts: Any) -> Any:
        return sk.Dataset.range(n).map(numpy_map, num_parallel_calls=auto).with_options(opts)

    def both(opts: Any) -> Any:
        return (
            sk.Dataset.range(n)
            .map(numpy_map, num_parallel_calls=auto)
            .map(gil_map, num_parallel_calls=auto)
            .prefetch(auto)
            .with_options(opts)
        )

    return {"GIL map": gil, "NumPy map": numpy, "NumPy map -> GIL map": both}


def run_cpu(n: int, runs: int) -> list[dict[str, Any]]:
    import stoker as sk
    from stoker.options import cpu_count

    rows = []
    for name, make in _cpu_pipelines(n).items():
        for peer, budget in (("stoker", 1), ("stoker-default", None)):
            cores, cells = [], []
            for _ in range(runs):
                ds = make(sk.Options(cpu_budget=budget))
                with common.measure() as cell:
                    for _ in ds:
                        pass
                cores.append(cell.cpu_s / cell.wall_s)
                cells.append(cell)
            value = statistics.median(cores)
            cell = cells[cores.index(sorted(cores)[len(cores) // 2])]
            note = f"cpu_budget={budget or cpu_count()}; {n / cell.wall_s:,.0f} el/s"
            rows.append(common.row(f"cpu_budget=1, {name}", peer, value, "cores", None, cell, note))
    return rows


class _RssPeak:
    """Samples this process's RSS (and its children's) in a thread; peak growth in MB."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        gc.collect()
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self.children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-rss", daemon=True)

    def _sample(self) -> None:
        proc, n = self._proc, 0
        while not self._stop.is_set():
            rss = proc.memory_info().rss
            if rss > self.peak:
                self.peak = rss
            n += 1
            if n % 50 == 0:  # children every ~0.1 s: listing them costs more
                total = 0
                for child in proc.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except Exception:
                        pass
                self.children = max(self.children, total)
            time.sleep(0.002)

    def __enter__(self) -> _RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / MB


def _ram_pipelines(n: int, elem: int) -> dict[str, Callable[[Any], Any]]:
    import stoker as sk

    auto: Any = sk.AUTOTUNE

    def make(i: Any) -> np.ndarray:
        return np.full(elem, int(i) % 251, np.uint8)  # every page touched

    def src() -> Any:
        return sk.Dataset.range(n)

    return {
        "prefetch(AUTOTUNE)": lambda o: src().map(make).prefetch(auto).with_options(o),
        "parallel map AUTOTUNE": lambda o: src().map(make, num_parallel_calls=auto).with_options(o),
        "parallel map 8 + prefetch(16)": lambda o: (
            src().map(make, num_parallel_calls=8).prefetch(16).with_options(o)
        ),
        "shuffle(32)": lambda o: src().map(make).shuffle(32, seed=0).with_options(o),
        "memory cache, 2 epochs": lambda o: (
            src().take(10).map(make).cache().repeat(2).prefetch(auto).with_options(o)
        ),
        "map AUTOTUNE + shuffle(16) + prefetch(AUTOTUNE)": lambda o: (
            src()
            .map(make, num_parallel_calls=auto)
            .shuffle(16, seed=0)
            .prefetch(auto)
            .with_options(o)
        ),
    }


def run_ram(n: int, elem: int, budget: int, sleep_s: float, runs: int) -> list[dict[str, Any]]:
    import stoker as sk
    from stoker.autotune._ram import ledger_for

    rows = []
    for name, make in _ram_pipelines(n, elem).items():
        for peer, b in (("stoker", budget), ("stoker-unbounded", 1 << 40)):
            growths, helds, kids, count = [], [], [], 0
            for _ in range(runs):
                ds = make(sk.Options(ram_budget=b))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a shuffle capped by the budget says so
                    with _RssPeak() as rss:
                        it = iter(ds)
                        count = 0
                        for _ in it:
                            count += 1
                            time.sleep(sleep_s)  # the slow consumer
                        held = ledger_for(it._ctx).peak
                        del it
                growths.append(rss.growth_mb)
                helds.append(held / MB)
                kids.append(rss.children / MB)
            value = statistics.median(growths)
            note = (
                f"budget {b / MB:,.0f} MiB, {elem / MB:.0f} MB elements, {count} el; "
                f"max growth {max(growths):.0f} MB; held (ledger peak) {max(helds):.0f} MB; "
                f"workers' RSS {max(kids):.0f} MB"
            )
            rows.append(
                common.row(f"ram_budget=64 MiB, {name}", peer, value, "MB", None, None, note)
            )
    return rows


def _fixed_mmap_threshold() -> str:
    """Make glibc return freed big blocks to the system at once, so that each cell's RSS
    growth is its own (by default the mmap threshold grows after the first 8 MB free, and
    later 8 MB arrays come from a heap that keeps the pages of earlier cells)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 128 << 10) and libc.mallopt(m_trim_threshold, 128 << 10)
        return "" if ok else "mallopt failed: RSS growth may be understated"
    except OSError:
        return "not glibc: RSS growth may be understated after the first cell"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    common.add_contract_args(parser)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--part", choices=("cpu", "ram", "both"), default="both")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
        cpu_n, ram_n = 200, 10
    else:
        cpu_n, ram_n = 3000, 64
    why = _fixed_mmap_threshold()
    if why:
        print(why)
    rows = run_cpu(cpu_n, args.runs) if args.part != "ram" else []
    if args.part != "cpu":
        rows += run_ram(ram_n, 8 * MB, 64 * MB, 0.01, args.runs)
    print(f"budgets, median of {args.runs} runs")
    print(f"{'workload':58s} {'peer':17s} {'value':>8s}")
    for r in rows:
        print(f"{r['workload']:58s} {r['peer']:17s} {r['value']:8.2f} {r['unit']:5s}  {r['note']}")
    common.write_json(args.json, "budget", rows)


if __name__ == "__main__":
    main()
