"""Layers point one way: ``stoker.cache`` (the file format) never imports what walks pipelines.

The cache file format, codec, decoders, lock and ``cache_info`` sit below ``Dataset``;
the pipeline fingerprint and the sinks that know ``CacheDataset`` live beside the op
(``stoker.ops._cache_fingerprint``, ``stoker.ops._cache_sinks``). Checked on the source,
with ``ast``, so an import inside a function or under ``TYPE_CHECKING`` counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stoker
import stoker.cache

CACHE = Path(stoker.cache.__file__).resolve().parent
FORBIDDEN = ("stoker.dataset", "stoker.ops", "stoker.iterator", "stoker.sources")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (relative imports resolved), with its line."""
    package = "stoker.cache"
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module != "stoker":  # `from stoker import errors` imports stoker.errors only
                out.append((node.lineno, module))
            # `from stoker import dataset` imports stoker.dataset.
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return out


def _violations(path: Path) -> list[str]:
    bad = []
    for line, module in _imports(path):
        if module == "stoker" or any(module == f or module.startswith(f + ".") for f in FORBIDDEN):
            bad.append(f"{path.name}:{line} imports {module}")
    return sorted(bad)


def test_stoker_cache_imports_neither_dataset_nor_ops() -> None:
    files = sorted(CACHE.glob("*.py"))
    assert {f.name for f in files} >= {"format.py", "info.py", "_lock.py", "_codec.py"}
    assert [v for f in files for v in _violations(f)] == []


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from stoker.ops.cache import CacheDataset\n"
        "def f():\n    from ..dataset import Dataset\n"
        "from stoker import dataset, errors\nimport stoker\nfrom stoker.errors import CacheError\n"
    )
    assert _violations(sample) == [
        "sample.py:3 imports stoker.ops.cache",
        "sample.py:3 imports stoker.ops.cache.CacheDataset",
        "sample.py:5 imports stoker.dataset",
        "sample.py:5 imports stoker.dataset.Dataset",
        "sample.py:6 imports stoker.dataset",
        "sample.py:7 imports stoker",
    ]


def test_pipeline_walking_lives_beside_the_op() -> None:
    from stoker.ops import _cache_fingerprint, _cache_sinks

    assert hasattr(_cache_fingerprint, "fingerprint") and hasattr(_cache_sinks, "FileSink")
    assert not (CACHE / "fingerprint.py").exists() and not (CACHE / "_sinks.py").exists()
    assert stoker.cache_info is stoker.cache.cache_info  # the public API stays
