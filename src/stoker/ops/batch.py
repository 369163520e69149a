"""``Dataset.batch``."""

from __future__ import annotations

import itertools
import weakref
from typing import Any

from stoker._structure import stack
from stoker.autotune._ram import element_bytes, ledger_for
from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, check_count
from stoker.options import AUTOTUNE

__all__ = ["BatchDataset", "batch_cardinality"]


def batch_cardinality(n: int, batch_size: int, drop_remainder: bool) -> int:
    if n < 0:
        return n
    return n // batch_size if drop_remainder else -(-n // batch_size)


class BatchDataset(UnaryDataset):
    _op_name = "batch"

    def __init__(
        self,
        input_dataset: Dataset,
        batch_size: int,
        drop_remainder: bool,
        num_parallel_calls: int | None,
        deterministic: bool | None,
        name: str | None,
    ):
        super().__init__(input_dataset, name)
        self._batch_size = check_count("batch", "batch_size", batch_size, 1)
        self._drop_remainder = bool(drop_remainder)
        if num_parallel_calls is not None and num_parallel_calls != AUTOTUNE:
            check_count("batch", "num_parallel_calls", num_parallel_calls, 1)
        self._num_parallel_calls = num_parallel_calls
        self._deterministic = deterministic

    def _cardinality(self) -> int:
        return batch_cardinality(self._input._cardinality(), self._batch_size, self._drop_remainder)

    def _random_access(self) -> Any:
        get = self._input._random_access()
        n = self._input._cardinality()
        if get is None or n < 0:
            return None
        bs, stage = self._batch_size, self._name or self._op_name

        def batch_at(i: int) -> Any:
            lo = i * bs
            return stack([get(j) for j in range(lo, min(lo + bs, n))], stage, lo)

        return batch_at

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        if self._num_parallel_calls is not None:
            # Loaded lazily: the parallel engine is only imported when used.
            from stoker.ops._parallel_batch import ParallelBatchIterator

            return ParallelBatchIterator(ctx, self)
        return _BatchIterator(ctx, self)


class _BatchIterator(DatasetIterator):
    OP = "batch"

    def __init__(self, ctx: IterContext, ds: BatchDataset):
        self._input = ds._input._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))
        self._bs = ds._batch_size
        self._drop = ds._drop_remainder
        self._consumed = 0
        # A parallel map below computes the next batch while this thread stacks one
        # (ParallelMapIterator.set_burst), instead of idling once its few chunks are done.
        set_burst = getattr(self._input, "set_burst", None)
        if set_burst is not None:
            set_burst(self._bs)
        # Options.ram_budget: the batch being filled counts, so buffering stages above it
        # leave room for it: element by element for the first batch, then at the size of
        # the last batch, held from when that one is handed on until the next one is (its
        # elements are pulled into it meanwhile); released at the end or on close.
        self._ledger = ledger = ledger_for(ctx)
        self._holds = 0  # bytes reserved for the batch being filled [Unit: byte]
        weakref.finalize(self, ledger.release_all, self.stage)

    def __next__(self) -> Any:
        holds = self._holds
        if holds:
            elements = list(itertools.islice(self._input, self._bs))
        else:
            ledger = self._ledger
            elements = []
            try:
                for x in itertools.islice(self._input, self._bs):
                    elements.append(x)
                    n = element_bytes(x)
                    ledger.reserve(self.stage, n)
                    holds += n
            finally:
                ledger.release(self.stage, holds)
            holds = 0
        n = len(elements)
        if n == 0 or (self._drop and n < self._bs):
            self._unhold()
            raise StopIteration
        start = self._consumed
        self._consumed = start + n
        out = stack(elements, self.stage, start)
        nbytes = element_bytes(out)
        if nbytes != holds:
            if nbytes > holds:
                self._ledger.reserve(self.stage, nbytes - holds)
            else:
                self._ledger.release(self.stage, holds - nbytes)
            self._holds = nbytes
        return out

    def _unhold(self) -> None:
        if self._holds:
            self._ledger.release(self.stage, self._holds)
            self._holds = 0

    def _close(self) -> None:
        self._unhold()

    def _get_state(self) -> State:
        return {"input": self._input.get_state(), "consumed": self._consumed}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._consumed = int(state["consumed"])
