"""Feature connectors read from a prepared dataset's ``features.json``, and how they decode.

TensorFlow Datasets describes a dataset's element in ``features.json``: the protobuf-JSON
form of a tree of feature connectors (``FeaturesDict``, ``Sequence``, ``Image``,
``ClassLabel``, ``Text``, ``Tensor``, ``Scalar``). The records are ``tf.train.Example``
protos whose feature names are the tree's paths joined by ``/`` (``"meta/id"``), every value
flattened to a 1-D list. ``stoker.tfds._json`` rebuilds the tree from the JSON (plain
JSON, nothing is unpickled or imported by name); the classes here turn one parsed Example
back into the nested element ``tfds.as_numpy`` gives:

=================  =====================================================================
feature            element
=================  =====================================================================
``Image``          ``uint8`` array ``(height, width, channels)``, decoded from PNG/JPEG
``ClassLabel``     ``np.int64`` scalar; names from ``<feature>.labels.txt``
``Text``           ``bytes`` (UTF-8, not decoded, as ``tfds.as_numpy`` gives it)
``Tensor``         array of the stored dtype and shape; a scalar is a NumPy scalar,
                   a scalar string is ``bytes``
``Scalar``         a ``Tensor`` of shape ``()``
``FeaturesDict``   ``dict`` of its children
``Sequence``       its feature with a leading length dimension (a dict of such arrays for
                   a ``Sequence`` of a ``FeaturesDict``)
=================  =====================================================================
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from typing import Any, Final

import numpy as np

__all__ = [
    "ClassLabel",
    "FeatureConnector",
    "FeaturesDict",
    "Image",
    "Scalar",
    "Sequence",
    "Tensor",
    "Text",
]

_IMAGE_CHANNELS: Final = (1, 3, 4)


def _missing(key: str) -> KeyError:
    return KeyError(
        f"the Example has no feature {key!r}, which features.json declares; the record does "
        "not belong to this dataset or the dataset was prepared by a different version"
    )


class FeatureConnector:
    """Base of the feature connectors: a name in the tree, a shape and a dtype.

    Attributes:
        shape: The decoded shape, ``None`` for a dimension that varies.
        dtype: The decoded NumPy dtype (``object`` for bytes).
    """

    shape: tuple[int | None, ...] = ()
    dtype: np.dtype[Any] = np.dtype(object)

    def decode(self, flat: Mapping[str, np.ndarray], key: str) -> Any:
        """Decodes this feature from a parsed Example (feature path -> 1-D values).

        Args:
            flat: What ``stoker.io.parse_example`` returned for the record.
            key: This feature's path in the Example, e.g. ``"meta/id"``.

        Returns:
            The feature's value, as ``tfds.as_numpy`` gives it.
        """
        if key not in flat:
            raise _missing(key)
        return self.decode_values(flat[key], key)

    def decode_values(self, values: np.ndarray, key: str) -> Any:  # pragma: no cover
        """Decodes this leaf from its flat values; ``key`` names it in errors."""
        raise NotImplementedError

    def decode_sequence(self, values: np.ndarray, key: str) -> np.ndarray:  # pragma: no cover
        """Decodes this leaf inside a ``Sequence``: one item per step, stacked."""
        raise NotImplementedError

    def load_metadata(self, data_dir: str, file_name: str) -> None:
        """Reads what the feature stored beside the records (class names); most store none."""
        del data_dir, file_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype})"


class Tensor(FeatureConnector):
    """A tensor of a fixed dtype; at most one dimension may vary (it is inferred).

    Args:
        shape: The shape, ``None`` for a varying dimension.
        dtype: The NumPy dtype (``object`` for strings).
        encoding: ``"none"`` (values stored as a list), ``"bytes"`` or ``"zlib"`` (the
            array's raw bytes, zlib-compressed for ``"zlib"``).
    """

    def __init__(self, shape: tuple[int | None, ...], dtype: Any, encoding: str = "none") -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.encoding = encoding
        if sum(d is None for d in self.shape) > 1:
            raise ValueError(
                f"Tensor shape {self.shape}: more than one varying dimension is stored as a "
                "ragged tensor, which stoker does not read"
            )
        if encoding not in ("none", "bytes", "zlib"):
            raise ValueError(f"Tensor encoding {encoding!r} is not one of none, bytes, zlib")
        self._target = tuple(-1 if d is None else d for d in self.shape)

    def _cast(self, values: np.ndarray) -> np.ndarray:
        if self.dtype.kind == "O" or values.dtype == self.dtype:
            return values
        return values.astype(self.dtype)

    def _from_bytes(self, data: bytes) -> np.ndarray:
        if self.encoding == "zlib":
            data = zlib.decompress(data)
        return np.frombuffer(data, dtype=self.dtype).reshape(self._target)

    def decode_values(self, values: np.ndarray, key: str) -> Any:
        if self.encoding != "none":
            return self._from_bytes(values[0])
        if not self.shape:
            if values.size != 1:
                raise ValueError(f"feature {key!r}: a scalar holds {values.size} values")
            # A scalar comes out as a NumPy scalar, a scalar string as bytes (tfds.as_numpy).
            return values[0] if self.dtype.kind == "O" else self._cast(values)[0]
        try:
            return self._cast(values).reshape(self._target)
        except ValueError:
            raise ValueError(
                f"feature {key!r}: {values.size} values do not fit shape {self.shape}"
            ) from None

    def decode_sequence(self, values: np.ndarray, key: str) -> np.ndarray:
        if self.encoding != "none":
            return np.stack([self._from_bytes(v) for v in values])
        if None in self.shape:
            raise ValueError(
                f"feature {key!r}: a Sequence of Tensor{self.shape} is stored as a ragged "
                "tensor, which stoker does not read"
            )
        try:
            return self._cast(values).reshape((-1, *self._target))
        except ValueError:
            raise ValueError(
                f"feature {key!r}: {values.size} values do not fit a sequence of {self.shape}"
            ) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype.name})"


class Scalar(Tensor):
    """A ``Tensor`` of shape ``()``."""

    def __init__(self, dtype: Any, encoding: str = "none") -> None:
        super().__init__((), dtype, encoding)


class Text(Tensor):
    """A UTF-8 string, given as ``bytes`` as ``tfds.as_numpy`` does (decode it yourself)."""

    def __init__(self) -> None:
        super().__init__((), object)


class ClassLabel(Tensor):
    """An ``np.int64`` class index, with the class names when the dataset stored them.

    Attributes:
        num_classes: The number of classes.
        names: The class names, index order (``str(i)`` when the dataset stored none).
    """

    def __init__(self, num_classes: int, names: list[str] | None = None) -> None:
        super().__init__((), np.int64)
        self.num_classes = num_classes
        self._names = names

    @property
    def names(self) -> list[str]:
        """The class names in index order."""
        return self._names if self._names is not None else [str(i) for i in range(self.num_classes)]

    def int2str(self, int_value: int) -> str:
        """Returns the name of class ``int_value``."""
        if not 0 <= int(int_value) < self.num_classes:
            raise ValueError(f"class {int_value} is out of range [0, {self.num_classes})")
        return self.names[int(int_value)]

    def str2int(self, str_value: str) -> int:
        """Returns the index of the class named ``str_value``."""
        try:
            return self.names.index(str_value)
        except ValueError:
            raise ValueError(f"no class named {str_value!r}; classes: {self.names}") from None

    def load_metadata(self, data_dir: str, file_name: str) -> None:
        path = os.path.join(data_dir, f"{file_name}.labels.txt")
        try:
            with open(path, encoding="utf-8") as f:
                names = [line for line in f.read().splitlines() if line]
        except FileNotFoundError:
            return  # TFDS writes the file only when the builder gave names
        if len(names) != self.num_classes:
            raise ValueError(
                f"{path} lists {len(names)} names but num_classes is {self.num_classes}"
            )
        self._names = names

    def __repr__(self) -> str:
        return f"ClassLabel(num_classes={self.num_classes})"


class Image(FeatureConnector):
    """A PNG or JPEG image, decoded to ``uint8`` ``(height, width, channels)``.

    Args:
        shape: ``(height, width, channels)``, ``None`` where it varies; ``channels`` is what
            the decoder is asked for (1 gray, 3 RGB, 4 RGBA), as TFDS does.
        encoding_format: ``"png"`` or ``"jpeg"`` (informational: the decoder reads either).
    """

    def __init__(self, shape: tuple[int | None, ...], encoding_format: str = "png") -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(np.uint8)
        self.encoding_format = encoding_format
        if len(self.shape) != 3 or self.shape[2] not in _IMAGE_CHANNELS:
            raise ValueError(
                f"Image shape {self.shape}: stoker reads (height, width, channels) images "
                "with 1, 3 or 4 channels"
            )
        self._channels: int = self.shape[2] or 0

    def _decode_one(self, data: Any) -> np.ndarray:
        # Loaded lazily: stoker.image needs OpenCV, which plain stoker.tfds users may not have.
        from stoker.image import decode_image

        image: np.ndarray = decode_image(data, channels=self._channels)
        return image

    def decode_values(self, values: np.ndarray, key: str) -> np.ndarray:
        if values.size != 1:
            raise ValueError(f"feature {key!r}: an Image holds {values.size} encoded images")
        return self._decode_one(values[0])

    def decode_sequence(self, values: np.ndarray, key: str) -> np.ndarray:
        del key
        if not values.size:
            return np.zeros((0, *(d or 0 for d in self.shape)), np.uint8)
        return np.stack([self._decode_one(v) for v in values])

    def __repr__(self) -> str:
        return f"Image(shape={self.shape}, dtype=uint8)"


class Sequence(FeatureConnector):
    """A feature repeated along a leading dimension of ``length`` (``None``: varies).

    Args:
        feature: The repeated feature: a leaf or a ``FeaturesDict`` of leaves.
        length: The fixed length, or ``None``.
    """

    def __init__(self, feature: FeatureConnector, length: int | None = None) -> None:
        if isinstance(feature, Sequence) or (
            isinstance(feature, FeaturesDict)
            and any(isinstance(f, (Sequence, FeaturesDict)) for f in feature.values())
        ):
            raise ValueError(
                "a Sequence of Sequences is stored as a ragged tensor, which stoker does not read"
            )
        self.feature = feature
        self.length = length
        self.shape = (length, *feature.shape)
        self.dtype = feature.dtype

    def decode(self, flat: Mapping[str, np.ndarray], key: str) -> Any:
        if isinstance(self.feature, FeaturesDict):
            out = {}
            for name, child in self.feature.items():
                child_key = f"{key}/{name}"
                if child_key not in flat:
                    raise _missing(child_key)
                out[name] = child.decode_sequence(flat[child_key], child_key)
            return out
        if key not in flat:
            raise _missing(key)
        return self.feature.decode_sequence(flat[key], key)

    def load_metadata(self, data_dir: str, file_name: str) -> None:
        # TFDS hands a Sequence's file name straight to its feature.
        self.feature.load_metadata(data_dir, file_name)

    def __getitem__(self, key: str) -> FeatureConnector:
        if not isinstance(self.feature, FeaturesDict):
            raise TypeError(f"this Sequence holds a {type(self.feature).__name__}, not a dict")
        return self.feature[key]

    def __repr__(self) -> str:
        return f"Sequence({self.feature!r}, length={self.length})"


class FeaturesDict(FeatureConnector):
    """A dict of named features; the top-level feature of every dataset.

    Args:
        features: Name to feature.
    """

    def __init__(self, features: Mapping[str, FeatureConnector]) -> None:
        # TFDS orders a dict's features by name; the element's dict keeps that order.
        self._features = {name: features[name] for name in sorted(features)}

    def __getitem__(self, key: str) -> FeatureConnector:
        return self._features[key]

    def __contains__(self, key: object) -> bool:
        return key in self._features

    def __iter__(self) -> Any:
        return iter(self._features)

    def __len__(self) -> int:
        return len(self._features)

    def keys(self) -> Any:
        """The feature names, sorted."""
        return self._features.keys()

    def values(self) -> Any:
        """The features, in name order."""
        return self._features.values()

    def items(self) -> Any:
        """``(name, feature)`` pairs, in name order."""
        return self._features.items()

    def decode(self, flat: Mapping[str, np.ndarray], key: str = "") -> dict[str, Any]:
        prefix = f"{key}/" if key else ""
        return {name: f.decode(flat, prefix + name) for name, f in self._features.items()}

    def decode_example(self, flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Decodes a whole parsed Example into the element dict."""
        return self.decode(flat, "")

    def load_metadata(self, data_dir: str, file_name: str) -> None:
        # Children's files: "<parent with / as ->-<child with / as .>" (TFDS's naming).
        for name, feature in self._features.items():
            child = name.replace("/", ".")
            child_file = "-".join([*file_name.split("/"), child]) if file_name else child
            feature.load_metadata(data_dir, child_file)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._features.items())
        return f"FeaturesDict({{{inner}}})"
