"""The tensor helpers that map functions commonly call, on NumPy arrays.

Each takes TensorFlow's arguments and gives TensorFlow's values, computed by NumPy; a result
with no dimensions is a NumPy scalar, as stoker's elements are. They exist so that an
augmentation or parsing function written for tf.data runs unchanged; anything beyond them is
NumPy's job (``stoker.tf`` raises ``AttributeError`` pointing at the NumPy function).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from stoker.tf._dtypes import as_dtype

__all__ = [
    "cast",
    "clip_by_value",
    "concat",
    "constant",
    "expand_dims",
    "numpy_function",
    "one_hot",
    "reshape",
    "shape",
    "squeeze",
    "stack",
]

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1


def _out(value: np.ndarray) -> Any:
    """0-d arrays become NumPy scalars, like stoker's elements."""
    return value[()] if value.ndim == 0 else value


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (bytes, str)):
        arr = np.empty((), dtype=object)
        arr[()] = value.encode() if isinstance(value, str) else value
        return arr
    return np.asarray(value)


def cast(x: Any, dtype: Any, name: str | None = None) -> Any:
    """``x`` converted to ``dtype``, like ``tf.cast``.

    Floats cast to integers truncate toward zero, anything cast to ``bool`` is ``x != 0``,
    as in TensorFlow; values out of the target's range are undefined in both (NumPy's
    ``astype``).

    Args:
        x: An array or value.
        dtype: The target, e.g. ``tf.float32``.
        name: Ignored (TensorFlow's op name).

    Returns:
        The converted array (a NumPy scalar for a scalar).

    Example::

        tf.cast(np.uint8([0, 255]), tf.float32) / 255.0  # [0., 1.]
    """
    del name
    target = dtype if isinstance(dtype, np.dtype) else as_dtype(dtype)
    if isinstance(x, np.ndarray):  # the common case in a map function: skip the checks
        out = x.astype(target, copy=False)
        return out if out.ndim else out[()]
    return _out(_as_array(x).astype(target, copy=False))


def reshape(tensor: Any, shape: Any, name: str | None = None) -> Any:
    """``tensor`` with a new shape (one dimension may be -1), like ``tf.reshape``.

    Example::

        tf.reshape(np.arange(6), [2, -1])  # shape (2, 3)
    """
    del name
    return _out(np.reshape(_as_array(tensor), tuple(int(d) for d in np.ravel(shape))))


def expand_dims(input: Any, axis: int, name: str | None = None) -> Any:
    """``input`` with a new dimension of size 1 at ``axis``, like ``tf.expand_dims``.

    Example::

        tf.expand_dims(image, 0)  # (1, H, W, C)
    """
    del name
    return np.expand_dims(_as_array(input), int(axis))


def squeeze(input: Any, axis: int | Sequence[int] | None = None, name: str | None = None) -> Any:
    """``input`` without its size-1 dimensions (only ``axis``, if given), like ``tf.squeeze``.

    Raises:
        ValueError: A dimension named in ``axis`` is not 1.

    Example::

        tf.squeeze(np.zeros((1, 3, 1)), axis=[0])  # shape (3, 1)
    """
    del name
    arr = _as_array(input)
    if axis is None:
        return _out(np.squeeze(arr))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -arr.ndim <= int(a) < arr.ndim or arr.shape[int(a)] != 1:
            raise ValueError(
                f"squeeze: axis {a} of an array of shape {arr.shape} is not a dimension of size 1"
            )
    return _out(np.squeeze(arr, axis=tuple(int(a) for a in axes)))


def stack(values: Sequence[Any], axis: int = 0, name: str | None = None) -> np.ndarray:
    """The arrays in ``values`` joined along a new dimension ``axis``, like ``tf.stack``.

    Example::

        tf.stack([a, b], axis=-1)
    """
    del name
    return np.stack([_as_array(v) for v in values], axis=axis)


def concat(values: Sequence[Any], axis: int, name: str | None = None) -> np.ndarray:
    """The arrays in ``values`` joined along the existing dimension ``axis``, like ``tf.concat``.

    Example::

        tf.concat([a, b], axis=0)
    """
    del name
    return np.concatenate([_as_array(v) for v in values], axis=axis)


