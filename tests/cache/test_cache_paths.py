"""Every kind of path given to ``cache(filename)`` and ``cache_info``: none is harmed or hangs.

Device nodes, FIFOs, sockets and links are made in ``tmp_path``, never at a system path.
Every call runs under a deadline in a thread, so a regression (a FIFO opened for reading
blocks forever) fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import stoker as sk
from stoker.__main__ import main
from stoker.cache import cache_info
from stoker.cache.format import CacheReader, NotACacheFile, check_replaceable
from stoker.errors import CacheError

DEADLINE_S = 30.0
CACHE_CONTENT = [0, 10, 20, 30, 40]


def _within(fn: Callable[[], Any], seconds: float = DEADLINE_S) -> Any:
    """``fn()``'s result or exception, or a test failure if it has not returned in time."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the test thread
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"did not return within {seconds} s (it blocks)")
    if "error" in out:
        raise out["error"]
    return out["value"]


def _pipeline(path: str, k: int = 10) -> sk.Dataset:
    return sk.Dataset.range(5).map(lambda x: x * k).cache(path)


class _Node:
    """A path of one kind and what must still be true of it afterwards."""

    def __init__(self, path: Path, kind: str, keep: Callable[[], Any] | None = None):
        self.path = path
        self.kind = kind
        self._keep = keep
        self.before = self._state()

    def _state(self) -> Any:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return None
        content = self.path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        return (stat.S_IFMT(st.st_mode), st.st_ino, getattr(st, "st_rdev", 0), content)

    def unchanged(self) -> bool:
        return self._state() == self.before


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for s in held:
        s.close()


def _make(kind: str, folder: Path, held: list[socket.socket]) -> tuple[Path, str]:
    """Make a path of ``kind`` in ``folder``; returns it and the word an error must use."""
    path = folder / f"{kind}.stoker"
    if kind == "cache":
        assert [int(v) for v in _pipeline(str(path))] == CACHE_CONTENT
        return path, ""
    if kind == "other-file":
        path.write_bytes(b"my precious notes")
        return path, "not a stoker cache"
    if kind == "missing":
        return path, ""
    if kind == "directory":
        path.mkdir()
        (path / "inside.txt").write_text("kept")
        return path, "directory"
    if kind in ("char-device", "block-device"):
        mode = stat.S_IFCHR if kind == "char-device" else stat.S_IFBLK
        try:
            os.mknod(path, mode | 0o600, os.makedev(1, 3) if kind == "char-device" else 0)
        except PermissionError:
            pytest.skip("cannot make device nodes here (needs CAP_MKNOD)")
        return path, "character device" if kind == "char-device" else "block device"
    if kind == "fifo":
        os.mkfifo(path)
        return path, "FIFO"
    if kind == "socket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        held.append(s)
        s.bind(str(path))
        return path, "socket"
    raise AssertionError(kind)


KINDS = [
    "cache",
    "other-file",
    "missing",
    "directory",
    "char-device",
    "block-device",
    "fifo",
    "socket",
]


@pytest.mark.parametrize("link", [False, True], ids=["plain", "symlink-to"])
@pytest.mark.parametrize("kind", KINDS)
def test_fault_matrix_of_cache_paths(
    tmp_path: Path, sockets: list[socket.socket], kind: str, link: bool
) -> None:
    target, word = _make(kind, tmp_path, sockets)
    node = _Node(target, kind)
    path = target
    if link:
        path = tmp_path / f"link-to-{kind}"
        path.symlink_to(target)
        if kind == "missing":
            word = "dangling"
    link_node = _Node(path, "link") if link else None

    def run() -> list[int]:
        return [int(v) for v in _pipeline(str(path), k=10 if kind == "cache" else 3)]

    if word:  # refused at once, naming the path and what it is
        with pytest.raises(NotACacheFile) as err:
            _within(run)
        message = str(err.value)
        assert str(path) in message and word in message, message
        assert "another filename" in message
        assert node.unchanged() and (link_node is None or link_node.unchanged())
        # cache_info and the CLI refuse it the same way, and never hang.
        with pytest.raises(CacheError, match=word):
            _within(lambda: cache_info(path))
        assert _within(lambda: main(["cache-info", str(path)])) == 2
        assert node.unchanged()
        return
    expected = CACHE_CONTENT if kind == "cache" else [0, 3, 6, 9, 12]
    assert _within(run) == expected
    assert _within(run) == expected  # replayed
    info = _within(lambda: cache_info(path))
    assert info.valid and info.count == 5
    if kind == "cache":
        assert node.unchanged()  # read, not rewritten
    else:
        assert stat.S_ISREG(os.lstat(target).st_mode)
    if link_node is not None:  # the link is kept; the cache is its target
        assert link_node.unchanged()
        assert os.readlink(path) == str(target)


