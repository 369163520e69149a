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

A node's state dict always carries the key ``"op"`` with the node's kind and, under
``"params"``, a compact digest of the dataset parameters that decide its elements (batch
size, range bounds, seeds…; functions are left out). A state saved from one pipeline is
refused, with a message naming the stage and what differs, by a different one.

The iterator the user holds (the root) is safe to share between threads: ``next()``,
``get_state()``, ``set_state()`` and ``close()`` on it take one lock, so every element is
delivered exactly once across the threads. Inner nodes are only called by their parent.

With ``Options.stats`` (on by default) every node counts what it delivers and the time
spent inside its ``next()``; :meth:`DatasetIterator.stats` turns that into a report (see
:mod:`stoker.stats`).
"""

from __future__ import annotations

import base64
import enum
import functools
import itertools
import threading
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from stoker import stats as _stats
from stoker.errors import CheckpointError
from stoker.options import Options
from stoker.stats import _progress

if TYPE_CHECKING:
    from stoker.dataset import Dataset
    from stoker.stats import Recorder

__all__ = [
    "DatasetIterator",
    "IterContext",
    "IteratorState",
    "Lifecycle",
    "decode_value",
    "encode_value",
    "saved",
    "snapshot",
    "state_params",
]

State = dict[str, Any]


class Lifecycle(enum.Enum):
    """Lifecycle of an iterator node (not its checkpoint, which is its *state*)."""

    #: Built, no element requested yet; workers (if any) not started.
    NOT_STARTED = 0
    #: At least one element requested; workers (if any) may be running.
    RUNNING = 1
    #: Closed: workers stopped, resources released; ``next()`` raises StopIteration.
    CLOSED = 2


#: Deprecated alias of :class:`Lifecycle`, kept while other modules move to the new name.
IteratorState = Lifecycle


class IterContext:
    """What the nodes of one iterator tree share: options and stage names."""

    def __init__(self, options: Options, root_pass: int = 0):
        self.options = options.resolved()
        #: Whether nodes count elements and time (``Options.stats``).
        self.stats = bool(self.options.stats)
        self._counter = itertools.count()
        # Weak: the root holds this context, so a strong reference would be a cycle that
        # keeps a dropped iterator (and its workers) alive until the garbage collector runs.
        self._root: weakref.ref[DatasetIterator] | None = None
        self.root_pass = root_pass
        # Keyed by the dataset object itself: an id() could be reused by a new inner
        # dataset once the old one is freed, and its count would leak into the new one.
        self._passes: weakref.WeakKeyDictionary[Dataset, int] = weakref.WeakKeyDictionary()
        #: Set by ``Dataset.iterator`` before it builds the tree: the first node made for
        #: this dataset is the root, and is made with the root's class (see ``__new__``).
        self.root_dataset: Dataset | None = None
        progress = self.options.progress
        self.progress_wanted = bool(progress) and _progress.wanted(progress)

    @property
    def root(self) -> DatasetIterator | None:
        """The iterator the user holds (the root of the tree), if it still exists."""
        return self._root() if self._root is not None else None

    @root.setter
    def root(self, node: DatasetIterator) -> None:
        self._root = weakref.ref(node)
        # The root is what user threads share: its next/get_state/set_state/close take one
        # lock. Re-entrant, so a close() from inside next() (Ctrl-C handling) works.
        if "_root_lock" not in node.__dict__:
            node._root_lock = threading.RLock()
        progress = None
        if self.progress_wanted:
            total = node._node_dataset.cardinality()
            progress = _progress.Progress(node.stage, total if total >= 0 else None)
        node._progress = progress
        rec: Any = node.recorder
        if rec.enabled:
            rec.root = True
        if not getattr(type(node), "_is_root_class", False):  # not made as the root
            node.__class__ = _root_class(type(node), rec.enabled, progress is not None)
        elif (progress is not None) != getattr(type(node), "_root_progress", False):
            node.__class__ = _root_class(type(node).__mro__[1], rec.enabled, progress is not None)

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
    that ``close()`` reaches them and the stats see them.

    ``recorder`` is the node's :class:`~stoker.stats.StageStats` (or the no-op
    :data:`~stoker.stats.NO_STATS` when stats are off); :meth:`stats` is the report.
    """

    OP = "iterator"
    _root_lock: threading.RLock
    _progress: _progress.Progress | None

    def __new__(cls, *args: Any, **kwargs: Any) -> DatasetIterator:
        # Made with its final class from the start: assigning __class__ later makes
        # CPython 3.11+ turn the instance's attributes into a plain dict, and every
        # ``self.x`` of the op's hot loop gets slower (about 0.1 us per element per stage).
        ctx = args[0] if args else kwargs.get("ctx")
        if isinstance(ctx, IterContext):
            if ctx.stats:
                cls = _counting_class(cls)
            if ctx.root_dataset is not None and len(args) > 1 and args[1] is ctx.root_dataset:
                ctx.root_dataset = None  # the first node of the root dataset is the root
                cls = _root_class(cls, ctx.stats, ctx.progress_wanted)
                node = super().__new__(cls)
                node._root_lock = threading.RLock()
                node._progress = None
                return node
        return super().__new__(cls)

    def __init__(self, ctx: IterContext, dataset: Dataset, inputs: tuple[DatasetIterator, ...]):
        self._ctx = ctx
        self._inputs = inputs
        self._node_dataset = dataset
        self.stage = ctx.stage_name(dataset)
        self.lifecycle = Lifecycle.NOT_STARTED
        if ctx.stats:
            self.recorder: Recorder = _stats.StageStats(
                self.stage, _stats.stage_label(dataset), [n.recorder for n in inputs]
            )
            self.recorder.node = weakref.ref(self)
            # next() looks __next__ up on the type, and a parent binds its input's
            # __next__ only after building it: a counting class (chosen in __new__, or
            # switched to here) counts every element without a check in the op's code.
            counting = _counting_class(type(self))
            if counting is not type(self):
                self.__class__ = counting
        else:
            self.recorder = _stats.NO_STATS

    def __iter__(self) -> DatasetIterator:
        return self

    def __next__(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- stats ---------------------------------------------------------------------------

    @property
    def stats(self) -> _stats.StatsMethod:
        """``it.stats()``: a :class:`~stoker.stats.StatsReport` of this pipeline.

        Example::

            report = it.stats()
            print(report)  # per-stage table, the bottleneck and what would help
        """
        handle = self.__dict__.get("_stats_method")
        if handle is None:
            handle = _stats.StatsMethod(weakref.ref(self), self.recorder)
            self.__dict__["_stats_method"] = handle
        return handle

    @stats.setter
    def stats(self, recorder: Recorder) -> None:
        # Parallel stages assign ``self.stats = stats_for(...)``: their counts go to this
        # node's own recorder when it has one (attribute access goes through the getter).
        if not getattr(self, "recorder", _stats.NO_STATS).enabled:
            self.recorder = recorder
        self.__dict__.pop("_stats_method", None)

    # -- state ---------------------------------------------------------------------------

    def get_state(self) -> State:
        """This node's position as a small JSON-serialisable dict (inputs nested)."""
        state = self._get_state()
        state["op"] = self.OP
        params = state_params(self._node_dataset)
        if params:
            state["params"] = params
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
        saved_params = state.get("params")
        if saved_params is not None:
            _check_params(self.stage, saved_params, state_params(self._node_dataset))
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
        if self.lifecycle is Lifecycle.CLOSED:
            return
        self.lifecycle = Lifecycle.CLOSED
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

    def _input_replaced(self, old: DatasetIterator, new: DatasetIterator, same: bool) -> None:
        """Keep the stats tree linked after an op replaced input ``old`` with ``new``.

        ``same``: ``new`` iterates the same dataset as ``old`` (repeat's next epoch), so it
        takes over ``old``'s recorders and the counts add up across epochs; otherwise
        (concatenate's second input) ``new``'s recorder joins this node's children.
        """
        mine = self.recorder
        if not mine.enabled or not new.recorder.enabled:
            return
        if same:
            _adopt_recorders(new, old)
        children = cast("list[Any]", mine.children)  # type: ignore[attr-defined]
        if new.recorder not in children:
            children.append(new.recorder)
        mine.sync_kids = None  # type: ignore[attr-defined]

    def __enter__(self) -> DatasetIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.stage} {self.lifecycle.name}>"


