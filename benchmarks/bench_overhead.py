"""Per-element overhead of sequential stages: range -> map -> filter -> batch(32).

The functions are trivial (``lambda x: x``, ``lambda x: True``), so what is timed is the
cost of moving one element through one stage. Each pipeline is timed with one stage more
than the last; a stage's cost is the difference, in microseconds per input element. The
same stages written as bare Python generators (the floor for Python-level iteration) and,
when importable, in PyTorch's DataLoader, Grain and tf.data run beside stoker.

    python benchmarks/bench_overhead.py                    # 1 M elements, median of 5
    python benchmarks/bench_overhead.py --quick            # tiny, for CI smoke runs
    python benchmarks/bench_overhead.py --peer-python /tmp/peers/bin/python

``--peer-python`` runs the peers' rows with another interpreter (peers often live in
another virtualenv; never install them into stoker's). The bar (DESIGN.md) is 1 us per
element per stage. The limit of each row is the bare generators' figure: the floor of
Python-level iteration (ratio = generator cost / stoker cost).

Peers are written the way an expert would write this pipeline: tf.data with its own
(traced) ops and ``num_parallel_calls=AUTOTUNE``; PyTorch's ``DataLoader`` with
``num_workers=0``, since for a trivial function worker processes only add IPC per element;
Grain's own ``MapDataset``/``IterDataset`` ops in process, for the same reason.

Every figure is the median of ``--runs`` runs. Runs are interleaved round-robin, so a noisy
neighbour slows every pipeline alike instead of whichever happened to run at that moment.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
from collections.abc import Callable, Iterable
from typing import Any

import _common as common
import numpy as np

BATCH = 32
STAGES = ("range", "map", "filter", "batch")
BAR_US = 1.0


def _ident(x: object) -> object:
    return x


def _keep(x: object) -> bool:
    del x
    return True


# -- pipelines: for each framework, a builder per prefix of STAGES --------------------------


def stoker_pipelines(n: int) -> list[Callable[[], Iterable[object]]]:
    import stoker as sk

    def build(k: int) -> Callable[[], Iterable[object]]:
        def make() -> Iterable[object]:
            ds = sk.Dataset.range(n)
            if k > 1:
                ds = ds.map(_ident)
            if k > 2:
                ds = ds.filter(_keep)
            if k > 3:
                ds = ds.batch(BATCH)
            return ds

        return make

    return [build(k) for k in range(1, 5)]


def _chunked_range(n: int) -> Iterable[np.int64]:
    # NumPy scalars like stoker's elements, made in blocks as stoker's range makes them.
    for lo in range(0, n, 1024):
        yield from np.arange(lo, min(lo + 1024, n), dtype=np.int64)


def _batches(it: Iterable[object]) -> Iterable[np.ndarray]:
    buf: list[object] = []
    for x in it:
        buf.append(x)
        if len(buf) == BATCH:
            yield np.array(buf)
            buf = []
    if buf:
        yield np.array(buf)


def generator_pipelines(n: int) -> list[Callable[[], Iterable[object]]]:
    def build(k: int) -> Callable[[], Iterable[object]]:
        def make() -> Iterable[object]:
            it: Iterable[object] = _chunked_range(n)
            if k > 1:
                it = (_ident(x) for x in it)
            if k > 2:
                it = (x for x in it if _keep(x))
            if k > 3:
                it = _batches(it)
            return it

        return make

    return [build(k) for k in range(1, 5)]


def torch_pipelines(n: int) -> list[Callable[[], Iterable[object]]]:
    import torch.utils.data as tud

    class Stream(tud.IterableDataset):  # type: ignore[misc]
        def __init__(self, k: int):
            self.k = k

        def __iter__(self) -> Iterable[object]:
            it: Iterable[object] = iter(range(n))
            if self.k > 1:
                it = (_ident(x) for x in it)
            if self.k > 2:
                it = (x for x in it if _keep(x))
            return iter(it)

    def build(k: int) -> Callable[[], Iterable[object]]:
        # DataLoader collates; batch_size=None passes elements through one by one.
        return lambda: tud.DataLoader(
            Stream(min(k, 3)), batch_size=BATCH if k > 3 else None, num_workers=0
        )

    return [build(k) for k in range(1, 5)]


def grain_pipelines(n: int) -> list[Callable[[], Iterable[object]]]:
    import grain

    def build(k: int) -> Callable[[], Iterable[object]]:
        def make() -> Iterable[object]:
            ds = grain.MapDataset.range(n).to_iter_dataset()
            if k > 1:
                ds = ds.map(_ident)
            if k > 2:
                ds = ds.filter(_keep)
            if k > 3:
                ds = ds.batch(BATCH)
            return ds

        return make

    return [build(k) for k in range(1, 5)]


def tfdata_pipelines(n: int) -> list[Callable[[], Iterable[object]]]:
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE

    def build(k: int) -> Callable[[], Iterable[object]]:
        def make() -> Iterable[object]:
            ds = tf.data.Dataset.range(n)
            if k > 1:  # traced into a graph: tf.data's own ops, as an expert writes it
                ds = ds.map(lambda x: x, num_parallel_calls=autotune)
            if k > 2:
                ds = ds.filter(lambda _: True)
            if k > 3:
                ds = ds.batch(BATCH)
            return ds.as_numpy_iterator()

        return make

    return [build(k) for k in range(1, 5)]


PEERS: dict[str, tuple[str, Callable[[int], list[Callable[[], Iterable[object]]]]]] = {
    "torch DataLoader": ("torch", torch_pipelines),
    "grain": ("grain", grain_pipelines),
    "tf.data": ("tensorflow", tfdata_pipelines),
}


# -- timing ---------------------------------------------------------------------------------


def _drain(make: Callable[[], Iterable[object]]) -> common.Cell:
    with common.measure() as cell:
        for _ in make():
            pass
    return cell


def time_rows(
    rows: dict[str, list[Callable[[], Iterable[object]]]], n: int, runs: int
) -> dict[str, dict[str, list[float]]]:
    """Per framework: cumulative microseconds per element for each prefix of the stages
    (median of runs), and the CPU seconds and peak RSS of each prefix's median run."""
    samples: dict[str, list[list[common.Cell]]] = {name: [[] for _ in STAGES] for name in rows}
    for makers in rows.values():  # warm-up: imports, first calls, allocator
        for make in makers:
            for _, _ in zip(make(), range(min(n, 20_000)), strict=False):
                pass
    for _ in range(runs):
        for name, makers in rows.items():
            for k, make in enumerate(makers):
                samples[name][k].append(_drain(make))
    out = {}
    for name, per in samples.items():
        mids = [sorted(cells, key=lambda c: c.wall_s)[len(cells) // 2] for cells in per]
        out[name] = {
            "us": [statistics.median(c.wall_s for c in cells) / n * 1e6 for cells in per],
            "cpu_s": [c.cpu_s for c in mids],
            "rss_mb": [max(c.peak_rss_mb or 0.0 for c in cells) for cells in per],
        }
    return out


def peer_rows(n: int, names: Iterable[str]) -> dict[str, list[Callable[[], Iterable[object]]]]:
    rows = {}
    for name in names:
        module, build = PEERS[name]
        if importlib.util.find_spec(module) is None:
            print(f"skipped: {name} (`{module}` is not importable by this interpreter)")
            continue
        rows[name] = build(n)
    return rows


_PEER_NAMES = {"torch DataLoader": "torch", "grain": "grain", "tf.data": "tf.data"}


def contract_rows(results: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    """Rows of the JSON contract: each stage's own cost and the whole pipeline's, per peer,
    against the bare generators' figure (the limit)."""
    floor = results["generators"]["us"]
    rows = []
    workloads = [
        ("overhead: map(identity) stage", 1),
        ("overhead: filter stage", 2),
        ("overhead: batch(32) stage", 3),
        ("overhead: range-map-filter-batch pipeline", None),
    ]
    for name, res in results.items():
        us = res["us"]
        peer = "limit" if name == "generators" else _PEER_NAMES.get(name, name)
        for workload, k in workloads:
            if k is None:
                value, limit, j = us[-1], floor[-1], len(us) - 1
            else:
                value, limit, j = us[k] - us[k - 1], floor[k] - floor[k - 1], k
            if value <= 0 or limit <= 0:
                # A stage cheaper than timing noise, or one that makes the rest cheaper (a
                # batch in C++ leaves fewer elements for Python): no meaningful row.
                print(f"no row: {workload} for {name} ({value:.3f} us, limit {limit:.3f})")
                continue
            cell = common.Cell(cpu_s=res["cpu_s"][j], peak_rss_mb=res["rss_mb"][j])
            note = "bare Python generators" if peer == "limit" else ""
            rows.append(common.row(workload, peer, value, "us/el", limit, cell, note))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_contract_args(parser)
    parser.add_argument("-n", type=int, default=1_000_000, help="elements")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peers-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n, runs = (20_000, 1) if args.quick else (args.n, args.runs)

    if args.peers_only:  # the child run of --peer-python: print JSON and stop
        print(json.dumps(time_rows(peer_rows(n, PEERS), n, runs)))
        return
    # The peers cost 10-300 us per element: fewer elements (20,000 of the default million)
    # give the same per-element figure in a fraction of the time; 3 runs give a median.
    n_peers = max(min(n, 10_000), n // 50)
    runs_peers = min(runs, 3)

    results = time_rows(
        {"stoker": stoker_pipelines(n), "generators": generator_pipelines(n)}, n, runs
    )
    notes = []
    if args.peer_python:
        child_args = ["--peers-only", "-n", str(n_peers), "--runs", str(runs_peers)]
        if args.quick:
            child_args.append("--quick")
        got, note = common.run_peer_child(args.peer_python, __file__, child_args)
        if note:
            notes.append(note)
        else:
            results.update(got)
            notes.append(f"peers run by {args.peer_python}, in its own process after the others")
    else:
        results.update(time_rows(peer_rows(n_peers, PEERS), n_peers, runs_peers))

    print(f"us per input element, median of {runs} runs, {n:_} elements, batch {BATCH}")
    print("cumulative: the pipeline up to and including the stage; stage: its own cost")
    header = f"{'':28}" + "".join(f"{s:>16}" for s in STAGES)
    print(header)
    for name, res in results.items():
        row = res["us"]
        cum = "".join(f"{v:16.3f}" for v in row)
        print(f"{name + ' (cum.)':28}{cum}")
        stage = [row[0]] + [row[k] - row[k - 1] for k in range(1, len(row))]
        print(f"{name + ' (stage)':28}" + "".join(f"{v:16.3f}" for v in stage))
    sk = results["stoker"]["us"]
    sk_stage = [sk[0]] + [sk[k] - sk[k - 1] for k in range(1, len(STAGES))]
    worst = max(sk_stage)
    verdict = "meets" if worst <= BAR_US else "MISSES"
    print(f"stoker's slowest stage: {worst:.3f} us/element: {verdict} the {BAR_US} us bar")
    ratio = sk[-1] / results["generators"]["us"][-1]
    print(f"whole pipeline: stoker / bare generators = {ratio:.2f}x")
    for note in notes:
        print("note:", note)
    common.write_json(args.json, "overhead", contract_rows(results))


if __name__ == "__main__":
    main()
