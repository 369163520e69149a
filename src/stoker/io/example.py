"""``tf.train.Example`` protos: encode a dict of values, decode one into NumPy arrays.

An Example maps feature names to one of three lists: ``Int64List``, ``FloatList`` (float32)
or ``BytesList``. The message classes are built at import time from a descriptor written
here, with the field numbers of TensorFlow's ``feature.proto`` and ``example.proto`` and
the same package name, so the bytes on the wire are the same as TensorFlow's. They live in
a private ``DescriptorPool``, so importing TensorFlow in the same process cannot clash.

Decoding maps int64 to ``np.int64``, float to ``np.float32`` and bytes to a 1-D ``object``
array of ``bytes`` (NumPy has no variable-length bytes dtype; this is what
``as_numpy_iterator`` gives for ``tf.string`` too). A scalar bytes feature
(``FixedLenFeature((), "bytes")``) is a plain ``bytes`` object, as TensorFlow's
``as_numpy_iterator`` gives: ``np.frombuffer(features["image"], np.uint8)`` reads the
payload, and ``batch()`` stacks such features into a 1-D ``object`` array of ``bytes``.

``parse_example`` also takes a batch of records (a 1-D array or list of serialized
protos, e.g. after ``batch()``), like ``tf.io.parse_example`` on a vector: every
``FixedLenFeature`` then gains a leading batch dimension.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import numpy as np

# protobuf ships no type hints (types-protobuf would add them); this module uses Any.
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message,
    message_factory,
)

from stoker.errors import DataLossError

__all__ = ["FixedLenFeature", "VarLenFeature", "make_example", "parse_example"]

_INT64: Final = "int64"
_FLOAT32: Final = "float32"
_BYTES: Final = "bytes"
# WhichOneof("kind") -> our kind name.
_KIND_OF_LIST: Final = {"int64_list": _INT64, "float_list": _FLOAT32, "bytes_list": _BYTES}
_NUMPY_DTYPE: Final[dict[str, np.dtype[Any]]] = {
    _INT64: np.dtype(np.int64),
    _FLOAT32: np.dtype(np.float32),
}
_INT64_MAX: Final = 2**63 - 1


def _build_example_class() -> Any:
    """Returns the ``tensorflow.Example`` message class, built in a private pool."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="stoker/tensorflow_example.proto", package="tensorflow", syntax="proto3"
    )

    def add(msg: Any, name: str, number: int, kind: int, type_name: str = "", **kw: Any) -> Any:
        f = msg.field.add(name=name, number=number, type=kind, **kw)
        if type_name:
            f.type_name = type_name
        return f

    repeated = field.LABEL_REPEATED
    optional = field.LABEL_OPTIONAL
    # feature.proto: message BytesList { repeated bytes value = 1; } and so on.
    add(proto.message_type.add(name="BytesList"), "value", 1, field.TYPE_BYTES, label=repeated)
    floats = add(proto.message_type.add(name="FloatList"), "value", 1, field.TYPE_FLOAT)
    ints = add(proto.message_type.add(name="Int64List"), "value", 1, field.TYPE_INT64)
    for f in (floats, ints):
        f.label = repeated
        f.options.packed = True
    # message Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
    #                                Int64List int64_list = 3; } }
    feature = proto.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, type_name) in enumerate(
        [("bytes_list", "BytesList"), ("float_list", "FloatList"), ("int64_list", "Int64List")],
        start=1,
    ):
        add(
            feature,
            name,
            number,
            field.TYPE_MESSAGE,
            f".tensorflow.{type_name}",
            label=optional,
            oneof_index=0,
        )
    # message Features { map<string, Feature> feature = 1; }
    features = proto.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    add(entry, "key", 1, field.TYPE_STRING, label=optional)
    add(entry, "value", 2, field.TYPE_MESSAGE, ".tensorflow.Feature", label=optional)
    add(
        features,
        "feature",
        1,
        field.TYPE_MESSAGE,
        ".tensorflow.Features.FeatureEntry",
        label=repeated,
    )
    # example.proto: message Example { Features features = 1; }
    example = proto.message_type.add(name="Example")
    add(example, "features", 1, field.TYPE_MESSAGE, ".tensorflow.Features", label=optional)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


_Example: Final = _build_example_class()


def _kind_of_dtype(dtype: Any) -> str:
    """Maps a spec dtype to "int64", "float32" or "bytes"; rejects the rest."""
    if isinstance(dtype, str) and dtype in ("string", "bytes"):
        return _BYTES
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        np_dtype = None
    if np_dtype == np.int64:
        return _INT64
    if np_dtype == np.float32:
        return _FLOAT32
    if np_dtype is not None and np_dtype.kind in "OS":
        return _BYTES
    raise ValueError(
        f"dtype={dtype!r} is not supported; an Example holds only int64, float32 and bytes: "
        'use "int64", "float32" or "string" (also np.int64, np.float32, object)'
    )


