"""Never stale, and also reused: what a file cache's key covers, in one process and across.

Inputs (functions, the globals and module attributes they read, files the pipeline reads)
invalidate the cache when they change; outputs (files the filling pass itself changed,
such as a log the map function appends to) do not.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stoker as sk
from stoker.cache import cache_info
from stoker.ops._cache_fingerprint import fingerprint

SRC = str(Path(sk.__file__).resolve().parents[1])


# -- attributes read through a module of the user's own (in one process) ------------------------


class _UserModules:
    """Modules written to a temporary folder on ``sys.path``, edited and reloaded."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.names: list[str] = []

    def write(self, relative: str, text: str) -> None:
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        for cache in self.folder.rglob("__pycache__"):  # a same-size edit in the same second
            shutil.rmtree(cache)
        importlib.invalidate_caches()

    def load(self, name: str) -> types.ModuleType:
        self.names.append(name)
        return importlib.import_module(name)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_UserModules]:
    folder = tmp_path / "user_code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    mods = _UserModules(folder)
    yield mods
    for name in list(sys.modules):
        if any(name == n or name.startswith(n + ".") for n in mods.names):
            del sys.modules[name]


def _values(ds: sk.Dataset) -> list[int]:
    return [int(v) for v in ds]


def test_module_attribute_read_by_the_function_invalidates(
    tmp_path: Path, modules: _UserModules
) -> None:
    name = f"helper_{uuid.uuid4().hex[:8]}"
    modules.write(f"{name}.py", "OFFSET = 1\nCFG = {'off': 10}\nUNUSED = 0\n")
    helper = modules.load(name)
    path = str(tmp_path / "c.stoker")

    def f(x: Any) -> Any:
        return x + helper.OFFSET + helper.CFG["off"]

    def build() -> sk.Dataset:
        return sk.Dataset.range(3).map(f).cache(path)

    assert _values(build()) == [11, 12, 13]
    assert _values(build()) == [11, 12, 13]  # reused: nothing changed
    mtime = os.stat(path).st_mtime_ns

    modules.write(f"{name}.py", "OFFSET = 1\nCFG = {'off': 10}\nUNUSED = 5\n")
    importlib.reload(helper)
    assert _values(build()) == [11, 12, 13]  # an attribute the function does not read
    assert os.stat(path).st_mtime_ns == mtime

    modules.write(f"{name}.py", "OFFSET = 2\nCFG = {'off': 10}\nUNUSED = 5\n")
    importlib.reload(helper)
    with pytest.warns(UserWarning, match="different pipeline.*recomputing"):
        assert _values(build()) == [12, 13, 14]

    modules.write(f"{name}.py", "OFFSET = 2\nCFG = {'off': 20}\nUNUSED = 5\n")
    importlib.reload(helper)
    with pytest.warns(UserWarning, match="different pipeline.*recomputing"):
        assert _values(build()) == [22, 23, 24]


def test_attributes_of_a_user_package_are_hashed_recursively(modules: _UserModules) -> None:
    pkg = f"pkg_{uuid.uuid4().hex[:8]}"
    modules.write(f"{pkg}/__init__.py", "from . import sub\n")
    modules.write(f"{pkg}/sub.py", "SCALE = 2\n\ndef shift(x):\n    return x + sub_offset()\n"
                  "\ndef sub_offset():\n    return LEVEL\n\nLEVEL = 1\n")  # fmt: skip
    package = modules.load(pkg)

    def digest() -> str:
        fp = fingerprint(
            sk.Dataset.range(3).map(lambda x: package.sub.shift(x) * package.sub.SCALE)
        )
        assert fp.known, fp.unknown
        return fp.digest

    before = digest()
    assert digest() == before
    package.sub.SCALE = 3
    assert digest() != before
    package.sub.SCALE = 2
    assert digest() == before
    package.sub.LEVEL = 7  # read by a helper the function calls through the package
    assert digest() != before


