"""``tf.data.experimental``: the constants and the few functions input code still imports.

``from tensorflow.data.experimental import AUTOTUNE`` becomes
``from stoker.tf.data.experimental import AUTOTUNE``; it is ``stoker.AUTOTUNE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from stoker.dataset import Dataset
from stoker.options import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from stoker.tf._missing import missing

__all__ = [
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "cardinality",
    "choose_from_datasets",
    "ignore_errors",
    "sample_from_datasets",
]

_SERVED = (
    "stoker.tf.data.experimental serves AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, "
    "cardinality, ignore_errors, sample_from_datasets and choose_from_datasets"
)


def cardinality(dataset: Dataset) -> int:
    """``dataset.cardinality()``, as ``tf.data.experimental.cardinality``.

    Example::

        tf.data.experimental.cardinality(ds) == tf.data.INFINITE_CARDINALITY
    """
    return dataset.cardinality()


def ignore_errors(log_warning: bool = False) -> Callable[[Dataset], Dataset]:
    """A transformation for ``Dataset.apply`` that drops elements whose production failed.

    Example::

        ds = ds.apply(tf.data.experimental.ignore_errors())
    """
    return lambda dataset: dataset.ignore_errors(log_warning=log_warning)


def sample_from_datasets(
    datasets: Sequence[Dataset],
    weights: Sequence[float] | None = None,
    seed: int | None = None,
    stop_on_empty_dataset: bool = False,
) -> Dataset:
    """``Dataset.sample_from_datasets``, under its older name.

    Example::

        tf.data.experimental.sample_from_datasets([a, b], weights=[0.9, 0.1], seed=0)
    """
    return Dataset.sample_from_datasets(
        datasets, weights=weights, seed=seed, stop_on_empty_dataset=stop_on_empty_dataset
    )


def choose_from_datasets(
    datasets: Sequence[Dataset], choice_dataset: Dataset, stop_on_empty_dataset: bool = True
) -> Dataset:
    """``Dataset.choose_from_datasets``, under its older name.

    Example::

        tf.data.experimental.choose_from_datasets([a, b], tf.data.Dataset.range(2).repeat(3))
    """
    return Dataset.choose_from_datasets(
        datasets, choice_dataset, stop_on_empty_dataset=stop_on_empty_dataset
    )


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise missing(__name__, name, _SERVED)
