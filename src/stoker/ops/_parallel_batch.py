"""``batch(num_parallel_calls=...)``: stack large batches on the thread pool.

Stacking copies every element into the batch array; NumPy releases the GIL for large
copies, so several batches can be stacked at once while the consumer works. The
consumer's thread pulls the elements (the input is only touched there) and up to
``num_parallel_calls`` batches are stacked concurrently, delivered in order (with
``deterministic=False``, as they finish).

Stacking small elements costs less than a hand-off to a thread: once the measured cost of
a stack is below :data:`_INLINE_BELOW_S`, batches are stacked inline (``it.inline``).
With ``num_parallel_calls=AUTOTUNE`` the stacks at once start at one and the pipeline's
controller (:mod:`stoker.autotune`) moves them while it runs.

The executor is the shared thread pool's (``make_executor("thread")``); the iterator is a
:class:`~stoker.ops._parallel_common.ParallelIterator` (lazy start, Ctrl-C, restores).
The state is the input's position before the first batch not yet delivered
(:class:`~stoker.ops._parallel_common.InputCursor`) and the count of elements batched
before it; a sequential ``batch`` state restores here too.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable
from typing import Any

from stoker._structure import stack
from stoker.autotune import Knob, tuner_for
from stoker.autotune._ram import element_bytes
from stoker.exec import Executor, ExecutorRequest, Failure, make_executor
from stoker.iterator import IterContext, State
from stoker.ops._parallel_common import POLL_S, InputCursor, ParallelIterator
from stoker.ops.batch import BatchDataset
from stoker.options import AUTOTUNE

__all__ = ["ParallelBatchIterator"]

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


class ParallelBatchIterator(ParallelIterator):
    """See the module docstring."""

    OP = "parallel_batch"
    SEQUENTIAL_OP = "batch"
    _run: Executor | None

    def __init__(self, ctx: IterContext, ds: BatchDataset):
        super().__init__(ctx, ds)
        opts = ctx.options
        assert opts.cpu_budget is not None and opts.io_concurrency is not None
        self._pass_id = ctx.take_pass(ds)
        self._bs = ds._batch_size
        self._drop = ds._drop_remainder
        npc = ds._num_parallel_calls
        cpu = opts.cpu_budget
        autotune = npc is None or npc == AUTOTUNE
        self._concurrency = cpu if autotune else max(1, int(npc))  # type: ignore[arg-type]
        # AUTOTUNE (stoker.autotune): the tuner sets knob.value, next() applies it.
        self._tuner = tuner_for(ctx)
        self._knob: Knob | None = None
        if self._tuner is not None:
            if autotune:
                self._concurrency = 1
            self._knob = self._tuner.add(
                Knob(
                    self,
                    "parallelism",
                    self._concurrency,
                    autotune,
                    hi=opts.io_concurrency,
                    key=ds,
                )
            )
        self._request = ExecutorRequest(
            spec=_StackSpec(self.stage),
            stage=self.stage,
            concurrency=self._concurrency,
            cpu_budget=cpu,
            io_concurrency=opts.io_concurrency,
            stats=self.stats,
        )
        det = ds._deterministic if ds._deterministic is not None else opts.deterministic
        self._deterministic = bool(det)
        self._cursor = InputCursor(self._input)
        self._consumed = 0  # elements in batches pulled so far
        self._pending: dict[int, tuple[int, int]] = {}  # tag -> (first seq, consumed before)
        self._results: dict[int, Any] = {}
        self._ready: collections.deque[int] = collections.deque()
        self._tags = itertools.count()
        self._end = False
        self._stack_s: list[float] = []
        #: True once stacking proved cheaper than a hand-off (batches are stacked inline).
        self.inline = False

    def _new_run(self) -> Executor:
        ex = make_executor("thread", self._request)
        if self._tuner is not None:
            self._tuner.wake()
        return ex

    def _next(self) -> Any:
        if self.inline and not self._pending:
            if self._run is not None:
                self._release_run()  # the threads are not needed any more
            return self._next_inline()
        ex = self._run
        if ex is None:  # the pass ended
            raise StopIteration
        knob = self._knob
        while True:
            if knob is not None and knob.value != self._concurrency:
                self._concurrency = knob.value
                if isinstance(getattr(type(ex), "concurrency", None), property):
                    ex.concurrency = knob.value  # type: ignore[attr-defined]
            # Once stacking inline wins, nothing more goes to the threads: the batches
            # pending there are delivered, then the inline path takes over.
            while not self._end and not self.inline and len(self._pending) < 2 * self._concurrency:
                if ex.in_flight >= self._concurrency or not self._ram.admits():
                    break
                if not self._submit(ex):
                    break
            tag = self._take()
            if tag is not None:
                return self._deliver(tag)
            if not self._pending:
                self._release_run()
                raise StopIteration
            if knob is None:
                self._accept(ex.poll(POLL_S))
                continue
            start = time.perf_counter()
            got = ex.poll(POLL_S)
            knob.meter.wait_s += time.perf_counter() - start
            self._accept(got)

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

    def _submit(self, ex: Executor) -> bool:
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
        self._ram.hold(tag, sum([element_bytes(e) for e in elements]))
        ex.submit(tag, self._pass_id, [(start, elements)])
        return True

    def _accept(self, completions: list[Any]) -> None:
        for c in completions:
            if c.tag not in self._pending:
                continue
            self._results[c.tag] = c.results[0]
            self._ram.update(c.tag, element_bytes(c.results[0]))
            self._ready.append(c.tag)
            self.stats.add(busy_s=c.busy_s)
            if self._knob is not None:
                self._knob.meter.add_call(1, c.busy_s, c.cpu_s)
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
        self._ram.drop(tag)
        if self._pending:
            self._cursor.forget_before(self._pending[next(iter(self._pending))][0])
        if type(r) is Failure:
            r.throw(self.stage)
        self.stats.add(elements=1)
        return r

    def _next_inline(self) -> Any:
        batch = self._pull_batch()
        if batch is None:
            self._release_run()
            raise StopIteration
        self._cursor.forget_before(self._cursor.seq)
        _, start, elements = batch
        out = stack(elements, self.stage, start)
        self.stats.add(elements=1)
        return out

    # -- state -----------------------------------------------------------------------------

    def _get_state(self) -> State:
        if self._pending:
            seq, consumed = self._pending[next(iter(self._pending))]
        else:
            seq, consumed = self._cursor.seq, self._consumed
        input_state, skip = self._cursor.position(seq)
        return {
            "input": input_state,
            "skip": skip,
            "consumed": consumed,
            "epoch": list(self._pass_id),
        }

    def _restore(self, state: State) -> None:
        skip = int(state.get("skip", 0))
        consumed = int(state["consumed"])
        if "epoch" in state:  # a sequential batch state has none: keep this pass's
            self._pass_id = [int(e) for e in state["epoch"]]
        self._cursor.restore(state["input"], skip)
        self._consumed = consumed
        self._pending.clear()
        self._results.clear()
        self._ready.clear()
        self._end = False

    # -- visibility ------------------------------------------------------------------------

    def stage_info(self) -> dict[str, Any]:
        ex = self._run
        return {
            "parallelism": self._concurrency,
            "executor": "inline" if self.inline else "thread",
            "buffered": len(self._results),
            "in_flight": ex.in_flight if ex is not None else 0,
            "capacity": 2 * self._concurrency,
            **({"autotune": self._knob.info()} if self._knob is not None else {}),
        }
