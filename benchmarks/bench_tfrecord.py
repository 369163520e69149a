"""TFRecord read throughput: stoker vs the hardware limit (and peers, when installed).

The limit for an uncompressed file is reading it with plain ``f.read()`` in 16 MiB chunks;
for a GZIP file it is plain ``gzip`` decompression of the same file. The page cache is warm
(each file is read once before timing), so this measures CPU cost, not the disk.

    python benchmarks/bench_tfrecord.py                 # 256 MB of 10 kB records
    python benchmarks/bench_tfrecord.py --quick         # tiny, for CI smoke runs
    python benchmarks/bench_tfrecord.py --tf-python /tmp/tfvenv/bin/python  # with tf.data

Every figure is the median of ``--runs`` runs, timed with ``time.perf_counter``. tf.data
runs in its own process (TensorFlow often lives in another virtualenv), after stoker's runs,
so its figures are not interleaved with the others.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping

import numpy as np

import stoker
from stoker.io import TFRecordReader, TFRecordWriter

_LIMIT_CHUNK_BYTES = 16 << 20
_BLOCK_RECORDS = 1024


def _records(total_bytes: int, record_bytes: int, seed: int = 0) -> list[bytes]:
    """Records that compress about 2x with gzip (random values from a skewed alphabet)."""
    rng = np.random.default_rng(seed)
    pool = [
        rng.geometric(0.08, size=record_bytes).clip(0, 255).astype(np.uint8).tobytes()
        for _ in range(64)
    ]
    count = max(1, total_bytes // (record_bytes + 16))
    return [pool[i % len(pool)] for i in range(count)]


def _write(path: str, records: list[bytes], compression: str | None) -> None:
    with TFRecordWriter(path, compression) as writer:
        for record in records:
            writer.write(record)


def _median_s(fns: Mapping[str, Callable[[], object]], runs: int) -> list[tuple[str, float, float]]:
    """Median wall time and median CPU time of each function.

    Runs are interleaved round-robin, so a noisy neighbour slows every reader alike instead
    of skewing one ratio. CPU time (``time.process_time``) is shown too: on a shared machine
    it is the steadier figure, as it leaves out the time spent waiting for a core.
    """
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return [(name, statistics.median(wall[name]), statistics.median(cpu[name])) for name in fns]


def _plain_read(path: str) -> int:
    total = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_LIMIT_CHUNK_BYTES):
            total += len(chunk)
    return total


def _gzip_read(path: str) -> int:
    total = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(_LIMIT_CHUNK_BYTES):
            total += len(chunk)
    return total


def _zlib_read(path: str) -> int:
    """Raw zlib inflate of the gzip file (no gzip-module overhead), for reference."""
    total = 0
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with open(path, "rb", buffering=0) as f:
        while data := f.read(256 << 10):
            total += len(inflate.decompress(data))
    return total


def _stoker_iter(path: str, compression: str | None = None, check_crc: bool = True) -> int:
    count = 0
    with TFRecordReader(path, compression, check_crc=check_crc) as reader:
        for _ in reader:
            count += 1
    return count


def _stoker_block(
    path: str,
    compression: str | None = None,
    check_crc: bool = True,
    block_records: int = _BLOCK_RECORDS,
) -> int:
    count = 0
    with TFRecordReader(path, compression, check_crc=check_crc) as reader:
        while block := reader.read_block(block_records):
            count += len(block)
    return count


def _stoker_dataset(path: str, compression: str | None = None) -> int:
    """The user-facing path: ``stoker.TFRecordDataset`` (flat_map over one file)."""
    n = 0
    for _ in stoker.TFRecordDataset(path, compression_type=compression):
        n += 1
    return n


def _count(items: list[bytes]) -> int:
    count = 0
    for _ in items:
        count += 1
    return count


def _peers(path: str) -> dict[str, Callable[[], object]]:
    found: dict[str, Callable[[], object]] = {}
    # Imported by name so that type checkers do not need the package.
    try:
        tfrecord_reader = importlib.import_module("tfrecord.reader")
        found["tfrecord pkg (no CRC)"] = lambda: collections.deque(
            tfrecord_reader.tfrecord_iterator(path), maxlen=0
        )
    except ImportError:
        print("(tfrecord package not installed: skipped)")
    return found


# Runs in the interpreter that has TensorFlow (often a separate virtualenv): times tf.data
# on the same files and prints {name: [median wall s, median CPU s]} as JSON.
_TF_SCRIPT = """
import json, os, statistics, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
plain, gz, runs, block = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def drain(ds):
    for _ in ds.as_numpy_iterator():
        pass
cases = {
    "plain": {
        "tf.data record-at-a-time": lambda: drain(tf.data.TFRecordDataset(plain)),
        f"tf.data batch({block})": lambda: drain(tf.data.TFRecordDataset(plain).batch(block)),
    },
    "gzip": {
        "tf.data record-at-a-time": lambda: drain(tf.data.TFRecordDataset(gz, "GZIP")),
        f"tf.data batch({block})": lambda: drain(
            tf.data.TFRecordDataset(gz, "GZIP").batch(block)
        ),
    },
}
out = {}
for group, fns in cases.items():
    out[group] = {}
    for name, fn in fns.items():
        fn()  # warm-up: graph building, thread pools
        wall, cpu = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[group][name] = [statistics.median(wall), statistics.median(cpu)]
