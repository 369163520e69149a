"""The Ray executor against local worker processes and the hardware limit, side by side.

Workloads (each row: elements/s, and the ratio to the limit):

* ``gil_python``: a pure-Python map holding the GIL, ~1 ms per element. Limit: serial
  rate x cores.
* ``image``: an image-like NumPy map: a 224x224x3 ``uint8`` image cropped to 192x192,
  flipped, converted to normalized ``float32`` (442 kB out), a few ms each. Limit:
  serial rate x cores.
* ``call_overhead``: what one Ray call costs the pipeline: the round trip of a call
  holding one trivial element, one at a time and with many in flight (``ms`` per call).
  It sets :data:`stoker.ray.executor.CALL_S`: calls of ~30 ms of work keep the hand-off
  to a few percent.

Both maps run with ``num_parallel_calls`` = cores on ``executor="process"`` (stoker's
worker processes) and ``executor="ray"`` (one actor per core on a local cluster that this
script starts, and stops at exit). On one host Ray adds the raylet, the object store and
its own workers to the same cores; it pays off when the cluster has more CPUs than the
host. ``cpu_s`` in the JSON is the driver's own CPU time per pass (Ray's client threads
included).

    python benchmarks/bench_ray.py             # needs the [ray] extra
    python benchmarks/bench_ray.py --quick     # tiny sizes: a CI smoke run

``--peer-python`` is accepted for the runner's contract; there are no peers here (Ray Data
is not run), so it is unused. Without Ray installed the script prints a line and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import stoker as sk
from stoker import Dataset
from stoker.options import cpu_count

CORES = cpu_count()


# -- workloads (module level: workers import them by reference) ---------------------------


def py_work(x: Any, iters: int) -> Any:
    s = 0
    for i in range(iters):
        s += i
    return x


_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
_INV_STD = 1 / (np.array([0.229, 0.224, 0.225], np.float32) * 255)


def make_images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(count)]


def augment(img: np.ndarray, reps: int) -> np.ndarray:
    """Crop, flip, normalize (``reps`` times, so the cost can be set)."""
    out = None
    for r in range(reps):
        y, x = (r * 7) % 32, (r * 13) % 32
        crop = img[y : y + 192, x : x + 192, ::-1] if r % 2 else img[y : y + 192, x : x + 192]
        out = (crop.astype(np.float32) - _MEAN) * _INV_STD
    assert out is not None
    return out


def _call_s(fn: Callable[[Any], Any], arg: Any, calls: int = 7) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def calibrate(make: Callable[[int], Callable[[Any], Any]], arg: Any, target_s: float) -> int:
    k = 1
    while True:
        t = _call_s(make(k), arg)
        if t >= target_s / 4 or k > 1 << 26:
            return max(1, round(k * target_s / max(t, 1e-9)))
        k *= 4


# -- measuring ------------------------------------------------------------------------------


def one_pass(ds: Dataset) -> tuple[float, float]:
    """Wall and driver CPU seconds of one full pass."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in ds:
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


def _row(
    workload: str,
    peer: str,
    value: float,
    unit: str,
    limit: float | None,
    cpu_s: float | None,
    note: str = "",
) -> dict[str, Any]:
    ratio = None
    if limit and value > 0:
        ratio = limit / value if unit in ("ms", "us/el") else value / limit
    return {
        "workload": workload,
        "peer": peer,
        "value": float(value),
        "unit": unit,
        "limit": None if limit is None else float(limit),
        "ratio_to_limit": ratio,
        "peak_rss_mb": None,
        "cpu_s": None if cpu_s is None else round(cpu_s, 4),
        "note": note,
    }


def _print(row: dict[str, Any]) -> None:
    ratio = row["ratio_to_limit"]
    r = f"{ratio:9.2f}" if ratio is not None else f"{'-':>9}"
    cpu = f"{row['cpu_s']:8.3f}" if row["cpu_s"] is not None else f"{'-':>8}"
    print(f"   {row['peer']:<16} {row['value']:12.2f} {row['unit']:<6} {r} {cpu}  {row['note']}")


