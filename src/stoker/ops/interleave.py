"""``Dataset.interleave`` (sequential; ``num_parallel_calls`` runs it in parallel).

The order is tf.data's ``InterleaveDataset``: ``cycle_length`` slots are visited in turn;
each gives ``block_length`` elements of its inner dataset before the next slot's turn.
An empty slot takes the next input element (and makes its inner dataset) when its turn
comes; an exhausted inner dataset empties its slot and the turn passes on.

Checkpoints store, for every open slot, the ordinal of the input element it came from and
its inner iterator's state; restoring re-reads those few input elements, not their data.
The cycle's position and state are :mod:`stoker.ops._interleave_cycle`'s, shared with
the parallel interleaves; this module keeps only the sequential loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State, snapshot
from stoker.ops._common import UnaryDataset, annotate, call, check_count, func_name
from stoker.ops._interleave_cycle import InterleaveCycle
from stoker.options import AUTOTUNE, UNKNOWN_CARDINALITY, cpu_count

__all__ = ["InterleaveDataset", "make_inner"]

#: ``"auto"`` and ``"thread"``: threads read ahead; ``"ray"``: Ray actors read.
_EXECUTORS = ("auto", "thread", "ray")


def make_inner(
    ctx: IterContext, ds: InterleaveDataset, element: Any, ordinal: int, stage: str
) -> DatasetIterator:
    """The iterator of ``map_func(element)``; errors name the stage and input element."""
    try:
        inner = call(ds._fn, element)
    except Exception as e:
        annotate(e, stage, ds._fn, ordinal)
        raise
    if not isinstance(inner, Dataset):
        raise TypeError(
            f"{stage}: {func_name(ds._fn)}() must return a stoker Dataset, got "
            f"{type(inner).__name__} for input element {ordinal}"
        )
    return inner._make_iterator(ctx)


class InterleaveDataset(UnaryDataset):
    _op_name = "interleave"

    def __init__(
        self,
        input_dataset: Dataset,
        map_func: Callable[..., Dataset],
        cycle_length: int | None,
        block_length: int | None,
        num_parallel_calls: int | None,
        deterministic: bool | None,
        name: str | None,
        executor: str = "auto",
    ):
        super().__init__(input_dataset, name)
        if executor not in _EXECUTORS:
            raise ValueError(f"interleave(): executor={executor!r} must be one of {_EXECUTORS}")
        if not callable(map_func):
            raise TypeError(f"{self._op_name}(): map_func must be callable, got {map_func!r}")
        if cycle_length is None or cycle_length == AUTOTUNE:
            cycle_length = cpu_count()
        self._cycle_length = check_count(self._op_name, "cycle_length", cycle_length, 1)
        self._block_length = check_count(
            self._op_name, "block_length", 1 if block_length is None else block_length, 1
        )
        if num_parallel_calls is not None and num_parallel_calls != AUTOTUNE:
            check_count(self._op_name, "num_parallel_calls", num_parallel_calls, 1)
        self._fn = map_func
        self._num_parallel_calls = num_parallel_calls
        self._deterministic = deterministic
        self._executor = executor

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        return 0 if n == 0 else UNKNOWN_CARDINALITY

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        if self._num_parallel_calls is not None:
            if self._executor == "ray" or (
                self._executor == "auto" and ctx.options.executor == "ray"
            ):
                # Loaded lazily: Ray is an optional extra.
                from stoker.ray._interleave import RayInterleaveIterator

                return RayInterleaveIterator(ctx, self)
            # Loaded lazily: the parallel engine is only imported when used.
            from stoker.ops._parallel_interleave import ParallelInterleaveIterator

            return ParallelInterleaveIterator(ctx, self)
        return _InterleaveIterator(ctx, self)


class _OpenInner:
    """An inner iterator open in the cycle, the ordinal of its input element and the
    input's snapshot before that element (where a checkpoint re-reads the input from)."""

    __slots__ = ("before", "it", "next", "ordinal")

    def __init__(self, ordinal: int, it: DatasetIterator, before: Any):
        self.ordinal = ordinal
        self.it = it
        self.next = it.__next__  # bound once: a record costs no lookup through next()
        self.before = before


class _InterleaveIterator(InterleaveCycle[_OpenInner]):
    OP = "interleave"

    def __init__(self, ctx: IterContext, ds: InterleaveDataset):
        self._input = ds._input._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))
        self._ctx_ = ctx
        self._init_cycle(ds)  # no futures: an input element enters the cycle at once
        self._one_slot = ds._cycle_length == 1

    def __next__(self) -> Any:
        slots = self._slots
        if self._one_slot:
            # flat_map and cycle_length=1: no turns to take, so skip the bookkeeping
            # (about a microsecond per element, which file readers feel).
            slot = slots[0]
            if slot is not None:
                try:
                    return slot.next()
                except StopIteration:
                    self._retire(slot)
                    self._advance_cycle()
        while not self._end or self._open:
            slot = slots[self._cycle]
            if slot is not None:
                try:
                    x = slot.next()
                except StopIteration:
                    self._retire(slot)
                    self._advance_cycle()
                    continue
                self._block += 1
                if self._block == self._ds._block_length:
                    self._advance_cycle()
                return x
            if not self._end:
                before = snapshot(self._input)
                try:
                    element = next(self._input)
                except StopIteration:
                    self._end = True
                    continue
                ordinal = self._pulled
                self._pulled += 1
                it = make_inner(self._ctx_, self._ds, element, ordinal, self.stage)
                slots[self._cycle] = _OpenInner(ordinal, it, before)
                self._open += 1
            else:
                self._advance_cycle()
        raise StopIteration

    # -- the cycle's hooks (stoker.ops._interleave_cycle) ---------------------------------

    def _drop(self, slot: _OpenInner) -> None:
        slot.it.close()

    def _clear_slots(self) -> None:
        self._close()

    def _slot_state(self, slot: _OpenInner) -> dict[str, Any]:
        return {"ordinal": slot.ordinal, "state": slot.it.get_state()}

    def _restored_slot(
        self, ordinal: int, element: Any, before: Any, slot_state: dict[str, Any]
    ) -> _OpenInner:
        it = make_inner(self._ctx_, self._ds, element, ordinal, self.stage)
        it.set_state(slot_state["state"])
        return _OpenInner(ordinal, it, before)

    def _set_state(self, state: State) -> None:
        self._restore(state)

    def _close(self) -> None:
        for s in self._slots:
            if s is not None:
                s.it.close()
