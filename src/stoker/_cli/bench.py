"""``stoker bench [--quick] [--peer-python PYTHON] [--only NAME] [--out DIR]``: the suite.

Runs the benchmark suite's runner (``python -m benchmarks``) from a source checkout. The
``benchmarks/`` folder is not part of the installed package; the command looks for it in
the current directory and its parents, then beside the package's own source (an editable
install), and says so plainly when there is none.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["find_runner", "register"]

_RUNNER = Path("benchmarks") / "runner.py"


def find_runner(start: str | os.PathLike[str] | None = None) -> Path | None:
    """``benchmarks/runner.py`` of the checkout around ``start`` (default: the current
    directory) or around the stoker package itself; None when there is none."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    package = Path(__file__).resolve().parents[2]  # src/stoker/_cli -> src (or site-packages)
    for folder in [here, *here.parents, package.parent]:
        candidate = folder / _RUNNER
        if candidate.is_file():
            return candidate
    return None


def _run(args: argparse.Namespace) -> int:
    runner_path = find_runner()
    if runner_path is None:
        print(
            "stoker bench: no benchmarks/ folder found. The benchmark suite is not part of the "
            "installed package; run this command inside a source checkout of stoker (git "
            "clone the repository, `pip install -e .` there, then `stoker bench`).",
            file=sys.stderr,
        )
        return 2
    # The runner is a package module (benchmarks.runner): make its folder's parent importable.
    root = str(runner_path.parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location("benchmarks.runner", runner_path)
    if spec is None or spec.loader is None:
        print(f"stoker bench: cannot load {runner_path}", file=sys.stderr)
        return 2
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    argv: list[str] = []
    if args.quick:
        argv.append("--quick")
    if args.peer_python:
        argv += ["--peer-python", args.peer_python]
    for name in args.only:
        argv += ["--only", name]
    if args.out:
        argv += ["--out", args.out]
    return int(runner.main(argv))


def register(commands: Any) -> None:
    """Add the ``bench`` subparser."""
    bench = commands.add_parser(
        "bench",
        help="run the benchmark suite (from a source checkout)",
        description="Run every benchmarks/bench_*.py of a source checkout and merge their "
        "results into JSON, Markdown and a chart (same as `python -m benchmarks`).",
    )
    bench.add_argument("--quick", action="store_true", help="tiny sizes (CI's smoke run)")
    bench.add_argument("--peer-python", default="", help="an interpreter with the peers")
    bench.add_argument("--only", action="append", default=[], help="run only bench_NAME.py")
    bench.add_argument("--out", default="", help="folder for the results")
    bench.set_defaults(func=_run)
