"""The benchmark suite's runner: one quick run of a small script, and the merged shapes.

No timing is asserted: the numbers of a quick run mean nothing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"

ROW_KEYS = {
    "workload",
    "peer",
    "value",
    "unit",
    "limit",
    "ratio_to_limit",
    "peak_rss_mb",
    "cpu_s",
    "note",
}


def _load(name: str) -> ModuleType:
    """benchmarks/NAME.py as a module (benchmarks/ is not part of the installed package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "checkpoint", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def test_quick_run_merges_rows_into_json(quick_run: Path) -> None:
    result = json.loads((quick_run / "results.json").read_text())
    assert result["quick"] is True
    assert {"nproc", "cpu", "python", "load_avg_before", "load_avg_after"} <= set(result["machine"])
    [entry] = result["benchmarks"]
    assert entry["benchmark"] == "checkpoint"
    assert entry["script"] == "benchmarks/bench_checkpoint.py"
    assert "error" not in entry
    assert len(entry["rows"]) == 4  # two pipelines x two positions in quick mode
    for row in entry["rows"]:
        assert set(row) == ROW_KEYS
        assert row["peer"] == "stoker"
        assert row["unit"] == "ms"
        assert row["value"] > 0
        assert row["cpu_s"] is not None and row["cpu_s"] >= 0
        assert row["peak_rss_mb"] is not None and row["peak_rss_mb"] > 0
    assert (quick_run / "bench_checkpoint.log").read_text().strip()


def test_quick_run_writes_the_markdown_table(quick_run: Path) -> None:
    text = (quick_run / "results.md").read_text()
    assert text.startswith("# Benchmark results")
    assert "quick mode" in text
    # Resume times have no limit: they are in the table of every figure, not in the matrix.
    assert "(no workload with a limit)" in text
    assert "| benchmark | workload | peer | value | unit | limit | ratio |" in text
    assert "| checkpoint | checkpoint resume, positions, after 1 batches | stoker |" in text
    assert text.count("| checkpoint | checkpoint resume") == 4


def _entry(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"benchmark": "x", "script": "benchmarks/bench_x.py", "rows": rows, **extra}


def _row(peer: str, value: float, limit: float | None, unit: str = "el/s") -> dict[str, Any]:
    common = _load("_common")
    return dict(common.row("w", peer, value, unit, limit, note="n|b"))


def test_ratio_is_higher_is_better_for_rates_and_costs() -> None:
    common = _load("_common")
    assert common.ratio(50.0, 100.0, "el/s") == 0.5
    assert common.ratio(2.0, 1.0, "us/el") == 0.5  # twice the limit's cost
    assert common.ratio(1.0, None, "ms") is None
    assert common.ratio(0.0, 1.0, "MB/s") is None


def test_markdown_matrix_has_one_column_per_peer_and_lists_failures() -> None:
    runner = _load("runner")
    result = {
        "created": "now",
        "command": "python -m benchmarks",
        "quick": False,
        "machine": {
            "nproc": 2,
            "cpu": "cpu",
            "python": "3",
            "load_avg_before": [1, 1, 1],
            "load_avg_after": [1, 1, 1],
        },
        "benchmarks": [
            _entry([_row("limit", 100, 100), _row("tf.data", 20, 100), _row("stoker", 80, 100)]),
            _entry([], error="exit status 1: boom", benchmark="y", script="benchmarks/bench_y.py"),
        ],
    }
    text = runner.markdown(result)
    assert "| benchmark | workload | stoker | tf.data |" in text
    assert "| x | w | 0.80 | 0.20 |" in text
    assert "n\\|b" in text  # a | in a note does not break the table
    assert "- `benchmarks/bench_y.py`: exit status 1: boom" in text


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"rows": "no"}, "is not"),
        ({"rows": [{"workload": "w"}]}, "has no 'peer'"),
        ({"rows": [{**dict.fromkeys(ROW_KEYS, None), "workload": "w"}]}, "wrong type"),
    ],
)
def test_rows_that_break_the_contract_are_named(data: dict[str, Any], problem: str) -> None:
    runner = _load("runner")
    assert problem in runner._check_rows(data)
    assert runner._check_rows({"benchmark": "x", "rows": [_row("stoker", 1, None)]}) == ""


def test_discover_finds_every_script_and_filters_by_name() -> None:
    runner = _load("runner")
    names = [p.name for p in runner.discover()]
    assert names == sorted(p.name for p in BENCH.glob("bench_*.py"))
    assert {"bench_overhead.py", "bench_tfrecord.py", "bench_cache.py"} <= set(names)
    assert [p.name for p in runner.discover(["tfrecord"])] == ["bench_tfrecord.py"]
    with pytest.raises(SystemExit, match="bench_nope"):
        runner.discover(["nope"])


def test_measure_counts_cpu_and_memory_of_the_cell() -> None:
    common = _load("_common")
    with common.measure() as cell:
        block = bytearray(64 << 20)  # touched: 64 MB resident
        block[::4096] = b"x" * len(block[::4096])
        sum(range(200_000))
    del block
    assert cell.wall_s > 0
    assert cell.cpu_s > 0
    assert cell.peak_rss_mb is not None and cell.peak_rss_mb >= 64


def test_stoker_bench_without_a_checkout_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stoker.__main__ import main
    from stoker._cli import bench

    monkeypatch.setattr(bench, "find_runner", lambda start=None: None)
    assert main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "not part of the" in err and "installed package" in err


def test_find_runner_finds_the_checkout_from_a_subfolder() -> None:
    from stoker._cli.bench import find_runner

    assert find_runner(ROOT / "src" / "stoker") == BENCH / "runner.py"
