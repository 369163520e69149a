"""``stoker.cache_info`` and ``python -m stoker cache-info``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stoker as sk
from stoker.__main__ import main
from stoker.cache import cache_info
from stoker.errors import CacheError


def _make(path: Path) -> None:
    ds = sk.Dataset.range(6).map(lambda x: {"id": x, "v": np.zeros((int(x), 3), np.float32)})
    list(ds.cache(str(path)))


def test_cache_info_describes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.stoker"
    _make(path)
    info = cache_info(path, verify=True)
    assert info.valid and info.verified and info.problem is None
    assert info.count == 6
    assert info.data_bytes == 6 * 8 + sum(i * 12 for i in range(6))
    assert info.elements == ("{'id': np.int64, 'v': float32[?,3]}",)
    assert info.pipeline == "range -> map(_make.<locals>.<lambda>)"
    assert info.fingerprint_known and len(info.fingerprint or "") == 32
    assert info.versions["stoker"] == sk.__version__
    text = str(info)
    assert "6 (" in text and "float32[?,3]" in text and "verified" in text
    assert json.loads(json.dumps(info.to_dict()))["count"] == 6


def test_cache_info_of_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "c.stoker"
    _make(path)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    info = cache_info(path)
    assert not info.valid and "truncated" in (info.problem or "")
    assert "NOT USABLE" in str(info)


def test_cache_info_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cache_info(tmp_path / "missing")
    other = tmp_path / "other.bin"
    other.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(CacheError, match="not a stoker cache"):
        cache_info(other)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.stoker"
    _make(path)
    assert main(["cache-info", str(path)]) == 0
    assert "elements:     6" in capsys.readouterr().out
    assert main(["cache-info", "--json", "--verify", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is True
    assert main(["cache-info", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
    path.write_bytes(path.read_bytes()[:-1])
    assert main(["cache-info", str(path)]) == 1
    assert main([]) == 2


def test_python_dash_m(tmp_path: Path) -> None:
    path = tmp_path / "c.stoker"
    _make(path)
    out = subprocess.run(
        [sys.executable, "-m", "stoker", "cache-info", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "stoker cache file" in out and "range -> map" in out
