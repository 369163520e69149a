"""``it.stats()``: where a pipeline's time goes, its bottleneck, and what would help.

The consumer's view comes from the root node: the wall time since its first ``next()``
and the time spent inside ``next()`` (``input_bound`` is their ratio). Each stage's view
comes from its recorder: elements, the time inside its ``next()`` minus the time inside
its inputs' (its own, "busy" time, for a stage computed in its caller's thread), or the
summed time of its workers (a parallel stage); divided by the wall time and the
parallelism, that is the share of its capacity the stage uses. When the consumer waits
(``input_bound`` of 0.2 or more), the stage using the largest share of its capacity is
the bottleneck; otherwise the consumer is.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

__all__ = ["INPUT_BOUND_THRESHOLD", "StageRecord", "StatsReport", "report"]

#: Below this share of its time waiting in ``next()``, the consumer is the bottleneck.
INPUT_BOUND_THRESHOLD = 0.2

# Ops that pull their input on a thread of their own before the engine's stage_info()
# says so (the executor the report shows for them).
_BACKGROUND_OPS = {"prefetch": "thread"}
_SOURCES_HINT = "read in parallel (interleave(..., num_parallel_calls=AUTOTUNE)) or cache"


@dataclasses.dataclass
class StageRecord:
    """One stage of a :class:`StatsReport`.

    Attributes:
        name: The op and, for ops taking a function, its ``__name__``: ``map(decode)``.
        stage: The unique stage id (``map[1]``) used in errors and :func:`collect`.
        depth: 0 for the stage the user holds, +1 per input.
        elements: Elements it delivered.
        parallelism: Calls it runs at once (1 for a stage computed inline).
        executor: ``"inline"`` (the caller's thread), ``"thread"`` or ``"process"``.
        busy_share: Share of its capacity (wall time times parallelism) spent computing.
        wait_share: Share of the wall time it spent waiting on its input.
        buffer_fill: Buffered over capacity for stages with a buffer, else None.
        bytes: Estimated bytes delivered (array leaves of sampled elements).
        busy_s: Its own compute time in seconds (summed over workers).
        wait_s: Seconds spent waiting on its input.
        autotune: What the AUTOTUNE controller (:mod:`stoker.autotune`) set for the
            stage and why, for stages it knows: ``knob`` (``"parallelism"`` or
            ``"buffer"``), ``value``, ``autotune`` (False: an explicit value, never
            changed), ``start``, ``changes``, ``last_change`` (``at_s``, ``from``, ``to``,
            ``reason``), ``state`` (what it concludes now) and ``measured`` (the last
            window: ``rate``, ``busy``, ``cpu_share``, ``cores``, ``wait_share``). None
            otherwise.
    """

    name: str
    stage: str
    depth: int
    elements: int
    parallelism: int
    executor: str
    busy_share: float
    wait_share: float
    buffer_fill: float | None
    bytes: int
    busy_s: float
    wait_s: float
    op: str = ""
    advice: str = ""
    autotune: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class StatsReport:
    """What ``it.stats()`` returns.

    Attributes:
        input_bound: Share, in [0, 1], of the consumer's wall time since its first
            ``next()`` spent blocked inside ``next()``.
        bottleneck: The ``name`` of the stage limiting throughput, or ``"consumer"`` when
            the pipeline keeps up.
        advice: One sentence on what would help.
        stages: One :class:`StageRecord` per stage, the stage the user holds first.
        elements: Elements the consumer received.
        wall_s: Seconds since the consumer's first ``next()``.
    """

    input_bound: float
    bottleneck: str
    advice: str
    stages: list[StageRecord]
    elements: int
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the report."""
        return {
            "input_bound": self.input_bound,
            "bottleneck": self.bottleneck,
            "advice": self.advice,
            "elements": self.elements,
            "wall_s": self.wall_s,
            "stages": [s.to_dict() for s in self.stages],
        }

    def __str__(self) -> str:
        rate = self.elements / self.wall_s if self.wall_s > 0 else 0.0
        lines = [
            f"stoker pipeline: {self.elements} elements in {self.wall_s:.2f} s "
            f"({_num(rate)}/s); input-bound {self.input_bound:.0%} "
            "(share of the consumer's time spent waiting in next())",
            "",
        ]
        header = ("stage", "elements", "par", "executor", "busy", "wait in", "buffer", "B/el")
        rows = [header]
        for s in self.stages:
            name = "  " * s.depth + s.name
            if s.name == self.bottleneck:
                name += "  <-"
            rows.append(
                (
                    name,
                    str(s.elements),
                    str(s.parallelism),
                    s.executor,
                    f"{s.busy_share:.0%}",
                    f"{s.wait_share:.0%}",
                    "-" if s.buffer_fill is None else f"{s.buffer_fill:.0%}",
                    _num(s.bytes / s.elements) if s.elements else "-",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for r in rows:
            cells = [r[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
        lines.append("")
        tuned = [s for s in self.stages if s.autotune is not None]
        if tuned:
            lines.extend(_autotune_lines(tuned))
            lines.append("")
        if self.bottleneck == "consumer":
            lines.append(f"bottleneck: consumer. {self.advice}")
        else:
            lines.append(f"bottleneck: {self.bottleneck}. Would help: {self.advice}")
        return "\n".join(lines)


def _autotune_lines(stages: list[StageRecord]) -> list[str]:
    """The report's AUTOTUNE section: per stage, what was chosen and why."""
    lines = ["AUTOTUNE (docs/autotune.md):"]
    for s in stages:
        a = s.autotune or {}
        knob, value = a.get("knob", "?"), a.get("value", "?")
        if not a.get("autotune"):
            lines.append(f"  {s.name}: {knob} {value} ({a.get('state') or 'explicit'})")
            continue
        head = (
            f"  {s.name}: {knob} {value} (AUTOTUNE, started at {a.get('start')}, "
            f"{a.get('changes', 0)} changes)"
        )
        lines.append(head)
        last = a.get("last_change")
        if last:
            lines.append(
                f"    last change at {last['at_s']:.2f} s: {last['from']} -> {last['to']}: "
                f"{last['reason']}"
            )
        state = a.get("state")
        if state and (not last or state != last.get("reason")):
            lines.append(f"    now: {state}")
    return lines


def _num(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}" if abs(x) >= 10 or x == 0 else f"{x:.1f}"


def _stage_info(node: Any) -> dict[str, Any]:
    fn = getattr(node, "stage_info", None)
    if fn is None:
        return {}
    try:
        info = fn()
    except Exception:  # a report never fails because one stage could not say
        return {}
    return info if isinstance(info, dict) else {}


def report(node: Any) -> StatsReport:
    """The :class:`StatsReport` of the pipeline whose output node is ``node``."""
    from stoker.stats import walk

    root = node.recorder
    if not root.enabled:
        raise RuntimeError(
            f"stats are off for {node.stage}: the pipeline was built with "
            "Options(stats=False); remove it to get a report"
        )
    now = time.perf_counter()
    wall = now - root.first_t if root.first_t is not None else 0.0
    input_bound = min(1.0, root.time_s / wall) if wall > 0 else 0.0
    stages: list[StageRecord] = []
    for depth, rec in walk(root):
        stages.append(_record(rec, depth, wall))
    if wall <= 0 or input_bound < INPUT_BOUND_THRESHOLD or not stages:
        bottleneck, advice = "consumer", "the consumer is the bottleneck, the pipeline is fine"
    else:
        worst = max(stages, key=lambda s: s.busy_share)
        bottleneck, advice = worst.name, worst.advice
    return StatsReport(input_bound, bottleneck, advice, stages, root.elements, wall)


def _record(rec: Any, depth: int, wall: float) -> StageRecord:
    node = rec.node() if rec.node is not None else None
    op = getattr(node, "OP", rec.stage.split("[")[0])
    info = {**rec.info, **_stage_info(node)}
    in_other = 0.0
    for child in rec.children:
        if rec.thread is not None and child.thread is not None and child.thread != rec.thread:
            in_other += child.time_s
    # Its own time is measured within its calls (its inputs timed in the same call); the
    # rest of its time in next() was spent in the inputs it pulls in its own thread.
    own = rec.own_s
    in_thread = max(0.0, rec.time_s - own) if len(rec.children) else 0.0
    if rec.busy_s > 0:
        # Workers' time; a stage pulling its input on its own thread (prefetch) counts that
        # pull as busy, and it is the input's time, not this stage's.
        busy = max(0.0, rec.busy_s - in_other)
    else:
        busy = own
    parallelism = int(info.get("parallelism") or _requested(node) or 1)
    default_executor = "thread" if parallelism > 1 else _BACKGROUND_OPS.get(op, "inline")
    executor = str(info.get("executor") or default_executor)
    waited = in_thread + in_other
    capacity = info.get("capacity")
    buffered = info.get("buffered")
    fill = (
        float(buffered) / float(capacity)
        if isinstance(capacity, (int, float)) and capacity and buffered is not None
        else None
    )
    record = StageRecord(
        name=rec.label,
        stage=rec.stage,
        depth=depth,
        elements=rec.elements,
        parallelism=parallelism,
        executor=executor,
        # Workers' time fills parallelism x wall; time in the caller's thread fills wall.
        busy_share=min(1.0, busy / (wall * (parallelism if rec.busy_s > 0 else 1)))
        if wall > 0
        else 0.0,
        wait_share=min(1.0, waited / wall) if wall > 0 else 0.0,
        buffer_fill=fill,
        bytes=rec.bytes,
        busy_s=busy,
        wait_s=waited,
        op=op,
        autotune=dict(info["autotune"]) if isinstance(info.get("autotune"), dict) else None,
    )
    record.advice = _advice(record, has_input=bool(rec.children), takes_fn="(" in rec.label)
    tuned = record.autotune
    if tuned and tuned.get("autotune") and tuned.get("state"):
        # AUTOTUNE owns this stage's knob: say why it is where it is first.
        record.advice = f"AUTOTUNE: {tuned['state']}. Otherwise: {record.advice}"
    return record


def _requested(node: Any) -> int | None:
    """The parallelism the user asked for, until the stage reports it in stage_info()."""
    value = getattr(getattr(node, "_node_dataset", None), "_num_parallel_calls", None)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        return None
    if value < 1:  # AUTOTUNE
        return int(getattr(node._ctx.options, "cpu_budget", None) or 1)
    return value


def _advice(s: StageRecord, has_input: bool, takes_fn: bool) -> str:
    if not has_input:
        return f"{s.name} (a source) is the slowest stage: {_SOURCES_HINT} earlier"
    if s.parallelism <= 1 and s.executor == "inline":
        if s.op in ("map", "random_map", "interleave", "batch"):
            return (
                f"more parallelism: {s.op}(..., num_parallel_calls=AUTOTUNE); or cache "
                "earlier (.cache() after it) if its output is the same every pass"
            )
        if takes_fn:
            return (
                f"{s.name} runs inline: move its work into a map(..., "
                "num_parallel_calls=AUTOTUNE) before it, or cache earlier"
            )
        return f"{s.name} costs more than its inputs: cache earlier, or batch fewer, larger"
    if s.executor == "thread":
        return (
            f"more parallelism (num_parallel_calls above {s.parallelism}), or move to "
            'processes (executor="process") if the function holds the GIL; or cache earlier'
        )
    return (
        f"more parallelism (num_parallel_calls above {s.parallelism}) if cores are free; "
        "otherwise cache earlier (.cache() after this stage) so it is computed once"
    )
