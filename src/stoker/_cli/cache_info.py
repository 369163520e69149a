"""``stoker cache-info FILE [--verify] [--json]``: what a cache file holds."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from stoker.cache import cache_info
    from stoker.errors import CacheError

    try:
        info = cache_info(args.file, verify=args.verify)
    except FileNotFoundError:
        print(f"stoker cache-info: no such file: {args.file}", file=sys.stderr)
        return 2
    except CacheError as e:  # not a cache: another file, a directory, a FIFO (never opened)
        print(f"stoker cache-info: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"stoker cache-info: cannot read {args.file}: {e.strerror or e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(info)
    return 0 if info.valid else 1


def register(commands: Any) -> None:
    """Add the ``cache-info`` subparser."""
    info = commands.add_parser(
        "cache-info",
        help="show what a cache file holds",
        description="Show what a Dataset.cache(filename) file holds and whether it is intact.",
    )
    info.add_argument("file", help="the cache file")
    info.add_argument("--verify", action="store_true", help="read every record and check its CRC")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_run)
