"""The parallel engine: stoker vs a serial loop, the hardware limit and peers, side by side.

Workloads (each prints seconds, elements/s and the ratio to its limit):

* ``gil_python``: a pure-Python map holding the GIL, ~1 ms per element. Limit: serial / cores.
* ``numpy_partial``: NumPy on small arrays, ~1 ms, releasing the GIL only inside each op.
  Limit: serial / cores. ``executor="auto"`` must notice threads do not scale.
* ``io_wait``: 5 ms of waiting per element, 16 in flight. Limit: 5 ms * n / 16.
* ``prefetch``: producer 2 ms, consumer 2 ms per element. Limit: max(producer, consumer) * n.
* ``trivial``: ``map(lambda x: x)``; per-element cost, and whether inline wins.
* ``handoff``: moving 1 MB arrays between processes: stoker's shared-memory ring vs a
  pickled ``multiprocessing.Queue`` vs a new shared-memory segment per array.
* ``startup``: worker processes start once: first pass vs the next.

Peers run when importable (PyTorch ``DataLoader``, Grain, tf.data); install them in a
separate virtualenv, never in the project's::

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.13.0 grain
    /tmp/peers/bin/pip install -e . && /tmp/peers/bin/python benchmarks/bench_parallel.py

    python benchmarks/bench_parallel.py --quick      # tiny sizes: a CI smoke run
    python benchmarks/bench_parallel.py --json out.json --peer-python /tmp/peers/bin/python

``--json PATH`` writes every row as ``{"benchmark": "parallel", "rows": [...]}`` (the
benchmark JSON contract: workload, peer, value, unit, limit, ratio_to_limit, cpu_s, ...).
``--peer-python PYTHON`` runs the peers' rows in that interpreter (this script again, with
``--peers-only``), so they need not be installed next to stoker. ``cpu_s`` of a stoker
row is the consumer process's own CPU time per pass (``getrusage(RUSAGE_SELF)``: worker
processes excluded), the cost the parent adds next to the workers.

Each figure is the median of ``--runs`` timed passes after one warm-up pass (pools and
worker processes started), so it measures steady state; ``startup`` shows the first pass.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import stoker as sk
from stoker import AUTOTUNE, Dataset
from stoker.options import cpu_count

CORES = cpu_count()

#: Rows of the JSON contract, in the order measured.
ROWS: list[dict[str, Any]] = []
#: Which rows this process measures: stoker's (and the limits), the peers', or both.
RUN_STOKER = True
RUN_PEERS = True


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def add_row(
    workload: str,
    peer: str,
    value: float,
    unit: str,
    limit: float | None = None,
    cpu_s: float | None = None,
    note: str = "",
    ratio: float | None = None,
) -> None:
    """One row of the benchmark JSON contract (``ratio``: when paired measurements
    give a better ratio than value / limit)."""
    if ratio is None and limit and value > 0:
        ratio = limit / value if unit == "us/el" else value / limit
    ROWS.append(
        {
            "workload": workload,
            "peer": peer,
            "value": float(value),
            "unit": unit,
            "limit": None if limit is None else float(limit),
            "ratio_to_limit": None if ratio is None else float(ratio),
            "peak_rss_mb": None,
            "cpu_s": None if cpu_s is None else round(cpu_s, 4),
            "note": note,
        }
    )


# -- workloads (module level: worker processes import them by reference) ------------------


def py_work(x: Any, iters: int) -> Any:
    s = 0
    for i in range(iters):
        s += i
    return x


def np_work(x: Any, reps: int, arr: np.ndarray, py_iters: int = 0) -> Any:
    """NumPy work on a large array (releases the GIL) after some Python (holds it)."""
    s = 0
    for i in range(py_iters):
        s += i
    buf = np.empty_like(arr)  # in place below: no allocator churn between ops
    np.copyto(buf, arr)
    for _ in range(reps):
        np.sqrt(buf, out=buf)
        np.add(buf, 1.0, out=buf)
    return x + int(buf[0] > 1e9)


def sleep_work(x: Any, seconds: float) -> Any:
    time.sleep(seconds)
    return x


def identity(x: Any) -> Any:
    return x


def worker_pid(_: Any) -> int:
    return os.getpid()


_MB: dict[int, np.ndarray] = {}


def one_mb(x: Any) -> np.ndarray:
    """A pre-made 1 MB array; 128 distinct ones, so a chunk never repeats one (pickle
    would send a repeated object once)."""
    key = int(x) % 128
    arr = _MB.get(key)
    if arr is None:
        arr = _MB[key] = np.full(1 << 20, key, dtype=np.uint8)
    return arr


def _call_s(fn: Callable[[Any], Any], calls: int = 9) -> float:
    """Median seconds of one call (after a warm-up call)."""
    fn(0)
    times = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def calibrate(make: Callable[[int], Callable[[Any], Any]], target_s: float) -> int:
    """The work parameter that makes one call take about ``target_s``."""
    k = 1
    while _call_s(make(k), 3) < target_s / 8:
        k *= 4
    k = max(1, round(k * target_s / _call_s(make(k))))
    return max(1, round(k * target_s / _call_s(make(k))))


# -- timing ---------------------------------------------------------------------------------


Consume = Callable[[Any], None]


def one_pass(make_iter: Callable[[], Iterable[Any]], consume: Consume) -> float:
    return one_pass_cpu(make_iter, consume)[0]


def one_pass_cpu(make_iter: Callable[[], Iterable[Any]], consume: Consume) -> tuple[float, float]:
    """Wall seconds of one pass, and this process's CPU seconds during it."""
    cpu = _self_cpu()
    start = time.perf_counter()
    for x in make_iter():
        consume(x)
    return time.perf_counter() - start, _self_cpu() - cpu


