"""``tfds.decode``: leave a feature encoded, as ``decoders={"image": SkipDecoding()}`` does.

Fast input code often skips TFDS's image decoding and decodes (or crops while decoding)
in its own ``map``. With ``SkipDecoding`` an ``Image`` feature comes out as its encoded
``bytes`` (a ``Sequence`` of images as a 1-D ``object`` array of ``bytes``), as in TFDS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from stoker.tfds import features as features_lib

__all__ = ["SkipDecoding"]


class SkipDecoding:
    """Marks a feature to be returned encoded (``Image`` features only).

    Example::

        ds = tfds.load("cats_vs_dogs", split="train",
                       decoders={"image": tfds.decode.SkipDecoding()})
        ds = ds.map(lambda x: tf.io.decode_jpeg(x["image"], channels=3))
    """

    def __repr__(self) -> str:
        return "SkipDecoding()"


class _EncodedImage(features_lib.Image):
    """An ``Image`` whose encoded bytes are returned as they are."""

    def decode_values(self, values: np.ndarray, key: str) -> Any:
        if values.size != 1:
            raise ValueError(f"feature {key!r}: an Image holds {values.size} encoded images")
        return values[0]

    def decode_sequence(self, values: np.ndarray, key: str) -> np.ndarray:
        del key
        return values


def apply(
    features: features_lib.FeaturesDict, decoders: Mapping[str, Any], where: str = ""
) -> features_lib.FeaturesDict:
    """``features`` with the features ``decoders`` marks replaced by encoded ones."""
    children = dict(features.items())
    for name, decoder in decoders.items():
        path = f"{where}{name}"
        if name not in children:
            raise ValueError(f"decoders[{path!r}]: the dataset has no feature {path!r}")
        feature = children[name]
        inner = feature.feature if isinstance(feature, features_lib.Sequence) else feature
        if isinstance(decoder, Mapping):
            if not isinstance(inner, features_lib.FeaturesDict):
                raise TypeError(f"decoders[{path!r}] is a dict but the feature is not")
            replaced: features_lib.FeatureConnector = apply(inner, decoder, f"{path}/")
        elif isinstance(decoder, SkipDecoding):
            if type(inner) is not features_lib.Image:
                raise TypeError(
                    f"decoders[{path!r}]: SkipDecoding is supported for Image features, "
                    f"and {path!r} is a {type(inner).__name__}"
                )
            replaced = _EncodedImage(inner.shape, inner.encoding_format)
        else:
            raise TypeError(
                f"decoders[{path!r}] must be tfds.decode.SkipDecoding() or a dict of them, "
                f"got {decoder!r}"
            )
        if isinstance(feature, features_lib.Sequence):
            replaced = features_lib.Sequence(replaced, feature.length)
        children[name] = replaced
    return features_lib.FeaturesDict(children)