def _adopt_recorders(new: DatasetIterator, old: DatasetIterator) -> None:
    """Give the nodes of ``new``'s tree the recorders of ``old``'s (same dataset graph)."""
    rec: Any = old.recorder
    if not rec.enabled or not new.recorder.enabled:
        return
    new.recorder = rec
    rec.node = weakref.ref(new)
    new.__dict__.pop("_stats_method", None)
    if len(new._inputs) == len(old._inputs):
        for n, o in zip(new._inputs, old._inputs, strict=True):
            _adopt_recorders(n, o)
    rec.children = [n.recorder for n in new._inputs if n.recorder.enabled]
    rec.sync_kids = None


# -- counting and the root lock --------------------------------------------------------------

_perf = time.perf_counter
#: Set by :func:`stoker.stats.trace` while a trace runs: every call is then timed.
_tracing = False


@functools.cache
def _counting_class(cls: type[DatasetIterator]) -> type[DatasetIterator]:
    """``cls`` with a ``__next__`` that counts elements and samples the time spent inside.

    Every element is counted. The first ``stoker.stats.EXACT_CALLS`` (256) calls are timed,
    then one call in about ``stoker.stats.SAMPLE_EVERY`` (512, at random intervals, so a
    periodic pattern such as a batch boundary cannot alias with it), and while a node times
    a call its inputs time theirs, so its own time is measured, not the difference of two
    estimates. A timed call also looks at the element's size. See
    :meth:`stoker.stats.StageStats.timed_call`. The untimed path is one comparison.
    """
    if getattr(cls, "_is_counting_class", False):
        return cls
    base = cls.__next__
    counted = cls.__dict__.get("_counted_next")
    if counted is not None:
        # The op counts itself (one call level less on every element; see _counted_next).
        return type(
            cls.__name__,
            (cls,),
            {**_names(cls), "__next__": counted, "_is_counting_class": True, "_op_next": base},
        )

    def __next__(self: DatasetIterator) -> Any:
        rec: Any = self.recorder
        n = rec.elements
        if n < rec.next_sample and not _tracing:
            x = base(self)
            rec.elements = n + 1
            return x
        return rec.timed_call(base, self, n)

    return type(
        cls.__name__,
        (cls,),
        {**_names(cls), "__next__": __next__, "_is_counting_class": True, "_op_next": base},
    )


