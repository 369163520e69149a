"""``cache()`` replay speed: stoker vs tf.data's cache vs the limit, in the same run.

Workloads (second epoch = replay of a filled cache):

* memory, small elements: ``range(N).cache()``; baseline: replaying a Python list.
* memory, expensive map: ``range(M).map(~100 us of NumPy).cache()``; epoch 2 vs epoch 1.
* disk, small elements: ``range(N).cache(file)``.
* disk, large elements: K arrays of 4 MiB; MB/s against the limit, plain ``readinto`` of
  the same file in 16 MiB chunks. The page cache is warm (each file is read once before
  timing), so this is the CPU cost of serving the bytes, not the disk's speed.

tf.data runs in this interpreter if it can import tensorflow, else in ``--tf-python``
(another interpreter that has tensorflow and numpy; stoker is not imported there)::

    python benchmarks/bench_cache.py                                  # full size
    python benchmarks/bench_cache.py --tf-python /tmp/tfvenv/bin/python
    python benchmarks/bench_cache.py --quick                          # tiny, CI smoke run

Every figure is the median of ``--runs`` runs, timed with ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

_CHUNK = 16 << 20
_WORK = np.arange(2000, dtype=np.float64)


def expensive(i: Any) -> Any:
    """About 100 us of NumPy work per element, returning a small element."""
    x = _WORK + float(i)
    for _ in range(8):
        x = np.sin(x)
    return np.float32(x.sum())


def _median(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _drain(it: Any) -> int:
    n = 0
    for _ in it:
        n += 1
    return n


def _plain_read(path: str) -> int:
    buf = bytearray(_CHUNK)
    total = 0
    for name in [path] if os.path.isfile(path) else sorted(os.listdir(path)):
        with open(name if os.path.isfile(path) else os.path.join(path, name), "rb", 0) as f:
            while n := f.readinto(buf):
                total += n
    return total


# -- stoker -------------------------------------------------------------------------------------


def run_stoker(sizes: dict[str, int], runs: int, folder: str) -> dict[str, float]:
    import stoker as sk

    n, m, k, big = sizes["n"], sizes["m"], sizes["k"], sizes["big"]
    out: dict[str, float] = {}

    lst = list(sk.Dataset.range(n))
    out["list_replay"] = n / _median(lambda: _drain(lst), runs)

    ds = sk.Dataset.range(n).cache()
    start = time.perf_counter()
    _drain(ds)
    out["mem_small_fill"] = n / (time.perf_counter() - start)
    out["mem_small"] = n / _median(lambda: _drain(ds), runs)

    ds = sk.Dataset.range(m).map(expensive).cache()
    start = time.perf_counter()
    _drain(ds)
    out["mem_map_epoch1"] = m / (time.perf_counter() - start)
    out["mem_map_epoch2"] = m / _median(lambda: _drain(ds), runs)

    path = os.path.join(folder, "small.stoker")
    ds = sk.Dataset.range(n).cache(path)
    start = time.perf_counter()
    _drain(ds)
    out["disk_small_fill"] = n / (time.perf_counter() - start)
    out["disk_small"] = n / _median(lambda: _drain(ds), runs)

    path = os.path.join(folder, "large.stoker")
    ds = sk.Dataset.range(k).map(lambda i: np.full(big // 4, i, np.float32)).cache(path)
    _drain(ds)
    _plain_read(path)  # warm the page cache
    nbytes = k * big
    out["disk_large_mbs"] = nbytes / _median(lambda: _drain(ds), runs) / 1e6
    size = os.path.getsize(path)
    out["plain_read_mbs"] = size / _median(lambda: _plain_read(path), runs) / 1e6
    return out


# -- tf.data ------------------------------------------------------------------------------------


def run_tf(sizes: dict[str, int], runs: int, folder: str) -> dict[str, Any]:
    import tensorflow as tf

    # tf.data replays a few thousand elements/s: a smaller N gives the same rate sooner.
    n, m, k, big = min(sizes["n"], 50_000), sizes["m"], sizes["k"], sizes["big"]
    out: dict[str, Any] = {"tf_version": tf.__version__}

    def epochs(ds: Any) -> Callable[[], int]:
        return lambda: _drain(ds.as_numpy_iterator())

    ds = tf.data.Dataset.range(n).cache()
    epochs(ds)()
    out["mem_small"] = n / _median(epochs(ds), runs)

    ds = (
        tf.data.Dataset.range(m)
        .map(lambda i: tf.numpy_function(expensive, [i], tf.float32))
        .cache()
    )
    start = time.perf_counter()
    epochs(ds)()
    out["mem_map_epoch1"] = m / (time.perf_counter() - start)
    out["mem_map_epoch2"] = m / _median(epochs(ds), runs)

    ds = tf.data.Dataset.range(n).cache(os.path.join(folder, "tf_small"))
    epochs(ds)()
    out["disk_small"] = n / _median(epochs(ds), runs)

    ds = (
        tf.data.Dataset.range(k)
        .map(lambda i: tf.fill([big // 4], tf.cast(i, tf.float32)))
        .cache(os.path.join(folder, "tf_large"))
    )
    epochs(ds)()
    out["disk_large_mbs"] = k * big / _median(epochs(ds), runs) / 1e6
    return out


def _tf_results(args: argparse.Namespace, sizes: dict[str, int], folder: str) -> dict[str, Any]:
    if importlib.util.find_spec("tensorflow") is not None:
        return run_tf(sizes, args.runs, folder)
    if not args.tf_python:
        return {}
    cmd = [args.tf_python, __file__, "--tf-only", json.dumps(sizes), str(args.runs), folder]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        print(f"tf.data run failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return {}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- report -------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tf-python", default="", help="interpreter with tensorflow")
    parser.add_argument("--tf-only", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tf_only:
        sizes, runs, folder = json.loads(args.tf_only[0]), int(args.tf_only[1]), args.tf_only[2]
        print(json.dumps(run_tf(sizes, runs, folder)))
        return
    if args.quick:
        sizes = {"n": 20_000, "m": 100, "k": 4, "big": 1 << 20}
        args.runs = min(args.runs, 2)
    else:
        sizes = {"n": 1_000_000, "m": 3_000, "k": 64, "big": 4 << 20}
    folder = tempfile.mkdtemp(prefix="bench_cache_")
    try:
        st = run_stoker(sizes, args.runs, folder)
        tf = _tf_results(args, sizes, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    n, m, k, big = sizes["n"], sizes["m"], sizes["k"], sizes["big"]
    speedup = st["mem_map_epoch2"] / st["mem_map_epoch1"]
    tf_speedup = tf["mem_map_epoch2"] / tf["mem_map_epoch1"] if tf else None
    ratio = st["disk_large_mbs"] / st["plain_read_mbs"]
    rows = [
        ("memory, small, epoch 2", _fmt(st["mem_small"], "el/s"),
         _fmt(tf.get("mem_small"), "el/s"), f"list replay {_fmt(st['list_replay'], 'el/s')}",
         f">= 1,000,000 el/s: {'ok' if st['mem_small'] >= 1e6 else 'MISSED'}"),
        ("memory, map ~100us, epoch 2/1", f"{speedup:,.0f}x", "-" if tf_speedup is None else
         f"{tf_speedup:,.0f}x", f"epoch 1 {_fmt(st['mem_map_epoch1'], 'el/s')}",
         f">= 10x: {'ok' if speedup >= 10 else 'MISSED'}"),
        ("disk, small, epoch 2", _fmt(st["disk_small"], "el/s"),
         _fmt(tf.get("disk_small"), "el/s"), "-",
         f">= 200,000 el/s: {'ok' if st['disk_small'] >= 2e5 else 'MISSED'}"),
        (f"disk, {big >> 20} MiB arrays, epoch 2", _fmt(st["disk_large_mbs"], "MB/s"),
         _fmt(tf.get("disk_large_mbs"), "MB/s"),
         f"plain read {_fmt(st['plain_read_mbs'], 'MB/s')} (warm)",
         f"{ratio:.2f} of limit, >= 0.50: {'ok' if ratio >= 0.5 else 'MISSED'}"),
    ]  # fmt: skip
    print(f"cache() replay: N={n:,} small, M={m:,} mapped, K={k} x {big >> 20} MiB; "
          f"median of {args.runs} runs; page cache warm")  # fmt: skip
    header = ("workload", "stoker", "tf.data", "limit / baseline", "bar")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"fill (epoch 1): memory {_fmt(st['mem_small_fill'], 'el/s')}, "
          f"disk {_fmt(st['disk_small_fill'], 'el/s')} (written, fsync'ed, renamed)")  # fmt: skip
    if not tf:
        print("tf.data: not run (tensorflow not importable; pass --tf-python)")
    else:
        print(f"tf.data: tensorflow {tf['tf_version']}, N={min(n, 50_000):,} small elements")


if __name__ == "__main__":
    main()
