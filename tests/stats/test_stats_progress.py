"""Options(progress=...): a tqdm bar, off by default and off in non-tty logs unless asked."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from stoker import Dataset, Options


def test_off_by_default_and_off_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(Dataset.range(5)) == list(range(5))
    it = iter(Dataset.range(5).with_options(Options(progress=True)))  # stderr is not a tty
    assert it._progress is None
    assert len(list(it)) == 5
    assert capsys.readouterr().err == ""


def test_always_shows_elements_per_second_and_input_bound() -> None:
    pytest.importorskip("tqdm")
    code = (
        "import time, stoker as sk\n"
        "ds = sk.Dataset.range(40).map(lambda x: (time.sleep(0.03), x)[1])\n"
        "for _ in ds.with_options(sk.Options(progress='always')): pass\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    err = out.stderr
    assert "40/40" in err and "el/s" in err and "input-bound" in err
    assert out.stdout == ""


def test_bar_closes_when_the_iterator_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    fake = io.StringIO()
    monkeypatch.setattr(sys, "stderr", fake)
    it = Dataset.range(10**6).with_options(Options(progress="always")).iterator()
    for _ in range(10):
        next(it)
    bar = it._progress
    assert bar is not None and not bar.closed
    it.close()
    assert bar.closed
    assert "10/1000000" in fake.getvalue()


def test_bad_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="progress"):
        Options(progress="yes")


def test_counts_with_stats_off_too(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    fake = io.StringIO()
    monkeypatch.setattr(sys, "stderr", fake)
    ds = Dataset.range(7).with_options(Options(progress="always", stats=False))
    assert len(list(ds)) == 7
    assert "7/7" in fake.getvalue()


def test_without_tqdm_the_error_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    ds = Dataset.range(3).with_options(Options(progress="always"))
    with pytest.raises(ImportError, match=r"pip install 'stoker\[progress\]'"):
        iter(ds)
