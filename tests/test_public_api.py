"""The public surface: exported names, docstrings, and the "Adding an op" checklist."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import stoker
from stoker import Dataset

ROOT = Path(__file__).resolve().parent.parent

# Methods that are about iteration or the graph, not ops: no Example:: required.
_NOT_OPS = {"iterator", "as_numpy_iterator", "cardinality", "options"}


def test_all_is_sorted_and_complete() -> None:
    assert stoker.__all__ == sorted(stoker.__all__)
    public = {
        name
        for name, value in vars(stoker).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(stoker.__all__), (
        f"exported but not in __all__: {public - set(stoker.__all__)}"
    )
    for name in stoker.__all__:
        assert hasattr(stoker, name), name


def test_every_module_declares_all() -> None:
    for info in pkgutil.walk_packages(stoker.__path__, "stoker."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), f"{info.name} has no __all__"


def _public_methods() -> list[str]:
    return [
        name
        for name, value in vars(Dataset).items()
        if not name.startswith("_") and callable(getattr(Dataset, name))
    ]


def test_every_op_has_docstring_and_example() -> None:
    for name in _public_methods():
        doc = inspect.getdoc(getattr(Dataset, name)) or ""
        assert doc, f"Dataset.{name} has no docstring"
        if name not in _NOT_OPS:
            assert "Example::" in doc, (
                f"Dataset.{name}'s docstring has no Example:: (CONTRIBUTING.md)"
            )


def test_every_op_module_has_a_mirrored_test() -> None:
    ops = ROOT / "src" / "stoker" / "ops"
    for module in ops.glob("*.py"):
        if module.name.startswith("_"):
            continue
        test = ROOT / "tests" / "ops" / f"test_{module.stem}.py"
        assert test.exists(), f"ops/{module.name} has no tests/ops/{test.name} (CONTRIBUTING.md)"


def test_every_op_is_listed_in_the_tfdata_table() -> None:
    table = (ROOT / "docs" / "tfdata.md").read_text()
    for name in _public_methods():
        assert f"`{name}(" in table or f"`{name}`" in table, (
            f"Dataset.{name} is missing from docs/tfdata.md"
        )
