"""The tensor helpers: TensorFlow's arguments and values, on NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import stoker.tf as tf


def test_cast_truncates_toward_zero_and_bool_is_nonzero() -> None:
    out = tf.cast(np.float32([-1.7, -0.5, 0.5, 1.7]), tf.int32)
    assert out.dtype == np.int32 and out.tolist() == [-1, 0, 0, 1]
    assert tf.cast(np.float32([0.0, 0.2, -3.0]), tf.bool).tolist() == [False, True, True]
    scaled = tf.cast(np.uint8([0, 255]), tf.float32) / 255.0
    assert scaled.dtype == np.float32 and scaled.tolist() == [0.0, 1.0]
    scalar = tf.cast(3, tf.float32)
    assert isinstance(scalar, np.float32) and scalar == 3.0


def test_reshape_expand_squeeze() -> None:
    x = np.arange(6)
    assert tf.reshape(x, [2, -1]).shape == (2, 3)
    assert tf.reshape(x, tf.shape(np.zeros((3, 2)))).shape == (3, 2)
    assert tf.expand_dims(np.zeros((4, 5, 3)), 0).shape == (1, 4, 5, 3)
    assert tf.expand_dims(np.zeros((4, 5)), -1).shape == (4, 5, 1)
    y = np.zeros((1, 3, 1))
    assert tf.squeeze(y).shape == (3,)
    assert tf.squeeze(y, axis=[0]).shape == (3, 1)
    assert tf.squeeze(y, axis=-1).shape == (1, 3)
    with pytest.raises(ValueError, match=r"axis 1 .* not a dimension of size 1"):
        tf.squeeze(y, axis=1)


def test_stack_and_concat() -> None:
    a, b = np.ones((2, 3)), np.zeros((2, 3))
    assert tf.stack([a, b]).shape == (2, 2, 3)
    assert tf.stack([a, b], axis=-1).shape == (2, 3, 2)
    assert tf.concat([a, b], axis=0).shape == (4, 3)
    assert tf.concat([a, b], 1).shape == (2, 6)


def test_one_hot_like_tensorflow() -> None:
    out = tf.one_hot(np.int64([0, 2, -1, 3]), 3)
    assert out.dtype == np.float32
    assert out.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]]
    label = tf.one_hot(np.int64(1), 4, on_value=5, off_value=-1)
    assert label.dtype == np.int64 and label.tolist() == [-1, 5, -1, -1]
    assert tf.one_hot(np.int64([0, 1]), 3, axis=0).shape == (3, 2)
    assert tf.one_hot([1], 2, dtype=tf.uint8).dtype == np.uint8
    with pytest.raises(TypeError, match="integers"):
        tf.one_hot(np.float32([1.0]), 2)


def test_clip_by_value_keeps_dtype() -> None:
    x = np.float32([-0.5, 0.3, 1.5])
    out = tf.clip_by_value(x, 0.0, 1.0)
    assert out.dtype == np.float32 and out.tolist() == pytest.approx([0.0, 0.3, 1.0])
    assert tf.clip_by_value(np.uint8([3, 200]), 10, 100).tolist() == [10, 100]


def test_constant_infers_like_tensorflow() -> None:
    assert tf.constant(0.5).dtype == np.float32
    assert tf.constant([1, 2]).dtype == np.int32
    assert tf.constant(2**40).dtype == np.int64
    assert tf.constant(np.float64(0.5)).dtype == np.float64
    assert tf.constant(b"ab") == b"ab" and tf.constant("é") == "é".encode()
    strings = tf.constant(["a", b"b\x00"])
    assert strings.dtype == object and strings.tolist() == [b"a", b"b\x00"]
    assert tf.constant(0, shape=[2, 2]).tolist() == [[0, 0], [0, 0]]
    assert tf.constant([1, 2, 3, 4], shape=(2, 2), dtype=tf.uint8).dtype == np.uint8
    with pytest.raises(ValueError, match="3 values cannot fill shape"):
        tf.constant([1, 2, 3], shape=[2, 2])


def test_shape_is_int32() -> None:
    s = tf.shape(np.zeros((224, 200, 3), np.uint8))
    assert s.dtype == np.int32 and s.tolist() == [224, 200, 3]
    assert tf.shape(np.zeros(3), out_type=tf.int64).dtype == np.int64


def test_numpy_function_calls_and_checks_dtypes() -> None:
    out = tf.numpy_function(lambda x: x * 2, [np.float32([1, 2])], tf.float32)
    assert out.dtype == np.float32 and out.tolist() == [2.0, 4.0]
    a, b = tf.numpy_function(
        lambda x, y: (x + y, (x - y).astype(np.int32)),
        [np.int64(3), np.int64(1)],
        [tf.int64, tf.int32],
    )
    assert (a, b) == (4, 2) and b.dtype == np.int32
    assert tf.numpy_function(lambda: b"x", [], tf.string) == b"x"
    with pytest.raises(TypeError, match="value 0 returned by the function is int64, but Tout"):
        tf.numpy_function(lambda x: x, [np.int64([1])], tf.float32)
    with pytest.raises(ValueError, match="returned 1 values but Tout lists 2"):
        tf.numpy_function(lambda x: x, [1], [tf.int64, tf.int64])
