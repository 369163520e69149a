"""Dataset.padded_batch, including tf.data's documented examples."""

from __future__ import annotations

import numpy as np
import pytest

import stoker as sk
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

D = sk.Dataset


def filled(dtype=np.int32) -> sk.Dataset:
    """tf.data's docstring dataset A: [1], [2, 2], [3, 3, 3], [4, 4, 4, 4]."""
    return D.range(1, 5, output_type=dtype).map(lambda x: np.full(int(x), x, dtype))


def reference_padded(elements, size, pad=0, width=None):
    """Pure-Python model for 1-D int elements."""
    out = []
    for i in range(0, len(elements), size):
        group = elements[i : i + size]
        w = width if width is not None else max(len(e) for e in group)
        out.append([list(e) + [pad] * (w - len(e)) for e in group])
    return out


def test_tf_doc_pad_to_largest() -> None:
    got = list(filled().padded_batch(2))
    assert_elements_equal(got[0], np.array([[1, 0], [2, 2]], np.int32))
    assert_elements_equal(got[1], np.array([[3, 3, 3, 0], [4, 4, 4, 4]], np.int32))


def test_tf_doc_fixed_size_and_custom_value() -> None:
    got = [b.tolist() for b in filled().padded_batch(2, padded_shapes=5)]
    assert got == [[[1, 0, 0, 0, 0], [2, 2, 0, 0, 0]], [[3, 3, 3, 0, 0], [4, 4, 4, 4, 0]]]
    got = [b.tolist() for b in filled().padded_batch(2, padded_shapes=5, padding_values=-1)]
    assert got == [
        [[1, -1, -1, -1, -1], [2, 2, -1, -1, -1]],
        [[3, 3, 3, -1, -1], [4, 4, 4, 4, -1]],
    ]


def test_tf_doc_nested_components_padded_independently() -> None:
    elements = [([1, 2, 3], [10]), ([4, 5], [11, 12])]
    ds = D.from_generator(
        lambda: iter(elements),
        output_signature=(sk.TensorSpec([None], np.int32), sk.TensorSpec([None], np.int32)),
    )
    (got,) = list(ds.padded_batch(2, padded_shapes=([4], [None]), padding_values=(-1, 100)))
    assert_elements_equal(
        got,
        (
            np.array([[1, 2, 3, -1], [4, 5, -1, -1]], np.int32),
            np.array([[10, 100], [11, 12]], np.int32),
        ),
    )


def test_tf_doc_single_value_for_several_components() -> None:
    got = list(D.zip((filled(), filled())).padded_batch(2, padding_values=-1))
    a = np.array([[1, -1], [2, 2]], np.int32)
    b = np.array([[3, 3, 3, -1], [4, 4, 4, 4]], np.int32)
    assert_elements_equal(got[0], (a, a))
    assert_elements_equal(got[1], (b, b))


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_matches_reference(size: int) -> None:
    lengths = [3, 0, 5, 1, 2, 2, 4]
    elements = [list(range(n)) for n in lengths]
    ds = D.from_tensor_slices(np.array(lengths)).map(lambda n: np.arange(n))
    got = [b.tolist() for b in ds.padded_batch(size)]
    assert got == reference_padded(elements, size)


def test_none_and_minus_one_dimensions_pad_to_the_batch_max() -> None:
    ds = D.range(1, 4).map(lambda x: np.ones((int(x), 2), np.float32))
    for shape in ([None, 2], [-1, 2], [None, None]):
        got = list(ds.padded_batch(3, padded_shapes=shape))
        assert got[0].shape == (3, 3, 2)
        assert got[0].dtype == np.float32
        assert got[0][0].tolist() == [[1, 1], [0, 0], [0, 0]]


def test_default_padding_for_strings_and_bytes() -> None:
    words = D.range(1, 3).map(lambda x: np.array(["w"] * int(x)))
    (s,) = list(words.padded_batch(2))
    assert s.tolist() == [["w", ""], ["w", "w"]]
    raw = D.range(1, 3).map(lambda x: np.array([b"r"] * int(x), dtype=object))
    (b,) = list(raw.padded_batch(2))
    assert b.tolist() == [[b"r", b""], [b"r", b"r"]]


def test_dict_components_with_per_key_padding() -> None:
    ds = D.range(1, 3).map(lambda x: {"ids": np.arange(int(x)), "mask": np.ones(int(x), bool)})
    (got,) = list(ds.padded_batch(2, padding_values={"ids": np.int64(-1), "mask": False}))
    assert_elements_equal(
        got,
        {"ids": np.array([[0, -1], [0, 1]]), "mask": np.array([[True, False], [True, True]])},
    )


def test_scalars_are_batched_like_batch() -> None:
    got = [b.tolist() for b in D.range(5).padded_batch(2)]
    assert got == [[0, 1], [2, 3], [4]]


def test_drop_remainder_and_cardinality() -> None:
    ds = filled().padded_batch(3, drop_remainder=True)
    assert [b.shape for b in ds] == [(3, 3)]
    assert ds.cardinality() == 1
    assert filled().padded_batch(3).cardinality() == 2
    assert filled().repeat().padded_batch(3).cardinality() == sk.INFINITE_CARDINALITY


def test_element_larger_than_padded_shape_names_it() -> None:
    with pytest.raises(sk.InvalidElementError) as e:
        list(filled().padded_batch(4, padded_shapes=[2]))
    msg = str(e.value)
    assert "element 2" in msg and "(3,)" in msg and "(2,)" in msg


def test_rank_mismatch_is_an_error() -> None:
    shapes = [(2,), (2, 2)]
    ds = D.from_generator(lambda: (np.zeros(s) for s in shapes)).padded_batch(2)
    with pytest.raises(sk.InvalidElementError, match=r"element 1 has a component of rank 2"):
        list(ds)


def test_padded_shapes_rank_must_match() -> None:
    with pytest.raises(sk.InvalidElementError, match="rank"):
        list(filled().padded_batch(2, padded_shapes=[4, 4]))


def test_padded_shapes_structure_must_match() -> None:
    with pytest.raises(ValueError, match="padded_shapes"):
        list(D.zip((filled(), filled())).padded_batch(2, padded_shapes=[4]))


def test_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        filled().padded_batch(0)


def test_checkpoint_roundtrip() -> None:
    assert assert_checkpoint_roundtrip(filled().padded_batch(3)) == 2
    ds = D.zip((filled(), filled())).repeat(2).padded_batch(3, padding_values=-1)
    assert assert_checkpoint_roundtrip(ds) == 3
