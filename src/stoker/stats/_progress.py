"""``Options(progress=True)``: a tqdm bar with elements/s and the input-bound share.

Off by default. ``progress=True`` shows the bar only when stderr is a terminal, so logs
of batch jobs stay clean; ``progress="always"`` shows it anyway. tqdm is an optional extra
(``pip install 'stoker[progress]'``), imported when the first bar is made. The bar is
refreshed at most twice a second from the consumer's ``next()`` and closed when the
iterator ends or is closed.
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

__all__ = ["Progress", "wanted"]

_REFRESH_S = 0.5


def wanted(setting: Any) -> bool:
    """Whether ``Options.progress`` asks for a bar here (a terminal, or "always")."""
    if setting == "always":
        return True
    if setting is True:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return False


class Progress:
    """One bar for one iterator; :meth:`tick` after every ``next()``."""

    def __init__(self, desc: str, total: int | None):
        try:
            tqdm = importlib.import_module("tqdm")
        except ImportError:
            raise ImportError(
                "Options(progress=True) needs tqdm: pip install 'stoker[progress]'"
            ) from None
        self._bar: Any = tqdm.tqdm(
            total=total, desc=desc, unit="el", file=sys.stderr, dynamic_ncols=True
        )
        self._shown = 0
        self._calls = 0
        self._next_t = 0.0
        self.closed = False

    def tick(self, rec: Any, force: bool = False) -> None:
        if not force:
            self._calls += 1
        now = time.perf_counter()
        if now < self._next_t and not force:
            return
        self._next_t = now + _REFRESH_S
        n = int(rec.elements) if rec.enabled else self._calls
        if n > self._shown:
            self._bar.update(n - self._shown)
            self._shown = n
        first = rec.first_t if rec.enabled else None
        if first is not None and now > first:
            bound = min(1.0, rec.consumer_s / (now - first))
            self._bar.set_postfix_str(f"input-bound {bound:.0%}", refresh=False)

    def close(self, rec: Any) -> None:
        if self.closed:
            return
        self.closed = True
        self.tick(rec, force=True)
        self._bar.close()
