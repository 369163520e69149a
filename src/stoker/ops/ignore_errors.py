"""``Dataset.ignore_errors``."""

from __future__ import annotations

import logging
from typing import Any

from stoker.dataset import Dataset
from stoker.errors import CheckpointError, WorkerError
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, UnaryIterator
from stoker.options import UNKNOWN_CARDINALITY

__all__ = ["IgnoreErrorsDataset"]

_LOG = logging.getLogger(__name__)

# Failures of the machinery, not of an element: skipping them would hide a broken pipeline.
_NEVER_IGNORED = (WorkerError, CheckpointError)


class IgnoreErrorsDataset(UnaryDataset):
    _op_name = "ignore_errors"

    def __init__(self, input_dataset: Dataset, log_warning: bool, name: str | None):
        super().__init__(input_dataset, name)
        self._log_warning = bool(log_warning)

    def _cardinality(self) -> int:
        n = self._input._cardinality()
        return n if n == -1 else UNKNOWN_CARDINALITY

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _IgnoreErrorsIterator(ctx, self)


class _IgnoreErrorsIterator(UnaryIterator):
    OP = "ignore_errors"
    _ds: IgnoreErrorsDataset

    def __init__(self, ctx: IterContext, ds: IgnoreErrorsDataset):
        super().__init__(ctx, ds)
        self._log = ds._log_warning
        self.ignored = 0

    def __next__(self) -> Any:
        while True:
            try:
                return next(self._input)
            except StopIteration:
                raise
            except _NEVER_IGNORED:
                raise
            except Exception as e:
                self.ignored += 1
                if self._log:
                    _LOG.warning("%s: ignoring error: %s: %s", self.stage, type(e).__name__, e)

    def _get_state(self) -> State:
        return {"input": self._input.get_state(), "ignored": self.ignored}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self.ignored = int(state["ignored"])
