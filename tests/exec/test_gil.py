"""executor="auto": the decision from measurements (a pure function)."""

from __future__ import annotations

import numpy as np
import pytest

from stoker.exec._gil import GilProbe, decide, nbytes_of


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
    probe = GilProbe(cpu_budget=2)
    assert probe.phase == "alone"
    for _ in range(5):
        probe.add_alone(2e-3, 2e-3)
    assert probe.phase == "pairs"
    for pair in range(5):
        probe.add_pair_member(pair, 0.0, 4e-3)  # pairs take twice one call: GIL-bound
        probe.add_pair_member(pair, 0.0, 4e-3)
    assert probe.phase == "done"
    d = probe.decision()
    assert d.executor == "process" and d.speedup == pytest.approx(1.0)


def test_probe_skips_pairs_for_waiting_work():
    probe = GilProbe(cpu_budget=4)
    for _ in range(3):
        probe.add_alone(5e-3, 1e-5)
    assert probe.phase == "done"
    assert probe.decision().waiting


def test_nbytes_of():
    x = np.zeros(10, dtype=np.float32)
    assert nbytes_of(x) == 40
    assert nbytes_of((x, {"a": b"abc"}, [x])) == 83