print(json.dumps(out))
"""


def _tf_data(
    tf_python: str, plain: str, gz: str, runs: int
) -> dict[str, list[tuple[str, float, float]]]:
    """tf.data timings from ``tf_python`` (or this interpreter), {} if it has no TensorFlow."""
    cmd = [tf_python or sys.executable, "-c", _TF_SCRIPT, plain, gz, str(runs), str(_BLOCK_RECORDS)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"(tf.data not run: {last}; pass --tf-python /path/to/python-with-tensorflow)")
        return {}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        group: [(f"{name} (own process)", w, c) for name, (w, c) in rows.items()]
        for group, rows in result.items()
    }


def _table(title: str, nbytes: int, rows: list[tuple[str, float, float]]) -> None:
    """Prints MB/s and the ratio to the first row (the limit), by wall and by CPU time."""
    _, limit_s, limit_cpu = rows[0]
    print(f"\n{title}  ({nbytes / 1e6:.1f} MB uncompressed)")
    print(f"{'reader':40s} {'MB/s':>7s} {'ratio to limit':>15s} {'(by CPU time)':>14s}")
    for name, seconds, cpu in rows:
        ratio_cpu = limit_cpu / cpu if cpu > 0 else float("nan")
        print(
            f"{name:40s} {nbytes / 1e6 / seconds:7.0f} {limit_s / seconds:15.2f} {ratio_cpu:14.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=256, help="file size [Unit: MB]")
    parser.add_argument("--record-bytes", type=int, default=10_000, help="[Unit: byte]")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument(
        "--small-record-bytes",
        type=int,
        default=100,
        help="record size for the per-record overhead test [Unit: byte]",
    )
    parser.add_argument(
        "--tf-python",
        default="",
        help="a Python with tensorflow, to time tf.data on the same files (default: this one)",
    )
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.runs = 2, 2
    total = int(args.size_mb * 1e6)

    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "data.tfrecord")
        gz = os.path.join(tmp, "data.tfrecord.gz")
        small = os.path.join(tmp, "small.tfrecord")
        records = _records(total, args.record_bytes)
        _write(plain, records, None)
        _write(gz, records, "GZIP")
        small_records = _records(max(total // 16, 1), args.small_record_bytes, seed=1)
        _write(small, small_records, None)
        del records, small_records
        nbytes = os.path.getsize(plain)
        print(f"{args.record_bytes}-byte records, {args.runs} runs each, median; page cache warm")
        _plain_read(plain), _plain_read(gz), _plain_read(small)  # warm the page cache

        # A block of 1024 big records is many MB, which no longer fits in the CPU caches;
        # a block of ~1 MiB of records is what a pipeline would ask for.
        mib_block = max(1, min(_BLOCK_RECORDS, (1 << 20) // args.record_bytes))
        rows = {
            "limit: f.read() 16 MiB chunks": lambda: _plain_read(plain),
            "stoker record-at-a-time": lambda: _stoker_iter(plain),
            "stoker TFRecordDataset": lambda: _stoker_dataset(plain),
            "stoker read_block(1024)": lambda: _stoker_block(plain),
            f"stoker read_block({mib_block}) (~1 MiB)": lambda: _stoker_block(
                plain, block_records=mib_block
            ),
            "stoker read_block, check_crc=False": lambda: _stoker_block(plain, check_crc=False),
            **_peers(plain),
        }
        tf_rows = _tf_data(args.tf_python, plain, gz, args.runs)
        timed = _median_s(rows, args.runs) + tf_rows.get("plain", [])
        _table("TFRecord, uncompressed, CRC checked", nbytes, timed)

        gz_rows = {
            "limit: gzip.open().read()": lambda: _gzip_read(gz),
            "(reference: raw zlib inflate)": lambda: _zlib_read(gz),
            "stoker record-at-a-time": lambda: _stoker_iter(gz, "GZIP"),
            "stoker TFRecordDataset": lambda: _stoker_dataset(gz, "GZIP"),
            "stoker read_block(1024)": lambda: _stoker_block(gz, "GZIP"),
            f"stoker read_block({mib_block}) (~1 MiB)": lambda: _stoker_block(
                gz, "GZIP", block_records=mib_block
            ),
        }
        ratio = nbytes / os.path.getsize(gz)
        title = f"TFRecord, GZIP (ratio {ratio:.1f}x), CRC checked"
        _table(title, nbytes, _median_s(gz_rows, args.runs) + tf_rows.get("gzip", []))

        count = _stoker_iter(small)
        floor_items = [b""] * count
        small_rows = {
            "limit: f.read()": lambda: _plain_read(small),
            "stoker record-at-a-time": lambda: _stoker_iter(small),
            "stoker read_block(1024)": lambda: _stoker_block(small),
            "stoker read_block, check_crc=False": lambda: _stoker_block(small, check_crc=False),
            "for-loop over a list (floor)": lambda: _count(floor_items),
        }
        print(f"\nper-record cost, {args.small_record_bytes}-byte records ({count} records)")
        print(f"{'reader':40s} {'µs/record':>9s} {'(CPU)':>7s}")
        for name, seconds, cpu in _median_s(small_rows, args.runs):
            print(f"{name:40s} {seconds / count * 1e6:9.3f} {cpu / count * 1e6:7.3f}")


if __name__ == "__main__":
    main()
