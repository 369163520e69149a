"""Dataset.ignore_errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


def check_nonzero(x):
    if x == 0:
        raise ValueError(f"zero at {x}")
    return 1.0 / x


def test_tf_doc_example() -> None:
    # tf.data: D.from_tensor_slices([1., 2., 0., 4.]).map(lambda x: check_numerics(1. / x))
    ds = D.from_tensor_slices([1.0, 2.0, 0.0, 4.0]).map(check_nonzero).ignore_errors()
    assert [float(x) for x in ds] == [1.0, 0.5, 0.25]


def test_skips_every_failing_element() -> None:
    ds = D.range(20).map(lambda x: x if x % 3 else {}["missing"]).ignore_errors()
    assert [int(x) for x in ds] == [x for x in range(20) if x % 3]


def test_skips_bad_batches() -> None:
    shapes = [(2,), (2,), (3,), (2,), (2,), (2,)]
    ds = D.from_generator(lambda: (np.zeros(s) for s in shapes)).batch(2).ignore_errors()
    assert [b.shape for b in ds] == [(2, 2), (2, 2)]


def test_counts_ignored() -> None:
    it = D.from_tensor_slices([1.0, 0.0, 0.0, 2.0]).map(check_nonzero).ignore_errors().iterator()
    assert len(list(it)) == 2
    assert it.ignored == 2


def test_log_warning(caplog) -> None:
    ds = D.from_tensor_slices([0.0, 1.0]).map(check_nonzero).ignore_errors(log_warning=True)
    with caplog.at_level(logging.WARNING, logger="stoker"):
        assert len(list(ds)) == 1
    assert any(
        "ValueError" in r.getMessage() and "zero at" in r.getMessage() for r in caplog.records
    )


def test_checkpoint_errors_are_not_ignored() -> None:
    def fn(x):
        raise sk.CheckpointError("machinery")

    with pytest.raises(sk.CheckpointError):
        list(D.range(2).map(fn).ignore_errors())


def test_cardinality() -> None:
    assert D.range(4).ignore_errors().cardinality() == sk.UNKNOWN_CARDINALITY


def test_checkpoint_roundtrip() -> None:
    ds = D.from_tensor_slices([1.0, 0.0, 2.0, 0.0, 4.0]).map(check_nonzero).ignore_errors()
    assert assert_checkpoint_roundtrip(ds) == 3
