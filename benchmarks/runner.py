"""The benchmark suite's runner: every ``benchmarks/bench_*.py``, one merged result.

    python -m benchmarks                                    # every script, full size
    python -m benchmarks --quick                            # tiny sizes: CI's smoke run
    python -m benchmarks --peer-python /tmp/peers/bin/python   # with tf.data, torch, grain
    python -m benchmarks --only tfrecord --only cache       # some scripts
    stoker bench ...                                        # the same, from a source checkout

Each script runs in its own process with ``--json`` (and ``--quick`` / ``--peer-python``
when given), one after another, so they do not compete for the cores. Their rows (the
contract is in ``benchmarks/_common.py``) are merged into ``OUT/results.json`` with the
machine they ran on, a Markdown table ``OUT/results.md`` (ratio to the limit of every
workload and peer, then every figure) and, when matplotlib is importable, a chart
``OUT/results.png``. A script that fails, times out, or writes no valid rows is reported
in all three and makes the exit status 1; the other scripts still run. A script that does
not take ``--json`` yet is run without it (so a smoke run still exercises it) and listed
as giving no rows; ``--strict`` makes that a failure too.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["BENCH_DIR", "discover", "main", "markdown", "merge_rows", "run_script"]

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

_ROW_KEYS = {
    "workload": str,
    "peer": str,
    "value": (int, float),
    "unit": str,
    "limit": (int, float, type(None)),
    "ratio_to_limit": (int, float, type(None)),
    "peak_rss_mb": (int, float, type(None)),
    "cpu_s": (int, float, type(None)),
    "note": str,
}


def discover(only: Sequence[str] = ()) -> list[Path]:
    """The scripts to run: ``bench_*.py`` in this folder, sorted; ``only`` filters by name
    (``tfrecord`` or ``bench_tfrecord``)."""
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if only:
        wanted = {name.removeprefix("bench_").removesuffix(".py") for name in only}
        unknown = wanted - {p.stem.removeprefix("bench_") for p in scripts}
        if unknown:
            raise SystemExit(f"--only: no benchmarks/bench_{sorted(unknown)[0]}.py")
        scripts = [p for p in scripts if p.stem.removeprefix("bench_") in wanted]
    return scripts


def _check_rows(data: Any) -> str:
    """Why ``data`` breaks the contract, or "" when it keeps it."""
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        return 'the JSON is not {"benchmark": ..., "rows": [...]}'
    for i, r in enumerate(data["rows"]):
        if not isinstance(r, dict):
            return f"row {i} is not an object"
        for key, kind in _ROW_KEYS.items():
            if key not in r:
                return f"row {i} has no {key!r}"
            if not isinstance(r[key], kind) or isinstance(r[key], bool):
                return f"row {i}: {key}={r[key]!r} has the wrong type"
    return ""


def _env() -> dict[str, str]:
    """The scripts' environment: the checkout's src/ importable even if not installed."""
    env = dict(os.environ)
    src = str(REPO / "src")
    if (REPO / "src" / "stoker").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def run_script(
    script: Path, out_dir: Path, quick: bool, peer_python: str, timeout_s: float
) -> dict[str, Any]:
    """Runs one script; returns its entry of the merged result (rows, or an error)."""
    name = script.stem.removeprefix("bench_")
    json_path = out_dir / f"{script.stem}.json"
    log_path = out_dir / f"{script.stem}.log"
    json_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(script), "--json", str(json_path)]
    if quick:
        cmd.append("--quick")
    if peer_python:
        cmd += ["--peer-python", peer_python]
    entry: dict[str, Any] = {"benchmark": name, "script": f"benchmarks/{script.name}", "rows": []}
    print(f"== {' '.join([Path(cmd[0]).name, *cmd[1:]])}", flush=True)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_env(),
                timeout=timeout_s,
                check=False,
                cwd=REPO,
            )
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    output = log_path.read_text(errors="replace")
    if code == 2 and "unrecognized arguments" in output:
        # A script not on the contract yet (no --json / --peer-python): run it as it is,
        # so the smoke run still exercises it, and say that it gave no rows.
        print(output, end="", flush=True)
        plain = [sys.executable, str(script), *(["--quick"] if quick else [])]
        print(f"== {script.name} takes no --json yet; running {' '.join(plain[1:])}", flush=True)
        with open(log_path, "w") as log:
            try:
                code = subprocess.run(
                    plain,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_env(),
                    timeout=timeout_s,
                    check=False,
                    cwd=REPO,
                ).returncode
            except subprocess.TimeoutExpired:
                code = None
        output = log_path.read_text(errors="replace")
        if code == 0:
            entry["off_contract"] = True
    entry["wall_s"] = round(time.perf_counter() - start, 1)
    print(output, end="" if output.endswith("\n") or not output else "\n", flush=True)
    if code is None:
        entry["error"] = f"timed out after {timeout_s:.0f} s"
    elif code != 0:
        last = (output.strip().splitlines() or ["(no output)"])[-1]
        entry["error"] = f"exit status {code}: {last}"
    elif entry.get("off_contract"):
        entry["error"] = "ran, but takes no --json yet: no rows (see benchmarks/_common.py)"
    elif not json_path.exists():
        entry["error"] = "wrote no --json file (does it follow benchmarks/_common.py?)"
    else:
        try:
            data = json.loads(json_path.read_text())
            problem = _check_rows(data)
        except ValueError as exc:
            problem = f"invalid JSON: {exc}"
        if problem:
            entry["error"] = problem
        else:
            entry["rows"] = data["rows"]
    if "error" in entry:
        print(f"!! {script.name}: {entry['error']} (log: {log_path})", flush=True)
    return entry


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg": _load(),
    }


def merge_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row of every script, each tagged with its benchmark's name."""
    return [{"benchmark": e["benchmark"], **r} for e in entries for r in e["rows"]]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return f"{value:g}"
        magnitude = math.floor(math.log10(abs(value)))
        decimals = max(0, digits - 1 - magnitude)
        return f"{value:,.{decimals}f}"
    return str(value)


