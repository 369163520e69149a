"""Cache files on disk: damage, disk full, killed and concurrent writers, staleness."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stoker as sk
import stoker.ops.cache as cache_op
from stoker.cache import cache_info
from stoker.cache.format import HEADER_SIZE, CacheReader, CacheWriter
from stoker.errors import CacheError

SRC = str(Path(sk.__file__).resolve().parents[1])


def _pipeline(path: str, n: int = 20) -> sk.Dataset:
    return sk.Dataset.range(n).map(lambda x: (x, np.full(300, x, np.int32))).cache(path)


def _check(elements: list[Any], n: int = 20) -> None:
    assert len(elements) == n
    for i, (x, v) in enumerate(elements):
        assert int(x) == i and v.tolist() == [i] * 300


def _fill(path: str, n: int = 20) -> None:
    _check(list(_pipeline(path, n)), n)
    assert cache_info(path).valid


def _leftovers(path: str) -> list[str]:
    folder = os.path.dirname(path)
    return sorted(f for f in os.listdir(folder) if f != os.path.basename(path))


# -- damage ------------------------------------------------------------------------------------


def test_truncated_file_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    _fill(path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.warns(UserWarning, match="truncated.*recomputing"):
        _check(list(_pipeline(path)))
    assert os.path.getsize(path) == size and cache_info(path).valid


@pytest.mark.parametrize("where", ["header", "index", "meta"])
def test_corrupt_header_index_or_meta_is_recomputed(tmp_path: Path, where: str) -> None:
    path = str(tmp_path / "c.stoker")
    _fill(path)
    reader = CacheReader(path)
    offset = {
        "header": 20,
        "index": reader._index_offset + 3,
        "meta": reader._index_offset + 8 * reader.count + 5,
    }[where]
    reader.close()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x10]))
    info = cache_info(path)
    assert not info.valid and "CRC" in (info.problem or "")
    with pytest.warns(UserWarning, match="corrupt.*recomputing"):
        _check(list(_pipeline(path)))
    assert cache_info(path).valid


def test_bit_flip_in_a_record_is_an_error_never_wrong_data(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    _fill(path)
    reader = CacheReader(path)
    offset = reader._index[7] + 200  # inside record 7's array
    reader.close()
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    it = _pipeline(path).iterator()
    _check([next(it) for _ in range(7)], 7)  # the records before it are fine
    with pytest.raises(CacheError, match=r"c\.stoker.*record 7.*CRC.*Delete the file"):
        next(it)
    it.close()
    info = cache_info(path, verify=True)
    assert not info.valid and "record 7" in (info.problem or "")


@pytest.mark.parametrize("records", [0, 3])
def test_never_completed_file_at_the_final_name_is_recomputed(tmp_path: Path, records: int) -> None:
    path = str(tmp_path / "c.stoker")
    writer = CacheWriter(path, path + ".tmp-copied")
    for i in range(records):
        writer.append((np.int64(i), np.full(300, i, np.int32)))
    writer._f.flush()
    Path(path).write_bytes(Path(writer.tmp_path).read_bytes())  # a temporary file copied by hand
    writer.abort()
    with pytest.warns(UserWarning, match="never completed"):
        _check(list(_pipeline(path)))
    assert cache_info(path).valid


@pytest.mark.parametrize("size", [HEADER_SIZE + 100, 4096, 5])
def test_a_file_of_zeros_is_not_taken_for_a_cache(tmp_path: Path, size: int) -> None:
    # Raw data or a preallocated file: its first bytes are zeros like an unwritten header,
    # but nothing in it is a record, so it is someone else's file and is never replaced.
    path = tmp_path / "features.bin"
    path.write_bytes(bytes(size))
    with pytest.raises(CacheError, match="not a stoker cache"):
        list(_pipeline(str(path)))
    assert path.read_bytes() == bytes(size)
    with pytest.raises(CacheError, match="not a stoker cache"):
        cache_info(path)


def test_other_format_version_is_recomputed(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    _fill(path)
    import crc32c

    data = bytearray(Path(path).read_bytes())
    data[8:12] = (99).to_bytes(4, "little")
    data[64:68] = crc32c.crc32c(bytes(data[:64])).to_bytes(4, "little")
    Path(path).write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="format version 99"):
        _check(list(_pipeline(path)))


# -- disk full -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", ["records", "commit"])
def test_disk_full_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    path = str(tmp_path / "c.stoker")
    original = CacheWriter._write
    budget = {"bytes": 5000 if fail_at == "records" else None}

    def write(self: CacheWriter, data: Any) -> None:
        if budget["bytes"] is not None:
            budget["bytes"] -= memoryview(data).nbytes
            if budget["bytes"] < 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(self, data)

    def commit_fails(self: CacheWriter, meta: dict[str, Any]) -> None:
        budget["bytes"] = 0
        original_commit(self, meta)

    original_commit = CacheWriter.commit
    monkeypatch.setattr(CacheWriter, "_write", write)
    if fail_at == "commit":
        monkeypatch.setattr(CacheWriter, "commit", commit_fails)
    ds = _pipeline(path)
    with pytest.raises(CacheError, match=r"c\.stoker.*No space left.*disk is full"):
        list(ds)
    assert os.listdir(tmp_path) == []  # no temporary file, no lock file
    monkeypatch.undo()
    _fill(path)  # the next pass fills it


# -- killed and concurrent writers ---------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, {src!r})
    import numpy as np
    import stoker as sk

    path, mode = sys.argv[1], sys.argv[2]
    calls = []

    def slow(x):
        calls.append(x)
        if x == 1 and mode != "die":
            # Both passes are under way (each decided at element 0 whether it writes)
            # before either can finish: the fills overlap, however the two are scheduled.
            open(path + ".started-" + mode, "w").close()
            deadline = time.monotonic() + 30
            while not all(os.path.exists(path + ".started-" + m) for m in "ab"):
                if time.monotonic() > deadline:
                    sys.exit("the other process never started")
                time.sleep(0.001)
        return (x, np.full(300, x, np.int32))

    ds = sk.Dataset.range(20).map(slow).cache(path)
    if mode == "die":
        it = iter(ds)
        for _ in range(10):
            next(it)
        os._exit(0)  # killed mid-fill: no close, no finalizers, no atexit
    open(path + ".ready-" + mode, "w").close()
    while not os.path.exists(path + ".go"):
        time.sleep(0.001)
    out = [(int(x), v.tolist()) for x, v in ds]
    print(json.dumps({{"elements": out, "calls": len(calls)}}))
    """
)


