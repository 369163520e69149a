"""The tuner's rules on synthetic meters: a clock the test drives, no threads, no timing."""

from __future__ import annotations

import types

import pytest

from stoker import Options
from stoker.autotune import Knob, Tuner
from stoker.autotune import _tuner as T


class _Stage:
    """A fake stage: what a knob looks at (a name, a run, a recorder)."""

    def __init__(self, name: str) -> None:
        self.stage = name
        self._run: object | None = object()
        self.recorder = types.SimpleNamespace(label=name, elements=0, bytes=0)


class _Ctx:
    def __init__(self, options: Options) -> None:
        self.options = options.resolved()


def _tuner(**opts: int) -> Tuner:
    ctx = _Ctx(Options(**opts))
    tuner = Tuner(ctx)
    tuner.ctx = ctx  # type: ignore[attr-defined]  # keep the (weakly held) context alive
    return tuner


class _Sim:
    """Drives knobs like stages would: per window, each stage's calls take ``latency``
    seconds of which ``cpu`` is CPU, its workers are busy ``busy`` of the time, and its
    consumer waits ``wait`` of the time."""

    def __init__(self, tuner: Tuner) -> None:
        self.tuner = tuner
        self.now = 1000.0
        self.stages: list[tuple[_Stage, Knob]] = []

    def add(
        self,
        name: str,
        value: int = 1,
        tunable: bool = True,
        kind: str = "parallelism",
        hi: int = 64,
    ) -> Knob:
        stage = _Stage(name)
        knob = self.tuner.add(Knob(stage, kind, value, tunable, hi))
        knob.restart_window(self.now)
        knob._settle = False
        self.stages.append((stage, knob))
        return knob

    def window(self, load: dict[Knob, dict[str, float]], dt: float = 0.1) -> None:
        for knob, w in load.items():
            m = knob.meter
            slots = knob.value if knob.kind == "parallelism" else 1
            busy = w.get("busy", 1.0) * slots * dt
            latency = w.get("latency", 1e-3)
            rate = w.get("rate", busy / latency)
            elements = max(T.MIN_CALLS, int(rate * dt))
            m.calls += elements
            m.elements += elements
            m.busy_s += busy
            m.cpu_s += busy * w.get("cpu", 1.0)
            m.wait_s += w.get("wait", 0.0) * dt
            m.full_s += w.get("full", 0.0) * dt
        self.now += dt
        self.tuner.tick(self.now)
        # Let the settling time after a change pass, as the thread's next ticks would.
        self.now += T.SETTLE_S
        self.tuner.tick(self.now)


def test_a_waiting_stage_grows_past_the_cpu_budget_up_to_io_concurrency() -> None:
    sim = _Sim(_tuner(cpu_budget=2, io_concurrency=64))
    k = sim.add("map(read)")
    for _ in range(20):
        # Sleep-bound calls: throughput scales with calls in flight; consumer waits.
        sim.window({k: {"busy": 0.95, "cpu": 0.02, "wait": 0.8, "latency": 4e-3}})
    assert k.value == 64
    assert k.changes >= 2
    assert k.last is not None and "calls wait" in k.last["reason"]


def test_a_burning_stage_stops_at_the_cpu_budget() -> None:
    sim = _Sim(_tuner(cpu_budget=3))
    k = sim.add("map(decode)")
    for _ in range(20):
        sim.window({k: {"busy": 0.95, "cpu": 0.98, "wait": 0.8}})
        assert k.value <= 3
    assert k.value == 3
    assert "cpu_budget=3" in k.state


def test_the_budget_is_shared_and_the_bottleneck_gets_the_workers() -> None:
    sim = _Sim(_tuner(cpu_budget=4))
    a = sim.add("map(a)", value=3)
    b = sim.add("map(b)", value=1)
    for _ in range(30):
        # a keeps up (its consumer barely waits, workers a third busy); b is the bottleneck.
        sim.window(
            {
                a: {"busy": 0.3, "cpu": 1.0, "wait": 0.0},
                b: {"busy": 0.97, "cpu": 1.0, "wait": 0.9},
            }
        )
        burning = a.value + b.value
        assert burning <= 4, (a.value, b.value)
    assert b.value >= 3 and a.value == 1


def test_explicit_values_are_never_changed_but_count_against_the_budget() -> None:
    sim = _Sim(_tuner(cpu_budget=4))
    fixed = sim.add("map(fixed)", value=3, tunable=False)
    k = sim.add("map(auto)")
    for _ in range(20):
        sim.window(
            {
                fixed: {"busy": 1.0, "cpu": 1.0, "wait": 0.5},
                k: {"busy": 0.95, "cpu": 1.0, "wait": 0.8},
            }
        )
    assert fixed.value == 3 and fixed.changes == 0
    assert k.value == 1  # 4 - 3 workers left
    assert "explicit" in fixed.info()["state"]


def test_a_growth_that_does_not_pay_is_undone_and_held() -> None:
    sim = _Sim(_tuner(cpu_budget=8))
    k = sim.add("map(gil)")
    # A GIL-holding function on threads: calls slow down as more run, throughput flat.
    for _ in range(4):  # a growth, then its trial window (TRIAL_WINDOW_S) spans two
        rate = 1000.0
        sim.window(
            {
                k: {
                    "busy": 0.95,
                    "cpu": 0.9,
                    "wait": 0.8,
                    "rate": rate,
                    "latency": 0.95 * k.value / rate,
                }
            }
        )
    assert k.value == 1
    assert k.last is not None and "did not raise throughput" in k.last["reason"]
    held = k.value
    for _ in range(5):  # within HOLD_S: no new try
        sim.window(
            {
                k: {
                    "busy": 0.95,
                    "cpu": 0.9,
                    "wait": 0.8,
                    "rate": 1000.0,
                    "latency": 0.95e-3 * k.value,
                }
            }
        )
    assert k.value == held


