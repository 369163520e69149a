"""The demo's outputs: the side-by-side table, the consumer's trace and the PNG chart."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stoker.demo.train import EpochResult, Step

__all__ = ["Summary", "chart", "side_by_side", "summarize", "write_consumer_trace"]

#: Shortest window of the chart's throughput and wait share. [Unit: second]
_WINDOW_S = 1.0


class Summary:
    """Totals of a pipeline's epochs."""

    def __init__(self, name: str, epochs: list[EpochResult], cores: int):
        self.name = name
        self.epochs = epochs
        self.wall_s = sum(e.wall_s for e in epochs)
        self.images = sum(e.images for e in epochs)
        self.wait_s = sum(e.wait_s for e in epochs)
        self.cpu_s = sum(e.cpu_s for e in epochs)
        self.cores = cores

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s if self.wall_s else 0.0

    @property
    def input_bound(self) -> float:
        return self.wait_s / self.wall_s if self.wall_s else 0.0

    @property
    def cores_busy(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.name,
            "epochs": len(self.epochs),
            "images": self.images,
            "wall_s": self.wall_s,
            "images_per_s": self.images_per_s,
            "epoch_s": self.wall_s / max(len(self.epochs), 1),
            "input_bound": self.input_bound,
            "cores_busy": self.cores_busy,
            "final_loss": self.epochs[-1].loss if self.epochs else None,
            "final_eval_accuracy": self.epochs[-1].eval_accuracy if self.epochs else None,
        }


def summarize(name: str, epochs: list[EpochResult], cores: int) -> Summary:
    return Summary(name, epochs, cores)


def side_by_side(rows: list[Summary]) -> str:
    """A table: one column per pipeline, and the ratio of the last to the first."""
    names = [r.name for r in rows]
    lines = [("", names)]

    def add(label: str, values: list[str]) -> None:
        lines.append((label, values))

    add("images/s", [f"{r.images_per_s:,.0f}" for r in rows])
    add("epoch time", [f"{r.wall_s / max(len(r.epochs), 1):.1f} s" for r in rows])
    add("input-bound (model waiting)", [f"{100 * r.input_bound:.1f} %" for r in rows])
    add(
        "CPU use (of all cores)",
        [
            f"{r.cores_busy:.2f} of {r.cores} cores ({100 * r.cores_busy / r.cores:.0f} %)"
            for r in rows
        ],
    )
    add("final train loss", [f"{r.epochs[-1].loss:.3f}" if r.epochs else "-" for r in rows])
    add(
        "held-out accuracy",
        [f"{100 * r.epochs[-1].eval_accuracy:.1f} %" if r.epochs else "-" for r in rows],
    )
    width0 = max(len(label) for label, _ in lines)
    widths = [max(len(v[i]) for _, v in lines) for i in range(len(rows))]
    out = []
    for label, values in lines:
        cells = "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))
        out.append(f"  {label.ljust(width0)}  {cells}")
    last = rows[-1]
    for other in rows[:-1]:
        if other.images_per_s > 0:
            speedup = last.images_per_s / other.images_per_s
            out.append(f"  {last.name} trains {speedup:.2f}x as fast as {other.name}")
    return "\n".join(out)


def write_consumer_trace(path: str | os.PathLike[str], runs: list[Summary]) -> None:
    """Chrome trace-event JSON of the training loop: one track per pipeline.

    Each step is a ``train step`` event and, before it, a ``wait for batch`` event (the
    time blocked in ``next()``), in microseconds since the demo started.
    """
    events: list[dict[str, Any]] = []
    for tid, run in enumerate(runs, start=1):
        events.append(
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": run.name}}
        )
        for e in run.epochs:
            for s in e.steps:
                if s.got_s > s.start_s:
                    events.append(_x("wait for batch", s.start_s, s.got_s, tid, e.epoch))
                events.append(_x("train step", s.got_s, s.end_s, tid, e.epoch))
    events.append({"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "stoker demo"}})
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))
    os.replace(tmp, path)


def _x(name: str, start: float, end: float, tid: int, epoch: int) -> dict[str, Any]:
    return {
        "ph": "X",
        "name": name,
        "ts": round(start * 1e6, 1),
        "dur": round((end - start) * 1e6, 1),
        "pid": 1,
        "tid": tid,
        "args": {"epoch": epoch},
    }


def _training_steps(run: Summary) -> tuple[list[Step], list[float]]:
    """The run's steps on a clock that stops between epochs (the evaluation is cut out).

    Returns the shifted steps (time 0 = the first request for a batch) and the times at
    which each epoch after the first starts.
    """
    steps: list[Step] = []
    boundaries: list[float] = []
    clock = 0.0
    for e in run.epochs:
        if not e.steps:
            continue
        if steps:
            boundaries.append(clock)
        shift = e.steps[0].start_s - clock
        for s in e.steps:
            steps.append(Step(s.start_s - shift, s.got_s - shift, s.end_s - shift, s.images))
        clock = steps[-1].end_s
    return steps, boundaries


def _series(steps: list[Step], window_s: float) -> tuple[list[float], list[float], list[float]]:
    """Per window: its middle, images/s, and the share of its time spent waiting."""
    if not steps:
        return [], [], []
    end = steps[-1].end_s
    times, rates, waits = [], [], []
    lo = 0.0
    while lo < end:
        hi = lo + window_s
        images = 0.0
        waited = 0.0
        for s in steps:
            if s.end_s <= lo or s.start_s >= hi:
                continue
            # A step's images count over its compute, not over its wait for the batch.
            span = s.end_s - s.got_s
            inside = max(0.0, min(s.end_s, hi) - max(s.got_s, lo))
            images += s.images * inside / span if span > 0 else 0.0
            waited += max(0.0, min(s.got_s, hi) - max(s.start_s, lo))
        covered = min(hi, end) - lo
        if covered > 0.2 * window_s:
            times.append(lo + covered / 2)
            rates.append(images / covered)
            waits.append(100.0 * waited / covered)
        lo = hi
    return times, rates, waits


def chart(path: str | os.PathLike[str], runs: list[Summary]) -> None:
    """PNG: throughput and input-bound share over time, one line per pipeline."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    longest = max((r.wall_s for r in runs), default=0.0)
    window_s = max(_WINDOW_S, longest / 80)  # about 80 points on the longest line
    for run in runs:
        steps, boundaries = _training_steps(run)
        times, rates, waits = _series(steps, window_s)
        (line,) = top.plot(times, rates, label=run.name)
        bottom.plot(times, waits, label=run.name, color=line.get_color())
        for b in boundaries:
            top.axvline(b, color=line.get_color(), lw=0.6, ls=":")
    top.set_ylabel("images / s")
    top.set_title("stoker demo: training throughput and time the model waited for data")
    top.legend()
    bottom.set_ylabel("waiting for data (%)")
    bottom.set_ylim(-2, 102)
    bottom.set_xlabel(
        f"training time, s (evaluation between epochs cut out; dotted: epoch starts; "
        f"{window_s:.1f} s windows)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
