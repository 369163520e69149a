"""``stoker profile FILE.py[:NAME]`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_PIPELINE = """
import time
import stoker as sk

def slow(x):
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    return x

train = sk.Dataset.range(10**6).map(slow).batch(8)

def small():
    return sk.Dataset.range(30).batch(3)

if __name__ == "__main__":
    raise SystemExit("the training loop must not run under stoker profile")
"""


def _profile(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stoker", "profile", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_profile_prints_the_report_naming_the_bottleneck(tmp_path: Path) -> None:
    f = tmp_path / "pipe.py"
    f.write_text(_PIPELINE)
    out = _profile(str(f), "--seconds", "1")
    assert out.returncode == 0, out.stderr
    assert "bottleneck: map(slow)" in out.stdout
    assert "batch" in out.stdout and "range" in out.stdout


def test_profile_a_function_by_name_as_json(tmp_path: Path) -> None:
    f = tmp_path / "pipe.py"
    f.write_text(_PIPELINE)
    out = _profile(f"{f}:small", "--seconds", "1", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["exhausted"] is True
    assert [s["name"] for s in data["stages"]] == ["batch", "range"]
    assert data["elements"] == 10


def test_profile_errors_name_what_is_missing(tmp_path: Path) -> None:
    missing = _profile(str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    f = tmp_path / "pipe.py"
    f.write_text(_PIPELINE)
    wrong = _profile(f"{f}:nothing")
    assert wrong.returncode == 2 and "defines no 'nothing'" in wrong.stderr
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    none = _profile(str(empty))
    assert none.returncode == 2 and "name the dataset" in none.stderr