def one_hot(
    indices: Any,
    depth: int,
    on_value: Any = None,
    off_value: Any = None,
    axis: int | None = None,
    dtype: Any = None,
    name: str | None = None,
) -> np.ndarray:
    """One-hot vectors of length ``depth`` for ``indices``, like ``tf.one_hot``.

    An index outside ``[0, depth)`` gives a vector of ``off_value`` only, as in TensorFlow.

    Args:
        indices: Integer array or scalar.
        depth: Length of each vector.
        on_value: Value at the index (default 1).
        off_value: Value elsewhere (default 0).
        axis: Where the new dimension goes (default last).
        dtype: Result dtype; default that of ``on_value``/``off_value``, else float32.
        name: Ignored.

    Example::

        tf.one_hot(label, 10)  # float32 vector of 10
    """
    del name
    if dtype is not None:
        target = as_dtype(dtype)
    elif on_value is not None:
        target = _as_array(on_value).dtype
    elif off_value is not None:
        target = _as_array(off_value).dtype
    else:
        target = np.dtype(np.float32)
    idx = _as_array(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    hot = idx[..., None] == np.arange(int(depth))
    on = np.asarray(1 if on_value is None else on_value, dtype=target)
    off = np.asarray(0 if off_value is None else off_value, dtype=target)
    out = np.where(hot, on, off).astype(target, copy=False)
    if axis is not None and axis != -1:
        out = np.moveaxis(out, -1, axis)
    return out


def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any, name: str | None = None) -> Any:
    """``t`` with values below/above the bounds set to them, like ``tf.clip_by_value``.

    The result keeps ``t``'s dtype.

    Example::

        tf.clip_by_value(image, 0.0, 1.0)
    """
    del name
    arr = _as_array(t)
    return _out(np.clip(arr, clip_value_min, clip_value_max).astype(arr.dtype, copy=False))


def _checked(value: Any, dtype: Any, index: int) -> Any:
    target = as_dtype(dtype)
    got = np.asarray(value).dtype
    if got == target or (target.kind == "O" and got.kind in "SUO"):
        return value
    raise TypeError(
        f"numpy_function: value {index} returned by the function is {got}, but Tout says "
        f"{target}; return that dtype (TensorFlow raises the same in a tf.data map)"
    )


def numpy_function(
    func: Any, inp: Sequence[Any], Tout: Any, stateful: bool = True, name: str | None = None
) -> Any:
    """``func(*inp)``, its results checked against ``Tout``, like ``tf.numpy_function``.

    TensorFlow calls ``func`` with NumPy arrays; stoker's elements are NumPy already, so
    this is the call itself. As in a tf.data ``map`` (graph mode), a result whose dtype is
    not ``Tout`` raises ``TypeError``. ``Tout`` is a dtype (one result) or a list/tuple of
    dtypes (that many results, returned as a list).

    Example::

        image = tf.numpy_function(cv2_blur, [image], tf.uint8)
    """
    del stateful, name
    result = func(*inp)
    if isinstance(Tout, (list, tuple)):
        values = result if isinstance(result, (list, tuple)) else [result]
        if len(values) != len(Tout):
            raise ValueError(
                f"numpy_function: func returned {len(values)} values but Tout lists {len(Tout)}"
            )
        return [_checked(v, t, i) for i, (v, t) in enumerate(zip(values, Tout, strict=True))]
    return _checked(result, Tout, 0)


def _infer(value: Any) -> np.ndarray:
    """TensorFlow's dtype inference: Python floats are float32, ints int32 (int64 if large)."""
    arr = np.asarray(value)
    if isinstance(value, (np.ndarray, np.generic)):
        return arr
    if arr.dtype == np.float64:
        return arr.astype(np.float32)
    if arr.dtype.kind == "i":
        if arr.size == 0 or (_INT32_MIN <= arr.min() and arr.max() <= _INT32_MAX):
            return arr.astype(np.int32)
        return arr.astype(np.int64)
    if arr.dtype.kind in "SUO":
        # Strings become bytes, as TensorFlow holds them; np.asarray's "S" dtype would drop
        # trailing NUL bytes, so rebuild as an object array.
        objects = np.asarray(value, dtype=object)
        flat = [v.encode() if isinstance(v, str) else v for v in objects.ravel().tolist()]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(objects.shape)
    return arr


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str | None = None) -> Any:
    """A NumPy array (or scalar) of ``value``, like ``tf.constant``.

    Without ``dtype``, Python floats become float32 and Python ints int32 (int64 when they
    do not fit), strings ``bytes``, as TensorFlow infers them; NumPy values keep their dtype.
    With ``shape``, a single value is repeated to fill it, else the values are reshaped.

    Example::

        tf.constant([0.5, 0.5, 0.5])  # float32
    """
    del name
    arr = _infer(value) if dtype is None else _as_array(value).astype(as_dtype(dtype))
    if shape is not None:
        target = tuple(int(d) for d in np.ravel(shape))
        if arr.size == 1:
            arr = np.full(target, arr.ravel()[0], dtype=arr.dtype)
        elif arr.size == int(np.prod(target)):
            arr = arr.reshape(target)
        else:
            raise ValueError(
                f"constant: {arr.size} values cannot fill shape {target}; give one value or "
                f"{int(np.prod(target))}"
            )
    return _out(arr)


def shape(input: Any, out_type: Any = np.int32, name: str | None = None) -> np.ndarray:
    """The shape of ``input`` as a 1-D int32 array, like ``tf.shape``.

    Example::

        h, w = tf.shape(image)[0], tf.shape(image)[1]
    """
    del name
    return np.array(np.shape(_as_array(input)), dtype=as_dtype(out_type))