def _fixed(value: Any, decimals: int) -> str:
    if value is None:
        return "-"
    if 0 < abs(value) < 10**-decimals:
        return f"{value:.1g}"  # 0.0004, not 0.00
    return f"{value:.{decimals}f}"


def _peers_in_order(rows: list[dict[str, Any]]) -> list[str]:
    peers = []
    for r in rows:
        if r["peer"] not in peers and r["peer"] != "limit":
            peers.append(r["peer"])
    first = [p for p in peers if p == "stoker" or p.startswith("stoker-")]
    return first + [p for p in peers if p not in first]


def markdown(result: dict[str, Any]) -> str:
    """The merged result as Markdown: a ratio matrix, then every row."""
    rows = merge_rows(result["benchmarks"])
    m = result["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"{result['created']} · {m['nproc']} cores, {m['cpu']} · Python {m['python']} · "
        f"load average before {m['load_avg_before']}, after {m['load_avg_after']}"
        + (
            " · **quick mode: sizes are tiny, the numbers mean nothing**" if result["quick"] else ""
        ),
        "",
        f"Command: `{result['command']}`",
        "",
        "## Ratio to the limit (1.0 = the limit; higher is better)",
        "",
    ]
    peers = _peers_in_order(rows)
    workloads: list[tuple[str, str]] = []
    for r in rows:
        key = (r["benchmark"], r["workload"])
        if key not in workloads:
            workloads.append(key)
    with_ratio = {(r["benchmark"], r["workload"]) for r in rows if r["ratio_to_limit"] is not None}
    workloads = [w for w in workloads if w in with_ratio]
    if peers and workloads:
        lines.append("| benchmark | workload | " + " | ".join(peers) + " |")
        lines.append("|---|---|" + "---:|" * len(peers))
        for bench, workload in workloads:
            cells = []
            for peer in peers:
                found = [
                    r
                    for r in rows
                    if (r["benchmark"], r["workload"], r["peer"]) == (bench, workload, peer)
                ]
                cells.append(_fixed(found[0]["ratio_to_limit"], 2) if found else "")
            lines.append(f"| {bench} | {workload} | " + " | ".join(cells) + " |")
    else:
        lines.append("(no workload with a limit)")
    lines += [
        "",
        "## Every figure",
        "",
        "| benchmark | workload | peer | value | unit | limit | ratio | peak RSS MB | CPU s "
        "| note |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        note = r["note"].replace("|", "\\|")
        lines.append(
            f"| {r['benchmark']} | {r['workload']} | {r['peer']} | {_fmt(r['value'])} | "
            f"{r['unit']} | {_fmt(r['limit'])} | {_fixed(r['ratio_to_limit'], 2)} | "
            f"{_fixed(r['peak_rss_mb'], 0)} | {_fixed(r['cpu_s'], 3)} | {note} |"
        )
    failed = [e for e in result["benchmarks"] if "error" in e]
    if failed:
        lines += ["", "## Not measured", ""]
        lines += [f"- `{e['script']}`: {e['error']}" for e in failed]
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> bool:
    """A bar chart of the ratio to the limit per workload and peer (log scale, so that
    ratios of 0.0001 still show); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in merge_rows(result["benchmarks"]) if r["ratio_to_limit"]]
    rows = [r for r in rows if r["peer"] != "limit"]
    peers = _peers_in_order(rows)
    colors = {p: f"C{i % 10}" for i, p in enumerate(peers)}
    workloads: list[str] = []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    bar = 0.8
    y = 0.0
    ticks, labels, seen = [], [], set()
    fig, ax = plt.subplots(figsize=(9.5, 0.16 * len(rows) + 0.35 * len(workloads) + 1.2), dpi=72)
    for workload in workloads:
        found = [r for r in rows if r["workload"] == workload]
        found.sort(key=lambda r: peers.index(r["peer"]))
        start = y
        for r in found:
            label = None if r["peer"] in seen else r["peer"]
            seen.add(r["peer"])
            ax.barh(y, min(r["ratio_to_limit"], 3.0), height=bar, color=colors[r["peer"]],
                    label=label)  # fmt: skip
            y += 1
        ticks.append((start + y - 1) / 2)
        labels.append(workload)
        y += 0.8
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 3.0)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ratio to the limit (log scale; 1 = the limit, higher is better)", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    m = result["machine"]
    ax.set_title(f"stoker benchmarks, {m['nproc']} cores, {result['created']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def render(result: dict[str, Any], out_dir: Path) -> None:
    """Writes results.json, results.md and (with matplotlib) results.png for ``result``."""
    (out_dir / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (out_dir / "results.md").write_text(markdown(result))
    print(f"\nwrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    if chart(result, out_dir / "results.png"):
        print(f"wrote {out_dir / 'results.png'}")
    else:
        print("chart skipped: matplotlib is not installed (pip install matplotlib)")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the suite; returns the exit status (1 when a script failed)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI's smoke run)")
    parser.add_argument(
        "--peer-python", default="", metavar="PYTHON", help="an interpreter with the peers"
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="run only bench_NAME.py"
    )
    parser.add_argument(
        "--out",
        default=str(REPO / "benchmarks" / "results"),
        help="folder for results.json, results.md, results.png and each script's log",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per script (default 1800, 600 quick)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail when a script takes no --json yet"
    )
    parser.add_argument(
        "--render", metavar="RESULTS_JSON", help="only redraw the table and chart of a result"
    )
    args = parser.parse_args(argv)
    timeout_s = args.timeout or (600.0 if args.quick else 1800.0)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.render:
        render(json.loads(Path(args.render).read_text()), out_dir)
        return 0
    scripts = discover(args.only)
    load_before = _load()
    started = datetime.datetime.now(datetime.timezone.utc)
    entries = [run_script(s, out_dir, args.quick, args.peer_python, timeout_s) for s in scripts]
    result = {
        "created": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(
            ["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]
        ),
        "quick": args.quick,
        "machine": {**machine(), "load_avg_before": load_before, "load_avg_after": _load()},
        "benchmarks": entries,
    }
    render(result, out_dir)
    off = [e["script"] for e in entries if e.get("off_contract")]
    if off:
        print(f"not on the JSON contract yet (ran, no rows): {', '.join(off)}")
    failed = [e["script"] for e in entries if "error" in e and not e.get("off_contract")]
    if failed or (off and args.strict):
        print(f"FAILED: {', '.join(failed + off)}")
        return 1
    return 0
