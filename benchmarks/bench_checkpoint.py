"""Checkpoint cost: the size of a saved state and the time to resume from it.

Two pipelines over a million integers, shuffled with a 10 000-element buffer and batched::

    positions: range(N).map(f).shuffle(10_000, seed=0).batch(32)
    replay:    range(N).map(f).filter(p).shuffle(10_000, seed=0).batch(32)

The first shuffle's input can fetch its i-th element directly, so its state lists buffer
*positions* and a resume re-fetches those 10 000 elements. ``filter`` removes random access:
the second state holds the input position at the start of the pass and a count, and a
resume replays the pass up to there, so its resume time grows with the position.

For each pipeline and each position (batches already delivered) it prints the JSON state
size and the resume time: ``ds.iterator(state)`` plus the first ``next()``, the median of
``--runs`` runs. It also checks that the resumed batch equals the uninterrupted one.

    python benchmarks/bench_checkpoint.py           # 1 M elements, 10 / 1 000 / 10 000 batches
    python benchmarks/bench_checkpoint.py --quick   # tiny, for CI smoke runs

With ``--json`` each point is a row in milliseconds to resume (its note gives the state
size). There is no hardware limit for a resume, so ``limit`` is empty; peers are not run
here (``--peer-python`` is accepted for the suite's sake): PyTorch's ``DataLoader`` has no
resume, and tf.data's and Grain's checkpoints are not measured yet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import _common as common
import numpy as np

import stoker as sk


def _f(x: np.int64) -> np.int64:
    return x * 2 + 1


def _p(x: np.int64) -> bool:
    return x >= 0  # keeps every element; it only hides random access from shuffle


def build(kind: str, n: int, buffer_size: int, batch_size: int) -> sk.Dataset:
    ds = sk.Dataset.range(n).map(_f)
    if kind == "replay":
        ds = ds.filter(_p)
    return ds.shuffle(buffer_size, seed=0).batch(batch_size)


def measure(
    make: Callable[[], sk.Dataset], batches: int, runs: int
) -> tuple[int, str, float, float, common.Cell]:
    """State size in bytes, shuffle mode, resume time (median), time to get there, and the
    cell (CPU, peak RSS) of all the resumes."""
    ds = make()
    it = ds.iterator()
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    advance_s = time.perf_counter() - t0
    text = json.dumps(it.get_state())
    expected = next(it)
    it.close()
    times = []
    with common.measure() as cell:
        _resume(make, text, expected, runs, times)
    cell.cpu_s /= runs
    mode = _shuffle_mode(json.loads(text))
    return len(text.encode()), mode, statistics.median(times), advance_s, cell


def _resume(
    make: Callable[[], sk.Dataset], text: str, expected: Any, runs: int, times: list[float]
) -> None:
    for _ in range(runs):
        ds = make()  # a restarted job builds its pipeline anew
        state = json.loads(text)
        t0 = time.perf_counter()
        resumed = ds.iterator(state)
        got = next(resumed)
        times.append(time.perf_counter() - t0)
        resumed.close()
        if not np.array_equal(got, expected):
            raise AssertionError("the resumed batch differs from the uninterrupted one")


def _shuffle_mode(state: object) -> str:
    if isinstance(state, dict):
        if state.get("op") == "shuffle":
            return str(state["mode"])
        for value in state.values():
            mode = _shuffle_mode(value)
            if mode:
                return mode
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_contract_args(parser)
    parser.add_argument("--runs", type=int, default=5, help="resume timings per point")
    args = parser.parse_args()
    if args.quick:
        n, buffer_size, batch_size, points, runs = 20_000, 1_000, 32, [1, 50], 2
    else:
        n, buffer_size, batch_size, points, runs = 1_000_000, 10_000, 32, [10, 1_000, 10_000], 5
    runs = args.runs if not args.quick else runs
    print(
        f"range({n:_}).map(f)[.filter(p)].shuffle({buffer_size:_}, seed=0).batch({batch_size});"
        f" resume = iterator(state) + first next(), median of {runs}"
    )
    header = f"{'pipeline':<10} {'batches':>8} {'mode':>9} {'state bytes':>12} {'resume ms':>10}"
    print(header + f" {'(advance s)':>12}")
    rows = []
    for kind in ("positions", "replay"):
        for batches in points:

            def make(kind: str = kind) -> sk.Dataset:
                return build(kind, n, buffer_size, batch_size)

            size, mode, resume_s, advance_s, cell = measure(make, batches, runs)
            print(
                f"{kind:<10} {batches:>8} {mode:>9} {size:>12,} {resume_s * 1e3:>10.1f}"
                f" {advance_s:>12.2f}"
            )
            workload = f"checkpoint resume, {kind}, after {batches:,} batches"
            note = f"state {size:,} bytes of JSON; shuffle mode {mode}"
            rows.append(common.row(workload, "stoker", resume_s * 1e3, "ms", None, cell, note))
    common.write_json(args.json, "checkpoint", rows)


if __name__ == "__main__":
    main()
