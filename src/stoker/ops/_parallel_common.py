"""What the parallel ops share: one iterator skeleton and a checkpointable input cursor.

:class:`ParallelIterator` is the base of every parallel stage (``map``, ``interleave`` and
``batch`` with ``num_parallel_calls``, ``prefetch``). It owns what they all do the same
way: start their background work lazily (on the first ``next()``), close on Ctrl-C,
hold that work in one *run* object with a finalizer that stops it when the iterator is
dropped, replace the run whole on ``set_state()`` (a restore builds a fresh one, as
torchdata's ``ParallelMapper.reset`` does), restore a state of the sequential op, and
report :meth:`~ParallelIterator.stage_info`. A run never references its iterator, so a
dropped iterator is freed by reference counting and its finalizer runs at once.

Every parallel stage accounts what it pulled and has not delivered to the pipeline's
RAM ledger (:mod:`stoker.autotune._ram`, ``self._ram``) and pulls no further ahead while
the ledger has no room (the one element a stage holding nothing may always take aside).

Parallel stages pull elements ahead of the consumer, so their input's *current* position
is not the one to save: a checkpoint must hold the position as of the last element the
consumer received, and elements in flight are recomputed after a restore, never stored.

:class:`InputCursor` numbers every pull (``seq``) and keeps sparse snapshots of the input
(``snapshot(input)`` before pull ``seq``). The position before any ``seq`` is then "the
last snapshot at or before it, plus ``skip`` pulls", and a restore re-pulls (and drops)
those ``skip`` elements. A snapshot is taken once the time spent pulling since the last
one reaches :data:`SNAPSHOT_WORK_RATIO` times what a snapshot costs: the overhead stays
under 5% of the pulling work, and a restore re-does at most about twenty snapshots'
worth of it. Cheap inputs are snapshotted rarely, expensive ones often.

A cursor is used from one thread at a time (whichever thread pulls); the snapshots it
keeps may be read from another under the owner's lock.
"""

from __future__ import annotations

import abc
import collections
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from stoker.autotune._ram import StageRam, ledger_for
from stoker.errors import CheckpointError
from stoker.iterator import DatasetIterator, IteratorState, IterContext, State, saved, snapshot
from stoker.stats import stats_for

if TYPE_CHECKING:
    from stoker.ops._common import UnaryDataset

__all__ = [
    "END",
    "ERROR",
    "POLL_S",
    "SNAPSHOT_WORK_RATIO",
    "VALUE",
    "InputCursor",
    "ParallelIterator",
    "Run",
    "pull_outcome",
]

#: Longest single wait before checking again (closing, dead workers, Ctrl-C). [Unit: second]
POLL_S = 0.1

#: Snapshot once pulling has cost this many times a snapshot since the last one.
SNAPSHOT_WORK_RATIO = 20.0
#: And at least this often, so the marks never span more than this many pulls.
_MAX_INTERVAL = 4096


class InputCursor:
    """Pulls from ``node``, numbering pulls and keeping snapshots for checkpoints."""

    __slots__ = ("__weakref__", "_cost", "_lock", "_marks", "_since", "_work", "node", "seq")

    def __init__(self, node: DatasetIterator):
        self.node = node
        self.seq = 0  # pulls so far that returned an element or raised (not StopIteration)
        self._marks: collections.deque[tuple[int, Any]] = collections.deque()
        self._work = 0.0  # seconds spent pulling since the last mark
        self._cost = 0.0  # seconds the last snapshot took
        self._since = 0  # pulls since the last mark
        self._lock = threading.Lock()  # guards _marks: position() may run on another thread

    def mark(self) -> None:
        """Snapshot the input now (before pull ``seq``)."""
        start = time.perf_counter()
        snap = snapshot(self.node)
        with self._lock:
            self._marks.append((self.seq, snap))
        self._cost = time.perf_counter() - start
        self._work = 0.0
        self._since = 0

    def pull(self) -> Any:
        """The next input element. Input errors count as a pull and propagate."""
        if (
            not self._marks
            or self._work >= SNAPSHOT_WORK_RATIO * self._cost
            or self._since >= _MAX_INTERVAL
        ):
            self.mark()
        start = time.perf_counter()
        try:
            x = next(self.node)
        except StopIteration:
            raise
        except Exception:
            self.seq += 1
            self._since += 1
            self._work += time.perf_counter() - start
            raise
        self._work += time.perf_counter() - start
        self.seq += 1
        self._since += 1
        return x

    def position(self, seq: int) -> tuple[Any, int]:
        """``(input state, skip)``: the input's position before pull ``seq``.

        Raises:
            CheckpointError: The input cannot save its position.
        """
        with self._lock:
            marks = list(self._marks)
        if not marks:
            if seq != self.seq:  # pragma: no cover - marks exist once anything was pulled
                raise CheckpointError("no snapshot of the input to restore from")
            return self.node.get_state(), 0
        for mark_seq, snap in reversed(marks):
            if mark_seq <= seq:
                return saved(snap), seq - mark_seq
        raise CheckpointError(  # pragma: no cover - marks are pruned only below the frontier
            f"no snapshot of the input at or before pull {seq}"
        )

    @property
    def has_marks(self) -> bool:
        return bool(self._marks)

    def forget_all(self) -> None:
        """Drop every snapshot: the caller pulls directly and saves ``node.get_state()``
        (valid while nothing pulled is undelivered)."""
        with self._lock:
            self._marks.clear()

    def forget_before(self, seq: int) -> None:
        """Drop snapshots no checkpoint at or after pull ``seq`` needs."""
        marks = self._marks
        if len(marks) > 1 and marks[1][0] <= seq:
            with self._lock:
                while len(marks) > 1 and marks[1][0] <= seq:
                    marks.popleft()

    def restore(self, state: Any, skip: int) -> None:
        """Position the input at ``state`` plus ``skip`` pulls; numbering restarts at 0."""
        self.node.set_state(state)
        for done in range(int(skip)):
            try:
                next(self.node)
            except StopIteration:
                raise CheckpointError(
                    f"the input ended after {done} of the {skip} elements the state says "
                    "were pulled; the state does not fit this pipeline"
                ) from None
            except Exception:
                pass  # an error the consumer already received before the checkpoint
        self.seq = 0
        with self._lock:
            self._marks.clear()
        self._work = 0.0
        self._since = 0


