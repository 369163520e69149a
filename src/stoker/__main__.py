"""The ``stoker`` command line: ``python -m stoker <command>`` (or ``stoker <command>``).

Commands:

* ``cache-info FILE [--verify] [--json]``: what a ``Dataset.cache(filename)`` file holds
  (pipeline, fingerprint, element structure, counts) and whether it is intact. Exit
  status 0 when the file is usable, 1 when it is damaged, 2 when it is missing or not a
  stoker cache.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _cache_info(args: argparse.Namespace) -> int:
    from stoker.cache import cache_info
    from stoker.errors import CacheError

    try:
        info = cache_info(args.file, verify=args.verify)
    except FileNotFoundError:
        print(f"stoker cache-info: no such file: {args.file}", file=sys.stderr)
        return 2
    except CacheError as e:
        print(f"stoker cache-info: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(info)
    return 0 if info.valid else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each command is a subparser with ``func`` set."""
    parser = argparse.ArgumentParser(
        prog="stoker", description="stoker: an input pipeline that keeps accelerators fed."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = commands.add_parser(
        "cache-info",
        help="show what a cache file holds",
        description="Show what a Dataset.cache(filename) file holds and whether it is intact.",
    )
    info.add_argument("file", help="the cache file")
    info.add_argument("--verify", action="store_true", help="read every record and check its CRC")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_cache_info)
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
