"""``Dataset.prefetch`` (sequential placeholder until the parallel engine lands)."""

from __future__ import annotations

from typing import Any

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext
from stoker.ops._common import UnaryDataset
from stoker.options import AUTOTUNE

__all__ = ["PrefetchDataset"]


class PrefetchDataset(UnaryDataset):
    _op_name = "prefetch"

    def __init__(self, input_dataset: Dataset, buffer_size: int, name: str | None):
        super().__init__(input_dataset, name)
        if buffer_size != AUTOTUNE and (
            isinstance(buffer_size, bool)
            or not hasattr(buffer_size, "__index__")
            or int(buffer_size) < 0
        ):
            raise ValueError(f"prefetch(): buffer_size={buffer_size!r} must be >= 0 or AUTOTUNE")
        self._buffer_size = int(buffer_size)

    def _random_access(self) -> Any:
        return self._input._random_access()

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return self._input._make_iterator(ctx)
