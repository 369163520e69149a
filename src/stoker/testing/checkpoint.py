"""Checkpoint conformance: resuming at any step gives what an uninterrupted run gives."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from stoker.dataset import Dataset

__all__ = ["assert_checkpoint_roundtrip", "assert_elements_equal"]


def assert_elements_equal(actual: Any, expected: Any, where: str = "element") -> None:
    """Assert two elements (nested tuples/dicts of arrays and scalars) are equal.

    Structure, dtypes, shapes and values must match; NaNs compare equal.
    """
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and type(actual) is type(expected), (
            f"{where}: expected {type(expected).__name__}, got {type(actual).__name__}"
        )
        assert len(actual) == len(expected), f"{where}: tuple lengths differ"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_elements_equal(a, e, f"{where}[{i}]")
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected dict, got {type(actual).__name__}"
        assert actual.keys() == expected.keys(), (
            f"{where}: keys {actual.keys()} != {expected.keys()}"
        )
        for k in expected:
            assert_elements_equal(actual[k], expected[k], f"{where}[{k!r}]")
        return
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.dtype == e.dtype, f"{where}: dtype {a.dtype} != {e.dtype}"
    assert a.shape == e.shape, f"{where}: shape {a.shape} != {e.shape}"
    if e.dtype == object or e.dtype.kind in "SUb":
        assert a.tolist() == e.tolist(), f"{where}: {actual!r} != {expected!r}"
    else:
        np.testing.assert_array_equal(a, e, err_msg=where)


def assert_checkpoint_roundtrip(
    dataset: Dataset, max_elements: int = 200, every: int = 1, json_roundtrip: bool = True
) -> int:
    """Check that resuming from the state saved after any step continues exactly.

    One iterator runs the dataset (at most ``max_elements``) and saves its state before each
    element. For every ``every``-th saved state, a new iterator made from that state must
    produce exactly the elements the first one produced from there on.

    Args:
        dataset: The pipeline under test.
        max_elements: Elements to run (datasets may be infinite).
        every: Check every n-th step (1: every step).
        json_roundtrip: Pass each state through ``json.dumps``/``loads`` first, as a
            checkpoint written to disk would be.

    Returns:
        The number of elements the run produced.
    """
    states: list[Any] = []
    elements: list[Any] = []
    with dataset.iterator() as it:
        for _ in range(max_elements):
            states.append(it.get_state())
            try:
                elements.append(next(it))
            except StopIteration:
                break
        else:
            states.append(it.get_state())
    n = len(elements)
    for step in range(0, len(states), every):
        state = states[step]
        if json_roundtrip:
            state = json.loads(json.dumps(state))
        with dataset.iterator(state) as resumed:
            for j in range(step, n):
                try:
                    got = next(resumed)
                except StopIteration:
                    raise AssertionError(
                        f"resumed at step {step}: ended after {j - step} elements, the "
                        f"uninterrupted run produced {n - step}"
                    ) from None
                assert_elements_equal(got, elements[j], f"resumed at step {step}, element {j}")
            if n < max_elements:
                leftover = next(resumed, _END)
                assert leftover is _END, (
                    f"resumed at step {step}: produced more elements than the uninterrupted run"
                )
    return n


_END = object()
