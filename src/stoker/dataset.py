"""``Dataset``: an immutable, lazy description of an input pipeline.

A dataset is a small graph of nodes; each knows its inputs and parameters, and each method
returns a new dataset. Building one does no work: ``iter(ds)`` makes an iterator (a tree of
iterator nodes, see :mod:`stoker.iterator`) that does the work for one pass.

The names, arguments, defaults and element order follow ``tf.data.Dataset``; a tf.data user
switches by changing the import. Elements are NumPy arrays and scalars in tuples, dicts and
namedtuples. ``docs/tfdata.md`` lists every deliberate deviation with its reason.

Example::

    import stoker as sk

    ds = (
        sk.Dataset.range(10)
        .map(lambda x: x * 2)
        .filter(lambda x: x % 3 != 0)
        .batch(2)
    )
    for batch in ds:
        print(batch)  # [2 4] [8 10] [14 16]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from stoker.options import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Options

if TYPE_CHECKING:
    from stoker.iterator import DatasetIterator, IterContext

__all__ = ["Dataset"]


class Dataset:
    """A lazy, immutable pipeline description. See the module docstring."""

    _op_name = "dataset"

    def __init__(self, inputs: tuple[Dataset, ...] = (), name: str | None = None):
        self._inputs = inputs
        self._name = name

    # -- for subclasses ------------------------------------------------------------------

    def _make_iterator(self, ctx: IterContext) -> DatasetIterator:  # pragma: no cover
        raise NotImplementedError

    def _cardinality(self) -> int:
        return UNKNOWN_CARDINALITY

    def _random_access(self) -> Callable[[int], Any] | None:
        """A function returning this dataset's i-th element of one pass, or None.

        Shuffle uses it to restore its buffer from positions instead of stored elements.
        """
        return None

    # -- iteration -----------------------------------------------------------------------

    def iterator(self, state: dict[str, Any] | None = None) -> DatasetIterator:
        """A new iterator; with ``state`` (from ``get_state()``) it resumes from there."""
        from stoker.iterator import IterContext

        root_pass = self.__dict__.get("_root_passes", 0)
        self._root_passes = root_pass + 1
        ctx = IterContext(self.options(), root_pass)
        ctx.root_dataset = self
        it = self._make_iterator(ctx)
        ctx.root_dataset = None
        ctx.root = it
        if state is not None:
            it.set_state(state)
        return it

    def __iter__(self) -> Iterator[Any]:
        return self.iterator()

    def as_numpy_iterator(self) -> Iterator[Any]:
        """An iterator of NumPy elements (stoker's elements already are NumPy)."""
        return self.iterator()

    def cardinality(self) -> int:
        """Number of elements, or ``INFINITE_CARDINALITY`` (-1) / ``UNKNOWN_CARDINALITY`` (-2)."""
        return self._cardinality()

    def __len__(self) -> int:
        n = self._cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return n

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name or self._op_name}>"

    # -- options -------------------------------------------------------------------------

    def options(self) -> Options:
        """The options of this pipeline: those of its inputs merged, outer ones winning."""
        result = Options()
        for d in self._inputs:
            result = result.merge(d.options())
        own = getattr(self, "_own_options", None)
        return result.merge(own) if own is not None else result

    def with_options(self, options: Options, name: str | None = None) -> Dataset:
        """Set pipeline-wide :class:`~stoker.Options` (deterministic, CPU and RAM budget…).

        Example::

            ds.with_options(Options(deterministic=False, cpu_budget=4))
        """
        # Loaded lazily due to a circular dependency (dataset <-> ops).
        from stoker.ops.with_options import OptionsDataset

        return OptionsDataset(self, options, name)

    # -- sources -------------------------------------------------------------------------

    @staticmethod
    def range(*args: int, output_type: Any = None, name: str | None = None) -> Dataset:
        """Integers like Python's ``range``: ``range(stop)``, ``range(start, stop[, step])``.

        Example::

            list(Dataset.range(1, 8, 3))  # [1, 4, 7] as np.int64
        """
        from stoker.sources.range import RangeDataset

        return RangeDataset(args, output_type, name)

    @staticmethod
    def from_tensor_slices(tensors: Any, name: str | None = None) -> Dataset:
        """One element per slice along the first dimension of every component.

        Example::

            Dataset.from_tensor_slices(({"a": [1, 2]}, [3.0, 4.0]))  # ({'a': 1}, 3.0), …
        """
        from stoker.sources.tensors import TensorSlicesDataset

        return TensorSlicesDataset(tensors, name)

    @staticmethod
    def from_tensors(tensors: Any, name: str | None = None) -> Dataset:
        """A dataset of exactly one element, ``tensors``.

        Example::

            Dataset.from_tensors(([1, 2], "a"))  # one element: (array([1, 2]), 'a')
        """
        from stoker.sources.tensors import TensorsDataset

        return TensorsDataset(tensors, name)

    @staticmethod
    def from_generator(
        generator: Callable[..., Iterable[Any]],
        output_types: Any = None,
        output_shapes: Any = None,
        args: Sequence[Any] | None = None,
        output_signature: Any = None,
        name: str | None = None,
    ) -> Dataset:
        """Elements of ``generator(*args)``, called anew for every pass.

        With ``output_signature`` (a structure of :class:`~stoker.TensorSpec`), every element
        is checked against it and converted to its dtypes; a mismatch names the element.

        Example::

            def gen(n):
                for i in range(n):
                    yield i, [1.0] * i

            ds = Dataset.from_generator(gen, args=(3,))
        """
        from stoker.sources.generator import GeneratorDataset

        return GeneratorDataset(
            generator, output_types, output_shapes, args, output_signature, name
        )

    @staticmethod
    def list_files(
        file_pattern: str | Sequence[str],
        shuffle: bool | None = None,
        seed: int | None = None,
        name: str | None = None,
    ) -> Dataset:
        """File names matching a glob pattern (or list of patterns), as ``str``.

        As in tf.data, ``shuffle=None`` means shuffled (a new order each pass); pass
        ``shuffle=False`` for sorted names. A pattern that matches nothing raises
        ``FileNotFoundError`` naming it.

        Example::

            Dataset.list_files("/data/train-*.tfrecord", shuffle=False)
        """
        from stoker.sources.files import list_files

        return list_files(file_pattern, shuffle, seed, name)

    @staticmethod
    def zip(*args: Any, datasets: Any = None, name: str | None = None) -> Dataset:
        """Zip datasets given as positional arguments or as one (nested) tuple/dict.

        Example::

            Dataset.zip(Dataset.range(3), Dataset.range(3, 6))  # (0, 3), (1, 4), (2, 5)
        """
        from stoker.ops.zip import ZipDataset

        if datasets is not None:
            if args:
                raise TypeError("zip() takes either positional datasets or datasets=, not both")
            structure = datasets
        elif len(args) == 1 and not isinstance(args[0], Dataset):
            structure = args[0]
        else:
            structure = args
        return ZipDataset(structure, name)

    @staticmethod
    def choose_from_datasets(
        datasets: Sequence[Dataset],
        choice_dataset: Dataset,
        stop_on_empty_dataset: bool = True,
    ) -> Dataset:
        """Element ``i`` comes from ``datasets[choice_i]`` for each ``choice_i`` in order.

        With ``stop_on_empty_dataset`` (default True) the result ends when a chosen input
        is exhausted; otherwise choices of exhausted inputs are skipped.

        Example::

            a, b = Dataset.range(0, 3), Dataset.range(10, 13)
            choice = Dataset.from_tensor_slices([0, 1, 1, 0])
            Dataset.choose_from_datasets([a, b], choice)  # 0 10 11 1
        """
        from stoker.ops.choose import ChooseDataset

        return ChooseDataset(datasets, choice_dataset, stop_on_empty_dataset)

    @staticmethod
    def sample_from_datasets(
        datasets: Sequence[Dataset],
        weights: Sequence[float] | None = None,
        seed: int | None = None,
        stop_on_empty_dataset: bool = False,
        rerandomize_each_iteration: bool | None = None,
    ) -> Dataset:
        """Each element drawn from one input, picked at random with ``weights``.

        Exhausted inputs drop out (their weight is shared among the rest) unless
        ``stop_on_empty_dataset`` ends the result at the first exhausted input.

        Example::

            Dataset.sample_from_datasets(
                [Dataset.range(100), Dataset.range(100, 200)], weights=[0.9, 0.1], seed=0
            )
        """
        from stoker.ops.choose import SampleDataset

        return SampleDataset(
            datasets, weights, seed, stop_on_empty_dataset, bool(rerandomize_each_iteration)
        )

    # -- element-wise --------------------------------------------------------------------

    def map(
        self,
        map_func: Callable[..., Any],
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
        synchronous: bool | None = None,
        use_unbounded_threadpool: bool = False,
        name: str | None = None,
        executor: str = "auto",
    ) -> Dataset:
        """Apply ``map_func`` to every element; a tuple element is unpacked into arguments.

        Args:
            map_func: The function. Its result is the new element, as returned.
            num_parallel_calls: ``None`` runs inline; ``N`` or ``AUTOTUNE`` runs calls in
                parallel on ``executor``.
            deterministic: Keep input order (default: the pipeline's option, True).
            synchronous: Accepted for tf.data compatibility; same as ``None`` parallelism.
            use_unbounded_threadpool: Accepted for tf.data compatibility.
            name: Stage name used in errors and stats.
            executor: ``"auto"`` (measure whether ``map_func`` holds the GIL and pick),
                ``"thread"``, ``"process"``, or ``"ray"`` (Ray actors, :mod:`stoker.ray`).

        Example::

            Dataset.range(4).map(lambda x: x * x)  # 0, 1, 4, 9
        """
        del use_unbounded_threadpool
        from stoker.ops.map import MapDataset

        if synchronous:
            num_parallel_calls = None
        return MapDataset(self, map_func, num_parallel_calls, deterministic, executor, name)

    def random_map(
        self,
        map_func: Callable[..., Any],
        seed: int | None = None,
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
        name: str | None = None,
        executor: str = "auto",
    ) -> Dataset:
        """Like :meth:`map`, with an extra keyword argument ``rng`` (a NumPy Generator).

        ``rng`` is seeded from ``(seed, pass, element index)``: augmentations are the same
        run to run and after a checkpoint resume, whatever worker computes them, and differ
        between elements and between passes. Not in tf.data (see docs/tfdata.md).

        Example::

            ds.random_map(lambda x, rng: x + rng.normal(size=x.shape), seed=0)
        """
        from stoker.ops.map import MapDataset

        return MapDataset(
            self, map_func, num_parallel_calls, deterministic, executor, name, seed=seed, rng=True
        )

    def filter(self, predicate: Callable[..., Any], name: str | None = None) -> Dataset:
        """Keep the elements for which ``predicate`` returns True (a scalar bool).

        Example::

            Dataset.range(6).filter(lambda x: x % 2 == 0)  # 0 2 4
        """
        from stoker.ops.filter import FilterDataset

        return FilterDataset(self, predicate, name)

    def flat_map(self, map_func: Callable[..., Dataset], name: str | None = None) -> Dataset:
        """Map each element to a dataset and yield their elements in order.

        Example::

            Dataset.range(4).flat_map(lambda x: Dataset.range(x))  # 0 0 1 0 1 2
        """
        from stoker.ops.flat_map import FlatMapDataset

        return FlatMapDataset(self, map_func, name)

    def interleave(
        self,
        map_func: Callable[..., Dataset],
        cycle_length: int | None = None,
        block_length: int | None = None,
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
        name: str | None = None,
        executor: str = "auto",
    ) -> Dataset:
        """Map elements to datasets and interleave them, ``block_length`` at a time.

        ``cycle_length`` inputs are open at once (default: the number of CPUs, as tf.data's
        AUTOTUNE). The order is tf.data's and does not change with ``num_parallel_calls``.
        With ``num_parallel_calls``, ``executor="ray"`` (or ``Options.executor="ray"``
        and ``executor="auto"``) opens and reads each input element's dataset on a Ray
        actor (:mod:`stoker.ray`); otherwise threads read ahead.

        Example::

            Dataset.range(1, 6).interleave(
                lambda x: Dataset.from_tensors(x).repeat(6), cycle_length=2, block_length=4
            )  # 1 1 1 1 2 2 2 2 1 1 2 2 3 3 3 3 4 4 4 4 3 3 4 4 5 5 5 5 5 5
        """
        from stoker.ops.interleave import InterleaveDataset

        return InterleaveDataset(
            self,
            map_func,
            cycle_length,
            block_length,
            num_parallel_calls,
            deterministic,
            name,
            executor,
        )

    def scan(
        self, initial_state: Any, scan_func: Callable[[Any, Any], Any], name: str | None = None
    ) -> Dataset:
        """Carry a state: ``scan_func(state, element) -> (new_state, output)``.

        Example::

            Dataset.range(5).scan(0, lambda s, x: (s + x, s + x))  # 0 1 3 6 10
        """
        from stoker.ops.scan import ScanDataset

        return ScanDataset(self, initial_state, scan_func, name)

    def enumerate(self, start: int = 0, name: str | None = None) -> Dataset:
        """Pair every element with its index: ``(np.int64(i), element)``.

        Example::

            Dataset.from_tensor_slices([7, 8]).enumerate(start=5)  # (5, 7) (6, 8)
        """
        from stoker.ops.enumerate import EnumerateDataset

        return EnumerateDataset(self, start, name)

    def unique(self, name: str | None = None) -> Dataset:
        """Drop elements seen before (scalars of int, str or bytes).

        Example::

            Dataset.from_tensor_slices([1, 37, 2, 37, 2, 1]).unique()  # 1 37 2
        """
        from stoker.ops.unique import UniqueDataset

        return UniqueDataset(self, name)

    def ignore_errors(self, log_warning: bool = False, name: str | None = None) -> Dataset:
        """Skip elements whose production raised (a user function, a corrupt record).

        A damaged file is skipped from its first bad record on. Dead worker processes and
        checkpoint errors are never skipped.

        Example::

            Dataset.from_tensor_slices([1.0, 0.0, 2.0]).map(lambda x: 1 / int(x)).ignore_errors()
        """
        from stoker.ops.ignore_errors import IgnoreErrorsDataset

        return IgnoreErrorsDataset(self, log_warning, name)

    # -- grouping ------------------------------------------------------------------------

    def batch(
        self,
        batch_size: int,
        drop_remainder: bool = False,
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Stack ``batch_size`` consecutive elements leaf by leaf into arrays.

        Example::

            Dataset.range(5).batch(2)  # [0 1] [2 3] [4]
        """
        from stoker.ops.batch import BatchDataset

        return BatchDataset(
            self, batch_size, drop_remainder, num_parallel_calls, deterministic, name
        )

    def padded_batch(
        self,
        batch_size: int,
        padded_shapes: Any = None,
        padding_values: Any = None,
        drop_remainder: bool = False,
        name: str | None = None,
    ) -> Dataset:
        """Batch elements of different shapes, padding each component.

        ``padded_shapes`` (default: the largest in each batch) may use ``None`` or -1 for
        dimensions padded to the batch's largest; ``padding_values`` defaults to 0 (b"" for
        bytes).

        Example::

            Dataset.range(1, 4).map(lambda x: np.full(x, x)).padded_batch(2)
            # [[1 0] [2 2]], [[3 3 3]]
        """
        from stoker.ops.padded_batch import PaddedBatchDataset

        return PaddedBatchDataset(
            self, batch_size, padded_shapes, padding_values, drop_remainder, name
        )

    def unbatch(self, name: str | None = None) -> Dataset:
        """Split every element along its first dimension into elements.

        Example::

            Dataset.from_tensors([[1, 2], [3, 4]]).unbatch()  # [1 2] [3 4]
        """
        from stoker.ops.unbatch import UnbatchDataset

        return UnbatchDataset(self, name)

    # -- order and amount ----------------------------------------------------------------

    def shuffle(
        self,
        buffer_size: int,
        seed: int | None = None,
        reshuffle_each_iteration: bool | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Shuffle with a buffer of ``buffer_size`` elements.

        ``reshuffle_each_iteration`` (default True) gives every pass a new order; with a
        ``seed`` the sequence of orders is the same run to run.

        Example::

            Dataset.range(10).shuffle(10, seed=0).repeat(2)  # two different orders
        """
        from stoker.ops.shuffle import ShuffleDataset

        reshuffle = True if reshuffle_each_iteration is None else reshuffle_each_iteration
        return ShuffleDataset(self, buffer_size, seed, reshuffle, name)

    def repeat(self, count: int | None = None, name: str | None = None) -> Dataset:
        """Repeat ``count`` times (``None`` or -1: forever).

        Example::

            Dataset.range(2).repeat(3)  # 0 1 0 1 0 1
        """
        from stoker.ops.repeat import RepeatDataset

        return RepeatDataset(self, count, name)

    def take(self, count: int, name: str | None = None) -> Dataset:
        """The first ``count`` elements (-1: all).

        Example::

            Dataset.range(10).take(3)  # 0 1 2
        """
        from stoker.ops.take import TakeDataset

        return TakeDataset(self, count, name)

    def skip(self, count: int, name: str | None = None) -> Dataset:
        """All but the first ``count`` elements (-1: skip all).

        Example::

            Dataset.range(10).skip(7)  # 7 8 9
        """
        from stoker.ops.skip import SkipDataset

        return SkipDataset(self, count, name)

    def take_while(self, predicate: Callable[..., Any], name: str | None = None) -> Dataset:
        """Elements up to (not including) the first for which ``predicate`` is False.

        Example::

            Dataset.range(10).take_while(lambda x: x < 3)  # 0 1 2
        """
        from stoker.ops.take_while import TakeWhileDataset

        return TakeWhileDataset(self, predicate, name)

    def shard(self, num_shards: int, index: int, name: str | None = None) -> Dataset:
        """Every ``num_shards``-th element, starting at ``index``.

        Example::

            Dataset.range(10).shard(num_shards=3, index=1)  # 1 4 7
        """
        from stoker.ops.shard import ShardDataset

        return ShardDataset(self, num_shards, index, name)

    def concatenate(self, dataset: Dataset, name: str | None = None) -> Dataset:
        """This dataset's elements, then ``dataset``'s.

        Example::

            Dataset.range(2).concatenate(Dataset.range(5, 7))  # 0 1 5 6
        """
        from stoker.ops.concatenate import ConcatenateDataset

        return ConcatenateDataset(self, dataset, name)

    # -- performance ---------------------------------------------------------------------

    def prefetch(self, buffer_size: int, name: str | None = None) -> Dataset:
        """Prepare up to ``buffer_size`` elements ahead on a background thread.

        Example::

            Dataset.range(100).map(load).batch(32).prefetch(2)
        """
        from stoker.ops.prefetch import PrefetchDataset

        return PrefetchDataset(self, buffer_size, name)

    def cache(self, filename: str = "", name: str | None = None) -> Dataset:
        """Keep the first complete pass in memory (``filename=""``) or in a file.

        Later passes read the cache. A pass that stops early is never kept as complete.

        Example::

            Dataset.range(5).map(expensive).cache("/tmp/features.stoker").repeat(10)
        """
        from stoker.ops.cache import CacheDataset

        return CacheDataset(self, filename, name)

    # -- whole-dataset -------------------------------------------------------------------

    def apply(self, transformation_func: Callable[[Dataset], Dataset]) -> Dataset:
        """``transformation_func(self)``, which must return a Dataset.

        Example::

            Dataset.range(10).apply(lambda ds: ds.filter(lambda x: x > 5))  # 6 7 8 9
        """
        result = transformation_func(self)
        if not isinstance(result, Dataset):
            raise TypeError(
                f"apply(): {transformation_func!r} returned {type(result).__name__}, "
                "expected a stoker Dataset"
            )
        return result

    def reduce(
        self, initial_state: Any, reduce_func: Callable[[Any, Any], Any], name: str | None = None
    ) -> Any:
        """Fold every element into a state: ``reduce_func(state, element) -> state``.

        Example::

            Dataset.range(5).reduce(0, lambda s, x: s + x)  # 10
        """
        del name
        state = initial_state
        with self.iterator() as it:
            for element in it:
                state = reduce_func(state, element)
        return state