def timed(make_iter: Callable[[], Iterable[Any]], runs: int, consume: Consume) -> float:
    """Median seconds of ``runs`` passes after one warm-up pass."""
    one_pass(make_iter, consume)
    return statistics.median(one_pass(make_iter, consume) for _ in range(runs))


def _noop(_: Any) -> None:
    pass


class Table:
    """Rows of one workload.

    With ``rebase`` (a function measuring the limit again), every timed pass of a row
    is paired with a fresh measurement of the limit taken just before it, and the row
    shows the median of the per-pair ratios: on a shared machine the load drifts, and a
    limit measured minutes earlier would credit or blame the candidate for the drift.
    """

    def __init__(
        self,
        title: str,
        n: int,
        limit_s: float,
        limit_text: str,
        rebase: Callable[[], float] | None = None,
    ):
        self.title, self.n, self.limit_s, self.limit_text = title, n, limit_s, limit_text
        self.workload = title.split()[0]
        self.rebase = rebase
        print(f"\n== {title}: {n} elements; limit {limit_s:.3f} s ({limit_text})")
        if rebase is not None:
            print("   (the limit is re-measured before every pass; 'limit s': their median)")
        extra = f" {'limit s':>8}" if rebase is not None else ""
        print(f"   {'candidate':<42} {'seconds':>9} {'elem/s':>10} {'vs limit':>9}{extra}")

    def measure(
        self,
        name: str,
        make_iter: Callable[[], Iterable[Any]],
        runs: int,
        consume: Consume,
        note: Callable[[], str] = lambda: "",
        peer: str = "stoker",
    ) -> None:
        """Time one candidate: a warm-up pass, then ``runs`` passes (each after its own
        measurement of the limit when rebasing), and print its row."""
        one_pass(make_iter, consume)
        seconds, ratios, limits, cpus = [], [], [], []
        for _ in range(runs):
            limit = self.rebase() if self.rebase is not None else self.limit_s
            s, cpu = one_pass_cpu(make_iter, consume)
            seconds.append(s)
            limits.append(limit)
            ratios.append(limit / s)
            cpus.append(cpu)
        med = statistics.median
        self.row(name, med(seconds), note(), med(limits), med(ratios), peer, med(cpus))

    def row(
        self,
        name: str,
        seconds: float,
        note: str = "",
        limit: float | None = None,
        ratio: float | None = None,
        peer: str = "serial",
        cpu_s: float | None = None,
    ) -> None:
        limit = self.limit_s if limit is None else limit
        rate = self.n / seconds if seconds > 0 else float("inf")
        if ratio is None:
            ratio = limit / seconds if seconds > 0 else float("inf")
        extra = f" {limit:8.3f}" if self.rebase is not None else ""
        cpu = f" [consumer CPU {cpu_s / self.n * 1e3:.4f} s/1000 el]" if cpu_s is not None else ""
        print(f"   {name:<42} {seconds:9.3f} {rate:10.0f} {ratio:9.2f}{extra}  {note}{cpu}")
        add_row(
            self.workload,
            peer,
            rate,
            "el/s",
            self.n / limit if limit > 0 else None,
            cpu_s,
            f"{name} {note}".strip(),
            ratio,
        )

    def skip(self, name: str, why: str) -> None:
        print(f"   {name:<42} {'-':>9} {'-':>10} {'-':>9}  skipped: {why}")