@functools.cache
def _root_class(cls: type[DatasetIterator], timed: bool, progress: bool) -> type[DatasetIterator]:
    """``cls`` whose next/get_state/set_state/close hold the root lock.

    With ``timed`` (stats on, ``cls`` a counting class), ``next()`` counts and samples
    itself around the op's own ``__next__`` (one call level, not two): the consumer's time
    blocked in ``next()`` is what ``input_bound`` reports (see
    :attr:`stoker.stats.StageStats.consumer_s`). With ``progress`` it updates the node's
    progress bar.
    """
    base_next, base_get, base_set, base_close = (
        cls.__next__,
        cls.get_state,
        cls.set_state,
        cls.close,
    )
    # The op's own __next__ under the counting wrapper; the root counts around it itself.
    # (A class that inherits the wrapper without being it keeps the wrapper's counting.)
    found = cls.__dict__.get("_op_next")
    if found is None and timed and not getattr(cls, "_is_counting_class", False):
        found = base_next
    if found is None:
        timed = False
    op_next: Any = found if found is not None else base_next

    # acquire()/release() in try/finally, not ``with``: about 80 ns less per element on
    # CPython 3.11 (``with`` calls __exit__ with three arguments through a slower path).
    def untimed_next(self: DatasetIterator) -> Any:
        lock = self._root_lock
        lock.acquire()
        try:
            if type(self) is not klass:  # closed (class switched) while this thread waited
                raise StopIteration
            if not _tracing:
                return base_next(self)
            t0 = _perf()
            try:
                return base_next(self)
            finally:
                if _stats.tracer is not None:
                    _stats.tracer.wait(self, t0, _perf())
        finally:
            lock.release()

    def __next__(self: DatasetIterator) -> Any:
        lock = self._root_lock
        lock.acquire()
        try:
            if type(self) is not klass:
                raise StopIteration
            rec: Any = self.recorder
            n = rec.elements
            if n < rec.next_sample and not _tracing:
                if rec.every_call:  # slow calls: the clock costs little beside them
                    t0 = _perf()
                    x = op_next(self)
                    rec.plain_s += _perf() - t0
                else:
                    x = op_next(self)
                rec.elements = n + 1
                return x
            return rec.timed_call(op_next, self, n)
        finally:
            lock.release()

    def progress_next(self: DatasetIterator) -> Any:
        bar = self._progress
        try:
            x = (__next__ if timed else untimed_next)(self)
        except StopIteration:
            if bar is not None:
                bar.close(self.recorder)
            raise
        if bar is not None:
            bar.tick(self.recorder)
        return x

    def get_state(self: DatasetIterator) -> State:
        with self._root_lock:
            return base_get(self)

    def set_state(self: DatasetIterator, state: State) -> None:
        with self._root_lock:
            base_set(self, state)

    def close(self: DatasetIterator) -> None:
        with self._root_lock:
            base_close(self)
            bar = self._progress
            if bar is not None:
                bar.close(self.recorder)

    klass = type(
        cls.__name__,
        (cls,),
        {
            **_names(cls),
            "__next__": progress_next if progress else __next__ if timed else untimed_next,
            "get_state": get_state,
            "set_state": set_state,
            "close": close,
            "_is_root_class": True,
            "_root_progress": progress,
        },
    )
    return klass


# -- what decides a node's elements ------------------------------------------------------------

