"""``stoker demo``: train a small CNN on a synthetic image set, naive pipeline vs stoker.

:mod:`stoker.demo.data` draws and stores the data set; :mod:`stoker.demo.run` builds the
two pipelines, trains, measures and reports. See ``docs/demo.md``.
"""

from __future__ import annotations

__all__: list[str] = []