# -- peers ----------------------------------------------------------------------------------


class _TorchSource:
    def __init__(self, n: int, fn: Callable[[Any], Any]):
        self.n, self.fn = n, fn

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.fn(i)


def peer_torch(n: int, fn: Callable[[Any], Any], workers: int) -> Callable[[], Iterable[Any]] | str:
    try:
        import torch.utils.data as tud
    except ImportError:
        return "torch not installed"
    loader = tud.DataLoader(
        _TorchSource(n, fn),
        batch_size=None,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers else None,
    )
    return lambda: loader


def peer_grain(
    n: int, fn: Callable[[Any], Any], threads: int = 0, processes: int = 0
) -> Callable[[], Iterable[Any]] | str:
    try:
        import grain
    except ImportError:
        return "grain not installed"
    ds = grain.MapDataset.range(n).map(fn)
    if processes:
        it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=8))
        mp_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=processes))
        return lambda: mp_ds
    opts = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(2 * threads, 8))
    it_ds = ds.to_iter_dataset(opts)
    return lambda: it_ds


def peer_tf(
    n: int, fn: Callable[[Any], Any], parallel: int | None, prefetch: int = 0
) -> Callable[[], Iterable[Any]] | str:
    try:
        import tensorflow as tf
    except ImportError:
        return "tensorflow not installed"

    def py(x: Any) -> Any:
        return tf.py_function(lambda v: fn(int(v)), [x], tf.int64)

    ds = tf.data.Dataset.range(n).map(py, num_parallel_calls=parallel)
    if prefetch:
        ds = ds.prefetch(prefetch)
    return lambda: ds


def run_peer(table: Table, name: str, made: Any, runs: int, consume: Callable[[Any], None]) -> None:
    if isinstance(made, str):
        table.skip(name, made)
        return
    peer = name.split()[0]  # "torch", "grain", "tf.data"
    try:
        table.measure(name, made, runs, consume, peer=peer)
    except Exception as e:  # a peer's failure must not end the comparison
        table.skip(name, f"{type(e).__name__}: {e}")


# -- the benchmarks -------------------------------------------------------------------------


def _stoker_row(
    table: Table, name: str, ds: Dataset, runs: int, consume: Any = _noop, peer: str = "stoker"
) -> None:
    if not RUN_STOKER:
        return
    its: list[Any] = []

    def make() -> Iterable[Any]:
        it = ds.iterator()
        its.append(it)
        return it

    def note() -> str:
        info = getattr(its[-1], "executor_info", {})
        return f"[{info['executor']}: {info.get('reason', '')}]"[:110] if info else ""

    table.measure(name, make, runs, consume, note, peer)


def bench_cpu(title: str, fn: Callable[[Any], Any], n: int, runs: int, peers: bool) -> None:
    serial_s = serial_time(fn, n)
    table = Table(
        title,
        n,
        serial_s / CORES,
        f"serial {serial_s:.3f} s / {CORES} cores",
        rebase=lambda: serial_time(fn, n) / CORES,
    )
    if RUN_STOKER:
        table.row("serial loop", serial_s, limit=serial_s / CORES)
    for executor in ("auto", "process", "thread"):
        ds = Dataset.range(n).map(fn, num_parallel_calls=AUTOTUNE, executor=executor)
        peer = "stoker" if executor == "auto" else f"stoker-{executor}"
        _stoker_row(table, f"stoker map(AUTOTUNE, executor={executor!r})", ds, runs, peer=peer)
    if peers:
        for name, made in (
            (f"torch DataLoader(num_workers={CORES})", peer_torch(n, fn, CORES)),
            (f"grain mp_prefetch({CORES} processes)", peer_grain(n, fn, processes=CORES)),
            (f"grain {CORES} threads", peer_grain(n, fn, threads=CORES)),
            ("tf.data py_function AUTOTUNE", peer_tf(n, fn, -1)),
        ):
            run_peer(table, name, made, runs, _noop)


