"""``Dataset.map`` and ``Dataset.random_map``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from stoker import iterator as _iterator
from stoker.dataset import Dataset
from stoker.exec import executor_names
from stoker.iterator import DatasetIterator, IterContext, State
from stoker.ops._common import UnaryDataset, annotate, call, check_count, stop_iteration_error
from stoker.ops._seeds import resolve_seed
from stoker.options import AUTOTUNE

__all__ = ["MapDataset", "element_rng"]

_EXECUTORS = ("auto", "thread", "process")


def element_rng(seed: int, pass_id: list[int], index: int) -> np.random.Generator:
    """The Generator ``random_map`` passes for element ``index`` of pass ``pass_id``."""
    return np.random.Generator(np.random.PCG64((seed, *pass_id, index)))


class MapDataset(UnaryDataset):
    _op_name = "map"

    def __init__(
        self,
        input_dataset: Dataset,
        fn: Callable[..., Any],
        num_parallel_calls: int | None,
        deterministic: bool | None,
        executor: str,
        name: str | None,
        seed: int | None = None,
        rng: bool = False,
    ):
        super().__init__(input_dataset, name)
        if not callable(fn):
            raise TypeError(f"map(): map_func must be callable, got {type(fn).__name__}")
        if num_parallel_calls is not None and num_parallel_calls != AUTOTUNE:
            # An int (or AUTOTUNE, or None): "4" and 1.5 are refused, not coerced.
            num_parallel_calls = check_count("map", "num_parallel_calls", num_parallel_calls, 1)
        if executor not in _EXECUTORS and executor not in executor_names():
            raise ValueError(f"map(): executor={executor!r} must be one of {executor_names()}")
        self._fn = fn
        self._num_parallel_calls = num_parallel_calls
        self._deterministic = deterministic
        self._executor = executor
        self._rng = rng
        if rng:
            self._op_name = "random_map"
            seed = resolve_seed(seed, input_dataset)
        self._seed = seed

    def _random_access(self) -> Any:
        get = self._input._random_access()
        if get is None or self._rng:
            return None
        fn = self._fn
        return lambda i: call(fn, get(i))

    def element_fn(self, pass_id: list[int]) -> Callable[[int, Any], Any]:
        """``f(index, element)`` computing one output; what parallel executors run."""
        fn = self._fn
        if not self._rng:
            return lambda _i, x: call(fn, x)
        seed = self._seed
        assert seed is not None

        def with_rng(i: int, x: Any) -> Any:
            rng = element_rng(seed, pass_id, i)
            if type(x) is tuple:
                return fn(*x, rng=rng)
            return fn(x, rng=rng)

        return with_rng

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:
        if self._num_parallel_calls is not None:
            ds = self
            if "ray" in (self._executor, ctx.options.executor):
                # Loaded lazily (Ray is an optional extra): consecutive Ray maps, one stage.
                from stoker.ray._fuse import fused

                ds = fused(self, ctx.options)
            # Loaded lazily: the parallel engine is only imported when used.
            from stoker.ops._parallel_map import ParallelMapIterator

            return ParallelMapIterator(ctx, ds)
        return _MapIterator(ctx, self)


class _MapIterator(DatasetIterator):
    OP = "map"

    def __init__(self, ctx: IterContext, ds: MapDataset):
        self._input = ds._input._make_iterator(ctx)
        super().__init__(ctx, ds, (self._input,))
        self._ds = ds
        self._next_input = self._input.__next__
        self._index = 0
        self._epoch = ctx.take_pass(ds)
        self._fn = ds._fn if not ds._rng else None
        self._element_fn = ds.element_fn(self._epoch)

    def __next__(self) -> Any:
        x = self._next_input()
        i = self._index
        self._index = i + 1
        try:
            fn = self._fn
            if fn is None:
                return self._element_fn(i, x)
            if type(x) is tuple:
                return fn(*x)
            return fn(x)
        except StopIteration:
            raise stop_iteration_error(self.stage, self._ds._fn) from None
        except Exception as e:
            annotate(e, self.stage, self._ds._fn, i)
            raise

    def _counted_next(self) -> Any:
        # __next__ with the stats' counting written in (what the node runs with stats on):
        # the same as iterator._counting_class's wrapper, without its extra call level.
        rec: Any = self.recorder
        n = rec.elements
        if n >= rec.next_sample or _iterator._tracing:
            return rec.timed_call(_MapIterator.__next__, self, n)
        x = self._next_input()
        i = self._index
        self._index = i + 1
        try:
            fn = self._fn
            if fn is None:
                y = self._element_fn(i, x)
            elif type(x) is tuple:
                y = fn(*x)
            else:
                y = fn(x)
        except StopIteration:
            raise stop_iteration_error(self.stage, self._ds._fn) from None
        except Exception as e:
            annotate(e, self.stage, self._ds._fn, i)
            raise
        rec.elements = n + 1
        return y

    def _get_state(self) -> State:
        return {"input": self._input.get_state(), "index": self._index, "epoch": self._epoch}

    def _set_state(self, state: State) -> None:
        self._input.set_state(state["input"])
        self._index = int(state["index"])
        self._epoch = [int(e) for e in state["epoch"]]
        self._ctx.restore_pass(self._ds, self._epoch)
        self._element_fn = self._ds.element_fn(self._epoch)