def test_library_module_attributes_are_covered_by_the_library_version() -> None:
    import math

    fp = fingerprint(sk.Dataset.range(3).map(lambda x: x * math.pi + os.sep.count("/")))
    assert fp.known and fp.files == 0


# -- across processes ----------------------------------------------------------------------------

_CHILD = """
import json, os, sys, time
sys.path.insert(0, {src!r})
sys.path.insert(0, {user!r})
import stoker as sk
import {helper} as helper

INPUT = {input!r}
VOCAB = {vocab!r}
LOG = {log!r}
SCALE = {scale}
CALLS = {{"n": 0}}


def f(line):
    CALLS["n"] += 1
    with open(LOG, "a") as log:  # an output of the pass: a log it appends to
        log.write(f"{{os.getpid()}} {{line!r}}\\n")
    with open(VOCAB) as v:  # an input: a file the function reads
        vocab = v.read().split()
    if {sync!r}:  # both processes are mid-pass at once
        open(os.path.join({sync!r}, f"ready-{{os.getpid()}}"), "w").close()
        deadline = time.monotonic() + 30
        while len(os.listdir({sync!r})) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    return (vocab.index(line.decode()) {op} helper.OFFSET + helper.CFG["off"]) * SCALE


ds = sk.TextLineDataset(INPUT).map(f).cache({cache!r})
values = [int(v) for v in ds]
print(json.dumps({{"values": values, "calls": CALLS["n"], "pid": os.getpid()}}))
"""