def _child(tmp_path: Path, path: str, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(src=SRC))
    return subprocess.Popen(
        [sys.executable, str(script), path, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_writer_leaves_no_cache_and_no_stuck_lock(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    path = str(folder / "c.stoker")
    proc = _child(tmp_path, path, "die")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not os.path.exists(path)
    assert any(".tmp-" in f for f in os.listdir(folder))  # the dead writer's temporary file
    _fill(path)  # not blocked by its lock; its temporary file is cleaned up
    assert _leftovers(path) == []


def test_two_processes_filling_at_once_do_not_corrupt(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    path = str(folder / "c.stoker")
    procs = [_child(tmp_path, path, name) for name in ("a", "b")]
    deadline = time.monotonic() + 60
    while not all(os.path.exists(f"{path}.ready-{name}") for name in ("a", "b")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    Path(path + ".go").touch()
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outputs.append(json.loads(out))
    expected = [[i, [i] * 300] for i in range(20)]
    assert [o["elements"] for o in outputs] == [expected, expected]
    # Both computed every element: one wrote the file, the other found it locked.
    assert [o["calls"] for o in outputs] == [20, 20]
    for name in (".go", ".ready-a", ".ready-b", ".started-a", ".started-b"):
        os.unlink(path + name)
    info = cache_info(path, verify=True)
    assert info.valid and info.count == 20
    assert info.writer["pid"] in {p.pid for p in procs}
    assert _leftovers(path) == []


def test_lock_held_elsewhere_means_read_upstream_without_writing(tmp_path: Path) -> None:
    from stoker.cache._lock import try_lock

    path = str(tmp_path / "c.stoker")
    other = try_lock(path + ".lock")  # another open file description: conflicts like a process
    assert other is not None
    assert try_lock(path + ".lock") is None
    _check(list(_pipeline(path)))
    assert not os.path.exists(path)
    other.release()
    assert not os.path.exists(path + ".lock")
    _fill(path)


def test_lock_file_left_by_a_dead_process_is_reused(tmp_path: Path) -> None:
    from stoker.cache._lock import try_lock

    lock_path = str(tmp_path / "x.lock")
    Path(lock_path).write_text("")  # left behind, nobody holds it
    lock = try_lock(lock_path)
    assert lock is not None and lock.held
    lock.release()
    lock.release()
    assert not os.path.exists(lock_path)


# -- staleness -----------------------------------------------------------------------------------


def test_changed_function_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    path = str(tmp_path / "c.stoker")
    assert [int(v) for v in sk.Dataset.range(5).map(lambda x: x + 1).cache(path)] == [1, 2, 3, 4, 5]
    changed = sk.Dataset.range(5).map(lambda x: x + 2).cache(path)
    with pytest.warns(UserWarning, match="different pipeline.*recomputing"):
        assert [int(v) for v in changed] == [2, 3, 4, 5, 6]
    assert [int(v) for v in sk.Dataset.range(5).map(lambda x: x + 2).cache(path)] == [2, 3, 4, 5, 6]


def test_changed_source_file_is_recomputed(tmp_path: Path) -> None:
    text = tmp_path / "lines.txt"
    text.write_text("a\nb\n")
    path = str(tmp_path / "c.stoker")
    assert list(sk.TextLineDataset(str(text)).cache(path)) == [b"a", b"b"]
    text.write_text("a\nb\nc\n")
    with pytest.warns(UserWarning, match="different pipeline"):
        assert list(sk.TextLineDataset(str(text)).cache(path)) == [b"a", b"b", b"c"]


def test_unknown_fingerprint_is_only_reused_by_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "c.stoker")
    handle = open(os.devnull)  # an object stoker cannot hash
    try:

        def build() -> sk.Dataset:
            return sk.Dataset.range(4).map(lambda x: (x, handle.closed)).cache(path)

        with pytest.warns(UserWarning, match=r"cannot fingerprint.*TextIOWrapper.*only be reused"):
            list(build())
        assert cache_info(path).fingerprint_known is False
        with pytest.warns(UserWarning, match="cannot fingerprint"):
            assert [int(x) for x, _ in build()] == [0, 1, 2, 3]
        mtime = os.stat(path).st_mtime_ns
        monkeypatch.setattr(cache_op, "_PROCESS_TOKEN", "another-process")
        with pytest.warns(UserWarning) as record:
            assert [int(x) for x, _ in build()] == [0, 1, 2, 3]
        assert any("different pipeline" in str(w.message) for w in record)
        assert os.stat(path).st_mtime_ns != mtime  # recomputed
    finally:
        handle.close()


def test_reading_never_imports_a_module(tmp_path: Path) -> None:
    from collections import namedtuple

    Row = namedtuple("Row", ["a", "b"])  # type: ignore[name-match]
    Row.__module__ = "stoker_test_module_that_does_not_exist"
    path = str(tmp_path / "c.stoker")
    list(sk.Dataset.range(2).map(lambda i: Row(i, "x")).cache(path))
    reader = CacheReader(path)
    rows, error = reader.read_block(0)
    assert error is None
    assert [(int(r.a), r.b) for r in rows] == [(0, "x"), (1, "x")]
    assert type(rows[0]) is not Row and type(rows[0]).__name__ == "Row"
    assert "stoker_test_module_that_does_not_exist" not in sys.modules