def bench_map(
    rows: list[dict[str, Any]],
    name: str,
    source: Dataset,
    fn: Callable[[Any], Any],
    n: int,
    serial_s: Callable[[], float],
    runs: int,
    unit: str,
) -> None:
    """Each timed pass is paired with a fresh serial measurement taken just before it (the
    load on a shared machine drifts); a row shows the medians, and the median ratio."""
    base = serial_s()
    print(
        f"\n== {name}: {n} elements; limit {n * CORES / base:.1f} {unit} (serial "
        f"{n / base:.1f} x {CORES} cores; re-measured before every pass)"
    )
    print(f"   {'candidate':<16} {'value':>12} {'unit':<6} {'vs limit':>9} {'cpu_s':>8}")
    rows.append(_row(name, "serial", n / base, unit, n * CORES / base, None, "one core"))
    _print(rows[-1])
    for executor in ("process", "ray"):
        ds = source.map(fn, num_parallel_calls=CORES, executor=executor)
        one_pass(ds)  # warm-up: workers and actors started (and kept for the next pass)
        walls, cpus, limits, ratios = [], [], [], []
        for _ in range(runs):
            limit = n * CORES / serial_s()
            wall, cpu = one_pass(ds)
            walls.append(wall)
            cpus.append(cpu)
            limits.append(limit)
            ratios.append(n / wall / limit)
        wall, cpu, med = statistics.median(walls), statistics.median(cpus), statistics.median
        note = f"executor={executor!r}, {CORES} workers; driver CPU {cpu / n * 1e6:.0f} us/el"
        row = _row(name, f"stoker-{executor}", n / wall, unit, med(limits), cpu, note)
        row["ratio_to_limit"] = med(ratios)
        rows.append(row)
        _print(rows[-1])


def _calls(it: Any) -> int:
    """Ray calls made by the stages of the iterator tree ``it``."""
    total, stack = 0, [it]
    while stack:
        node = stack.pop()
        ex = getattr(node, "_last", None) or getattr(node, "_run", None)
        total += int(getattr(ex, "calls", 0) or 0)
        stack.extend(getattr(node, "_inputs", ()))
    return total


def _timed(make: Callable[[], Dataset], runs: int) -> tuple[float, float, int]:
    """Median wall and driver CPU seconds of ``runs`` passes (after a warm-up pass that
    starts the actors), and the Ray calls of the last pass."""
    ds = make()
    for _ in ds:  # warm-up: its actors are kept for the timed passes
        pass
    walls, cpus, calls = [], [], 0
    for _ in range(runs):
        it = ds.iterator()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in it:
            pass
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        calls = _calls(it)
        del it
    return statistics.median(walls), statistics.median(cpus), calls


def _files(work: Callable[[Any], Any], per_file: int) -> Callable[[Any], Dataset]:
    return functools.partial(_one_file, work, per_file)


def _one_file(work: Callable[[Any], Any], per_file: int, _x: Any) -> Dataset:
    return Dataset.range(per_file).map(work)


