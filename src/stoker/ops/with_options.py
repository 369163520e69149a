"""``Dataset.with_options``."""

from __future__ import annotations

from stoker.dataset import Dataset
from stoker.iterator import DatasetIterator, IterContext
from stoker.ops._common import UnaryDataset
from stoker.options import Options

__all__ = ["OptionsDataset"]


class OptionsDataset(UnaryDataset):
    """Carries options; its iterator is its input's (it adds no stage)."""

    _op_name = "with_options"

    def __init__(self, input_dataset: Dataset, options: Options, name: str | None):
        super().__init__(input_dataset, name)
        if not isinstance(options, Options):
            raise TypeError(f"with_options(): expected stoker.Options, got {type(options)!r}")
        self._own_options = options

    def _random_access(self):  # type: ignore[no-untyped-def]
        return self._input._random_access()

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        if ctx.root_dataset is self:  # the input's node is the root (see IterContext)
            ctx.root_dataset = self._input
        return self._input._make_iterator(ctx)
