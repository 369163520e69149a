"""Pipeline-wide options and the AUTOTUNE sentinel.

``Options`` travel with a dataset (``Dataset.with_options``) and apply to the whole
pipeline when an iterator is made, as tf.data's options do. Fields left at ``None`` take
the defaults below, read from the machine when the iterator starts.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

__all__ = ["AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "Options"]


class _Autotune(int):
    """``AUTOTUNE`` is ``-1`` like ``tf.data.AUTOTUNE``, so either spelling works."""

    def __new__(cls) -> _Autotune:
        return super().__new__(cls, -1)

    def __repr__(self) -> str:
        return "AUTOTUNE"

    def __reduce__(self) -> str:
        return "AUTOTUNE"


AUTOTUNE: int = _Autotune()
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class Options:
    """Options for a whole pipeline.

    Args:
        deterministic: Default for ops whose ``deterministic`` argument is ``None``:
            ``True`` returns elements in input order whatever the parallelism.
        cpu_budget: Threads and worker processes doing CPU work, in total, that the
            pipeline may keep busy; AUTOTUNE keeps its stages within it (calls that
            mostly wait count by the CPU they use). Default: the CPUs this process may
            use.
        ram_budget: Bytes that buffers, shuffle buffers and memory caches may hold in
            total. Default: half of the machine's available memory. [Unit: byte]
        io_concurrency: Concurrent calls allowed for stages that mostly wait (I/O);
            not capped at the core count. Default 64.
        autotune: Run the AUTOTUNE controller (:mod:`stoker.autotune`, on by default): a
            background thread per running pipeline sets every ``AUTOTUNE`` knob
            (parallelism of parallel map, interleave and batch, ``prefetch`` buffers)
            from what the stages measure, within ``cpu_budget`` and ``ram_budget``, and
            says why in ``it.stats()`` (docs/autotune.md). ``False``: ``AUTOTUNE`` is
            a fixed choice made at start (the CPU budget; a buffer of 2). Explicit
            integers are never changed either way.
        stats: Count per-stage statistics (elements, bytes, times) for ``it.stats()``;
            on by default (under 1 us per element and stage, see docs/stats.md).
        seed: Seed used by random ops whose own ``seed`` is ``None``, like
            ``tf.random.set_seed``; ``None`` draws fresh entropy per dataset.
        progress: Show a progress bar (elements/s, input-bound share) while iterating:
            ``True`` on a terminal only, ``"always"`` also in logs. Needs tqdm
            (``pip install 'stoker[progress]'``). Off by default.
        executor: Where parallel maps left at ``executor="auto"`` run, e.g. ``"ray"``
            to send every one to a Ray cluster (:mod:`stoker.ray`). Default ``"auto"``.
    """

    deterministic: bool | None = None
    cpu_budget: int | None = None
    ram_budget: int | None = None
    io_concurrency: int | None = None
    autotune: bool | None = None
    stats: bool | None = None
    seed: int | None = None
    progress: bool | str | None = None
    executor: str | None = None

    def __post_init__(self) -> None:
        if self.progress not in (None, True, False, "always"):
            raise ValueError(
                f"Options.progress={self.progress!r} must be True, False, 'always' or None"
            )
        if self.executor is not None and (not isinstance(self.executor, str) or not self.executor):
            raise ValueError(f"Options.executor={self.executor!r} must be an executor name")
        for name in ("cpu_budget", "ram_budget", "io_concurrency"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"Options.{name}={value!r} must be a positive int or None")

    def merge(self, other: Options) -> Options:
        """Fields set in ``other`` win over this one's, as tf.data's ``Options.merge``."""
        updates: dict[str, Any] = {
            f.name: getattr(other, f.name)
            for f in dataclasses.fields(other)
            if getattr(other, f.name) is not None
        }
        return dataclasses.replace(self, **updates)

    def resolved(self) -> Options:
        """A copy with every ``None`` replaced by the machine's default."""
        return Options(
            deterministic=True if self.deterministic is None else self.deterministic,
            cpu_budget=self.cpu_budget or cpu_count(),
            ram_budget=self.ram_budget or _default_ram_budget(),
            io_concurrency=self.io_concurrency or 64,
            autotune=True if self.autotune is None else self.autotune,
            stats=True if self.stats is None else self.stats,
            seed=self.seed,
            progress=False if self.progress is None else self.progress,
            executor=self.executor,
        )


def _default_ram_budget() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available // 2)
    except Exception:  # pragma: no cover - psutil is a dependency; be safe anyway
        return 4 << 30