def bench_interleave(
    rows: list[dict[str, Any]],
    name: str,
    work: Callable[[Any], Any],
    files: int,
    per_file: int,
    serial_el_s: float | None,
    runs: int,
) -> None:
    """``interleave`` whose per-file work (``map_func``'s dataset, iterated) runs on
    threads (the local parallel interleave) and on Ray actors; the limit is the serial
    rate x cores when the work holds the GIL."""
    n = files * per_file
    limit = serial_el_s * CORES if serial_el_s else None
    what = f"{files} files x {per_file} elements"
    print(f"\n== {name}: {what}" + (f"; limit {limit:.0f} el/s" if limit else ""))
    print(f"   {'candidate':<16} {'value':>12} {'unit':<6} {'vs limit':>9} {'cpu_s':>8}")
    if serial_el_s:
        rows.append(_row(name, "serial", serial_el_s, "el/s", limit, None, "one core"))
        _print(rows[-1])
    fn = _files(work, per_file)
    for executor in ("thread", "ray"):

        def make(executor: str = executor) -> Dataset:
            return Dataset.range(files).interleave(
                fn, cycle_length=CORES * 2, num_parallel_calls=CORES, executor=executor
            )

        wall, cpu, calls = _timed(make, runs)
        note = f"executor={executor!r}; driver CPU {cpu / n * 1e6:.1f} us/el"
        if executor == "ray" and calls:
            note += (
                f"; {calls} calls of {n / calls:.0f} el, driver CPU {cpu / calls * 1e3:.2f} "
                "ms per call"
            )
        rows.append(_row(name, f"stoker-{executor}", n / wall, "el/s", limit, cpu, note))
        _print(rows[-1])


def bench_fused(
    rows: list[dict[str, Any]],
    name: str,
    source: Dataset,
    f: Callable[[Any], Any],
    g: Callable[[Any], Any],
    n: int,
    runs: int,
    unit: str,
) -> None:
    """``map(f).map(g)`` on Ray, fused (one stage, one round trip per element) and unfused
    (an empty ``with_options`` between the maps stops the fusion: two stages)."""
    print(f"\n== {name}: {n} elements, map(f).map(g) on Ray, {CORES} actors per stage")
    print(f"   {'candidate':<16} {'value':>12} {'unit':<6} {'vs limit':>9} {'cpu_s':>8}")
    for peer in ("stoker-ray-unfused", "stoker-ray-fused"):

        def make(peer: str = peer) -> Dataset:
            ds = source.map(f, num_parallel_calls=CORES, executor="ray")
            if peer.endswith("unfused"):
                ds = ds.with_options(sk.Options())
            return ds.map(g, num_parallel_calls=CORES, executor="ray")

        wall, cpu, calls = _timed(make, runs)
        note = (
            f"driver CPU {cpu / n * 1e6:.0f} us/el; {calls} calls, "
            f"{cpu / max(1, calls) * 1e3:.2f} ms driver CPU per call"
        )
        rows.append(_row(name, peer, n / wall, unit, None, cpu, note))
        _print(rows[-1])


