"""``tf.data`` under its TensorFlow name: ``tf.data.Dataset`` is ``stoker.Dataset``.

The classes and constants are stoker's own (not wrappers), so a pipeline built through
``stoker.tf.data`` is the same pipeline, at the same cost, as one built through ``stoker``.
Where stoker's ops differ from tf.data's, docs/tfdata.md says how.
"""

from __future__ import annotations

from typing import Any

from stoker.dataset import Dataset
from stoker.options import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Options
from stoker.sources.files import TextLineDataset, TFRecordDataset
from stoker.tf._missing import missing
from stoker.tf.data import experimental

__all__ = [
    "AUTOTUNE",
    "Dataset",
    "INFINITE_CARDINALITY",
    "Options",
    "TFRecordDataset",
    "TextLineDataset",
    "UNKNOWN_CARDINALITY",
    "experimental",
]

_SERVED = (
    "stoker.tf.data serves Dataset, TFRecordDataset, TextLineDataset, Options, AUTOTUNE, "
    "INFINITE_CARDINALITY, UNKNOWN_CARDINALITY and experimental (see docs/tfdata.md for "
    "what is not implemented yet)"
)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing(__name__, name, _SERVED)
