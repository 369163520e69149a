"""executor="auto": the decision from measurements (a pure function)."""

from __future__ import annotations

import numpy as np
import pytest

from stoker.exec._gil import GilProbe, decide, nbytes_of, runqueue_wait_s


def test_cheap_calls_run_inline():
    d = decide(5e-6, 5e-6, None, 8)
    assert d.executor == "inline" and "inline" in d.reason


def test_waiting_calls_use_threads_beyond_the_core_count():
    d = decide(5e-3, 1e-5, None, 2)
    assert d.executor == "thread" and d.waiting
    assert "not capped" in d.reason


def test_gil_releasing_calls_use_threads():
    assert decide(1e-3, 1e-3, 1.95, 2).executor == "thread"


@pytest.mark.parametrize("speedup", [0.95, 1.05, 1.48])
def test_gil_holding_calls_use_processes(speedup):
    d = decide(1e-3, 1e-3, speedup, 2)
    assert d.executor == "process", d
    assert f"{speedup:.2f}x" in d.reason


def test_unpicklable_functions_stay_on_threads():
    d = decide(1e-3, 1e-3, 1.0, 2, picklable=False)
    assert d.executor == "thread" and "pickled" in d.reason


def test_large_payloads_for_cheap_calls_stay_on_threads():
    d = decide(100e-6, 100e-6, 1.5, 2, bytes_per_element=10 << 20)
    assert d.executor == "thread"


def test_one_core_means_no_second_thread_to_measure():
    assert decide(1e-3, 1e-3, None, 1).executor == "thread"


def test_probe_phases():
    probe = GilProbe(cpu_budget=2, waits=lambda: None)
    assert probe.phase == "alone"
    probe.add_alone(0.5, 0.5)  # the first call: imports, first allocations (not counted)
    for _ in range(5):
        assert probe.phase == "alone"
        probe.add_alone(2e-3, 2e-3)
    assert probe.warmup == (0.5, 0.5) and len(probe.alone) == 5
    assert probe.phase == "pairs"
    for pair in range(5):
        probe.add_pair_member(pair, 0.0, 4e-3)  # pairs take twice one call: GIL-bound
        probe.add_pair_member(pair, 0.0, 4e-3)
    assert probe.phase == "done"
    d = probe.decision()
    assert d.executor == "process" and d.speedup == pytest.approx(1.0)


def _probe_with_pairs(
    pairs: list[tuple[float, float]], call_s: float = 1e-3, pair_cpu: float | None = None
) -> GilProbe:
    """A probe fed five calls alone of ``call_s`` and pairs given as (second call's
    start, each call's wall time), the first call starting at 0; each call in a pair
    takes ``pair_cpu`` of CPU time (its wall time if None)."""
    probe = GilProbe(cpu_budget=2, waits=lambda: None)
    probe.add_alone(0.5, 0.5)
    for _ in range(5):
        probe.add_alone(call_s, call_s)
    for i, (start, wall) in enumerate(pairs):
        cpu = wall if pair_cpu is None else pair_cpu
        probe.add_pair_member(i, 0.0, wall, cpu)
        probe.add_pair_member(i, start, wall, cpu)
    return probe


def test_pairs_that_ran_one_after_the_other_do_not_decide_when_others_overlapped():
    # GIL-free calls: two pairs overlapped (one call's time for both), three ran one after
    # the other because a pool thread woke late. All five: a median of 2 ms, "GIL-bound".
    probe = _probe_with_pairs([(0.0, 1e-3), (1e-3, 1e-3), (0.05e-3, 1e-3)] + [(1e-3, 1e-3)] * 2)
    d = probe.decision()
    assert d.executor == "thread" and d.speedup == pytest.approx(2 / 1.05, rel=0.05), d


def test_gil_bound_pairs_never_overlap_and_go_to_processes():
    # The second call starts when the first hands over the GIL: at its end.
    d = _probe_with_pairs([(1e-3, 1e-3)] * 5).decision()
    assert d.executor == "process" and d.speedup == pytest.approx(1.0), d


def test_one_overlapped_pair_is_not_enough_to_decide():
    d = _probe_with_pairs([(0.0, 1e-3)] + [(1e-3, 1e-3)] * 4).decision()
    assert d.executor == "process", d


