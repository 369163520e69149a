"""The cycle of ``interleave``: the ordering state machine its three iterators share.

tf.data's ``InterleaveDataset`` order (see :mod:`stoker.ops.interleave`): ``cycle_length``
slots visited in turn, ``block_length`` elements from each before the turn passes on, an
empty slot taking the next input element when its turn comes. The sequential iterator,
the threads' (:mod:`stoker.ops._parallel_interleave`) and Ray's
(:mod:`stoker.ray._interleave`) replay this order step by step; only where a slot's
elements come from differs. This module holds what they share, with hooks for that part:

- :class:`InterleaveCycle` (all three): the cycle's position (slots, turn, block count,
  input end), retiring an ended slot, and the checkpoint state. The state format is the
  sequential op's, one format for all three: ``input`` (the input's state before the
  oldest open slot's element, ``base`` its ordinal), ``pulled`` (ordinals that entered the
  cycle), ``slots`` (``None`` or ``{"ordinal", "state"}``, plus ``"skip"`` where the slot's
  inner position is a state plus elements delivered since), ``cycle``, ``block``, ``end``.
  A restore re-reads the input elements ``base`` to ``pulled`` (not their data).
- :class:`ReadAheadCycle` (the parallel two): *futures*, the next ``cycle_length`` input
  elements pulled ahead (each with the input's snapshot before it) so their opening
  starts before the cycle reaches them; an input error met while pulling ahead is held
  and raised when its turn comes; and the cycle loop itself.

The sequential iterator keeps its own ``__next__`` (its fast path is a few attribute
reads per element); its futures stay empty.
"""

from __future__ import annotations

import abc
import collections
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from stoker.exec._base import Failure
from stoker.iterator import DatasetIterator, State, saved, snapshot

if TYPE_CHECKING:
    from stoker.ops.interleave import InterleaveDataset

__all__ = ["ENDED", "NOT_READY", "CycleSlot", "InterleaveCycle", "ReadAheadCycle"]

#: :meth:`ReadAheadCycle._take`: the slot's inner dataset is exhausted.
ENDED: Any = object()
#: :meth:`ReadAheadCycle._take` (``deterministic=False``): nothing ready in the slot yet.
NOT_READY: Any = object()


class CycleSlot(Protocol):
    """What the cycle reads of a slot (an input element in the cycle or ahead of it)."""

    #: Position of its element in the input, from 0.
    ordinal: int
    #: The input's snapshot (:func:`~stoker.iterator.snapshot`) before it was pulled.
    before: Any


SlotT = TypeVar("SlotT", bound=CycleSlot)


class InterleaveCycle(DatasetIterator, Generic[SlotT]):
    """The cycle's position and its checkpoint state (see the module docstring).

    Subclasses call :meth:`_init_cycle` once their node is made, and implement
    :meth:`_drop`, :meth:`_clear_slots`, :meth:`_slot_state` and :meth:`_restored_slot`.
    """

    # The input node is ``self._inputs[0]`` here: subclasses' ``_input``, typed by
    # ParallelIterator's __init__ for the parallel ones, cannot also be declared here.
    _ds: InterleaveDataset
    _slots: list[SlotT | None]
    _futures: collections.deque[SlotT]

    def _init_cycle(self, ds: InterleaveDataset) -> None:
        self._ds = ds
        self._slots = [None] * ds._cycle_length
        self._futures = collections.deque()  # pulled ahead, oldest first
        self._cycle = 0  # the slot whose turn it is
        self._block = 0  # elements the slot gave in this turn
        self._end = False  # the cycle saw the input end
        self._input_end = False  # pulling futures met the end of the input
        self._input_error: tuple[BaseException, Any] | None = None  # held until its turn
        self._open = 0  # slots not None
        self._pulled = 0  # ordinals that entered the cycle
        self._next_ordinal = 0  # ordinals pulled (cycle + futures)

    def _advance_cycle(self) -> None:
        self._block = 0
        self._cycle = (self._cycle + 1) % len(self._slots)

    def _retire(self, slot: SlotT) -> None:
        """The slot at the cycle ended: drop it and empty its place (the turn stays)."""
        self._drop(slot)
        self._slots[self._cycle] = None
        self._open -= 1

    @abc.abstractmethod
    def _drop(self, slot: SlotT) -> None:
        """Release what ``slot`` holds (it left the cycle)."""

    @abc.abstractmethod
    def _clear_slots(self) -> None:
        """Before a restore: release the slots and futures of the old position."""

    @abc.abstractmethod
    def _slot_state(self, slot: SlotT) -> dict[str, Any]:
        """The state of an open slot: ``ordinal``, ``state`` (and ``skip``)."""

    @abc.abstractmethod
    def _restored_slot(
        self, ordinal: int, element: Any, before: Any, slot_state: dict[str, Any]
    ) -> SlotT:
        """The slot for input element ``ordinal`` at ``slot_state`` (a restore)."""

    def _get_state(self) -> State:
        open_slots = [s for s in self._slots if s is not None]
        if open_slots:
            first = min(open_slots, key=lambda s: s.ordinal)
            base, input_state = first.ordinal, saved(first.before)
        elif self._futures:
            base, input_state = self._pulled, saved(self._futures[0].before)
        elif self._input_error is not None:
            base, input_state = self._pulled, saved(self._input_error[1])
        else:
            base, input_state = self._pulled, self._inputs[0].get_state()
        return {
            "input": input_state,
            "base": base,
            "pulled": self._pulled,
            "slots": [None if s is None else self._slot_state(s) for s in self._slots],
            "cycle": self._cycle,
            "block": self._block,
            "end": self._end,
        }

    def _restore(self, state: State) -> None:
        slot_states = state["slots"]
        if len(slot_states) != len(self._slots):
            raise ValueError(
                f"state has {len(slot_states)} slots, cycle_length is {len(self._slots)}"
            )
        self._clear_slots()
        self._slots = [None] * len(self._slots)
        self._futures.clear()
        self._input_error = None
        self._input_end = False
        self._open = 0
        inp = self._inputs[0]
        inp.set_state(state["input"])
        base, pulled = int(state["base"]), int(state["pulled"])
        wanted = {s["ordinal"]: (i, s) for i, s in enumerate(slot_states) if s}
        for ordinal in range(base, pulled):
            before = snapshot(inp)
            element = next(inp)
            if ordinal in wanted:
                i, s = wanted[ordinal]
                self._slots[i] = self._restored_slot(ordinal, element, before, s)
        self._open = len(wanted)
        self._pulled = self._next_ordinal = pulled
        self._cycle = int(state["cycle"])
        self._block = int(state["block"])
        self._end = bool(state["end"])
        self._input_end = self._end