@dataclass(frozen=True)
class FixedLenFeature:
    """A feature with a fixed number of values, returned reshaped to ``shape``.

    Args:
        shape: The array shape, e.g. ``()`` for a scalar or ``(3,)``; the Example must hold
            exactly ``prod(shape)`` values.
        dtype: ``"int64"``, ``"float32"`` or ``"string"``/``"bytes"`` (or the NumPy dtypes
            ``np.int64``, ``np.float32``, ``object``).
        default_value: Used when the Example lacks the feature: either ``prod(shape)``
            values or a single value, which is repeated. ``None`` makes the feature required.
    """

    shape: Sequence[int] | int
    dtype: Any
    default_value: Any = None

    def __post_init__(self) -> None:
        _kind_of_dtype(self.dtype)
        shape = (self.shape,) if isinstance(self.shape, int) else tuple(self.shape)
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape):
            raise ValueError(f"shape={self.shape!r} must be a tuple of ints >= 0")
        object.__setattr__(self, "shape", shape)


@dataclass(frozen=True)
class VarLenFeature:
    """A feature with any number of values, returned as a 1-D array.

    Args:
        dtype: ``"int64"``, ``"float32"`` or ``"string"``/``"bytes"`` (or the NumPy dtypes
            ``np.int64``, ``np.float32``, ``object``).
    """

    dtype: Any

    def __post_init__(self) -> None:
        _kind_of_dtype(self.dtype)


# -- encoding ------------------------------------------------------------------------------


def _to_bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview, np.bytes_)):
        return bytes(value)
    raise TypeError(
        f"feature {name!r}: cannot mix {type(value).__name__} into a bytes list; "
        "a feature holds only ints, only floats, or only bytes/str"
    )


def _classify(value: Any, name: str) -> tuple[str, list[Any]]:
    """Returns (kind, flat list of values) for one feature value."""
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value).ravel()
        kind = arr.dtype.kind
        if kind in "iub":
            if kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
                raise ValueError(f"feature {name!r}: value {int(arr.max())} does not fit int64")
            return _INT64, arr.astype(np.int64).tolist()
        if kind == "f":
            return _FLOAT32, arr.astype(np.float32).tolist()
        if kind in "SUO":
            return _BYTES, [_to_bytes(v, name) for v in arr.tolist()]
        raise TypeError(
            f"feature {name!r}: arrays of dtype {arr.dtype} cannot go in an Example; "
            "use an integer, float or bytes array"
        )
    if isinstance(value, (bool, int)):
        return _INT64, [int(value)]  # protobuf refuses bool for an int64 field
    if isinstance(value, float):
        return _FLOAT32, [value]
    if isinstance(value, (bytes, str, bytearray, memoryview)):
        return _BYTES, [_to_bytes(value, name)]
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(
                f"feature {name!r}: cannot tell the type of an empty list; pass an empty "
                "NumPy array with a dtype instead, e.g. np.array([], np.int64)"
            )
        if all(isinstance(v, (bool, int, np.integer, np.bool_)) for v in value):
            return _INT64, [int(v) for v in value]
        if all(isinstance(v, (bool, int, float, np.integer, np.bool_, np.floating)) for v in value):
            return _FLOAT32, [float(v) for v in value]
        return _BYTES, [_to_bytes(v, name) for v in value]
    raise TypeError(
        f"feature {name!r}: cannot put a {type(value).__name__} in an Example; use an int, "
        "float, bytes or str, a list of them, or a NumPy array"
    )


def make_example(features: Mapping[str, Any]) -> bytes:
    """Encodes a serialized ``tf.train.Example``.

    Args:
        features: Feature name to value. ints, lists of ints and integer/bool arrays become
            an ``Int64List``; floats and float arrays a ``FloatList`` (stored as float32);
            bytes, str (UTF-8), lists of them and bytes/str/object arrays a ``BytesList``.
            Arrays are flattened. An empty list is rejected (its type is unknown); pass an
            empty array with a dtype.

    Returns:
        The serialized proto (deterministic: features sorted by name).

    Raises:
        TypeError: A value of an unsupported type.
        ValueError: An empty list, or an unsigned value beyond int64.

    Example::

        record = make_example({"label": 3, "image": jpeg_bytes, "bbox": np.zeros(4)})
    """
    example = _Example()
    feature_map = example.features.feature
    example.features.SetInParent()
    for name, value in features.items():
        if not isinstance(name, str):
            raise TypeError(f"feature names must be str, got {name!r}")
        kind, values = _classify(value, name)
        feature = feature_map[name]
        if kind == _INT64:
            target = feature.int64_list
        elif kind == _FLOAT32:
            target = feature.float_list
        else:
            target = feature.bytes_list
        target.SetInParent()  # an empty list still records its kind
        target.value.extend(values)
    serialized: bytes = example.SerializeToString(deterministic=True)
    return serialized


