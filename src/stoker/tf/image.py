"""``tf.image`` under its TensorFlow name: every function of ``stoker.image``.

A thin re-export: ``tf.image.random_hue`` is ``stoker.image.random_hue`` itself. It is
loaded on first use, so ``import stoker.tf`` does not import OpenCV; what it holds is
``stoker.image.__all__``, whatever that module offers. ``stoker.image`` needs the
``images`` extra (``pip install 'stoker[images]'``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from stoker.tf._missing import missing


def _image() -> ModuleType:
    return importlib.import_module("stoker.image")


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_image().__all__)
    if name.startswith("__"):
        raise AttributeError(name)
    module = _image()
    if name in module.__all__:
        value = getattr(module, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise missing(
        __name__,
        name,
        "stoker.tf.image serves what stoker.image has: " + ", ".join(sorted(module.__all__)),
    )


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_image().__all__))
