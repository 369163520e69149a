"""``Dataset.flat_map``: interleave with one slot, so one inner dataset after another."""

from __future__ import annotations

from collections.abc import Callable

from stoker.dataset import Dataset
from stoker.ops.interleave import InterleaveDataset

__all__ = ["FlatMapDataset"]


class FlatMapDataset(InterleaveDataset):
    _op_name = "flat_map"

    def __init__(self, input_dataset: Dataset, map_func: Callable[..., Dataset], name: str | None):
        super().__init__(input_dataset, map_func, 1, 1, None, None, name)