class _Run:
    def __init__(self, tmp_path: Path, modules: _UserModules):
        self.tmp = tmp_path
        self.helper = f"helper_{uuid.uuid4().hex[:8]}"
        self.modules = modules
        self.input = tmp_path / "input.txt"
        self.vocab = tmp_path / "vocab.txt"
        self.log = tmp_path / "log.txt"
        self.cache = tmp_path / "c.stoker"
        self.input.write_text("b\na\nc\n")
        self.vocab.write_text("a b c")
        self.write_helper(offset=1, off=10)

    def write_helper(self, offset: int, off: int) -> None:
        self.modules.write(f"{self.helper}.py", f"OFFSET = {offset}\nCFG = {{'off': {off}}}\n")

    def script(self, op: str = "+", scale: int = 1, sync: str = "") -> Path:
        path = self.tmp / f"child-{uuid.uuid4().hex[:8]}.py"
        path.write_text(
            _CHILD.format(
                src=SRC,
                user=str(self.modules.folder),
                helper=self.helper,
                input=str(self.input),
                vocab=str(self.vocab),
                log=str(self.log),
                scale=scale,
                op=op,
                sync=sync,
                cache=str(self.cache),
            )
        )
        return path

    def start(self, script: Path) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        return subprocess.Popen(
            [sys.executable, "-W", "always", str(script)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip

    def finish(self, proc: subprocess.Popen[str]) -> dict[str, Any]:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        result: dict[str, Any] = json.loads(out)
        result["stderr"] = err
        return result

    def __call__(self, **kw: Any) -> dict[str, Any]:
        return self.finish(self.start(self.script(**kw)))


def _bump_mtime(path: Path) -> None:
    # A later mtime even on a coarse-clock file system.
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def test_a_log_writing_map_is_reused_by_a_second_process(
    tmp_path: Path, modules: _UserModules
) -> None:
    run = _Run(tmp_path, modules)
    first = run()
    assert first["values"] == [12, 11, 13] and first["calls"] == 3
    info = cache_info(run.cache)
    assert info.outputs == (str(run.log),)  # recorded as an output, not an input
    assert info.source_files == 2  # input and vocabulary; the log did not exist yet
    log_size = run.log.stat().st_size
    second = run()
    assert second["values"] == [12, 11, 13]
    assert second["calls"] == 0, second["stderr"]  # reused: the log is not an input
    assert "recomputing" not in second["stderr"]
    assert run.log.stat().st_size == log_size
    assert cache_info(run.cache).writer["pid"] == first["pid"]
    assert "output file:  " + str(run.log) in str(cache_info(run.cache))


@pytest.mark.parametrize(
    "change", ["input file", "vocabulary file", "function", "global", "module attribute"]
)
def test_inputs_are_never_reused_stale_across_processes(
    tmp_path: Path, modules: _UserModules, change: str
) -> None:
    run = _Run(tmp_path, modules)
    assert run()["values"] == [12, 11, 13]
    assert run()["calls"] == 0
    kw: dict[str, Any] = {}
    if change == "input file":
        run.input.write_text("c\na\nb\n")
        _bump_mtime(run.input)
        expected = [13, 11, 12]
    elif change == "vocabulary file":
        run.vocab.write_text("c b a")  # same size
        _bump_mtime(run.vocab)
        expected = [12, 13, 11]
    elif change == "function":
        kw = {"op": "-"}
        expected = [10, 9, 11]
    elif change == "global":
        kw = {"scale": 2}
        expected = [24, 22, 26]
    else:
        run.write_helper(offset=5, off=10)
        expected = [16, 15, 17]
    changed = run(**kw)
    assert changed["values"] == expected and changed["calls"] == 3
    assert "recomputing" in changed["stderr"]
    again = run(**kw)
    assert again["values"] == expected and again["calls"] == 0  # and the new cache is reused


def test_two_processes_filling_at_once_leave_a_reusable_cache(
    tmp_path: Path, modules: _UserModules
) -> None:
    run = _Run(tmp_path, modules)
    sync = tmp_path / "sync"
    sync.mkdir()
    script = run.script(sync=str(sync))
    procs = [run.start(script) for _ in range(2)]
    results = [run.finish(p) for p in procs]
    assert len(os.listdir(sync)) == 2  # both were mid-pass at the same time
    assert [r["values"] for r in results] == [[12, 11, 13]] * 2
    assert [r["calls"] for r in results] == [3, 3]  # one wrote, the other read upstream
    info = cache_info(run.cache, verify=True)
    assert info.valid and info.writer["pid"] in {r["pid"] for r in results}
    third = run.finish(run.start(script))  # the same pipeline, after both
    assert third["values"] == [12, 11, 13] and third["calls"] == 0, third["stderr"]


def test_outputs_are_left_out_of_the_key_in_one_process(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    names = [str(log)]
    path = str(tmp_path / "c.stoker")

    def f(x: Any) -> Any:
        with open(names[0], "a") as out:
            out.write("x\n")
        return x

    def build() -> sk.Dataset:
        return sk.Dataset.range(4).map(f).cache(path)

    assert _values(build()) == [0, 1, 2, 3]
    assert cache_info(path).outputs == (str(log),)
    assert _values(build()) == [0, 1, 2, 3]  # reused by a new dataset object
    assert log.read_text().count("x") == 4
    names[0] = str(tmp_path / "other-log.txt")  # the closure changed: another pipeline
    with pytest.warns(UserWarning, match="different pipeline"):
        assert _values(build()) == [0, 1, 2, 3]
    assert (tmp_path / "other-log.txt").read_text().count("x") == 4


def test_an_input_edited_before_the_filling_pass_is_not_taken_for_an_output(
    tmp_path: Path,
) -> None:
    text = tmp_path / "lines.txt"
    text.write_text("a\nb\n")
    path = str(tmp_path / "c.stoker")
    ds = sk.TextLineDataset(str(text)).cache(path)
    it = iter(ds)  # the fingerprint is taken here
    next(it)
    with pytest.warns(UserWarning, match="saw only 1 elements"):
        it.close()
    text.write_text("a\nb\nc\n")  # edited between passes of the same dataset object
    assert list(ds) == [b"a", b"b", b"c"]
    info = cache_info(path)
    assert info.outputs == () and info.source_files == 1
    text.write_text("a\nb\nc\nd\n")
    with pytest.warns(UserWarning, match="different pipeline"):
        assert list(sk.TextLineDataset(str(text)).cache(path)) == [b"a", b"b", b"c", b"d"]