class ReadAheadCycle(InterleaveCycle[SlotT]):
    """The parallel interleaves' cycle: futures and the loop (see the module docstring).

    Listed before :class:`~stoker.ops._parallel_common.ParallelIterator` in a subclass's
    bases (its ``_next`` and ``_restore`` are the ones it leaves abstract; not imported
    here, so that the sequential op does not load the parallel engine). Subclasses
    implement :meth:`_new_slot`, :meth:`_read_future` and :meth:`_take`, and may hook
    :meth:`_read_ahead`, :meth:`_await_future` and :meth:`_admit`.
    """

    #: ParallelIterator: a sequential ``interleave`` state restores here too.
    SEQUENTIAL_OP = "interleave"

    if TYPE_CHECKING:

        def _release_run(self) -> None:
            """ParallelIterator's: the pass ended, release the run."""

    def _init_cycle(self, ds: InterleaveDataset) -> None:
        super()._init_cycle(ds)
        det = ds._deterministic
        #: False: :meth:`_take` may pass over a slot with nothing ready (NOT_READY).
        self._deterministic = bool(self._ctx.options.deterministic if det is None else det)
        self._skips = 0  # deterministic=False: slots passed over since the last delivery

    @abc.abstractmethod
    def _new_slot(self, ordinal: int, element: Any, before: Any) -> SlotT:
        """A slot for input element ``ordinal``, pulled after the input's ``before``."""

    @abc.abstractmethod
    def _read_future(self, slot: SlotT) -> None:
        """Start opening (and reading) a new future."""

    @abc.abstractmethod
    def _take(self, slot: SlotT) -> Any:
        """The slot's next element (waiting for it), :data:`ENDED`, or (with
        ``deterministic=False``) :data:`NOT_READY`; raises an element's error in place."""

    def _read_ahead(self) -> None:
        """Before each step of the cycle: keep the futures topped up."""
        self._top_up_futures()

    def _await_future(self, slot: SlotT) -> None:
        """``slot``, the oldest future, is about to enter the cycle: wait for it."""

    def _admit(self, slot: SlotT) -> None:
        """``slot`` left the futures for the cycle; raise its opening error here."""

    def _top_up_futures(self) -> None:
        """Pull input elements ahead (consumer thread only) and start their opening."""
        inp = self._inputs[0]
        while (
            len(self._futures) < len(self._slots)
            and not self._input_end
            and self._input_error is None
        ):
            before = snapshot(inp)
            try:
                element = next(inp)
            except StopIteration:
                self._input_end = True
                return
            except Exception as e:
                self._input_error = (e, before)
                return
            slot = self._new_slot(self._next_ordinal, element, before)
            self._next_ordinal += 1
            self._futures.append(slot)
            self._read_future(slot)

    def _next(self) -> Any:
        slots = self._slots
        while not self._end or self._open:
            self._read_ahead()
            slot = slots[self._cycle]
            if slot is not None:
                value = self._take(slot)
                if value is NOT_READY:
                    self._advance_cycle()
                    continue
                if value is ENDED:
                    self._retire(slot)
                    self._advance_cycle()
                    continue
                self._block += 1
                if self._block == self._ds._block_length:
                    self._advance_cycle()
                self.stats.add(elements=1)
                return value
            if not self._end:
                if self._enter_future():
                    continue
                self._end = True
                continue
            self._advance_cycle()
        self._release_run()
        raise StopIteration

    def _enter_future(self) -> bool:
        """Put the next future in the empty slot at the cycle; False at the input's end."""
        if not self._futures:
            if self._input_error is not None:
                failure = Failure(self._input_error[0], from_input=True)
                self._input_error = None
                failure.throw(self.stage)
            if self._input_end:
                return False
            self._top_up_futures()
            return True
        slot = self._futures[0]
        self._await_future(slot)
        self._futures.popleft()
        self._pulled = slot.ordinal + 1
        self._admit(slot)
        self._slots[self._cycle] = slot
        self._open += 1
        return True