def test_probe_skips_pairs_for_waiting_work():
    probe = GilProbe(cpu_budget=4, waits=lambda: None)
    for _ in range(6):
        probe.add_alone(5e-3, 1e-5)
    assert probe.phase == "done"
    assert probe.decision().waiting


def test_nbytes_of():
    x = np.zeros(10, dtype=np.float32)
    assert nbytes_of(x) == 40
    assert nbytes_of((x, {"a": b"abc"}, [x])) == 83


# -- image maps: big results, OpenCV releasing the GIL ------------------------------------------

IMAGE_BYTES = 224 * 224 * 3 * 4 + 20_000  # a float32 224x224 result and its JPEG record


@pytest.mark.parametrize(("call_s", "speedup"), [(0.9e-3, 1.6), (1.2e-3, 1.45), (1.5e-3, 1.3)])
def test_big_results_of_a_mostly_gil_free_call_stay_on_threads(call_s, speedup):
    """The seed's image map: 1-1.5 ms calls with 600 kB results that two threads run
    1.3-1.6x faster: processes would add a copy of every result for little or nothing."""
    d = decide(call_s, call_s, speedup, 2, bytes_per_element=IMAGE_BYTES)
    assert d.executor == "thread", d
    assert "bytes per element" in d.reason


def test_gil_holding_calls_with_big_results_still_use_processes():
    """A 10 ms call that holds the GIL gains from processes even with 600 kB to move."""
    d = decide(10e-3, 10e-3, 1.0, 2, bytes_per_element=IMAGE_BYTES)
    assert d.executor == "process", d


def test_processes_need_a_clear_gain():
    # Estimated 1.92x with processes against 1.8x on threads: not worth worker processes.
    assert decide(1e-3, 1e-3, 1.8, 2).executor == "thread"
    assert decide(1e-3, 1e-3, 1.5, 2).executor == "process"


def test_bytes_per_element_count_every_call():
    """Inputs and results of alone calls, warm-up and pair members, over all of them."""
    probe = GilProbe(cpu_budget=2, waits=lambda: None)
    for _ in range(6):
        probe.add_alone(2e-3, 2e-3)
    for pair in range(5):
        probe.add_pair_member(pair, 0.0, 2.8e-3)  # two threads: 1.43x
        probe.add_pair_member(pair, 0.0, 2.8e-3)
    probe.nbytes = 16 * IMAGE_BYTES  # 6 alone + 10 pair members, one element each
    assert probe.phase == "done"
    d = probe.decision()
    assert d.executor == "thread", d
    assert f"moving {IMAGE_BYTES} bytes" in d.reason


def _busy_machine_probe(nbytes_per_call: int) -> GilProbe:
    """Other programs held the cores: calls alone took 3 ms of wall time for 2 ms of CPU,
    pairs 6 ms; the schedstat waits say 1 ms per call alone and 4 ms per thread per pair
    were spent runnable, waiting for a core. Less that, a pair takes what one call takes
    (the function releases the GIL); as measured, two threads ran 1.0x one."""
    waited = [0.0]
    probe = GilProbe(cpu_budget=2, waits=lambda: waited[0])
    probe.add_alone(0.3, 0.1)  # warm-up
    for i in range(12):
        if probe.phase == "pairs":
            waited[0] += 8e-3  # both threads waited 4 ms
            probe.add_pair_member(i, 0.0, 6e-3)
            probe.add_pair_member(i, 0.0, 6e-3)
        else:
            waited[0] += 1e-3
            probe.add_alone(3e-3, 2e-3)
    probe.nbytes = nbytes_per_call * probe._calls
    assert probe.phase == "done"
    assert all(w == pytest.approx(8e-3) for w in probe.pair_waits)
    return probe


def test_big_elements_on_a_busy_machine_stay_on_threads():
    d = _busy_machine_probe(IMAGE_BYTES).decision()
    assert d.executor == "thread" and d.speedup == pytest.approx(2.0), d
    assert "waits for a core" in d.reason and "1.00x" in d.reason


def test_small_elements_are_judged_on_the_timings_as_measured():
    """A GIL-bound function's handovers look like waits for a core on a busy machine, so
    small elements (where processes cost little) keep the raw timings."""
    d = _busy_machine_probe(100).decision()
    assert d.executor == "process" and d.speedup == pytest.approx(1.0), d