# -- decoding ------------------------------------------------------------------------------


def _decode(feature: Any, kind: str | None) -> np.ndarray:
    """Returns the values of one Feature; ``kind`` None means whatever kind it holds."""
    if kind == _BYTES:
        values = feature.bytes_list.value
        arr = np.empty(len(values), dtype=object)
        arr[:] = list(values)
        return arr
    if kind == _INT64:
        values = feature.int64_list.value
    else:
        values = feature.float_list.value
        kind = _FLOAT32
    return np.fromiter(values, dtype=_NUMPY_DTYPE[kind], count=len(values))


def _values(feature: Any, name: str, want: str) -> np.ndarray:
    held = _KIND_OF_LIST.get(feature.WhichOneof("kind") or "", want)
    if held != want:
        raise ValueError(
            f"feature {name!r} holds {held} values but its spec asks for {want}; "
            f"fix the spec's dtype to {held!r}"
        )
    return _decode(feature, want)


def _default(spec: FixedLenFeature, name: str, kind: str) -> np.ndarray:
    if spec.default_value is None:
        raise ValueError(
            f"feature {name!r} is missing from the Example and its FixedLenFeature has no "
            "default_value; give it a default_value or use VarLenFeature"
        )
    shape = cast("tuple[int, ...]", spec.shape)  # a tuple since __post_init__
    if kind == _BYTES:
        flat = np.asarray(spec.default_value, dtype=object).ravel()
        value = np.empty(flat.size, dtype=object)
        value[:] = [_to_bytes(v, name) for v in flat.tolist()]
    else:
        value = np.asarray(spec.default_value, dtype=_NUMPY_DTYPE[kind]).ravel()
    size = math.prod(shape)
    if value.size == size:
        return value.reshape(shape)
    if value.size == 1:
        return np.full(shape, value[0], dtype=value.dtype)
    raise ValueError(
        f"feature {name!r}: default_value has {value.size} values but shape {shape} needs "
        f"{size} (or a single value to repeat)"
    )


def parse_example(
    serialized: Any,
    features: Mapping[str, FixedLenFeature | VarLenFeature] | None = None,
) -> dict[str, Any]:
    """Decodes a serialized ``tf.train.Example`` (or a batch of them) into NumPy values.

    Args:
        serialized: The proto bytes, e.g. one record of a TFRecord file; or a batch of
            records: a 1-D array (``batch()`` of records gives an ``object`` array of
            ``bytes``), list or tuple of them.
        features: Optional spec, feature name to ``FixedLenFeature`` or ``VarLenFeature``;
            only those features are returned. Without it every feature is returned as a
            1-D array of the kind it holds (a feature with no list set gives an empty
            float32 array). A batch needs a spec of ``FixedLenFeature`` only.

    Returns:
        Feature name to value: an array of ``np.int64``, ``np.float32`` or ``object`` (of
        ``bytes``), or ``bytes`` for a scalar bytes feature. For a batch of ``n`` records,
        each feature has shape ``(n, *shape)`` (scalar bytes: a 1-D ``object`` array).

    Raises:
        stoker.errors.DataLossError: A record is not a valid Example proto (for a batch,
            the message names the record's index in it).
        ValueError: A required feature is missing, has the wrong number of values for its
            shape, or holds a different type than its spec; a batch without a spec, or
            with a ``VarLenFeature``.
        TypeError: ``serialized`` is neither bytes nor a batch of bytes.

    Example::

        spec = {"label": FixedLenFeature((), "int64"), "tokens": VarLenFeature("int64")}
        arrays = parse_example(record, spec)
        image = np.frombuffer(parse_example(record, {"jpeg": FixedLenFeature((), "bytes")})
                              ["jpeg"], np.uint8)
    """
    if isinstance(serialized, (bytes, bytearray, memoryview)):
        return _parse_one(serialized, features, "")
    if isinstance(serialized, np.ndarray) and serialized.ndim == 0:
        return _parse_one(_record_bytes(serialized.item(), ""), features, "")
    if isinstance(serialized, (np.ndarray, list, tuple)):
        return _parse_batch(serialized, features)
    raise TypeError(
        f"parse_example(): serialized must be the bytes of a tf.train.Example or a batch "
        f"(1-D array or list) of them, got {type(serialized).__name__}"
    )


