"""``cache()`` replay speed: the second epoch from a memory and a disk cache, against the limit.

Workloads (the second epoch = the replay of a filled cache), each with its limit measured in
the same run:

* ``cache epoch 2, memory, small elements``: ``range(N).cache()``; limit: replaying a Python
  list of the same elements (the floor of Python-level iteration).
* ``cache epoch 2, disk, small elements``: ``range(N).cache(file)``; same limit.
* ``cache epoch 2, disk, 4 MiB arrays``: K arrays of 4 MiB; MB/s against a plain
  ``readinto`` of the same file in 16 MiB chunks. The page cache is warm (the file is read
  once before timing), so this is the CPU cost of serving the bytes, not the disk's speed.

Peers, written as an expert would: tf.data's own ``cache()`` / ``cache(filename)`` with
``prefetch(AUTOTUNE)``; PyTorch and Grain have no cache op, so their expert equivalent of a
memory cache is an in-memory dataset (a map-style ``Dataset`` over a list in a
``DataLoader`` with ``batch_size=None``, ``num_workers=0``: workers would only add IPC per
element; ``grain.MapDataset.source(list).to_iter_dataset()``). They run in the
``--peer-python`` interpreter.

    python benchmarks/bench_cache.py                                  # full size
    python benchmarks/bench_cache.py --peer-python /tmp/peers/bin/python
    python benchmarks/bench_cache.py --quick                          # tiny, CI smoke run

Every figure is the median of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable
from typing import Any

import _common as common
import numpy as np

_CHUNK = 16 << 20


def _timed(fn: Callable[[], Any], runs: int) -> tuple[float, common.Cell]:
    """Median wall seconds of ``fn`` and the cell of that run (peak RSS: the max)."""
    cells = []
    for _ in range(runs):
        with common.measure() as cell:
            fn()
        cells.append(cell)
    cells.sort(key=lambda c: c.wall_s)
    mid = cells[len(cells) // 2]
    mid.peak_rss_mb = max(c.peak_rss_mb or 0.0 for c in cells)
    return statistics.median(c.wall_s for c in cells), mid


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


W_MEM = "cache epoch 2, memory, small elements"
W_DISK = "cache epoch 2, disk, small elements"
W_LARGE = "cache epoch 2, disk, 4 MiB arrays"


# -- stoker -------------------------------------------------------------------------------------


def run_stoker(sizes: dict[str, int], runs: int, folder: str) -> list[dict[str, Any]]:
    import stoker as sk

    n, k, big = sizes["n"], sizes["k"], sizes["big"]
    rows = []

    lst = list(sk.Dataset.range(n))
    seconds, cell = _timed(lambda: _drain(lst), runs)
    list_rate = n / seconds
    for workload in (W_MEM, W_DISK):
        rows.append(common.row(workload, "limit", list_rate, "el/s", list_rate, cell,
                               "replay of a Python list"))  # fmt: skip

    ds = sk.Dataset.range(n).cache()
    _drain(ds)  # epoch 1 fills the cache
    seconds, cell = _timed(lambda: _drain(ds), runs)
    rows.append(common.row(W_MEM, "stoker", n / seconds, "el/s", list_rate, cell))

    ds = sk.Dataset.range(n).cache(os.path.join(folder, "small.stoker"))
    _drain(ds)
    seconds, cell = _timed(lambda: _drain(ds), runs)
    rows.append(common.row(W_DISK, "stoker", n / seconds, "el/s", list_rate, cell))

    path = os.path.join(folder, "large.stoker")
    ds = sk.Dataset.range(k).map(lambda i: np.full(big // 4, i, np.float32)).cache(path)
    _drain(ds)
    _plain_read(path)  # warm the page cache
    size = os.path.getsize(path)
    seconds, cell = _timed(lambda: _plain_read(path), runs)
    read_rate = size / seconds / 1e6
    rows.append(common.row(W_LARGE, "limit", read_rate, "MB/s", read_rate, cell,
                           "readinto() of the cache file, 16 MiB chunks"))  # fmt: skip
    seconds, cell = _timed(lambda: _drain(ds), runs)
    rows.append(common.row(W_LARGE, "stoker", k * big / seconds / 1e6, "MB/s", read_rate, cell))
    return rows


# -- peers (in the --peer-python interpreter) ---------------------------------------------------


def run_peers(sizes: dict[str, int], runs: int, folder: str, limits: dict[str, float]) -> list:
    rows: list[dict[str, Any]] = []
    n, k, big = sizes["n"], sizes["k"], sizes["big"]
    if importlib.util.find_spec("tensorflow") is None:
        print("skipped: tf.data (tensorflow is not importable by this interpreter)")
    else:
        import tensorflow as tf

        autotune = tf.data.AUTOTUNE
        # tf.data replays a few thousand elements/s from Python: fewer elements, same rate.
        m = min(n, 20_000)

        def epochs(ds: Any) -> Callable[[], int]:
            return lambda: _drain(ds.as_numpy_iterator())

        for workload, ds in (
            (W_MEM, tf.data.Dataset.range(m).cache().prefetch(autotune)),
            (W_DISK, tf.data.Dataset.range(m).cache(os.path.join(folder, "tf_small"))
             .prefetch(autotune)),
        ):  # fmt: skip
            epochs(ds)()
            seconds, cell = _timed(epochs(ds), runs)
            rows.append(common.row(workload, "tf.data", m / seconds, "el/s", limits[workload],
                                   cell, f"{m:,} elements"))  # fmt: skip
        ds = (
            tf.data.Dataset.range(k)
            .map(lambda i: tf.fill([big // 4], tf.cast(i, tf.float32)))
            .cache(os.path.join(folder, "tf_large"))
            .prefetch(autotune)
        )
        epochs(ds)()
        seconds, cell = _timed(epochs(ds), runs)
        rows.append(common.row(W_LARGE, "tf.data", k * big / seconds / 1e6, "MB/s",
                               limits[W_LARGE], cell))  # fmt: skip
    # torch replays tens of thousands of elements/s: fewer elements, same rate.
    n = min(n, 50_000)
    lst = [np.int64(i) for i in range(n)]
    if importlib.util.find_spec("torch") is None:
        print("skipped: torch (not importable by this interpreter)")
    else:
        import torch.utils.data as tud

        class InMemory(tud.Dataset):  # type: ignore[misc]
            def __len__(self) -> int:
                return len(lst)

            def __getitem__(self, i: int) -> Any:
                return lst[i]

        loader = tud.DataLoader(InMemory(), batch_size=None, num_workers=0)
        _drain(loader)
        seconds, cell = _timed(lambda: _drain(loader), runs)
        rows.append(common.row(W_MEM, "torch", n / seconds, "el/s", limits[W_MEM], cell,
                               "DataLoader over an in-memory list (no cache op)"))  # fmt: skip
    if importlib.util.find_spec("grain") is None:
        print("skipped: grain (not importable by this interpreter)")
    else:
        import grain

        # Grain's own iteration (to_iter_dataset) replays ~2,000 el/s here: fewer elements.
        m = min(n, 10_000)
        source = grain.MapDataset.source(lst[:m])
        _drain(source.to_iter_dataset())
        seconds, cell = _timed(lambda: _drain(source.to_iter_dataset()), runs)
        note = f"MapDataset.source(list) (no cache op), {m:,} elements"
        rows.append(common.row(W_MEM, "grain", m / seconds, "el/s", limits[W_MEM], cell, note))
    return rows


# -- report -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    common.add_contract_args(parser)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peers-only", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peers_only:
        sizes, runs = json.loads(args.peers_only[0]), int(args.peers_only[1])
        folder, limits = args.peers_only[2], json.loads(args.peers_only[3])
        print(json.dumps(run_peers(sizes, runs, folder, limits)))
        return
    if args.quick:
        sizes = {"n": 20_000, "k": 4, "big": 1 << 20}
        args.runs = min(args.runs, 2)
    else:
        sizes = {"n": 1_000_000, "k": 64, "big": 4 << 20}
    folder = tempfile.mkdtemp(prefix="bench_cache_")
    try:
        rows = run_stoker(sizes, args.runs, folder)
        limits = {r["workload"]: r["limit"] for r in rows if r["peer"] == "limit"}
        if args.peer_python:
            runs = str(min(args.runs, 3))  # the peers are slow; 3 runs give a median
            child = ["--peers-only", json.dumps(sizes), runs, folder, json.dumps(limits)]
            got, note = common.run_peer_child(args.peer_python, __file__, child)
            if note:
                print(note)
            rows += got
        else:
            print("skipped: tf.data, torch, grain (pass --peer-python PYTHON)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"cache() replay, median of {args.runs} runs; page cache warm")
    print(f"{'workload':40s} {'peer':8s} {'value':>14s} {'ratio':>6s} {'CPU s':>7s} {'RSS MB':>7s}")
    for r in rows:
        print(f"{r['workload']:40s} {r['peer']:8s} {r['value']:>9,.0f} {r['unit']:4s} "
              f"{r['ratio_to_limit'] or 0:6.2f} {r['cpu_s'] or 0:7.3f} {r['peak_rss_mb'] or 0:7.0f}"
              f"  {r['note']}")  # fmt: skip
    common.write_json(args.json, "cache", rows)


if __name__ == "__main__":
    main()