def bench_call_overhead(rows: list[dict[str, Any]], calls: int) -> None:
    from stoker.ray import RayExecutor

    class Spec:
        def element_fn(self, pass_id: list[int]) -> Callable[[int, Any], Any]:
            del pass_id
            return _second

    print(f"\n== call_overhead: {calls} calls of one trivial element, 1 actor")
    ex = RayExecutor(Spec(), "overhead", actors=1, in_flight_per_actor=1, chunk_size=1)
    try:
        ex.submit(0, [0], [(0, 0)])  # the actor starts
        while ex.in_flight:
            ex.poll(1.0)
        start = time.perf_counter()
        for tag in range(calls):
            ex.submit(tag, [0], [(tag, tag)])
            while ex.in_flight:
                ex.poll(1.0)
        one = (time.perf_counter() - start) / calls
    finally:
        ex.close()
    ex = RayExecutor(Spec(), "overhead", actors=1, in_flight_per_actor=calls, chunk_size=1)
    try:
        ex.submit(0, [0], [(0, 0)])
        while ex.in_flight:
            ex.poll(1.0)
        start = time.perf_counter()
        for tag in range(calls):
            ex.submit(tag, [0], [(tag, tag)])
        while ex.in_flight:
            ex.poll(1.0)
        many = (time.perf_counter() - start) / calls
    finally:
        ex.close()
    for peer, value, note in (
        ("stoker-ray", one * 1e3, "one call at a time: submit, compute, poll (round trip)"),
        ("stoker-ray-pipelined", many * 1e3, f"{calls} calls in flight: cost per call"),
    ):
        rows.append(_row("call_overhead", peer, value, "ms", None, None, note))
        _print(rows[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows to PATH as JSON")
    parser.add_argument("--peer-python", default="", help="accepted; no peers here")
    parser.add_argument("--runs", type=int, default=None, help="timed passes per candidate")
    args = parser.parse_args(argv)
    quick = args.quick
    runs = args.runs or (1 if quick else 3)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"stoker {sk.__version__}, Python {sys.version.split()[0]}, {CORES} cores, "
        f"load average {load}, quick={quick}"
    )
    rows: list[dict[str, Any]] = []
    # A one-machine cluster on the loopback interface: Ray otherwise takes the machine's
    # outward-facing address as the node's. Must be set before ray is imported.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        print("bench_ray: skipped: Ray is not installed (pip install 'stoker[ray]')")
        _write(args.json, rows)
        return
    import stoker.ray

    start = time.perf_counter()
    stoker.ray.connect(None, num_cpus=CORES)  # a local cluster, owned: stopped at exit
    print(f"Ray {ray.__version__}: local cluster started in {time.perf_counter() - start:.1f} s")

    n = 40 if quick else 2000
    iters = calibrate(lambda k: functools.partial(py_work, iters=k), 0, 1e-3)
    fn = functools.partial(py_work, iters=iters)
    sub = 20 if quick else 200

    def serial_py() -> float:
        start = time.perf_counter()
        for i in range(sub):
            fn(i)
        return (time.perf_counter() - start) * n / sub

    bench_map(rows, "gil_python", Dataset.range(n), fn, n, serial_py, runs, "el/s")

    n_img = 16 if quick else 600
    images = make_images(16)
    reps = calibrate(lambda k: functools.partial(augment, reps=k), images[0], 3e-3)
    aug = functools.partial(augment, reps=reps)

    def serial_img() -> float:
        start = time.perf_counter()
        for i in range(48):
            aug(images[i % 16])
        return (time.perf_counter() - start) * n_img / 48

    source = Dataset.range(n_img).map(functools.partial(_pick, images))
    bench_map(rows, "image", source, aug, n_img, serial_img, runs, "img/s")

    # The stages below fix their actor count (num_parallel_calls); reserving no CPU per
    # actor lets two stages of CORES actors each (unfused maps) start on CORES CPUs.
    stoker.ray.configure(num_cpus=0)
    # interleave: per-file work on Ray. GIL-holding elements (~0.5 ms): threads share
    # one core, actors use all; cheap elements: what the hand-off costs per element.
    half = functools.partial(py_work, iters=max(1, iters // 2))
    per = 10 if quick else 100
    sub_n = 20 if quick else 200
    t0 = time.perf_counter()
    for i in range(sub_n):
        half(i)
    serial_half = sub_n / (time.perf_counter() - t0)
    bench_interleave(rows, "interleave_gil", half, 4 if quick else 24, per, serial_half, runs)
    bench_interleave(
        rows, "interleave_cheap", _identity, 4 if quick else 16, 50 if quick else 5000, None, runs
    )

    # Fused Ray maps: cheap elements (the round trips dominate) and images (every array
    # through the object store once instead of twice).
    bench_fused(
        rows, "fused_cheap", Dataset.range(n * 10), _identity, _identity, n * 10, runs, "el/s"
    )
    bench_fused(rows, "fused_image", source, aug, _half, n_img, runs, "img/s")

    bench_call_overhead(rows, 20 if quick else 300)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load}")
    _write(args.json, rows)


def _second(_index: int, x: Any) -> Any:
    return x


def _identity(x: Any) -> Any:
    return x


def _half(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16)


def _pick(images: list[np.ndarray], i: Any) -> np.ndarray:
    return images[int(i) % len(images)]


def _write(path: str | None, rows: list[dict[str, Any]]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump({"benchmark": "ray", "rows": rows}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