#: Kinds of outcome a background puller hands to the consumer.
VALUE, ERROR, END = 0, 1, 2


def pull_outcome(cursor: InputCursor) -> tuple[tuple[int, int, Any], bool]:
    """Pull one element on a background thread as ``((seq, kind, payload), last)``.

    An exception is delivered to the consumer at its element's place instead of killing
    the thread; ``last`` says the puller must stop (the input ended, or a
    ``KeyboardInterrupt`` came up from below).
    """
    seq = cursor.seq
    try:
        return (seq, VALUE, cursor.pull()), False
    except StopIteration:
        return (seq, END, None), True
    except Exception as e:
        return (seq, ERROR, e), False
    except BaseException as e:  # KeyboardInterrupt from below: deliver, then stop
        return (seq, ERROR, e), True


class Run(Protocol):
    """The background work of one pass of a parallel stage (threads, an executor)."""

    def close(self, wait: bool = True) -> None:
        """Stop now; idempotent. ``wait=False`` (finalizers) never blocks for long."""

    def release(self) -> None:
        """The pass ended normally: stop, keeping what the next pass may reuse."""


class ParallelIterator(DatasetIterator):
    """The skeleton of a parallel stage (see the module docstring).

    Subclasses implement :meth:`_new_run` (start the background work),
    :meth:`_next` (one element), :meth:`_get_state`, :meth:`_restore` (positions only:
    the run is already gone) and :meth:`stage_info`; :meth:`_quiesce` if a run must be
    stopped differently before a restore.
    """

    #: The sequential op whose states this stage restores too.
    SEQUENTIAL_OP = ""

    def __init__(self, ctx: IterContext, ds: UnaryDataset):
        self._input = ds._input._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))
        self.stats = stats_for(ctx.options, self.stage)
        #: This stage's account in the pipeline's RAM ledger (``Options.ram_budget``):
        #: what it pulled and has not delivered, in flight or buffered.
        self._ram = StageRam(ledger_for(ctx), self.stage)
        weakref.finalize(self, self._ram.ledger.release_all, self.stage)  # dropped: gone
        self._run: Any = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def __next__(self) -> Any:
        if self.lifecycle is not IteratorState.RUNNING:
            if self.lifecycle is IteratorState.CLOSED:
                raise StopIteration
            self._begin()
        try:
            return self._next()
        except KeyboardInterrupt:
            self.close()
            raise

    def _begin(self) -> None:
        self.lifecycle = IteratorState.RUNNING
        run = self._new_run()
        if run is not None:
            self._run = run
            # The run holds nothing of the iterator: dropping the iterator runs this.
            self._finalizer = weakref.finalize(self, run.close, False)

    @abc.abstractmethod
    def _new_run(self) -> Run | None:
        """Start this pass's background work (``None``: nothing to start)."""

    @abc.abstractmethod
    def _next(self) -> Any:
        """The next element (the run exists)."""

    def _take_run(self) -> Any:
        """Detach the run from the iterator; the caller stops it."""
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        run, self._run = self._run, None
        return run

    def _release_run(self) -> None:
        """The pass ended: release the run (workers may serve the next pass)."""
        run = self._take_run()
        if run is not None:
            run.release()

    # -- state -----------------------------------------------------------------------------

    def set_state(self, state: State) -> None:
        """Restore; also accepts a state of the sequential op (same pipeline)."""
        if isinstance(state, dict) and state.get("op") == self.SEQUENTIAL_OP:
            state = {**state, "op": self.OP}
        super().set_state(state)

    def _set_state(self, state: State) -> None:
        run = self._take_run()
        if run is not None:
            self._quiesce(run)
        self._ram.clear()  # what was pulled ahead is dropped and recomputed
        if self.lifecycle is IteratorState.RUNNING:
            self.lifecycle = IteratorState.NOT_STARTED  # the next next() builds a new run
        self._restore(state)

    def _quiesce(self, run: Any) -> None:
        """Stop ``run`` before a restore repositions the input.

        Raises:
            CheckpointError: Work of the run is still inside the input.
        """
        run.close()

    @abc.abstractmethod
    def _restore(self, state: State) -> None:
        """Reposition from ``state``; the old run is stopped."""

    def _close(self) -> None:
        run = self._take_run()
        if run is not None:
            run.close()
        self._ram.clear()

    # -- visibility ------------------------------------------------------------------------

    @abc.abstractmethod
    def stage_info(self) -> dict[str, Any]:
        """Current values, cheap, lock-free (another thread may call it at any time):
        ``parallelism`` (calls at once), ``executor`` (what runs them), ``buffered``
        (results ready, not yet delivered), ``in_flight`` (being computed) and
        ``capacity`` (the most that may be buffered or in flight), in the stage's unit
        of work (elements; batches for ``batch``)."""