# Dataset attributes that never decide which elements come out, or in which order with
# deterministic=True: parallelism, executors, names, options, per-process bookkeeping.
_NOT_PARAMS = frozenset(
    {
        "_name",
        "_inputs",
        "_input",
        "_op_name",
        "_num_parallel_calls",
        "_deterministic",
        "_executor",
        "_own_options",
        "_root_passes",
        "_seed_fixed",
    }
)
# Ops whose dataset object also holds run-time data: only these attributes are parameters.
# (Owned elsewhere; an op may instead set a class attribute ``_state_params``.)
_ONLY_PARAMS: dict[str, tuple[str, ...]] = {"cache": ("_filename",), "prefetch": ()}
_PARAMS_CACHE: weakref.WeakKeyDictionary[Dataset, dict[str, Any]] = weakref.WeakKeyDictionary()
_HASH_ARRAY_BYTES = 1 << 20


def state_params(dataset: Dataset) -> dict[str, Any]:
    """The parameters of ``dataset`` that decide its elements, compact and JSON-serialisable.

    Small scalars and strings appear as they are; ranges and dtypes as text; anything
    larger (tuples, arrays, long strings) as ``"#"`` and a short hash of its contents (an
    array's shape, dtype and first MiB). Functions, datasets and objects of other types are
    left out, and so is a seed the op drew itself (``seed=None``): an unseeded op draws a new
    one in every process, and its state carries the seed it used.
    """
    cached = _PARAMS_CACHE.get(dataset)
    if cached is not None:
        return cached
    names = getattr(type(dataset), "_state_params", None)
    if names is None:
        names = _ONLY_PARAMS.get(dataset._op_name)
    if names is None:
        names = [n for n in vars(dataset) if n not in _NOT_PARAMS]
    out: dict[str, Any] = {}
    for name in names:
        if name == "_seed" and not getattr(dataset, "_seed_fixed", False):
            continue
        value = _param_value(getattr(dataset, name, None))
        if value is not _SKIP:
            out[name.lstrip("_")] = value
    _PARAMS_CACHE[dataset] = out
    return out


_SKIP: Any = object()


def _param_value(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()
    if isinstance(value, int):
        return value if abs(value) < 1 << 53 else str(value)
    if isinstance(value, float):
        return value if np.isfinite(value) else repr(value)
    if isinstance(value, str) and len(value) <= 64:
        return value
    if isinstance(value, range):
        return f"range({value.start}, {value.stop}, {value.step})"
    if isinstance(value, np.dtype):
        return str(value)
    canon = _canonical(value)
    if canon is None:
        return _SKIP
    import hashlib

    return "#" + hashlib.blake2b(canon, digest_size=6).hexdigest()


def _canonical(value: Any) -> bytes | None:
    """Stable bytes for a parameter value, or None if it has no stable form."""
    from stoker.dataset import Dataset

    if value is None or isinstance(value, (bool, int, float, str)):
        return f"{type(value).__name__}:{value!r}".encode()
    if isinstance(value, (bytes, bytearray)):
        return b"bytes:" + bytes(value)
    if isinstance(value, (range, np.dtype)):
        return repr(value).encode()
    if isinstance(value, Dataset):
        return b"<dataset>"
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        head = f"array:{arr.dtype.str}:{arr.shape}:".encode()
        if arr.dtype == object:
            items = [_canonical(v) or b"?" for v in arr.ravel().tolist()[:10_000]]
            return head + b"|".join(items)
        data = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
        return head + data[:_HASH_ARRAY_BYTES].tobytes()
    if isinstance(value, (tuple, list)):
        parts = [_canonical(v) for v in value]
        if all(p is None for p in parts) and parts:
            return None
        return b"(" + b",".join(p or b"?" for p in parts) + b")"
    if isinstance(value, dict):
        pairs = sorted((repr(k), _canonical(v) or b"?") for k, v in value.items())
        return b"{" + b",".join(k.encode() + b":" + v for k, v in pairs) + b"}"
    return None


def _check_params(stage: str, saved: Any, now: dict[str, Any]) -> None:
    if not isinstance(saved, dict) or saved == now:
        return
    diffs = []
    for key in sorted(set(saved) | set(now)):
        was, new = saved.get(key, "(none)"), now.get(key, "(none)")
        if was != new:
            diffs.append(f"{key} was {was!r} when saved, is {new!r} now")
    raise CheckpointError(
        f"state does not fit stage {stage}: it was saved from a pipeline with other "
        f"parameters ({'; '.join(diffs)}). Restore a state into the pipeline it was saved "
        "from."
    )


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

    return type(
        cls.__name__, (cls,), {**_names(cls), "__next__": __next__, "_is_closed_class": True}
    )


def _names(cls: type) -> dict[str, str]:
    """Keep a derived class's module and qualified name those of ``cls`` (reprs, errors)."""
    return {"__module__": cls.__module__, "__qualname__": cls.__qualname__}


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
