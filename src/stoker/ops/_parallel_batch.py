"""``batch(num_parallel_calls=...)``: stack large batches on the thread pool.

Stacking copies every element into the batch array; NumPy releases the GIL for large
copies, so several batches can be stacked at once while the consumer works. The
consumer's thread pulls the elements (the input is only touched there) and up to
``num_parallel_calls`` batches are stacked concurrently, delivered in order (with
``deterministic=False``, as they finish).

Stacking small elements costs less than a hand-off to a thread: once the measured cost of
a stack is below :data:`_INLINE_BELOW_S`, batches are stacked inline (``it.inline``).

The state is the input's position before the first batch not yet delivered
(:class:`~stoker.ops._parallel_common.InputCursor`) and the count of elements batched
before it; a sequential ``batch`` state restores here too.
"""

from __future__ import annotations

import collections
import itertools
import weakref
from collections.abc import Callable
from typing import Any

from stoker._structure import stack
from stoker.exec._base import Failure
from stoker.exec.threads import ThreadExecutor
from stoker.iterator import DatasetIterator, IteratorState, IterContext, State
from stoker.ops._parallel_common import InputCursor
from stoker.ops.batch import BatchDataset
from stoker.options import AUTOTUNE
from stoker.stats import stats_for

__all__ = ["ParallelBatchIterator"]

_POLL_S = 0.1
#: Stacks cheaper than this run inline: a thread hand-off costs about as much.
_INLINE_BELOW_S = 50e-6
_MEASURE = 4  # batches stacked on threads before the inline decision


class _StackSpec:
    def __init__(self, stage: str):
        self.stage = stage

    def element_fn(self, pass_id: list[int]) -> Callable[[int, Any], Any]:
        del pass_id
        stage = self.stage
        return lambda start, elements: stack(elements, stage, start)


class ParallelBatchIterator(DatasetIterator):
    """See the module docstring."""

    OP = "parallel_batch"

    def __init__(self, ctx: IterContext, ds: BatchDataset):
        self._input = ds._input._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))
        opts = ctx.options
        self._bs = ds._batch_size
        self._drop = ds._drop_remainder
        npc = ds._num_parallel_calls
        cpu = int(opts.cpu_budget or 1)
        self._concurrency = cpu if npc is None or npc == AUTOTUNE else max(1, int(npc))
        self._max_threads = cpu + int(opts.io_concurrency or 64)
        det = ds._deterministic if ds._deterministic is not None else opts.deterministic
        self._deterministic = bool(det)
        self._cursor = InputCursor(self._input)
        self._consumed = 0  # elements in batches pulled so far
        self._pending: dict[int, tuple[int, int]] = {}  # tag -> (first seq, consumed before)
        self._results: dict[int, Any] = {}
        self._ready: collections.deque[int] = collections.deque()
        self._tags = itertools.count()
        self._end = False
        self._ex: ThreadExecutor | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._stack_s: list[float] = []
        #: True once stacking proved cheaper than a hand-off (batches are stacked inline).
        self.inline = False
        self.stats = stats_for(opts, self.stage)

    def _executor(self) -> ThreadExecutor:
        if self._ex is None:
            self.lifecycle = IteratorState.RUNNING
            self._ex = ThreadExecutor(_StackSpec(self.stage), self._concurrency, self._max_threads)
            self._finalizer = weakref.finalize(self, self._ex.close, False)
        return self._ex

    def __next__(self) -> Any:
        if self.lifecycle is IteratorState.CLOSED:
            raise StopIteration
        if self.inline and not self._pending:
            return self._next_inline()
        ex = self._executor()
        while True:
            while not self._end and len(self._pending) < 2 * self._concurrency:
                if ex.in_flight >= self._concurrency:
                    break
                if not self._submit(ex):
                    break
            tag = self._take()
            if tag is not None:
                return self._deliver(tag)
            if not self._pending:
                self._release()
                raise StopIteration
            self._accept(ex.poll(_POLL_S))

    def _pull_batch(self) -> tuple[int, int, list[Any]] | None:
        """``(first seq, start, elements)`` of the next batch, or None at the end."""
        seq, start = self._cursor.seq, self._consumed
        elements: list[Any] = []
        while len(elements) < self._bs:
            try:
                elements.append(self._cursor.pull())
            except StopIteration:
                self._end = True
                break
        if not elements or (self._drop and len(elements) < self._bs):
            self._end = True
            return None
        self._consumed = start + len(elements)
        return seq, start, elements

    def _submit(self, ex: ThreadExecutor) -> bool:
        tag = next(self._tags)
        seq, start = self._cursor.seq, self._consumed
        try:
            batch = self._pull_batch()
        except Exception as e:
            self._pending[tag] = (seq, start)
            self._results[tag] = Failure(e, from_input=True)
            self._ready.append(tag)
            return False
        if batch is None:
            return False
        seq, start, elements = batch
        self._pending[tag] = (seq, start)
        ex.submit(tag, [0, 0], [(start, elements)])
        return True

    def _accept(self, completions: list[Any]) -> None:
        for c in completions:
            if c.tag not in self._pending:
                continue
            self._results[c.tag] = c.results[0]
            self._ready.append(c.tag)
            self.stats.add(busy_s=c.busy_s)
            if len(self._stack_s) < _MEASURE:
                self._stack_s.append(c.busy_s)
                if len(self._stack_s) == _MEASURE:
                    self.inline = sorted(self._stack_s)[_MEASURE // 2] < _INLINE_BELOW_S

    def _take(self) -> int | None:
        if self._deterministic:
            for tag in self._pending:
                return tag if tag in self._results else None
            return None
        while self._ready:
            tag = self._ready.popleft()
            if tag in self._results:
                return tag
        return None

    def _deliver(self, tag: int) -> Any:
        self._pending.pop(tag)
        r = self._results.pop(tag)
        if self._pending:
            self._cursor.forget_before(self._pending[next(iter(self._pending))][0])
        if type(r) is Failure:
            r.throw(self.stage)
        self.stats.add(elements=1)
        return r

    def _next_inline(self) -> Any:
        batch = self._pull_batch()
        if batch is None:
            self._release()
            raise StopIteration
        self._cursor.forget_before(self._cursor.seq)
        _, start, elements = batch
        out = stack(elements, self.stage, start)
        self.stats.add(elements=1)
        return out

    def _release(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        ex, self._ex = self._ex, None
        if ex is not None:
            ex.close()

    # -- state -----------------------------------------------------------------------------

    def set_state(self, state: State) -> None:
        """Restore; also accepts a sequential ``batch`` state."""
        if isinstance(state, dict) and state.get("op") == "batch":
            state = {**state, "op": self.OP}
        super().set_state(state)

    def _get_state(self) -> State:
        if self._pending:
            seq, consumed = self._pending[next(iter(self._pending))]
        else:
            seq, consumed = self._cursor.seq, self._consumed
        input_state, skip = self._cursor.position(seq)
        return {"input": input_state, "skip": skip, "consumed": consumed}

    def _set_state(self, state: State) -> None:
        skip = int(state.get("skip", 0))
        consumed = int(state["consumed"])
        self._release()
        self._cursor.restore(state["input"], skip)
        self._consumed = consumed
        self._pending.clear()
        self._results.clear()
        self._ready.clear()
        self._end = False
        if self.lifecycle is IteratorState.RUNNING:
            self.lifecycle = IteratorState.NOT_STARTED

    def _close(self) -> None:
        self._release()
