"""examples/augment.py: its augmentation function runs and gives what the pipeline needs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stoker.image")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "augment.py"


def _load():
    spec = importlib.util.spec_from_file_location("augment_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_augment_function(tmp_path) -> None:
    ex = _load()
    path = tmp_path / "train.tfrecord"
    ex.write_jpegs(path, n=3)
    from stoker.io import TFRecordReader

    with TFRecordReader(str(path)) as reader:
        records = [bytes(r) for r in reader]
    outs = [ex.augment(rec, np.random.default_rng(i)) for i, rec in enumerate(records)]
    for img, label in outs:
        assert img.shape == (224, 224, 3) and img.dtype == np.float32
        assert 0.0 <= img.min() and img.max() <= 1.0
        assert label.dtype == np.int64
    again = ex.augment(records[0], np.random.default_rng(0))[0]
    np.testing.assert_array_equal(again, outs[0][0])
