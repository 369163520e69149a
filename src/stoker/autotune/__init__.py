"""AUTOTUNE: the per-pipeline controller and the RAM ledger (:mod:`stoker.autotune._ram`)."""

__all__: list[str] = []
