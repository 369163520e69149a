"""The ``stoker`` command line: ``python -m stoker <command>`` (or ``stoker <command>``).

Each command lives in its own module under :mod:`stoker._cli` (``stoker --help`` lists
them); ``stoker --version`` prints the installed version.

* ``cache-info FILE [--verify] [--json]``: what a ``Dataset.cache(filename)`` file holds
  (pipeline, fingerprint, element structure, counts) and whether it is intact. Exit
  status 0 when the file is usable, 1 when it is damaged, 2 when it is missing or not a
  stoker cache.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each command is a subparser with ``func`` set."""
    from stoker import __version__
    from stoker._cli import COMMANDS

    parser = argparse.ArgumentParser(
        prog="stoker", description="stoker: an input pipeline that keeps accelerators fed."
    )
    parser.add_argument("--version", action="version", version=f"stoker {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"stoker._cli.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args))


if __name__ == "__main__":
    sys.exit(main())