def serial_time(fn: Callable[[Any], Any], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - start


def bench_io(n: int, runs: int, peers: bool) -> None:
    wait, inflight = 0.005, 16
    fn = functools.partial(sleep_work, seconds=wait)
    # The latency is what a 5 ms wait really takes here (timer slack adds ~0.2 ms).
    latency = _call_s(fn, 50)
    table = Table(
        "io_wait", n, latency * n / inflight, f"latency {latency * 1e3:.2f} ms x n / {inflight}"
    )
    ds = Dataset.range(n).map(fn, num_parallel_calls=inflight, executor="thread")
    _stoker_row(table, f"stoker map({inflight}, executor='thread')", ds, runs, peer="stoker-thread")
    ds = Dataset.range(n).map(fn, num_parallel_calls=inflight)
    _stoker_row(table, f"stoker map({inflight}, executor='auto')", ds, runs)
    ds = Dataset.range(n).map(fn, num_parallel_calls=AUTOTUNE)
    _stoker_row(
        table, "stoker map(AUTOTUNE) (may exceed 16 in flight)", ds, runs, peer="stoker-autotune"
    )
    if peers:
        for name, made in (
            (f"torch DataLoader(num_workers={inflight})", peer_torch(n, fn, inflight)),
            (f"grain {inflight} threads", peer_grain(n, fn, threads=inflight)),
            (f"tf.data py_function({inflight})", peer_tf(n, fn, inflight)),
        ):
            run_peer(table, name, made, runs, _noop)


def _thread_queue(n: int, fn: Callable[[Any], Any]) -> Iterable[Any]:
    q: queue.Queue[Any] = queue.Queue(2)
    end = object()

    def produce() -> None:
        for i in range(n):
            q.put(fn(i))
        q.put(end)

    threading.Thread(target=produce, daemon=True).start()
    while (x := q.get()) is not end:
        yield x


def bench_prefetch(n: int, runs: int, peers: bool) -> None:
    step = 0.002
    producer = functools.partial(sleep_work, seconds=step)

    def consume(_: Any) -> None:
        time.sleep(step)

    no_prefetch = Dataset.range(n).map(producer)
    produce_s = timed(lambda: no_prefetch, runs, _noop)
    consume_s = timed(lambda: range(n), runs, consume)
    table = Table(
        "prefetch",
        n,
        max(produce_s, consume_s),
        f"max(producer {produce_s:.3f} s, consumer {consume_s:.3f} s), each measured alone",
    )
    _stoker_row(
        table, "stoker map(producer) (no prefetch)", no_prefetch, runs, consume, "stoker-none"
    )
    for size in (1, 2, AUTOTUNE):
        ds = Dataset.range(n).map(producer).prefetch(size)
        peer = "stoker" if size == AUTOTUNE else f"stoker-prefetch{size}"
        _stoker_row(table, f"stoker map(producer).prefetch({size!r})", ds, runs, consume, peer)
    if RUN_STOKER:
        reference = "reference: a thread + queue.Queue(2)"
        table.measure(
            reference, lambda: _thread_queue(n, producer), runs, consume, peer="reference"
        )
    if peers:
        for name, made in (
            ("torch DataLoader(num_workers=1)", peer_torch(n, producer, 1)),
            ("grain 1 thread", peer_grain(n, producer, threads=1)),
            ("tf.data map(py_function).prefetch(2)", peer_tf(n, producer, None, prefetch=2)),
        ):
            run_peer(table, name, made, runs, consume)


def _per_element(name: str, n: int, seconds: float, note: str = "", peer: str = "") -> None:
    us = seconds / n * 1e6
    print(f"   {name:<42} {seconds:9.3f} {n / seconds:10.0f} {us:8.2f} us/element {note}")
    if peer:
        add_row("trivial", peer, us, "us/el", note=f"{name} {note}".strip())


def bench_trivial(n: int, runs: int) -> None:
    print(f"\n== trivial map(lambda x: x): {n} elements; the figure is the cost per element")
    print(f"   {'candidate':<42} {'seconds':>9} {'elem/s':>10}")
    bare = timed(lambda: (identity(x) for x in range(n)), runs, _noop)
    _per_element("bare generator", n, bare, peer="limit")
    seq = Dataset.range(n).map(identity)
    _per_element("stoker map (sequential)", n, timed(lambda: seq, runs, _noop), peer="stoker-seq")
    for executor in ("auto", "thread", "process"):
        ds = Dataset.range(n).map(identity, num_parallel_calls=AUTOTUNE, executor=executor)
        made: list[Any] = []

        def make(ds: Dataset = ds, made: list[Any] = made) -> Iterable[Any]:
            made.append(ds.iterator())
            return made[-1]

        seconds = timed(make, runs, _noop)
        name = f"stoker map(AUTOTUNE, executor={executor!r})"
        peer = "stoker" if executor == "auto" else f"stoker-{executor}"
        _per_element(name, n, seconds, f"[{made[-1].executor_info['executor']}]", peer)
    print("   a thread or process hand-off costs more than a trivial call: 'auto' runs it inline")


def _queue_child(q: Any, count: int) -> None:
    arr = np.ones(1 << 20, dtype=np.uint8)
    for _ in range(count):
        q.put(arr)


def _segment_child(q: Any, count: int) -> None:
    from multiprocessing import resource_tracker, shared_memory

    arr = np.ones(1 << 20, dtype=np.uint8)
    for _ in range(count):
        seg = shared_memory.SharedMemory(create=True, size=arr.nbytes)
        # The consumer unlinks it; Python 3.11's tracker would report it leaked otherwise.
        resource_tracker.unregister(seg._name, "shared_memory")  # type: ignore[attr-defined]
        np.ndarray(arr.shape, arr.dtype, buffer=seg.buf)[:] = arr
        q.put(seg.name)
        seg.close()


def _take_array(got: Any) -> None:
    """Copy out an array a child sent, unlinking its segment if it came in one (every
    segment, the first included: the child unregistered them from its tracker)."""
    if isinstance(got, str):
        from multiprocessing import shared_memory

        seg = shared_memory.SharedMemory(name=got)
        np.array(np.ndarray((1 << 20,), np.uint8, buffer=seg.buf))
        seg.close()
        seg.unlink()


def bench_handoff(count: int, runs: int) -> None:
    gb = count * (1 << 20) / 1e9
    print(f"\n== handoff: {count} arrays of 1 MB from worker processes to the consumer")
    # One copy per array, from a 64 MB ring (out of the caches, as a worker's ring is) into
    # recycled memory: what reading a recycled ring in place costs the consumer.
    ring, dst = np.ones(64 << 20, np.uint8), np.empty(1 << 20, np.uint8)
    start = time.perf_counter()
    for i in range(count):
        off = (i % 64) << 20
        np.copyto(dst, ring[off : off + (1 << 20)])
    limit_s = time.perf_counter() - start
    name = "limit: one 1 MB copy into recycled memory"
    print(f"   {name:<42} {limit_s:9.3f} {gb / limit_s:8.2f} GB/s")
    add_row("handoff", "limit", gb * 1e3 / limit_s, "MB/s", note=name)
    ds = Dataset.range(count).map(one_mb, num_parallel_calls=2, executor="process")
    seconds = timed(lambda: ds, runs, _noop)
    cpu = one_pass_cpu(lambda: ds, _noop)[1]
    name = "stoker map(executor='process'): shm ring"
    print(f"   {name:<42} {seconds:9.3f} {gb / seconds:8.2f} GB/s  [consumer CPU {cpu:.3f} s]")
    add_row("handoff", "stoker", gb * 1e3 / seconds, "MB/s", gb * 1e3 / limit_s, cpu, name)
    ctx = mp.get_context("spawn")
    for name, child in (
        ("multiprocessing.Queue (pickled)", _queue_child),
        ("new SharedMemory segment per array", _segment_child),
    ):
        times = []
        for _ in range(runs):
            q = ctx.Queue(maxsize=8)
            p = ctx.Process(target=child, args=(q, count))
            p.start()
            _take_array(q.get())  # first array: the child is up
            start = time.perf_counter()
            for _ in range(count - 1):
                _take_array(q.get())
            times.append(time.perf_counter() - start)
            p.join()
        seconds = statistics.median(times)
        rate = gb * (count - 1) / count / seconds
        print(f"   {name:<42} {seconds:9.3f} {rate:8.2f} GB/s")
        add_row("handoff", "multiprocessing", rate * 1e3, "MB/s", gb * 1e3 / limit_s, note=name)


def bench_startup(n: int) -> None:
    print("\n== startup: worker processes start once, not once per pass")
    ds = Dataset.range(n).map(worker_pid, num_parallel_calls=2, executor="process")
    for i in range(3):
        start = time.perf_counter()
        pids = {int(p) for p in ds}
        print(f"   pass {i + 1}: {time.perf_counter() - start:7.3f} s  worker pids {sorted(pids)}")
    sk.exec.shutdown()


def _run_peers_in(python: str, argv: list[str], workloads: list[str]) -> None:
    """The peers' rows, measured by this script in another interpreter (``--peers-only``)."""
    script = os.path.abspath(__file__)
    src = os.path.join(os.path.dirname(os.path.dirname(script)), "src")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory(prefix="stoker-bench-") as tmp:
        out = os.path.join(tmp, "peers.json")
        cmd = [python, script, *argv, "--peers-only", "--only", ",".join(workloads), "--json", out]
        print(f"\n== peers in {python}")
        try:
            subprocess.run(cmd, env=env, check=True, timeout=3600)
            with open(out) as f:
                ROWS.extend(json.load(f)["rows"])
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            print(f"   peers skipped: {type(e).__name__}: {e}")


def main(argv: list[str] | None = None) -> None:
    global RUN_STOKER, RUN_PEERS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    parser.add_argument("--runs", type=int, default=None, help="timed passes per candidate")
    parser.add_argument("--no-peers", action="store_true", help="stoker and the limit only")
    parser.add_argument(
        "--only", default="", help="comma-separated workloads (gil_python,numpy_partial,...)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the rows to PATH as JSON")
    parser.add_argument(
        "--peer-python", metavar="PYTHON", default="", help="run the peers in this interpreter"
    )
    parser.add_argument("--peers-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    runs = args.runs or (1 if quick else 3)
    RUN_STOKER = not args.peers_only
    RUN_PEERS = not args.no_peers and not quick
    peer_python = "" if args.peers_only else args.peer_python
    peers = RUN_PEERS and not peer_python  # with --peer-python they run over there
    only = set(filter(None, args.only.split(",")))

    def want(name: str) -> bool:
        return not only or name in only

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"stoker {sk.__version__}, Python {sys.version.split()[0]}, {CORES} cores, "
        f"load average {load}, quick={quick}"
    )
    n_cpu = 40 if quick else 2000
    if want("gil_python"):
        iters = calibrate(lambda k: functools.partial(py_work, iters=k), 1e-3)
        fn = functools.partial(py_work, iters=iters)
        bench_cpu("gil_python (~1 ms)", fn, n_cpu, runs, peers)
    if want("numpy_partial"):
        # ~0.3 ms of Python (GIL held) + ~0.7 ms of NumPy on a 512 kB array (GIL released
        # inside each op): on paper two threads reach 1 / (0.3 + 0.7 / 2) = 1.5x; the GIL
        # hand-offs between ops leave ~1.0-1.2x here, while processes scale.
        arr = np.random.default_rng(0).random(1 << 16)
        py_iters = calibrate(lambda k: functools.partial(py_work, iters=k), 0.3e-3)
        reps = calibrate(lambda k: functools.partial(np_work, reps=k, arr=arr), 0.7e-3)
        fn = functools.partial(np_work, reps=reps, arr=arr, py_iters=py_iters)
        bench_cpu("numpy_partial (~1 ms)", fn, n_cpu, runs, peers)
    if want("io_wait"):
        bench_io(64 if quick else 1600, runs, peers)
    if want("prefetch"):
        bench_prefetch(20 if quick else 500, runs, peers)
    if want("trivial") and RUN_STOKER:
        bench_trivial(2000 if quick else 200_000, runs)
    if want("handoff") and RUN_STOKER:
        bench_handoff(16 if quick else 2000, runs)
    if want("startup") and RUN_STOKER:
        bench_startup(8 if quick else 200)
    with_peers = [w for w in ("gil_python", "numpy_partial", "io_wait", "prefetch") if want(w)]
    if peer_python and RUN_PEERS and with_peers:
        extra = ["--runs", str(runs)] + (["--quick"] if quick else [])
        _run_peers_in(peer_python, extra, with_peers)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "parallel", "rows": ROWS}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
