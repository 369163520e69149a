"""Shared data for the stoker.tfds tests: the datasets TFDS prepared and what it read back."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "tfds"
REFERENCE: dict[str, Any] = json.loads((DATA_DIR / "reference.json").read_text(encoding="utf-8"))


def decode_tree(node: dict[str, Any]) -> Any:
    """Rebuilds one element that scripts/make_tfds_data.py recorded."""
    if "dict" in node:
        return {k: decode_tree(v) for k, v in node["dict"].items()}
    if "tuple" in node:
        return tuple(decode_tree(v) for v in node["tuple"])
    if "bytes" in node:
        return base64.b64decode(node["bytes"])
    if node["dtype"] == "object":
        out = np.empty(len(node["bytes_list"]), dtype=object)
        out[:] = [base64.b64decode(v) for v in node["bytes_list"]]
        return out.reshape(node["shape"])
    raw = zlib.decompress(base64.b64decode(node["zlib"]))
    arr = np.frombuffer(raw, dtype=node["dtype"]).reshape(node["shape"])
    return arr[()] if node["scalar"] else arr


@pytest.fixture
def data_dir() -> str:
    return str(DATA_DIR)
