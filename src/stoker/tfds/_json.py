"""Reading ``features.json`` into the feature tree, in the current and the legacy form.

The current form (TFDS >= 4.5) is the protobuf-JSON of a ``Feature`` message: one key
naming the kind (``"image"``, ``"tensor"``, ...) beside ``"pythonClassName"``. The legacy
form is ``{"type": "<module>.<Class>", "content": ...}``. Both are plain JSON: nothing is
unpickled, and class names are matched, never imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from stoker.tfds.features import (
    ClassLabel,
    FeatureConnector,
    FeaturesDict,
    Image,
    Scalar,
    Sequence,
    Tensor,
    Text,
)

__all__ = ["from_json"]

# features.json spells dtypes as NumPy/TensorFlow names; "string" is TensorFlow's bytes.
_STRING: Final = "string"


def _dtype(name: str, where: str) -> np.dtype[Any]:
    if name == _STRING:
        return np.dtype(object)
    try:
        return np.dtype(name)
    except TypeError:
        raise ValueError(f"{where}: unknown dtype {name!r} in features.json") from None


def _shape(proto: Mapping[str, Any]) -> tuple[int | None, ...]:
    # proto3 JSON writes int64 as strings and leaves out an empty list: {} is shape ().
    dims = proto.get("dimensions", [])
    return tuple(None if int(d) < 0 else int(d) for d in dims)


def from_json(proto: Mapping[str, Any], where: str = "features.json") -> FeatureConnector:
    """Builds the feature tree from ``features.json``'s content.

    Args:
        proto: The parsed JSON of one feature (``{"pythonClassName": ..., "<kind>": ...}``).
        where: Path of the feature, for error messages.

    Returns:
        The feature connector.

    Raises:
        ValueError: A feature kind or option stoker does not read.
    """
    if "type" in proto and "content" in proto:
        return _from_legacy_json(proto, where)
    if "featuresDict" in proto:
        children = proto["featuresDict"].get("features", {})
        return FeaturesDict(
            {name: from_json(child, f"{where}/{name}") for name, child in children.items()}
        )
    if "sequence" in proto:
        seq = proto["sequence"]
        length = int(seq.get("length", -1))
        return Sequence(from_json(seq["feature"], where), None if length < 0 else length)
    if "image" in proto:
        image = proto["image"]
        dtype = image.get("dtype", "uint8")
        if dtype != "uint8":
            raise ValueError(f"{where}: Image of dtype {dtype}; stoker reads uint8 images only")
        return Image(_shape(image.get("shape", {})), image.get("encodingFormat", "png") or "png")
    if "classLabel" in proto:
        return ClassLabel(int(proto["classLabel"].get("numClasses", 0)))
    if "text" in proto:
        return Text()
    if "boundingBox" in proto:  # stored as a float32 Tensor of shape (4,): ymin, xmin, ymax, xmax
        box = proto["boundingBox"]
        return Tensor(
            _shape(box.get("shape", {"dimensions": ["4"]})),
            _dtype(box.get("dtype", "float32"), where),
        )
    if "tensor" in proto:
        tensor = proto["tensor"]
        dtype = _dtype(tensor.get("dtype", "float32"), where)
        encoding = tensor.get("encoding", "none") or "none"
        shape = _shape(tensor.get("shape", {}))
        if proto.get("pythonClassName", "").endswith(".Scalar") and not shape:
            return Scalar(dtype, encoding)
        return Tensor(shape, dtype, encoding)
    kind = proto.get("pythonClassName", "?")
    raise ValueError(
        f"{where}: feature {kind} is not one stoker reads (FeaturesDict, Sequence, Image, "
        "ClassLabel, Text, Tensor, Scalar, BBoxFeature)"
    )


# Legacy features.json (TFDS before 4.5): {"type": "<module>.<Class>", "content": ...}, where
# content is the class's own dict, or (with "proto_cls") its proto message as JSON.
_LEGACY_PROTO_KEY: Final = {
    "FeaturesDict": "featuresDict",
    "Sequence": "sequence",
    "Image": "image",
    "ClassLabel": "classLabel",
    "Text": "text",
    "Tensor": "tensor",
    "Scalar": "tensor",
    "BBoxFeature": "boundingBox",
}


def _legacy_shape(dims: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None or int(d) < 0 else int(d) for d in dims)


def _from_legacy_json(proto: Mapping[str, Any], where: str) -> FeatureConnector:
    kind = str(proto["type"])
    cls = kind.rsplit(".", 1)[-1]
    content = proto["content"]
    if isinstance(content, str):
        content = json.loads(content)
    if proto.get("proto_cls"):
        if cls not in _LEGACY_PROTO_KEY:
            raise ValueError(f"{where}: feature {kind} is not one stoker reads")
        return from_json({_LEGACY_PROTO_KEY[cls]: content, "pythonClassName": kind}, where)
    if cls == "FeaturesDict":
        return FeaturesDict(
            {name: from_json(child, f"{where}/{name}") for name, child in content.items()}
        )
    if cls == "Sequence":
        length = content.get("length")
        return Sequence(
            from_json(content["feature"], where),
            None if length is None or int(length) < 0 else int(length),
        )
    if cls == "Image":
        if content.get("dtype", "uint8") != "uint8":
            raise ValueError(f"{where}: Image of dtype {content['dtype']}; stoker reads uint8")
        return Image(_legacy_shape(content["shape"]), content.get("encoding_format") or "png")
    if cls == "ClassLabel":
        return ClassLabel(int(content["num_classes"]))
    if cls == "Text":
        if "use_encoder" in content:
            raise ValueError(f"{where}: Text with a (deprecated) encoder is not read")
        return Text()
    if cls in ("Tensor", "Scalar", "BBoxFeature"):
        shape = _legacy_shape(content.get("shape", [4] if cls == "BBoxFeature" else []))
        dtype = _dtype(content.get("dtype", "float32"), where)
        encoding = content.get("encoding", "none") or "none"
        return Scalar(dtype, encoding) if cls == "Scalar" else Tensor(shape, dtype, encoding)
    raise ValueError(f"{where}: feature {kind} is not one stoker reads")
