"""A/B of two TFRecord readers: two ``src/`` trees in alternating processes, same files.

    mkdir /tmp/old && git archive 89ce22f src | tar -x -C /tmp/old   # the reader before
    python benchmarks/ab_tfrecord.py /tmp/old/src src

Prints, for each tree, the median ratio of record-at-a-time iteration, ``read_block(1024)``
and ``TFRecordDataset`` to a plain ``f.read()`` of the same file (16 MiB chunks), by wall
and by CPU time, for 100,000 x 1,000 B and 10,000 x 10,000 B records. Not part of the
suite (it compares two versions of stoker, not stoker with its peers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import stoker
from stoker.io import TFRecordReader

def plain(p):
    with open(p, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass

def iterate(p):
    with TFRecordReader(p) as r:
        for _ in r:
            pass

def blocks(p):
    with TFRecordReader(p) as r:
        while r.read_block(1024):
            pass

def dataset(p):
    for _ in stoker.TFRecordDataset(p):
        pass

fns = {"plain": plain, "iter": iterate, "block": blocks, "dataset": dataset}
out = {}
for name, p in json.loads(sys.argv[2]).items():
    for fn in fns.values():
        fn(p)
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(5):
        for k, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn(p)
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    for k in fns:
        out[f"{name} {k}"] = [statistics.median(wall[k]), statistics.median(cpu[k])]
print(json.dumps(out))
"""


def _write(src: str, path: str, count: int, size: int) -> None:
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); from stoker.io import TFRecordWriter\n"
        "pool = [os.urandom(int(sys.argv[4])) for _ in range(64)]\n"
        "with TFRecordWriter(sys.argv[2]) as w:\n"
        "    for i in range(int(sys.argv[3])): w.write(pool[i % 64])\n"
    )
    subprocess.run([sys.executable, "-c", code, src, path, str(count), str(size)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old_src")
    parser.add_argument("new_src")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two trees")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = {"1 kB": os.path.join(tmp, "1k"), "10 kB": os.path.join(tmp, "10k")}
        _write(args.new_src, files["1 kB"], 100_000, 1_000)
        _write(args.new_src, files["10 kB"], 10_000, 10_000)
        results: dict[str, list[dict[str, list[float]]]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for which, src in (("old", args.old_src), ("new", args.new_src)):
                cmd = [sys.executable, "-c", _CHILD, os.path.abspath(src), json.dumps(files)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
                results[which].append(json.loads(proc.stdout))
    print(f"load average {os.getloadavg()}; ratio to f.read() of the same file (wall, CPU)")
    for which, runs in results.items():
        parts = []
        for name in files:
            for k in ("iter", "block", "dataset"):
                wall = statistics.median(r[f"{name} plain"][0] / r[f"{name} {k}"][0] for r in runs)
                cpu = statistics.median(r[f"{name} plain"][1] / r[f"{name} {k}"][1] for r in runs)
                parts.append(f"{name} {k} {wall:.2f} ({cpu:.2f})")
        print(f"{which}: " + " | ".join(parts))


if __name__ == "__main__":
    main()
