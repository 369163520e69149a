"""Iterator nodes: one pass over a dataset.

``iter(dataset)`` builds a tree of iterator nodes mirroring the dataset graph; the root
is what the user holds. Every node:

* produces elements with ``__next__``;
* can be closed (``close()`` is idempotent and closes its inputs too; nodes that own
  threads or processes stop them), and works as a context manager;
* saves and restores its position: ``get_state()`` returns a small JSON-serialisable dict
  that nests its inputs' states, and ``set_state(state)`` continues with exactly the
  elements the original would have produced next. ``state_dict``/``load_state_dict`` are
  PyTorch-style aliases.

A node's state dict always carries the key ``"op"`` with the node's kind, so a state
saved from one pipeline is refused, with a message naming the stage, by a different one.
"""

from __future__ import annotations

import base64
import enum
import functools
import itertools
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from stoker.errors import CheckpointError
from stoker.options import Options

if TYPE_CHECKING:
    from stoker.dataset import Dataset

__all__ = [
    "DatasetIterator",
    "IterContext",
    "IteratorState",
    "decode_value",
    "encode_value",
    "saved",
    "snapshot",
]

State = dict[str, Any]


class IteratorState(enum.Enum):
    """Lifecycle of an iterator node."""

    #: Built, no element requested yet; workers (if any) not started.
    NOT_STARTED = 0
    #: At least one element requested; workers (if any) may be running.
    RUNNING = 1
    #: Closed: workers stopped, resources released; ``next()`` raises StopIteration.
    CLOSED = 2


class IterContext:
    """What the nodes of one iterator tree share: options and stage names."""

    def __init__(self, options: Options, root_pass: int = 0):
        self.options = options.resolved()
        self._counter = itertools.count()
        # Weak: the root holds this context, so a strong reference would be a cycle that
        # keeps a dropped iterator (and its workers) alive until the garbage collector runs.
        self._root: weakref.ref[DatasetIterator] | None = None
        self.root_pass = root_pass
        # Keyed by the dataset object itself: an id() could be reused by a new inner
        # dataset once the old one is freed, and its count would leak into the new one.
        self._passes: weakref.WeakKeyDictionary[Dataset, int] = weakref.WeakKeyDictionary()

    @property
    def root(self) -> DatasetIterator | None:
        """The iterator the user holds (the root of the tree), if it still exists."""
        return self._root() if self._root is not None else None

    @root.setter
    def root(self, node: DatasetIterator) -> None:
        self._root = weakref.ref(node)

    def take_pass(self, dataset: Dataset) -> list[int]:
        """A pass id for a new iterator of ``dataset``: ``[root pass, k]``.

        Random ops seed each pass from it. ``k`` counts the iterators of ``dataset`` made
        in this tree (``repeat`` makes one per epoch); the root pass counts ``iter()``
        calls on the root dataset. Both come from positions in the pipeline, not from
        global counters, so a restored iterator draws exactly what the original drew.
        """
        k = self._passes.get(dataset, 0)
        self._passes[dataset] = k + 1
        return [self.root_pass, k]

    def restore_pass(self, dataset: Dataset, pass_id: list[int]) -> None:
        self.root_pass = int(pass_id[0])
        self._passes[dataset] = max(self._passes.get(dataset, 0), int(pass_id[1]) + 1)

    def stage_name(self, dataset: Dataset) -> str:
        name = dataset._name or dataset._op_name
        return f"{name}[{next(self._counter)}]"


