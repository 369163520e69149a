"""AUTOTUNE: a background controller per pipeline that sets every ``AUTOTUNE`` knob.

Each parallel stage whose ``num_parallel_calls`` (or ``prefetch`` buffer) is ``AUTOTUNE``
hands the pipeline's :class:`Tuner` a :class:`Knob` and a :class:`Meter` (what it did: calls
finished, their wall and CPU time, the time its consumer waited for it). The tuner, one
daemon thread per running pipeline (``stoker-autotune-<n>``), reads the meters every few
tens of milliseconds and moves the knobs; the stages apply the new values on their own
thread. Stages with explicit integers get a knob that is never moved, so their CPU use
still counts against ``Options.cpu_budget``. See docs/autotune.md for the design.

Example::

    it = iter(ds.map(decode, num_parallel_calls=stoker.AUTOTUNE).prefetch(stoker.AUTOTUNE))
    for batch in it:
        ...
    print(it.stats())   # the AUTOTUNE section: what was chosen per stage, and why
"""

from __future__ import annotations

from stoker.autotune._tuner import Knob, Meter, Tuner, tuner_for

__all__ = ["Knob", "Meter", "Tuner", "tuner_for"]
