"""``Dataset.shard``."""

from __future__ import annotations

from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, UnaryIterator, check_count

__all__ = ["ShardDataset"]


class ShardDataset(UnaryDataset):
    _op_name = "shard"

    def __init__(self, input_dataset: Dataset, num_shards: int, index: int, name: str | None):
        super().__init__(input_dataset, name)
        self._num = check_count("shard", "num_shards", num_shards, 1)
        self._index = check_count("shard", "index", index, 0)
        if self._index >= self._num:
            raise ValueError(f"shard(): index={index} must be < num_shards={num_shards}")

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        if n < 0:
            return n
        return n // self._num + (1 if n % self._num > self._index else 0)

    def _random_access(self) -> Any:
        get = self._input._random_access()
        if get is None:
            return None
        num, index = self._num, self._index
        return lambda i: get(i * num + index)

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _ShardIterator(ctx, self)


class _ShardIterator(UnaryIterator):
    OP = "shard"
    _ds: ShardDataset

    def __init__(self, ctx: IterContext, ds: ShardDataset):
        super().__init__(ctx, ds)
        self._num = ds._num
        self._skip = ds._index  # input elements to drop before the next one we keep
        self._next_input = self._input.__next__

    def __next__(self) -> Any:
        nxt = self._next_input
        while self._skip:
            nxt()
            self._skip -= 1
        x = nxt()
        self._skip = self._num - 1
        return x

    def _get_state(self) -> State:
        return {"input": self._input.get_state(), "skip": self._skip}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._skip = int(state["skip"])
