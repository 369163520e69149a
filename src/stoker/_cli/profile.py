"""``stoker profile FILE.py[:NAME] [--seconds S] [--json]``: where a pipeline's time goes.

Runs the file (as ``python FILE.py`` would, with ``__name__`` set to ``"__stoker__"`` so a
``if __name__ == "__main__":`` training loop does not start), takes the dataset it defines
and iterates it for a few seconds with a consumer that does nothing, then prints the
:class:`~stoker.stats.StatsReport`: per-stage table, bottleneck and what would help.

``NAME`` picks a module-level ``Dataset`` or a function returning one (called with no
arguments). Without it, the file's one ``Dataset`` at module level is used, else its one
function named ``dataset``, ``make_dataset``, ``get_dataset`` or ``build_dataset``.
Exit status 0, or 2 when the file or the dataset cannot be found.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import time
from typing import Any

__all__ = ["find_dataset", "register"]

_FACTORY_NAMES = ("dataset", "make_dataset", "get_dataset", "build_dataset")


class _NotFound(Exception):
    pass


def find_dataset(spec: str) -> Any:
    """The ``Dataset`` that ``FILE.py[:NAME]`` defines (see the module docstring)."""
    from stoker.dataset import Dataset

    path, _, name = spec.partition(":") if not os.path.exists(spec) else (spec, "", "")
    if not os.path.isfile(path):
        raise _NotFound(f"no such file: {path}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        namespace = runpy.run_path(path, run_name="__stoker__")
    finally:
        sys.path.pop(0)
    if name:
        if name not in namespace:
            raise _NotFound(f"{path} defines no {name!r}")
        obj = namespace[name]
    else:
        found = [k for k, v in namespace.items() if isinstance(v, Dataset) and k[:1] != "_"]
        factories = [k for k in _FACTORY_NAMES if callable(namespace.get(k))]
        if len(found) == 1:
            obj = namespace[found[0]]
        elif not found and len(factories) == 1:
            obj = namespace[factories[0]]
        else:
            what = ", ".join(found or factories) or "none"
            raise _NotFound(
                f"{path}: name the dataset as {path}:NAME (module-level datasets or "
                f"dataset functions found: {what})"
            )
        name = found[0] if len(found) == 1 else factories[0]
    if callable(obj) and not isinstance(obj, Dataset):
        obj = obj()
    if not isinstance(obj, Dataset):
        raise _NotFound(f"{path}:{name} is a {type(obj).__name__}, not a stoker Dataset")
    return obj


def _run(args: argparse.Namespace) -> int:
    try:
        ds = find_dataset(args.target)
    except _NotFound as e:
        print(f"stoker profile: {e}", file=sys.stderr)
        return 2
    it = ds.iterator()
    n = 0
    deadline = time.perf_counter() + args.seconds
    exhausted = False
    try:
        while time.perf_counter() < deadline:
            try:
                next(it)
            except StopIteration:
                exhausted = True
                break
            n += 1
        report = it.stats()
    finally:
        it.close()
    if args.json:
        print(json.dumps({**report.to_dict(), "exhausted": exhausted}, indent=2))
    else:
        print(report)
        if exhausted:
            print(f"(the dataset ended after {n} elements, before {args.seconds:g} s)")
    return 0


def register(commands: Any) -> None:
    """Add the ``profile`` subparser."""
    p = commands.add_parser(
        "profile",
        help="run a pipeline for a few seconds and show where its time goes",
        description=(
            "Iterate the dataset FILE.py defines (a Dataset or a function returning one) with "
            "a consumer that does nothing, then print per-stage stats and the bottleneck."
        ),
    )
    p.add_argument("target", metavar="FILE.py[:NAME]", help="the file and, optionally, the name")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_run)
