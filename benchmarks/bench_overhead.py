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
element per stage.

Every figure is the median of ``--runs`` runs. Runs are interleaved round-robin, so a noisy
neighbour slows every pipeline alike instead of whichever happened to run at that moment.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

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

    def build(k: int) -> Callable[[], Iterable[object]]:
        def make() -> Iterable[object]:
            ds = tf.data.Dataset.range(n)
            if k > 1:  # the Python function itself, as stoker runs it (not a traced graph)
                ds = ds.map(lambda x: tf.py_function(_ident, [x], tf.int64))
            if k > 2:
                ds = ds.filter(lambda x: tf.py_function(_keep, [x], tf.bool))
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


def _drain(make: Callable[[], Iterable[object]]) -> float:
    t0 = time.perf_counter()
    for _ in make():
        pass
    return time.perf_counter() - t0


def time_rows(
    rows: dict[str, list[Callable[[], Iterable[object]]]], n: int, runs: int
) -> dict[str, list[float]]:
    """Cumulative microseconds per element for each prefix of the stages (median of runs)."""
    samples: dict[str, list[list[float]]] = {name: [[] for _ in STAGES] for name in rows}
    for makers in rows.values():  # warm-up: imports, first calls, allocator
        for make in makers:
            for _, _ in zip(make(), range(min(n, 20_000)), strict=False):
                pass
    for _ in range(runs):
        for name, makers in rows.items():
            for k, make in enumerate(makers):
                samples[name][k].append(_drain(make) / n * 1e6)
    return {name: [statistics.median(s) for s in per] for name, per in samples.items()}


def peer_rows(n: int, names: Iterable[str]) -> dict[str, list[Callable[[], Iterable[object]]]]:
    rows = {}
    for name in names:
        module, build = PEERS[name]
        if importlib.util.find_spec(module) is None:
            continue
        rows[name] = build(n)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("-n", type=int, default=1_000_000, help="elements")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peer-python", help="interpreter with torch / grain / tensorflow")
    parser.add_argument("--peers-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n, runs = (20_000, 1) if args.quick else (args.n, args.runs)

    if args.peers_only:  # the child run of --peer-python: print JSON and stop
        json.dump(time_rows(peer_rows(n, PEERS), n, runs), sys.stdout)
        return

    results = time_rows(
        {"stoker": stoker_pipelines(n), "generators": generator_pipelines(n)}, n, runs
    )
    local = peer_rows(n, PEERS)
    results.update(time_rows(local, n, runs))
    notes = []
    if args.peer_python:
        cmd = [args.peer_python, __file__, "--peers-only", "-n", str(n), "--runs", str(runs)]
        if args.quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            for name, row in json.loads(proc.stdout).items():
                results.setdefault(f"{name} *", row)
            notes.append(f"* run by {args.peer_python}, in its own process after the others")
        else:
            notes.append(f"--peer-python failed: {proc.stderr.strip().splitlines()[-1:]}")
    for name, (module, _) in PEERS.items():
        if name not in results and f"{name} *" not in results:
            notes.append(f"{name}: skipped, `{module}` is not importable here")

    print(f"us per input element, median of {runs} runs, {n:_} elements, batch {BATCH}")
    print("cumulative: the pipeline up to and including the stage; stage: its own cost")
    header = f"{'':28}" + "".join(f"{s:>16}" for s in STAGES)
    print(header)
    for name, row in results.items():
        cum = "".join(f"{v:16.3f}" for v in row)
        print(f"{name + ' (cum.)':28}{cum}")
        stage = [row[0]] + [row[k] - row[k - 1] for k in range(1, len(row))]
        print(f"{name + ' (stage)':28}" + "".join(f"{v:16.3f}" for v in stage))
    sk_stage = [results["stoker"][0]] + [
        results["stoker"][k] - results["stoker"][k - 1] for k in range(1, len(STAGES))
    ]
    worst = max(sk_stage)
    verdict = "meets" if worst <= BAR_US else "MISSES"
    print(f"stoker's slowest stage: {worst:.3f} us/element: {verdict} the {BAR_US} us bar")
    ratio = results["stoker"][-1] / results["generators"][-1]
    print(f"whole pipeline: stoker / bare generators = {ratio:.2f}x")
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
