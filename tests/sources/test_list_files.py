"""Dataset.list_files: glob patterns, tf.data's shuffling default, missing patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    names = []
    for i in range(12):
        p = tmp_path / f"part-{i:03d}.rec"
        p.write_bytes(b"x")
        names.append(str(p))
    (tmp_path / "other.txt").write_text("y")
    return sorted(names)


def names(ds: sk.Dataset) -> list[str]:
    return [str(x) for x in ds]


def test_shuffle_false_is_sorted(files: list[str], tmp_path: Path) -> None:
    ds = D.list_files(str(tmp_path / "*.rec"), shuffle=False)
    assert names(ds) == files
    assert names(ds) == files
    assert all(type(x) is np.str_ for x in ds)  # documented deviation: tf gives bytes


def test_default_shuffles_every_pass(files: list[str], tmp_path: Path) -> None:
    # tf.data: shuffle=None means shuffled, with a new order each pass.
    ds = D.list_files(str(tmp_path / "*.rec"))
    passes = [names(ds) for _ in range(3)]
    for p in passes:
        assert sorted(p) == files
    # 12! orders: the chance that all three passes are sorted, or all equal, is negligible.
    assert any(p != files for p in passes)
    assert len({tuple(p) for p in passes}) > 1


def test_seeded_shuffle_is_reproducible(files: list[str], tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.rec")
    a = D.list_files(pattern, seed=7)
    b = D.list_files(pattern, seed=7)
    assert [names(a) for _ in range(2)] == [names(b) for _ in range(2)]
    assert sorted(names(a)) == files


def test_several_patterns_and_pathlike(files: list[str], tmp_path: Path) -> None:
    ds = D.list_files([tmp_path / "part-00*.rec", str(tmp_path / "other.*")], shuffle=False)
    assert names(ds) == sorted([*files[:10], str(tmp_path / "other.txt")])


def test_pattern_matching_nothing_raises_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing-*.rec")
    with pytest.raises(FileNotFoundError, match="nothing-"):
        D.list_files(missing)
    (tmp_path / "a.rec").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as e:
        D.list_files([str(tmp_path / "*.rec"), missing], shuffle=False)
    assert missing in str(e.value)


def test_cardinality(files: list[str], tmp_path: Path) -> None:
    assert D.list_files(str(tmp_path / "*.rec")).cardinality() == len(files)
    assert len(D.list_files(str(tmp_path / "*.rec"), shuffle=False)) == len(files)


def test_checkpoint_roundtrip(files: list[str], tmp_path: Path) -> None:
    pattern = str(tmp_path / "*.rec")
    assert assert_checkpoint_roundtrip(D.list_files(pattern, seed=1)) == len(files)
    assert assert_checkpoint_roundtrip(D.list_files(pattern, shuffle=False)) == len(files)
    assert assert_checkpoint_roundtrip(D.list_files(pattern, seed=1).repeat(2)) == 2 * len(files)
