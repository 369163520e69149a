"""Argument errors of the file sources name the op and the argument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stoker as sk


@pytest.mark.parametrize("op", [sk.TFRecordDataset, sk.TextLineDataset])
@pytest.mark.parametrize(
    ("filenames", "match"),
    [
        (123, r"\(\): filenames=123 must be a path .*got int"),
        (None, r"\(\): filenames=None must be a path .*got NoneType"),
        (["a.rec", 1], r"\(\): filenames\[1\]=1 must be a path .*got int"),
        ([], r"\(\): filenames must not be empty"),
    ],
)
def test_bad_filenames_name_the_op_and_the_argument(op: Any, filenames: Any, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=op.__name__ + match):
        op(filenames)


def test_filenames_may_be_any_iterable_of_paths(tmp_path: Path) -> None:
    files = []
    for i in range(2):
        path = tmp_path / f"{i}.txt"
        path.write_text(f"line {i}\n")
        files.append(path)
    want = [b"line 0", b"line 1"]
    assert list(sk.TextLineDataset(p for p in files)) == want  # a generator
    assert list(sk.TextLineDataset(tuple(files))) == want
    assert list(sk.TextLineDataset(np.array([str(p) for p in files]))) == want
    assert list(sk.TextLineDataset([str(files[0]).encode(), files[1]])) == want
