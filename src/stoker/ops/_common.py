"""Pieces every op shares: calling user functions the tf.data way and naming failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext

__all__ = ["UnaryDataset", "UnaryIterator", "annotate", "call", "func_name", "make_input"]


def func_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def call(fn: Callable[..., Any], element: Any) -> Any:
    """Call ``fn`` with ``element``, unpacking a plain tuple (not a namedtuple) like tf.data."""
    if type(element) is tuple:
        return fn(*element)
    return fn(element)


def annotate(exc: BaseException, stage: str, fn: Callable[..., Any] | None, index: int) -> None:
    """Tag a user function's exception with where it happened; the traceback is kept."""
    what = f" in {func_name(fn)}()" if fn is not None else ""
    note = f"stoker: raised{what} at stage {stage}, input element {index}"
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10: no add_note; keep the note where 3.11's traceback would look
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def stop_iteration_error(stage: str, fn: Callable[..., Any]) -> RuntimeError:
    return RuntimeError(
        f"{func_name(fn)}() raised StopIteration at stage {stage}; a user function must not "
        "raise StopIteration (it would silently end the dataset)"
    )


class UnaryDataset(Dataset):
    """A dataset with one input whose cardinality it keeps unless it says otherwise."""

    def __init__(self, input_dataset: Dataset, name: str | None):
        if not isinstance(input_dataset, Dataset):
            raise TypeError(f"expected a stoker Dataset as input, got {type(input_dataset)!r}")
        super().__init__((input_dataset,), name)
        self._input = input_dataset

    def _cardinality(self) -> int:
        return self._input._cardinality()


def check_count(op: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{op}(): {name}={value!r} must be an int")
    result = int(value)
    if result < minimum:
        raise ValueError(f"{op}(): {name}={result} must be >= {minimum}")
    return result


def make_input(ctx: IterContext, dataset: Dataset) -> DatasetIterator:
    """A new iterator node of ``dataset`` in the tree of ``ctx`` (an op's input)."""
    return dataset._make_iterator(ctx)


class UnaryIterator(DatasetIterator):
    """An iterator node with one input, ``ds._input``, built when the node is.

    Sets ``_ds`` (the dataset), ``_input`` (the input node) and ``_next_input`` (its bound
    ``__next__``, what a hot loop calls). :meth:`_replace_input` swaps in a new input node
    (a new epoch, the next part), keeping the stats tree linked.
    """

    _ds: UnaryDataset

    def __init__(self, ctx: IterContext, ds: UnaryDataset):
        self._input = make_input(ctx, ds._input)
        super().__init__(ctx, ds, (self._input,))
        self._ds = ds
        self._next_input = self._input.__next__

    def _replace_input(self, node: DatasetIterator, same_dataset: bool = True) -> None:
        """Make ``node`` the input (closing the old one)."""
        old = self._input
        old.close()
        self._input = node
        self._inputs = (node,)
        self._next_input = node.__next__
        self._input_replaced(old, node, same_dataset)
