"""Dataset.interleave (sequential): tf.data's order for cycle_length and block_length."""

from __future__ import annotations

import pytest

import stoker as sk
import stoker.ops.interleave as interleave_module
from stoker.testing import assert_checkpoint_roundtrip

D = sk.Dataset


def reference_interleave(xs, fn, cycle_length, block_length):
    """tf.data's InterleaveDataset order, on lists: ``fn(x)`` returns a list."""
    slots = [None] * cycle_length
    inputs = iter(xs)
    out, cycle, block, end, open_ = [], 0, 0, False, 0
    while not end or open_:
        slot = slots[cycle]
        if slot is not None:
            value = next(slot, _END)
            if value is _END:
                slots[cycle], open_ = None, open_ - 1
                cycle, block = (cycle + 1) % cycle_length, 0
                continue
            out.append(value)
            block += 1
            if block == block_length:
                cycle, block = (cycle + 1) % cycle_length, 0
        elif not end:
            x = next(inputs, _END)
            if x is _END:
                end = True
            else:
                slots[cycle], open_ = iter(fn(x)), open_ + 1
        else:
            cycle, block = (cycle + 1) % cycle_length, 0
    return out


_END = object()


def ints(ds) -> list[int]:
    return [int(x) for x in ds]


def test_tf_doc_example() -> None:
    ds = D.range(1, 6).interleave(
        lambda x: D.from_tensors(x).repeat(6), cycle_length=2, block_length=4
    )
    expected = [1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 4, 4]
    expected += [5] * 6
    assert ints(ds) == expected
    assert ints(ds) == reference_interleave(range(1, 6), lambda x: [x] * 6, 2, 4)


def test_uneven_inputs_by_hand() -> None:
    # Inputs of lengths 1, 2, 3; an exhausted slot takes the next input on its next turn.
    ds = D.range(1, 4).interleave(lambda x: D.from_tensors(x).repeat(x), cycle_length=2)
    assert ints(ds) == [1, 2, 2, 3, 3, 3]


@pytest.mark.parametrize("cycle_length", [1, 2, 3, 7])
@pytest.mark.parametrize("block_length", [1, 2, 5])
def test_uneven_inputs_match_reference(cycle_length: int, block_length: int) -> None:
    lengths = [3, 0, 5, 1, 4, 2, 0, 6]
    ds = D.from_tensor_slices(lengths).interleave(
        lambda n: D.range(n).map(lambda i: n * 100 + i),
        cycle_length=cycle_length,
        block_length=block_length,
    )
    expected = reference_interleave(
        lengths, lambda n: [n * 100 + i for i in range(n)], cycle_length, block_length
    )
    assert ints(ds) == expected


def test_cycle_length_one_is_flat_map() -> None:
    ds = D.range(4).interleave(lambda x: D.range(x), cycle_length=1, block_length=3)
    assert ints(ds) == ints(D.range(4).flat_map(lambda x: D.range(x)))


@pytest.mark.parametrize("cycle_length", [None, sk.AUTOTUNE])
def test_default_cycle_length_is_the_cpu_count(monkeypatch, cycle_length) -> None:
    monkeypatch.setattr(interleave_module, "cpu_count", lambda: 3)
    ds = D.range(1, 8).interleave(lambda x: D.range(x), cycle_length=cycle_length)
    assert ints(ds) == reference_interleave(range(1, 8), range, 3, 1)


def test_block_length_default_is_one() -> None:
    a = D.range(3).interleave(lambda x: D.range(4), cycle_length=3)
    assert ints(a) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_tuple_element_is_unpacked() -> None:
    ds = D.zip(D.range(3), D.range(3)).interleave(lambda a, b: D.range(a + b), cycle_length=2)
    assert ints(ds) == reference_interleave([0, 2, 4], range, 2, 1)


def test_inner_datasets_can_be_structured() -> None:
    ds = D.range(2).interleave(lambda x: D.zip(D.range(2), D.range(2)).map(lambda a, b: (x, a)), 2)
    assert [(int(a), int(b)) for a, b in ds] == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_map_func_error_names_stage_and_input_element() -> None:
    def fn(x):
        if x == 2:
            raise LookupError("no such file")
        return D.range(1)

    with pytest.raises(LookupError) as e:
        list(D.range(4).interleave(fn, cycle_length=2, name="read"))
    assert "read[" in e.value.__notes__[0] and "input element 2" in e.value.__notes__[0]


def test_error_inside_inner_dataset_propagates() -> None:
    ds = D.range(3).interleave(lambda x: D.range(2).map(lambda y: 1 // (int(x) - 1)), 2)
    with pytest.raises(ZeroDivisionError):
        list(ds)


def test_map_func_must_return_a_dataset() -> None:
    with pytest.raises(TypeError, match=r"must return a stoker Dataset, got list"):
        list(D.range(3).interleave(lambda x: [x], cycle_length=2))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"cycle_length": 0}, ValueError),
        ({"block_length": 0}, ValueError),
        ({"cycle_length": 1.5}, TypeError),
        ({"num_parallel_calls": 0}, ValueError),
    ],
)
def test_bad_arguments(kwargs, error) -> None:
    with pytest.raises(error, match="interleave"):
        D.range(3).interleave(lambda x: D.range(x), **kwargs)
    with pytest.raises(TypeError, match="callable"):
        D.range(3).interleave(3)


def test_cardinality() -> None:
    assert D.range(4).interleave(lambda x: D.range(x), 2).cardinality() == -2
    assert D.range(0).interleave(lambda x: D.range(x), 2).cardinality() == 0


@pytest.mark.parametrize(
    "ds",
    [
        D.range(1, 6).interleave(
            lambda x: D.from_tensors(x).repeat(x), cycle_length=2, block_length=2
        ),
        D.from_tensor_slices([3, 0, 5, 1]).interleave(
            lambda n: D.range(n), cycle_length=3, block_length=2
        ),
        D.range(6).interleave(lambda x: D.range(x).filter(lambda y: y % 2 == 0), cycle_length=4),
        D.range(4).interleave(
            lambda x: D.range(x * 10, x * 10 + 5).shuffle(
                3, seed=1, reshuffle_each_iteration=False
            ),
            cycle_length=2,
        ),
        D.range(5).shuffle(3, seed=0).interleave(lambda x: D.range(x), cycle_length=2),
    ],
)
def test_checkpoint_roundtrip(ds) -> None:
    assert assert_checkpoint_roundtrip(ds) > 0


def test_checkpoint_roundtrip_reshuffled_inner_datasets_from_the_start() -> None:
    ds = D.range(4).interleave(lambda x: D.range(x * 10, x * 10 + 5).shuffle(3, seed=1), 3)
    assert_checkpoint_roundtrip(ds)