def test_an_idle_stage_shrinks() -> None:
    sim = _Sim(_tuner(cpu_budget=2, io_concurrency=64))
    k = sim.add("map(read)", value=32)
    for _ in range(12):
        sim.window({k: {"busy": 0.1, "cpu": 0.02, "wait": 0.0, "latency": 4e-3}})
    assert k.value < 16
    assert "consumer keeps up" in (k.last or {}).get("reason", "")


def test_stages_over_the_budget_are_shrunk() -> None:
    sim = _Sim(_tuner(cpu_budget=2, io_concurrency=64))
    k = sim.add("map(x)", value=8)
    # Classified as waiting when it grew, now burning 8 cores (the work changed).
    for _ in range(6):
        sim.window({k: {"busy": 0.5, "cpu": 1.0, "wait": 0.0}})
    assert k.value <= 2


def test_a_prefetch_buffer_grows_for_bursts_only() -> None:
    sim = _Sim(_tuner())
    bursty = sim.add("prefetch", value=2, kind="buffer", hi=256)
    slow = sim.add("prefetch", value=2, kind="buffer", hi=256)
    for _ in range(3):
        sim.window(
            {
                bursty: {"busy": 0.7, "cpu": 0.5, "wait": 0.2, "full": 0.2},
                slow: {"busy": 1.0, "cpu": 1.0, "wait": 0.6, "full": 0.0},
            }
        )
    assert bursty.value > 2 and "bursts" in bursty.state
    assert slow.value == 2 and "would not help" in slow.state


def test_growth_stops_at_the_ram_budget() -> None:
    sim = _Sim(_tuner(cpu_budget=2, io_concurrency=64, ram_budget=100 << 20))
    k = sim.add("map(read)")
    stage = sim.stages[0][0]
    stage.recorder.elements, stage.recorder.bytes = 10, 10 * (8 << 20)  # 8 MiB elements
    for _ in range(20):
        sim.window({k: {"busy": 0.95, "cpu": 0.02, "wait": 0.8, "latency": 4e-3}})
    # Two elements held per call in flight: 100 MiB / 16 MiB -> at most 6 (plus the start).
    assert k.value <= 7
    assert "RAM" in k.state


def test_a_stopped_stage_is_not_tuned() -> None:
    sim = _Sim(_tuner())
    k = sim.add("map(x)")
    sim.stages[0][0]._run = None
    assert not sim.tuner.tick(sim.now + 1)
    assert k.changes == 0


@pytest.mark.parametrize("value", [0, -3])
def test_a_knob_never_goes_below_one(value: int) -> None:
    sim = _Sim(_tuner())
    assert sim.add("map(x)", value=value).value == 1


def test_it_follows_the_consumer_down_and_up_again() -> None:
    sim = _Sim(_tuner(cpu_budget=2, io_concurrency=64))
    k = sim.add("map(read)", value=32)
    for _ in range(12):  # a slow consumer: workers idle, nobody waits
        sim.window({k: {"busy": 0.1, "cpu": 0.02, "wait": 0.0, "latency": 4e-3}})
    low = k.value
    assert low < 16
    for _ in range(6):  # the consumer speeds up: it waits, the workers are all busy
        sim.window({k: {"busy": 0.97, "cpu": 0.02, "wait": 0.7, "latency": 4e-3}})
    assert k.value > low


def test_a_change_of_work_clears_a_hold() -> None:
    sim = _Sim(_tuner(cpu_budget=8, io_concurrency=64))
    k = sim.add("map(x)", value=4)
    k._ceiling, k._ceiling_until, k._ceiling_latency = 4, sim.now + 100, 0.3e-3
    for _ in range(3):  # calls now take 4 ms and wait: the old hold no longer applies
        sim.window({k: {"busy": 0.97, "cpu": 0.02, "wait": 0.8, "latency": 4e-3}})
    assert k.value > 4


def test_windows_wait_for_the_auto_probe_and_the_growth_after_it_is_not_checked() -> None:
    """While executor="auto" measures the function (one call or a pair at a time) its
    windows say nothing about the stage: none closes. The probe has just measured what a
    second thread buys, so the first growth after it is kept even where one window
    (bursty on a shared machine) shows no gain."""
    sim = _Sim(_tuner(cpu_budget=2))
    k = sim.add("map(image)")
    stage = sim.stages[0][0]
    stage._run = types.SimpleNamespace(probing=True)
    for _ in range(3):
        sim.window({k: {"busy": 0.95, "cpu": 1.0, "wait": 0.9, "rate": 500.0}})
    assert k.value == 1 and not k.measured
    stage._run = types.SimpleNamespace(probing=False)
    sim.window({k: {"busy": 0.95, "cpu": 1.0, "wait": 0.9, "rate": 1000.0}})
    assert k.value == 2
    for _ in range(4):  # no gain in these windows: still kept, no trial to fail
        sim.window({k: {"busy": 0.95, "cpu": 1.0, "wait": 0.9, "rate": 1000.0}})
    assert k.value == 2
    assert k.last is not None and "did not raise" not in k.last["reason"]
