"""``Dataset.from_generator`` and ``TensorSpec``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from stoker._structure import flatten, is_namedtuple, is_structure, map_structure
from stoker.dataset import Dataset
from stoker.errors import CheckpointError, InvalidElementError
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import func_name

__all__ = ["GeneratorDataset", "TensorSpec"]


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of one component, like ``tf.TensorSpec``.

    Args:
        shape: Dimensions; ``None`` for a dimension (or the whole shape) of any size.
        dtype: A NumPy dtype (or name); default float32 as in TensorFlow. ``str``/``bytes``
            (or ``"string"``) for strings.
        name: Optional name.
    """

    shape: Sequence[int | None] | None = None
    dtype: Any = np.float32
    name: str | None = None

    def __post_init__(self) -> None:
        dtype = self.dtype
        if isinstance(dtype, str) and dtype == "string":
            dtype = object
        elif dtype in (bytes, str):
            dtype = object
        object.__setattr__(self, "dtype", np.dtype(dtype))
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))

    def is_compatible_with(self, value: Any) -> bool:
        shape = np.shape(value)
        if self.shape is None:
            return True
        if len(shape) != len(self.shape):
            return False
        return all(d is None or d == s for d, s in zip(self.shape, shape, strict=True))


def _specs(types: Any, shapes: Any) -> Any:
    """TensorSpecs from tf.data's legacy ``output_types`` and ``output_shapes``.

    A shape is itself a tuple or list, so ``shapes`` follows ``types`` only down to the
    leaves of ``types`` (``map_structure`` would take a shape ``()`` for structure).
    """
    if isinstance(types, tuple):
        if shapes is not None and (
            not isinstance(shapes, (tuple, list)) or len(shapes) != len(types)
        ):
            raise ValueError(
                f"from_generator(): output_shapes {shapes!r} does not match the structure of "
                f"output_types {types!r}"
            )
        if shapes is None:
            shapes = [None] * len(types)
        specs = [_specs(t, s) for t, s in zip(types, shapes, strict=True)]
        return type(types)(*specs) if is_namedtuple(types) else tuple(specs)
    if isinstance(types, dict):
        if shapes is not None and (not isinstance(shapes, dict) or shapes.keys() != types.keys()):
            raise ValueError(
                f"from_generator(): output_shapes {shapes!r} does not match the keys of "
                f"output_types {types!r}"
            )
        return {k: _specs(t, None if shapes is None else shapes[k]) for k, t in types.items()}
    return TensorSpec(shapes, types)


class GeneratorDataset(Dataset):
    _op_name = "from_generator"

    def __init__(
        self,
        generator: Callable[..., Iterable[Any]],
        output_types: Any,
        output_shapes: Any,
        args: Sequence[Any] | None,
        output_signature: Any,
        name: str | None,
    ):
        super().__init__((), name)
        if not callable(generator):
            raise TypeError(
                f"from_generator(): generator must be a callable returning an iterable, got "
                f"{type(generator).__name__}; pass the generator function, not a generator object"
            )
        if output_signature is None and output_types is not None:
            output_signature = _specs(output_types, output_shapes)
        if output_signature is not None:
            for spec in flatten(output_signature):
                if not isinstance(spec, TensorSpec):
                    raise TypeError(
                        f"from_generator(): output_signature leaves must be TensorSpec, got "
                        f"{spec!r}"
                    )
        self._generator = generator
        self._args = tuple(args) if args is not None else ()
        self._signature = output_signature

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _GeneratorIterator(ctx, self)


class _GeneratorIterator(DatasetIterator):
    OP = "from_generator"

    def __init__(self, ctx: IterContext, ds: GeneratorDataset):
        super().__init__(ctx, ds, ())
        self._ds = ds
        self._it: Any = None
        self._index = 0

    def __next__(self) -> Any:
        if self._it is None:
            self._it = iter(self._ds._generator(*self._ds._args))
        value = next(self._it)
        index = self._index
        self._index += 1
        if self._ds._signature is not None:
            return self._check(value, index)
        return value

    def _check(self, value: Any, index: int) -> Any:
        sig = self._ds._signature

        def convert(spec: TensorSpec, v: Any) -> Any:
            try:
                arr = np.asarray(v, dtype=spec.dtype)
            except (TypeError, ValueError) as e:
                raise InvalidElementError(
                    f"{self.stage}: element {index} of {func_name(self._ds._generator)}() "
                    f"cannot be converted to {spec.dtype}: {e}"
                ) from None
            if not spec.is_compatible_with(arr):
                raise InvalidElementError(
                    f"{self.stage}: element {index} of {func_name(self._ds._generator)}() has "
                    f"shape {arr.shape}, which does not match the output_signature shape "
                    f"{spec.shape}"
                )
            return arr[()] if arr.ndim == 0 else arr

        if is_structure(sig) and not is_structure(value) and isinstance(value, list):
            value = tuple(value)
        try:
            return map_structure(convert, sig, value)
        except InvalidElementError as e:
            if str(e).startswith("structures differ"):
                raise InvalidElementError(
                    f"{self.stage}: element {index} of {func_name(self._ds._generator)}() does "
                    f"not match output_signature: {e}"
                ) from None
            raise

    def _get_state(self) -> State:
        raise CheckpointError(
            f"{self.stage}: from_generator() cannot save its position: a Python generator "
            "cannot be rewound or positioned. Use from_tensor_slices(), range() or a file "
            "source for checkpointable pipelines, or cache() the generator's output."
        )

    def _close(self) -> None:
        close = getattr(self._it, "close", None)
        self._it = None
        if close is not None:
            close()