def test_runqueue_wait_s():
    """Read on the pool's own threads (they exist while a stage runs)."""
    import os

    import stoker as sk

    ds = sk.Dataset.range(4).map(lambda _: runqueue_wait_s(), num_parallel_calls=2)
    got = list(ds)
    if not os.path.exists("/proc/self/task"):
        assert got == [None] * 4
        return
    assert all(w is not None and w >= 0 for w in got), got


def _pairs_probe(
    pair_span: float, pair_cpu: float, pair_wait: float, nbytes: int = IMAGE_BYTES
) -> GilProbe:
    """Calls alone take 2 ms (all CPU); each pair spans ``pair_span`` with ``pair_cpu`` of
    CPU over its two threads and ``pair_wait`` spent waiting for a core (schedstat)."""
    waited = [0.0]
    probe = GilProbe(cpu_budget=2, waits=lambda: waited[0])
    probe.add_alone(0.3, 0.1)  # warm-up
    for i in range(12):
        if probe.phase == "pairs":
            waited[0] += pair_wait
            probe.add_pair_member(i, 0.0, pair_span, pair_cpu / 2)
            probe.add_pair_member(i, 0.0, pair_span, pair_cpu / 2)
        else:
            probe.add_alone(2e-3, 2e-3)
    probe.nbytes = nbytes * probe._calls
    assert probe.phase == "done"
    return probe


def test_pairs_slow_for_want_of_a_core_but_not_blocked_stay_on_threads():
    """Other programs held a core: the pairs of image calls took twice one call, but their
    threads were computing or runnable all along (never blocked on the GIL): threads.
    Small elements keep the timings as measured (a second call that could not start
    before the first ended looks the same, GIL or not; processes cost them little)."""
    probe = _pairs_probe(pair_span=4e-3, pair_cpu=4e-3, pair_wait=4e-3)
    assert probe.blocked_share() == pytest.approx(0.0)
    d = probe.decision()
    assert d.executor == "thread" and d.speedup == pytest.approx(2.0), d
    assert "blocked in pairs, 0%" in d.reason and "1.00x as measured" in d.reason
    small = _pairs_probe(pair_span=4e-3, pair_cpu=4e-3, pair_wait=4e-3, nbytes=100)
    assert small.decision().executor == "process"


def test_gil_holding_pairs_are_blocked_half_the_time_and_use_processes():
    """The second call of a pair waits for the GIL before it starts: the two threads
    computed 4 ms of the pair's 8 thread-ms and were runnable for none of the rest."""
    probe = _pairs_probe(pair_span=4e-3, pair_cpu=4e-3, pair_wait=0.0)
    assert probe.blocked_share() == pytest.approx(0.5)
    assert probe.decision().executor == "process"


def test_without_the_pairs_cpu_times_the_blocked_share_is_unknown():
    probe = GilProbe(cpu_budget=2, waits=lambda: 0.0)
    for _ in range(6):
        probe.add_alone(2e-3, 2e-3)
    for pair in range(5):
        probe.add_pair_member(pair, 0.0, 4e-3)
        probe.add_pair_member(pair, 0.0, 4e-3)
    assert probe.blocked_share() is None
    assert GilProbe(cpu_budget=2, waits=lambda: None).blocked_share() is None


def test_calls_slowed_by_shared_memory_bandwidth_still_use_threads():
    # Two at once: each call 1.2x the CPU time alone, as two threads or two processes
    # would both see. The GIL is not what keeps two threads at 1.67x.
    probe = _probe_with_pairs([(0.0, 1.2e-3)] * 5)
    assert probe.slowdown() == pytest.approx(1.2)
    d = probe.decision()
    assert d.executor == "thread" and "1.20x alone" in d.reason, d


def test_gil_bound_calls_show_no_slowdown_and_go_to_processes():
    # Pairs overlapped (long calls interleaving at the switch interval): twice the span,
    # each call's CPU time unchanged.
    probe = _probe_with_pairs([(0.0, 20e-3)] * 5, call_s=10e-3, pair_cpu=10e-3)
    assert probe.slowdown() == pytest.approx(1.0)
    assert probe.decision().executor == "process"


def test_decide_divides_the_process_estimate_by_the_slowdown():
    assert decide(1e-3, 1e-3, 1.5, 2).executor == "process"
    assert decide(1e-3, 1e-3, 1.5, 2, slowdown=1.3).executor == "thread"