class DatasetIterator(Iterator[Any]):
    """Base class of iterator nodes.

    Subclasses set ``OP`` (the state's ``"op"`` value), implement ``__next__``,
    ``_get_state`` and ``_set_state``, and list their input nodes in ``_inputs`` so
    that ``close()`` reaches them.
    """

    OP = "iterator"

    def __init__(self, ctx: IterContext, dataset: Dataset, inputs: tuple[DatasetIterator, ...]):
        self._ctx = ctx
        self._inputs = inputs
        self.stage = ctx.stage_name(dataset)
        self.lifecycle = IteratorState.NOT_STARTED

    def __iter__(self) -> DatasetIterator:
        return self

    def __next__(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- state ---------------------------------------------------------------------------

    def get_state(self) -> State:
        """This node's position as a small JSON-serialisable dict (inputs nested)."""
        state = self._get_state()
        state["op"] = self.OP
        if self._ctx.root is self:
            # Random ops made after a restore (next epoch, next inner dataset) seed from it.
            state["root_pass"] = self._ctx.root_pass
        return state

    def set_state(self, state: State) -> None:
        """Continue from ``state``, which ``get_state()`` of the same pipeline returned."""
        if not isinstance(state, dict) or state.get("op") != self.OP:
            got = state.get("op") if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(
                f"state does not fit stage {self.stage}: it was saved from a {got!r} stage, "
                f"this one is {self.OP!r}. Restore a state into the pipeline it was saved from."
            )
        if self._ctx.root is self and "root_pass" in state:
            self._ctx.root_pass = int(state["root_pass"])
        try:
            self._set_state(state)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CheckpointError(
                f"state does not fit stage {self.stage}: {type(e).__name__}: {e}"
            ) from None

    def _get_state(self) -> State:
        raise CheckpointError(f"stage {self.stage} cannot save its position")

    def _set_state(self, state: State) -> None:
        del state
        raise CheckpointError(f"stage {self.stage} cannot restore a position")

    def state_dict(self) -> State:
        """Alias of :meth:`get_state` for trainers that checkpoint PyTorch-style objects."""
        return self.get_state()

    def load_state_dict(self, state: State) -> None:
        """Alias of :meth:`set_state`."""
        self.set_state(state)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop this node and its inputs; idempotent."""
        if self.lifecycle is IteratorState.CLOSED:
            return
        self.lifecycle = IteratorState.CLOSED
        try:
            self._close()
        finally:
            for node in self._inputs:
                node.close()
            # next() looks __next__ up on the type: switching to a subclass whose __next__
            # ends makes a closed node stop without a check on every element.
            self.__class__ = _closed_class(type(self))

    def _close(self) -> None:
        """Release what this node owns (threads, processes, files)."""

    def __enter__(self) -> DatasetIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.stage} {self.lifecycle.name}>"


# -- values inside states ------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """Encode an element-like value (arrays, scalars, nested tuples/dicts) for JSON."""
    if isinstance(value, tuple):
        if hasattr(type(value), "_fields"):
            raise CheckpointError(
                "a namedtuple inside an iterator state (e.g. a scan() state) cannot be saved "
                "as JSON; use a tuple or dict"
            )
        return {"t": [encode_value(v) for v in value]}
    if isinstance(value, dict):
        return {"d": [[k, encode_value(v)] for k, v in value.items()]}
    if isinstance(value, (bytes, np.bytes_)):
        return {"b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (bool, int, float, str)) and not isinstance(value, np.generic):
        return {"p": value}
    arr = np.asarray(value)
    if arr.dtype == object:
        return {
            "o": [encode_value(v) for v in arr.ravel().tolist()],
            "shape": list(arr.shape),
        }
    return {
        "a": base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode(),
        "dtype": arr.dtype.str,
        "shape": list(arr.shape),
        "scalar": isinstance(value, np.generic),
    }


def decode_value(obj: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if "t" in obj:
        return tuple(decode_value(v) for v in obj["t"])
    if "d" in obj:
        return {k: decode_value(v) for k, v in obj["d"]}
    if "b" in obj:
        return base64.b64decode(obj["b"])
    if "p" in obj:
        return obj["p"]
    if "o" in obj:
        out = np.empty(len(obj["o"]), dtype=object)
        out[:] = [decode_value(v) for v in obj["o"]]
        return out.reshape(obj["shape"])
    arr = np.frombuffer(base64.b64decode(obj["a"]), dtype=np.dtype(obj["dtype"]))
    arr = arr.reshape(obj["shape"]).copy()
    return arr[()] if obj.get("scalar") else arr


@functools.cache
def _closed_class(cls: type[DatasetIterator]) -> type[DatasetIterator]:
    if getattr(cls, "_is_closed_class", False):
        return cls

    def __next__(self: DatasetIterator) -> Any:
        del self
        raise StopIteration

    return type(cls.__name__, (cls,), {"__next__": __next__, "_is_closed_class": True})


class _Unsaveable:
    """Stands in for a state that could not be taken; raises only if the state is needed."""

    __slots__ = ("error",)

    def __init__(self, error: CheckpointError):
        self.error = error


def snapshot(node: DatasetIterator) -> Any:
    """``node.get_state()``, or a marker if the node cannot save (raised by :func:`saved`).

    Ops that must remember an input's earlier position (unbatch, flat_map, interleave,
    shuffle) take snapshots while iterating; a pipeline that is never checkpointed must not
    fail because its source (a generator) cannot be positioned.
    """
    try:
        return node.get_state()
    except CheckpointError as e:
        return _Unsaveable(e)


def saved(snap: Any) -> Any:
    if isinstance(snap, _Unsaveable):
        raise snap.error
    return snap
