"""``Dataset.choose_from_datasets`` and ``Dataset.sample_from_datasets``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stoker.dataset import Dataset
from stoker.errors import InvalidElementError
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._seeds import resolve_seed, seed_is_fixed
from stoker.options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY

__all__ = ["ChooseDataset", "SampleDataset"]

_BLOCK = 256


def _check_datasets(op: str, datasets: Sequence[Dataset]) -> tuple[Dataset, ...]:
    datasets = tuple(datasets)
    if not datasets:
        raise ValueError(f"{op}(): datasets must not be empty")
    for d in datasets:
        if not isinstance(d, Dataset):
            raise TypeError(f"{op}(): every input must be a stoker Dataset, got {type(d)!r}")
    return datasets


class ChooseDataset(Dataset):
    _op_name = "choose_from_datasets"

    def __init__(self, datasets: Sequence[Dataset], choice_dataset: Dataset, stop_on_empty: bool):
        datasets = _check_datasets("choose_from_datasets", datasets)
        if not isinstance(choice_dataset, Dataset):
            raise TypeError("choose_from_datasets(): choice_dataset must be a stoker Dataset")
        super().__init__((choice_dataset, *datasets), None)
        self._stop_on_empty = bool(stop_on_empty)

    def _cardinality(self) -> int:
        n = self._inputs[0]._cardinality()
        return (
            INFINITE_CARDINALITY
            if n == INFINITE_CARDINALITY
            and all(d._cardinality() == INFINITE_CARDINALITY for d in self._inputs[1:])
            else UNKNOWN_CARDINALITY
        )

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _ChooseIterator(ctx, self)


class _ChooseIterator(DatasetIterator):
    OP = "choose_from_datasets"

    def __init__(self, ctx: IterContext, ds: ChooseDataset):
        inputs = tuple(d._make_iterator(ctx) for d in ds._inputs)
        super().__init__(ctx, ds, inputs)
        self._choice = inputs[0]
        self._datasets = inputs[1:]
        self._exhausted = [False] * len(self._datasets)
        self._stop = ds._stop_on_empty
        self._index = 0

    def __next__(self) -> Any:
        n = len(self._datasets)
        while not all(self._exhausted):
            c = next(self._choice)
            i = self._index
            self._index += 1
            if not (isinstance(c, (int, np.integer)) or np.ndim(c) == 0) or not (0 <= int(c) < n):
                raise InvalidElementError(
                    f"{self.stage}: choice element {i} is {c!r}; it must be an int in "
                    f"[0, {n}) indexing the {n} datasets"
                )
            c = int(c)
            if self._exhausted[c]:
                continue
            try:
                return next(self._datasets[c])
            except StopIteration:
                self._exhausted[c] = True
                if self._stop:
                    self._exhausted = [True] * n
        raise StopIteration

    def _get_state(self) -> State:
        return {
            "inputs": [it.get_state() for it in self._inputs],
            "exhausted": list(self._exhausted),
            "index": self._index,
        }

    def _set_state(self, state: State) -> None:
        for it, s in zip(self._inputs, state["inputs"], strict=True):
            it.set_state(s)
        self._exhausted = [bool(e) for e in state["exhausted"]]
        self._index = int(state["index"])


class SampleDataset(Dataset):
    _op_name = "sample_from_datasets"

    def __init__(
        self,
        datasets: Sequence[Dataset],
        weights: Sequence[float] | None,
        seed: int | None,
        stop_on_empty: bool,
        rerandomize: bool,
    ):
        datasets = _check_datasets("sample_from_datasets", datasets)
        super().__init__(datasets, None)
        if weights is None:
            w = np.full(len(datasets), 1.0 / len(datasets))
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (len(datasets),):
                raise ValueError(
                    f"sample_from_datasets(): {len(w.ravel())} weights for {len(datasets)} "
                    "datasets; give one weight per dataset"
                )
            if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
                raise ValueError(
                    f"sample_from_datasets(): weights {w.tolist()} must be finite, >= 0, "
                    "and not all 0"
                )
        self._weights = w / w.sum()
        self._seed = resolve_seed(seed, datasets[0])
        self._seed_fixed = seed_is_fixed(seed, datasets[0])
        self._stop_on_empty = bool(stop_on_empty)
        self._rerandomize = rerandomize

    def _cardinality(self) -> int:
        # Inputs of weight 0 are never drawn. Without stop_on_empty_dataset, sampling ends
        # only when every drawn input is exhausted; with it, when the first one is.
        ns = [d._cardinality() for d, w in zip(self._inputs, self._weights, strict=True) if w > 0]
        if INFINITE_CARDINALITY in ns and (
            not self._stop_on_empty or all(n == INFINITE_CARDINALITY for n in ns)
        ):
            return INFINITE_CARDINALITY
        if not self._stop_on_empty and all(n >= 0 for n in ns):
            return sum(ns)
        return UNKNOWN_CARDINALITY

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        return _SampleIterator(ctx, self)


class _SampleIterator(DatasetIterator):
    OP = "sample_from_datasets"

    def __init__(self, ctx: IterContext, ds: SampleDataset):
        inputs = tuple(d._make_iterator(ctx) for d in ds._inputs)
        super().__init__(ctx, ds, inputs)
        self._ds = ds
        self._begin(ctx.take_pass(ds))

    def _begin(self, pass_id: list[int]) -> None:
        ds = self._ds
        self._pass_id = pass_id
        seed = (ds._seed, *pass_id) if ds._rerandomize else (ds._seed, 0, 0)
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._exhausted = [False] * len(self._inputs)
        self._set_weights()
        self._new_block()

    def _set_weights(self) -> None:
        w = np.where(self._exhausted, 0.0, self._ds._weights)
        total = w.sum()
        self._cum = (np.cumsum(w) / total).tolist() if total > 0 else []

    def _new_block(self) -> None:
        self._block_state = self._rng.bit_generator.state
        self._block = self._rng.random(_BLOCK).tolist()
        self._bpos = 0

    def _pick(self) -> int:
        if self._bpos == _BLOCK:
            self._new_block()
        u = self._block[self._bpos]
        self._bpos += 1
        cum = self._cum
        for i, c in enumerate(cum):
            if u < c and not self._exhausted[i]:
                return i
        return max(i for i, e in enumerate(self._exhausted) if not e)

    def __next__(self) -> Any:
        while self._cum:
            i = self._pick()
            try:
                return next(self._inputs[i])
            except StopIteration:
                if self._ds._stop_on_empty:
                    self._cum = []
                    break
                self._exhausted[i] = True
                self._set_weights()
        raise StopIteration

    def _get_state(self) -> State:
        return {
            "epoch": self._pass_id,
            "inputs": [it.get_state() for it in self._inputs],
            "exhausted": list(self._exhausted),
            "stopped": not self._cum,
            "rng": self._block_state,
            "bpos": self._bpos,
        }

    def _set_state(self, state: State) -> None:
        epoch = [int(e) for e in state["epoch"]]
        self._ctx.restore_pass(self._ds, epoch)
        for it, s in zip(self._inputs, state["inputs"], strict=True):
            it.set_state(s)
        self._begin(epoch)
        self._exhausted = [bool(e) for e in state["exhausted"]]
        self._set_weights()
        if state["stopped"]:
            self._cum = []
        self._rng.bit_generator.state = state["rng"]
        self._new_block()
        self._bpos = int(state["bpos"])
