"""The error for a TensorFlow name that ``stoker.tf`` does not serve, and where to look instead.

``stoker.tf`` serves the input-pipeline part of TensorFlow only. Anything else raises
``AttributeError`` at once (no silent stand-in that half works), naming the symbol and, when
there is one, the NumPy function that does the same job inside a ``map`` function.
"""

from __future__ import annotations

from typing import Final

__all__ = ["missing"]

_SERVED: Final = (
    "stoker serves only TensorFlow's input pipeline: tf.data, tf.image, tf.io and a few "
    "tensor helpers (see docs/migration.md)"
)

# What to use instead, for names that map functions commonly call.
_INSTEAD: Final = {
    "abs": "numpy.abs",
    "add": "numpy.add (or +)",
    "argmax": "numpy.argmax",
    "argmin": "numpy.argmin",
    "boolean_mask": "x[mask] (NumPy boolean indexing)",
    "broadcast_to": "numpy.broadcast_to",
    "ceil": "numpy.ceil",
    "convert_to_tensor": "numpy.asarray",
    "divide": "numpy.divide (or /)",
    "einsum": "numpy.einsum",
    "equal": "numpy.equal (or ==)",
    "exp": "numpy.exp",
    "eye": "numpy.eye",
    "fill": "numpy.full",
    "floor": "numpy.floor",
    "gather": "numpy.take",
    "gather_nd": "x[tuple(indices.T)] (NumPy advanced indexing)",
    "greater": "numpy.greater (or >)",
    "identity": "numpy.array (a copy) or the value itself",
    "less": "numpy.less (or <)",
    "linspace": "numpy.linspace",
    "logical_and": "numpy.logical_and",
    "logical_not": "numpy.logical_not",
    "logical_or": "numpy.logical_or",
    "math": "numpy (e.g. numpy.log, numpy.sqrt)",
    "matmul": "numpy.matmul (or @)",
    "maximum": "numpy.maximum",
    "meshgrid": "numpy.meshgrid",
    "minimum": "numpy.minimum",
    "multiply": "numpy.multiply (or *)",
    "not_equal": "numpy.not_equal (or !=)",
    "ones": "numpy.ones",
    "ones_like": "numpy.ones_like",
    "pad": "numpy.pad",
    "print": "print",
    "py_function": (
        "tf.numpy_function, or calling the function directly: stoker's map already runs "
        "Python on NumPy values (py_function's EagerTensors, with .numpy(), do not exist here)"
    ),
    "random": "the numpy.random.Generator that Dataset.random_map passes (rng=...)",
    "range": "numpy.arange",
    "rank": "numpy.ndim",
    "reduce_all": "numpy.all",
    "reduce_any": "numpy.any",
    "reduce_max": "numpy.max",
    "reduce_mean": "numpy.mean",
    "reduce_min": "numpy.min",
    "reduce_prod": "numpy.prod",
    "reduce_sum": "numpy.sum",
    "reverse": "numpy.flip",
    "round": "numpy.round (both round half to even)",
    "sign": "numpy.sign",
    "size": "numpy.size",
    "sort": "numpy.sort",
    "split": "numpy.split",
    "sqrt": "numpy.sqrt",
    "square": "numpy.square",
    "strings": "Python's str and bytes methods",
    "subtract": "numpy.subtract (or -)",
    "tile": "numpy.tile",
    "transpose": "numpy.transpose",
    "unique": "numpy.unique",
    "unstack": "list(numpy.moveaxis(x, axis, 0))",
    "where": "numpy.where",
    "zeros": "numpy.zeros",
    "zeros_like": "numpy.zeros_like",
}

# Names whose job is outside the input pipeline; no NumPy stand-in is offered.
_ELSEWHERE: Final = {
    "GradientTape": "training",
    "Variable": "model state",
    "distribute": "training",
    "function": "graph compilation (stoker runs Python functions as they are)",
    "keras": "models and training",
    "saved_model": "model export",
    "train": (
        "training (to write a tf.train.Example use stoker.io.make_example; to read one, "
        "tf.io.parse_single_example)"
    ),
}


def missing(
    module: str, name: str, served: str = _SERVED, instead: str | None = None
) -> AttributeError:
    """The ``AttributeError`` for ``module.name``, saying what stoker serves and what to use.

    Args:
        module: The module asked, e.g. ``"stoker.tf"``.
        name: The attribute asked for.
        served: What this module serves, for the message.
        instead: What to use instead; for ``stoker.tf`` itself, looked up in the table of
            NumPy equivalents when ``None``.

    Returns:
        The error to raise.
    """
    top = module == "stoker.tf"
    hint = instead or (_INSTEAD.get(name) if top else None)
    if hint is not None:
        tail = f"; use {hint} instead"
    elif top and name in _ELSEWHERE:
        tail = f"; {name} is about {_ELSEWHERE[name]}, which is not part of an input pipeline"
    elif top:
        tail = "; write that step with NumPy inside your map function"
    else:
        tail = ""
    return AttributeError(f"{module} has no {name!r}: {served}{tail}")