def _record_bytes(record: Any, where: str) -> bytes | bytearray | memoryview:
    if isinstance(record, (bytes, bytearray, memoryview)):
        return record
    raise TypeError(
        f"parse_example(): record{where} is a {type(record).__name__}, not the bytes of a "
        "tf.train.Example"
    )


def _parse_batch(
    records: Any, features: Mapping[str, FixedLenFeature | VarLenFeature] | None
) -> dict[str, Any]:
    if isinstance(records, np.ndarray) and records.ndim != 1:
        raise ValueError(
            f"parse_example(): got an array of records of shape {records.shape}; it parses "
            "one record (bytes) or a 1-D batch of them"
        )
    n = len(records)
    if features is None:
        raise ValueError(
            f"parse_example(): got a batch of {n} records without a features spec; a batch "
            "needs one (each feature is stacked to its FixedLenFeature shape), or parse "
            "each record before batch()"
        )
    for name, spec in features.items():
        if isinstance(spec, VarLenFeature):
            raise ValueError(
                f"parse_example(): got a batch of {n} records and features[{name!r}] is a "
                "VarLenFeature; its values differ in length per record (tf.data gives a "
                "SparseTensor, which NumPy has no type for). Parse each record before "
                "batch() and use padded_batch(), or use a FixedLenFeature"
            )
    rows = [
        _parse_one(_record_bytes(r, f" {i} of the batch"), features, f" {i} of the batch")
        for i, r in enumerate(records.tolist() if isinstance(records, np.ndarray) else records)
    ]
    out: dict[str, Any] = {}
    for name, spec in features.items():
        kind = _kind_of_dtype(spec.dtype)
        shape = cast("tuple[int, ...]", getattr(spec, "shape", ()))  # all FixedLenFeature
        if kind == _BYTES:
            arr = np.empty((n, *shape), dtype=object)
            for i, row in enumerate(rows):
                arr[i] = row[name]
            out[name] = arr
        elif rows:
            out[name] = np.stack([row[name] for row in rows])
        else:
            out[name] = np.empty((0, *shape), dtype=_NUMPY_DTYPE[kind])
    return out


def _parse_one(
    serialized: bytes | bytearray | memoryview,
    features: Mapping[str, FixedLenFeature | VarLenFeature] | None,
    where: str,
) -> dict[str, Any]:
    data = serialized if isinstance(serialized, bytes) else bytes(serialized)
    try:
        example = _Example.FromString(data)
    except message.DecodeError as exc:
        raise DataLossError(
            f"cannot parse a tf.train.Example from {len(data)} bytes "
            f"({f'record{where}: ' if where else ''}{exc}); the record is corrupt or is "
            "not an Example"
        ) from None
    feature_map = example.features.feature
    if features is None:
        return {
            name: _decode(
                feature_map[name], _KIND_OF_LIST.get(feature_map[name].WhichOneof("kind") or "")
            )
            for name in sorted(feature_map)
        }
    out: dict[str, Any] = {}
    for name, spec in features.items():
        if not isinstance(spec, (FixedLenFeature, VarLenFeature)):
            raise TypeError(
                f"features[{name!r}] must be a FixedLenFeature or VarLenFeature, "
                f"got {type(spec).__name__}"
            )
        kind = _kind_of_dtype(spec.dtype)
        present = name in feature_map
        if isinstance(spec, VarLenFeature):
            out[name] = _values(feature_map[name], name, kind) if present else _empty(kind)
            continue
        shape = cast("tuple[int, ...]", spec.shape)  # a tuple since __post_init__
        if not present:
            values = _default(spec, name, kind)
        else:
            values = _values(feature_map[name], name, kind)
            if values.size != math.prod(shape):
                raise ValueError(
                    f"feature {name!r} has {values.size} values but FixedLenFeature shape "
                    f"{shape} needs {math.prod(shape)}; fix the shape or use VarLenFeature"
                )
            values = values.reshape(shape)
        # A scalar bytes feature is the bytes themselves: a 0-d object array would give the
        # bytes of a pointer to np.frombuffer().
        out[name] = values.item() if kind == _BYTES and not shape else values
    return out


def _empty(kind: str) -> np.ndarray:
    return np.empty(0, dtype=object if kind == _BYTES else _NUMPY_DTYPE[kind])