@pytest.mark.parametrize("kind", ["directory", "char-device", "fifo", "socket"])
def test_symlink_to_a_symlink_to_a_special_file_is_refused(
    tmp_path: Path, sockets: list[socket.socket], kind: str
) -> None:
    target, word = _make(kind, tmp_path, sockets)
    (tmp_path / "one").symlink_to(target)
    (tmp_path / "two").symlink_to(tmp_path / "one")
    with pytest.raises(NotACacheFile, match=word):
        _within(lambda: list(_pipeline(str(tmp_path / "two"))))
    assert _Node(target, kind).before[0] == os.lstat(target).st_mode & 0o170000


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(NotACacheFile, match="cannot be followed"):
        _within(lambda: list(_pipeline(str(a))))
    assert os.path.islink(a) and os.path.islink(b)


@pytest.mark.parametrize("kind", ["char-device", "fifo", "directory", "socket"])
def test_special_file_that_appears_after_construction_is_refused(
    tmp_path: Path, sockets: list[socket.socket], kind: str
) -> None:
    path = tmp_path / f"{kind}.stoker"
    ds = _pipeline(str(path))  # nothing there yet
    _make(kind, tmp_path, sockets)
    node = _Node(path, kind)
    with pytest.raises(NotACacheFile, match=str(path)):
        _within(lambda: list(ds))
    assert node.unchanged()


@pytest.mark.parametrize("kind", ["char-device", "fifo", "directory", "other-file"])
def test_special_file_that_appears_during_the_fill_is_never_replaced(
    tmp_path: Path, sockets: list[socket.socket], kind: str
) -> None:
    path = tmp_path / f"{kind}.stoker"
    made: list[_Node] = []

    def f(x: Any) -> Any:
        if int(x) == 3:  # another process puts something at the name mid-pass
            _make(kind, tmp_path, sockets)
            made.append(_Node(path, kind))
        return x

    ds = sk.Dataset.range(5).map(f).cache(str(path))
    with pytest.raises(NotACacheFile, match="while the cache was being filled"):
        _within(lambda: list(ds))
    assert made and made[0].unchanged()
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary or lock file left


def test_check_replaceable_accepts_only_caches_or_nothing(tmp_path: Path) -> None:
    check_replaceable(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    check_replaceable(str(empty))  # holds nothing
    cache = tmp_path / "c.stoker"
    list(_pipeline(str(cache)))
    check_replaceable(str(cache))
    link = tmp_path / "link"
    link.symlink_to(cache)
    with pytest.raises(NotACacheFile, match="symbolic link"):
        check_replaceable(str(link))
    other = tmp_path / "other"
    other.write_bytes(b"PK\x03\x04")
    with pytest.raises(NotACacheFile, match="not a stoker cache"):
        check_replaceable(str(other))


def test_reader_opens_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotACacheFile, match="FIFO"):
        _within(lambda: CacheReader(str(fifo)))


def test_lock_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "c.stoker"
    os.mkfifo(str(path) + ".lock")
    with pytest.raises(CacheError, match=r"lock file.*not a regular file"):
        _within(lambda: list(_pipeline(str(path))))
    assert stat.S_ISFIFO(os.lstat(str(path) + ".lock").st_mode)
    assert not path.exists()


def test_stale_temporaries_that_are_not_regular_files_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.stoker"
    fifo = Path(str(path) + ".tmp-1-dead")
    os.mkfifo(fifo)
    leftover = Path(str(path) + ".tmp-2-dead")
    leftover.write_bytes(b"x")
    assert _within(lambda: [int(v) for v in _pipeline(str(path))]) == [0, 10, 20, 30, 40]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and not leftover.exists()


def test_cli_on_a_directory_prints_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cache-info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "directory" in err and str(tmp_path) in err


def test_cli_on_a_file_that_is_not_a_cache_gives_no_cache_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("notes")
    assert main(["cache-info", str(other)]) == 2
    err = capsys.readouterr().err
    assert "not a stoker cache" in err and "cache()" not in err
    assert other.read_text() == "notes"
