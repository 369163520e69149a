"""Subcommands of the ``stoker`` command line, one module each.

Each module in :data:`COMMANDS` defines ``register(commands)``, which adds its subparser to
the ``argparse`` sub-parsers object and sets ``func`` (``args -> exit status``). Adding a
command is one new module and one line here, so commands never edit each other's code.
"""

from __future__ import annotations

__all__ = ["COMMANDS"]

#: Modules (under ``stoker._cli``) that each register one subcommand, in help order.
COMMANDS = [
    "cache_info",
    "demo",
    "profile",
    "bench",
]
