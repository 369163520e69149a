"""TFRecord read throughput: stoker vs the limit (a raw read of the same file) and tf.data.

Workloads, each against its limit measured in the same run (page cache warm: each file is
read once before timing, so this is the CPU cost of serving the bytes, not the disk):

* ``TFRecord 10 kB records``: ~256 MB of 10 kB records; limit: ``f.read()`` in 16 MiB chunks.
* ``TFRecord 1 kB records``: 100,000 x 1,000 B, where per-record cost shows; same limit.
* ``TFRecord GZIP 10 kB records``: the same records gzipped; limit: ``gzip.open().read()``
  (decompression-bound).

stoker rows: ``stoker`` is record-at-a-time iteration of ``TFRecordReader`` with CRC checks;
``stoker-read_block`` reads blocks of ~1 MiB of records; ``stoker-dataset`` is the
user-facing ``stoker.TFRecordDataset``; ``stoker-no_crc`` has ``check_crc=False``;
``serial`` is a minimal ``struct.unpack_from`` loop with no CRC and no checks, for reference.
tf.data runs as an expert would write it, in its own process (``--peer-python``):
``tf.data`` is ``TFRecordDataset(...).batch(1024).prefetch(AUTOTUNE)`` (its C++ reader, no
Python per record; the rate counts records), ``tf.data-record`` iterates record by record.
Grain and PyTorch have no TFRecord reader of their own, so they have no row here.

    python benchmarks/bench_tfrecord.py                    # full size, median of 5 runs
    python benchmarks/bench_tfrecord.py --quick            # tiny, for CI smoke runs
    python benchmarks/bench_tfrecord.py --peer-python /tmp/peers/bin/python --json out.json

Runs are interleaved round-robin, so a noisy neighbour slows every reader alike instead of
skewing one ratio; every figure is the median.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import tempfile
from collections.abc import Callable
from typing import Any

import _common as common

_LIMIT_CHUNK_BYTES = 16 << 20
_BLOCK_RECORDS = 1024


def _records(total_bytes: int, record_bytes: int, seed: int = 0) -> list[bytes]:
    """Records that compress about 2x with gzip (random values from a skewed alphabet)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pool = [
        rng.geometric(0.08, size=record_bytes).clip(0, 255).astype(np.uint8).tobytes()
        for _ in range(64)
    ]
    count = max(1, total_bytes // (record_bytes + 16))
    return [pool[i % len(pool)] for i in range(count)]


def _write(path: str, records: list[bytes], compression: str | None) -> None:
    from stoker.io import TFRecordWriter

    with TFRecordWriter(path, compression) as writer:
        for record in records:
            writer.write(record)


def _timed(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, tuple[float, common.Cell]]:
    """Median wall seconds of each function, and the cell of its median run."""
    cells: dict[str, list[common.Cell]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up: imports, first allocations, thread pools
    for _ in range(runs):
        for name, fn in fns.items():
            with common.measure() as cell:
                fn()
            cells[name].append(cell)
    out = {}
    for name, got in cells.items():
        got.sort(key=lambda c: c.wall_s)
        mid = got[len(got) // 2]
        mid.peak_rss_mb = max(c.peak_rss_mb or 0.0 for c in got)
        out[name] = (mid.wall_s, mid)
    return out


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


def _struct_loop(path: str) -> int:
    """A minimal TFRecord parse: struct.unpack_from and a slice per record, no CRC, no
    checks (the reference for what plain Python costs per record)."""
    unpack = struct.Struct("<Q").unpack_from
    n = 0
    tail = b""
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(256 << 10):
            buf = tail + chunk if tail else chunk
            pos, end = 0, len(buf)
            while pos + 12 <= end:
                stop = pos + 12 + unpack(buf, pos)[0]
                if stop + 4 > end:
                    break
                buf[pos + 12 : stop]
                n += 1
                pos = stop + 4
            tail = buf[pos:]
    return n


def _stoker_fns(path: str, compression: str | None, record_bytes: int) -> dict[str, Any]:
    import stoker
    from stoker.io import TFRecordReader

    block = max(1, min(_BLOCK_RECORDS, (1 << 20) // record_bytes))  # ~1 MiB of records

    def iterate(check_crc: bool = True) -> int:
        n = 0
        with TFRecordReader(path, compression, check_crc=check_crc) as reader:
            for _ in reader:
                n += 1
        return n

    def blocks() -> int:
        n = 0
        with TFRecordReader(path, compression) as reader:
            while got := reader.read_block(block):
                n += len(got)
        return n

    def dataset() -> int:
        n = 0
        for _ in stoker.TFRecordDataset(path, compression_type=compression):
            n += 1
        return n

    fns: dict[str, Callable[[], object]] = {
        "stoker": iterate,
        "stoker-read_block": blocks,
        "stoker-dataset": dataset,
    }
    if not compression:
        fns["stoker-no_crc"] = lambda: iterate(check_crc=False)
        fns["serial"] = lambda: _struct_loop(path)
    return fns


def _tf_fns(path: str, compression: str | None) -> dict[str, Callable[[], object]]:
    import tensorflow as tf

    def batched() -> int:
        # An expert's tf.data: the C++ reader, batched so Python never sees single records,
        # prefetch(AUTOTUNE) to overlap the read with the consumer.
        ds = tf.data.TFRecordDataset(path, compression_type=compression or "")
        n = 0
        for batch in ds.batch(_BLOCK_RECORDS).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            n += len(batch)
        return n

    def records() -> int:
        ds = tf.data.TFRecordDataset(path, compression_type=compression or "")
        n = 0
        for _ in ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            n += 1
        return n

    return {"tf.data": batched, "tf.data-record": records}


def _rows_for(
    workload: str, nbytes: int, timed: dict[str, tuple[float, common.Cell]], limit: float | None
) -> list[dict[str, Any]]:
    return [
        common.row(workload, peer, nbytes / 1e6 / seconds, "MB/s", limit, cell)
        for peer, (seconds, cell) in timed.items()
    ]


def _peer_main(args: argparse.Namespace) -> None:
    """The child run under --peer-python: times tf.data on the parent's files."""
    cases = json.loads(args.peers_only)
    rows: list[dict[str, Any]] = []
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("skipped: tf.data (tensorflow is not importable by this interpreter)")
        print(json.dumps(rows))
        return
    for case in cases:
        timed = _timed(_tf_fns(case["path"], case["compression"]), case["runs"])
        rows += _rows_for(case["workload"], case["nbytes"], timed, case["limit"])
    print(json.dumps(rows))


def _print(rows: list[dict[str, Any]]) -> None:
    print(
        f"\n{'workload':30s} {'peer':20s} {'MB/s':>8s} {'ratio':>6s} {'CPU s':>7s} {'RSS MB':>7s}"
    )
    for r in rows:
        ratio = "" if r["ratio_to_limit"] is None else f"{r['ratio_to_limit']:.2f}"
        print(
            f"{r['workload']:30s} {r['peer']:20s} {r['value']:8.0f} {ratio:>6s} "
            f"{r['cpu_s'] or 0:7.3f} {r['peak_rss_mb'] or 0:7.0f}  {r['note']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_contract_args(parser)
    parser.add_argument("--size-mb", type=float, default=256, help="10 kB file size [Unit: MB]")
    parser.add_argument("--small-records", type=int, default=100_000, help="1 kB records")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peers-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peers_only:
        _peer_main(args)
        return
    if args.quick:
        args.size_mb, args.small_records, args.runs = 2, 2_000, 1
    rows: list[dict[str, Any]] = []
    peer_cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "TFRecord 10 kB records": (os.path.join(tmp, "10k.tfrecord"), None, 10_000),
            "TFRecord 1 kB records": (os.path.join(tmp, "1k.tfrecord"), None, 1_000),
            "TFRecord GZIP 10 kB records": (os.path.join(tmp, "10k.tfrecord.gz"), "GZIP", 10_000),
        }
        big = _records(int(args.size_mb * 1e6), 10_000)
        _write(files["TFRecord 10 kB records"][0], big, None)
        _write(files["TFRecord GZIP 10 kB records"][0], big, "GZIP")
        del big
        _write(
            files["TFRecord 1 kB records"][0],
            _records(args.small_records * 1_016, 1_000, seed=1),
            None,
        )
        for workload, (path, compression, record_bytes) in files.items():
            _plain_read(path)  # warm the page cache
            nbytes = os.path.getsize(files[workload.replace("GZIP ", "")][0])
            limit_fn = (
                (lambda p=path: _gzip_read(p)) if compression else (lambda p=path: _plain_read(p))
            )
            timed = _timed({"limit": limit_fn, **_stoker_fns(path, compression, record_bytes)},
                           args.runs)  # fmt: skip
            limit = nbytes / 1e6 / timed["limit"][0]
            note = "gzip.open().read() of the file" if compression else "f.read(), 16 MiB chunks"
            got = _rows_for(workload, nbytes, timed, limit)
            got[0]["note"] = note
            for r in got:
                if r["peer"] == "serial":
                    r["note"] = "minimal struct.unpack_from loop, no CRC (reference)"
            rows += got
            peer_cases.append(
                {"workload": workload, "path": path, "compression": compression,
                 "nbytes": nbytes, "limit": limit, "runs": min(args.runs, 3)}
            )  # fmt: skip
        if args.peer_python:
            peer_rows, note = common.run_peer_child(
                args.peer_python, __file__, ["--peers-only", json.dumps(peer_cases)]
            )
            if note:
                print(note)
            for r in peer_rows:
                r["note"] = (r["note"] + " " if r["note"] else "") + "own process"
            rows += peer_rows
        else:
            print("skipped: tf.data (pass --peer-python PYTHON, an interpreter with tensorflow)")
    print(f"TFRecord read, page cache warm, median of {args.runs} runs; MB/s of records")
    _print(rows)
    common.write_json(args.json, "tfrecord", rows)


if __name__ == "__main__":
    main()
