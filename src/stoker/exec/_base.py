"""The one interface every executor serves: submit chunks, poll for completions.

A parallel stage hands an executor *chunks*: lists of ``(index, element)`` pairs to run
through the stage's element function (``MapDataset.element_fn(pass_id)``: index and pass
feed ``random_map``'s per-element generator). The executor computes them wherever it runs
code, in a shared thread pool (:mod:`stoker.exec.threads`), in worker processes
(:mod:`stoker.exec.processes`), inline, or (later) on a cluster, and hands back one
:class:`Completion` per chunk, in whatever order they finish. Ordering, buffering and
checkpoints belong to the stage, not to the executor, so every executor behaves the same.

An element whose function raised comes back as a :class:`Failure` holding the exception,
in its place in the chunk; the other elements of the chunk are still computed.

A stage gets its executor by name from :func:`stoker.exec.make_executor` with an
:class:`ExecutorRequest`; it never names a concrete class. What a stage calls:
:meth:`~Executor.accepting` / :meth:`~Executor.submit` / :meth:`~Executor.poll`,
:meth:`~Executor.chunk_size`, :meth:`~Executor.resolve` on each result it delivers and
:meth:`~Executor.discard` on results it drops, and :meth:`~Executor.release` (end of a
pass: workers may be kept for the next one) or :meth:`~Executor.close`.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, Protocol

from stoker.errors import WorkerError

__all__ = [
    "CUT_FACTOR",
    "CUT_MIN_S",
    "Completion",
    "ElementFnSpec",
    "Executor",
    "ExecutorRequest",
    "Failure",
    "InlineExecutor",
    "run_chunk",
]

#: ``f(index, element) -> output``.
ElementFn = Callable[[int, Any], Any]


class ElementFnSpec(Protocol):
    """Makes the element function of one pass (``MapDataset`` is one)."""

    def element_fn(self, pass_id: list[int]) -> ElementFn: ...


class Failure:
    """Stands in for an element whose computation (or input) raised: the exception, held
    at the element's place until the consumer reaches it.

    Attributes:
        exc: The exception (``None`` once :meth:`throw` raised it).
        from_input: The stage's input raised it, not the stage's own function.
    """

    __slots__ = ("exc", "from_input")

    def __init__(self, exc: BaseException, from_input: bool = False):
        self.exc: BaseException | None = exc
        self.from_input = from_input

    def __repr__(self) -> str:
        return f"Failure({self.exc!r})"

    def throw(self, stage: str, index: int | None = None) -> NoReturn:
        """Raise the held exception in the consumer; once.

        The holder lets go of it first and this frame keeps no reference: the exception's
        traceback holds the frames it passes through (the stage's, whose ``self`` is the
        iterator), so a reference from any of them back to the exception would be a cycle
        that keeps a dropped iterator, and its worker processes, alive until the garbage
        collector runs.

        A ``SystemExit`` (or any other ``BaseException`` but ``KeyboardInterrupt``) raised
        where stoker ran code for the consumer, on a thread or in a worker process, is
        raised as :class:`~stoker.errors.WorkerError` naming the stage, the original as
        its ``__cause__`` (with the worker's traceback): ``sys.exit()`` in a map function
        must not end a training script with status 0. ``KeyboardInterrupt`` passes.
        """
        exc, self.exc = self.exc, None
        if exc is None:
            raise RuntimeError(f"stage {stage}: internal error: a failure raised twice")
        try:
            if isinstance(exc, (Exception, KeyboardInterrupt)):
                raise exc
            where = f" at input element {index}" if index is not None else ""
            raise WorkerError(
                f"stage {stage}: {type(exc).__name__}({_args(exc)}) was raised{where} where "
                "stoker runs code for you (a thread or a worker process); it is reported "
                "as an error of the stage instead of ending the program. Its traceback is "
                "the cause below."
            ) from exc
        finally:
            del exc


def _args(exc: BaseException) -> str:
    return ", ".join(repr(a) for a in exc.args)


class Completion:
    """The outputs of one chunk, with how long it took.

    Attributes:
        tag: The tag the chunk was submitted with.
        results: One output (or :class:`Failure`) per element, in the chunk's order.
        busy_s: Wall time spent computing the chunk. [Unit: second]
        cpu_s: CPU time of the thread or process that computed it. [Unit: second]
        start: ``time.perf_counter()`` when the chunk started (same clock in every thread
            of this process; ``0.0`` when computed elsewhere). [Unit: second]
        nbytes: Bytes of array data the results hold, when the executor moved them
            (processes); ``0`` otherwise. [Unit: byte]
        worker: The pid of the worker process that computed it, or the thread ident of
            the worker thread; ``0`` when unknown (the trace's worker tracks).
        rest: The chunk's items the worker did not start, ``(index, element)`` pairs
            following ``results`` (a *cut* chunk: its elements took far longer than the
            last ones, see :data:`CUT_FACTOR`); the stage submits them again. ``None``
            for a whole chunk. Only executors asked for it (``ExecutorRequest.splittable``)
            cut chunks.
        delay_s: Time the computing process spent runnable but not running (waiting for a
            CPU) during the chunk, where the executor measures it (worker processes, from
            Linux schedstat); ``0.0`` otherwise. [Unit: second]
    """

    __slots__ = (
        "busy_s",
        "cpu_s",
        "delay_s",
        "nbytes",
        "rest",
        "results",
        "start",
        "tag",
        "worker",
    )

    def __init__(
        self,
        tag: int,
        results: list[Any],
        busy_s: float,
        cpu_s: float,
        start: float = 0.0,
        nbytes: int = 0,
        worker: int = 0,
        rest: list[tuple[int, Any]] | None = None,
    ):
        self.tag = tag
        self.results = results
        self.busy_s = busy_s
        self.cpu_s = cpu_s
        self.start = start
        self.nbytes = nbytes
        self.worker = worker
        self.rest = rest
        self.delay_s = 0.0

    def __repr__(self) -> str:
        return f"<Completion tag={self.tag} n={len(self.results)} busy={self.busy_s:.6f}s>"


#: A chunk is cut (its unstarted items handed back, ``Completion.rest``) once it has run
#: this many times as long as its elements took last time...
CUT_FACTOR = 3.0
#: ...and at least this long: a chunk that long is worth a second hand-off. [Unit: second]
CUT_MIN_S = 0.01


def run_chunk(
    fn: ElementFn,
    tag: int,
    items: Sequence[tuple[int, Any]],
    clock: Callable[[], float],
    cut_s: float = 0.0,
) -> Completion:
    """Compute one chunk; ``clock`` is the CPU clock (thread or process time).

    With ``cut_s > 0`` the chunk stops after the first element that ends ``cut_s`` or
    more after it started: the elements not started are the completion's ``rest``.
    """
    start = time.perf_counter()
    cpu = clock()
    out: list[Any] = []
    append = out.append
    if cut_s > 0.0:
        deadline = start + cut_s
        perf = time.perf_counter
        for index, element in items:
            try:
                append(fn(index, element))
            except BaseException as e:
                append(Failure(e))
            if perf() >= deadline and len(out) < len(items):
                break
    else:
        for index, element in items:
            try:
                append(fn(index, element))
            except BaseException as e:  # delivered to the consumer, never lost
                append(Failure(e))
    done = Completion(tag, out, time.perf_counter() - start, clock() - cpu, start)
    # A failure's traceback holds this frame: no local may lead back to the failure.
    del out, append
    return done


@dataclasses.dataclass(frozen=True)
class ExecutorRequest:
    """What a stage tells :func:`~stoker.exec.make_executor` about the work it hands out.

    Attributes:
        spec: Makes the element function of each pass; executors that run elsewhere
            pickle it (cloudpickle), so it must not hold the stage's input.
        stage: Stage name, for errors and thread names.
        concurrency: Chunks to compute at once (the stage's ``num_parallel_calls``).
        cpu_budget: Cores the pipeline may use (resolved ``Options.cpu_budget``).
        io_concurrency: Calls allowed in flight for work that mostly waits.
        ram_budget: Bytes buffers may hold; bounds shared-memory rings. [Unit: byte]
        seed: ``Options.seed`` (worker processes seed their global generators from it).
        autotune: ``concurrency`` came from ``AUTOTUNE``: ``"auto"`` may go beyond it
            for calls that mostly wait.
        owner: Workers kept between passes serve this object's next pass (held weakly);
            ``None``: nothing is kept.
        stats: The stage's recorder (``set_info`` receives the executor's choice).
        splittable: The stage takes cut chunks (``Completion.rest``) and submits their
            rest again: worker processes then cut a chunk whose elements suddenly take
            far longer than the last ones (the work changed), instead of holding every
            element behind it.
    """

    spec: ElementFnSpec
    stage: str
    concurrency: int
    cpu_budget: int
    io_concurrency: int = 64
    ram_budget: int = 1 << 32
    seed: int | None = None
    autotune: bool = False
    owner: Any = None
    stats: Any = None
    splittable: bool = False

    @property
    def max_threads(self) -> int:
        """Bound this stage asks of the shared thread pool (CPU budget + I/O concurrency)."""
        return self.cpu_budget + self.io_concurrency


class Executor(abc.ABC):
    """Where a stage's element function runs.

    Use from one thread (the stage's consumer). ``submit`` never blocks for long;
    ``poll`` waits at most ``timeout`` and raises :class:`~stoker.errors.WorkerError` when
    the executor can no longer compute (a worker process died).
    """

    #: Registered name: ``"inline"``, ``"thread"``, ``"process"``, ... (``"auto"``
    #: reports the kind it currently runs on).
    kind = "executor"
    #: Work per chunk worth one hand-off (chunks of cheap elements grow to it); ``0``:
    #: one element per chunk. [Unit: second]
    chunk_s = 0.0
    #: At most this many bytes of arrays per chunk (shared memory holds a window of
    #: chunks); ``0``: no bound. [Unit: byte]
    chunk_bytes = 0
    _MAX_CHUNK = 64

    def __init__(self) -> None:
        self.in_flight = 0  # chunks submitted and not yet returned by poll()
        #: What runs the chunks and why, for ``it.executor_info`` and the stats.
        self.info: dict[str, Any] = {"executor": self.kind}

    @property
    @abc.abstractmethod
    def slots(self) -> int:
        """Chunks worth keeping in flight so no worker idles."""

    @property
    def capacity(self) -> int:
        """Chunks :meth:`submit` accepts before the first is polled back (``>= slots``):
        the extra ones wait in the executor and start the moment a worker frees up."""
        return self.slots

    @property
    def parallelism(self) -> int:
        """Chunks computed at once."""
        return self.slots

    def ready(self) -> bool:
        """False while workers are still starting (a submit would wait for them)."""
        return True

    def accepting(self) -> bool:
        """Whether the stage should submit another chunk now."""
        return self.in_flight < self.capacity

    def chunk_size(self, elem_s: float, elem_bytes: float) -> int:
        """Elements per chunk, given the measured compute time and array bytes of one."""
        if self.chunk_s <= 0.0 or elem_s <= 0.0:
            return 1
        chunk = min(self._MAX_CHUNK, round(self.chunk_s / elem_s))
        if self.chunk_bytes and elem_bytes > 0:
            chunk = min(chunk, int(self.chunk_bytes // elem_bytes))
        return max(1, chunk)

    @abc.abstractmethod
    def submit(self, tag: int, pass_id: list[int], items: list[tuple[int, Any]]) -> None:
        """Start computing ``items`` with the element function of pass ``pass_id``."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[Completion]:
        """Completions that arrived, waiting up to ``timeout`` seconds for the first one."""

    def resolve(self, result: Any) -> Any:
        """The value to deliver for ``result`` (of a completion), called right before it
        is delivered: an executor may hand results over lazily (shared memory)."""
        return result

    def discard(self, results: Iterable[Any]) -> None:
        """Results that will never be delivered (a restore dropped them)."""
        del results

    @abc.abstractmethod
    def close(self, wait: bool = True) -> None:
        """Stop; idempotent. Chunks in flight are dropped.

        Args:
            wait: Wait (a few seconds at most) for workers to stop. Finalizers pass
                ``False``: they may run on any thread, inside anything.
        """

    def release(self) -> None:
        """Give workers back for reuse (after a finished pass); default: :meth:`close`."""
        self.close()

    def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the chunks in flight (their results dropped), then
        :meth:`release`: what a restore does with the executor of the pass it abandons."""
        deadline = time.monotonic() + timeout
        try:
            while self.in_flight and time.monotonic() < deadline:
                for c in self.poll(min(0.1, max(0.0, deadline - time.monotonic()))):
                    self.discard(c.results)
        except WorkerError:
            self.close()
            return
        self.release()


class InlineExecutor(Executor):
    """Computes each chunk in ``submit``, on the caller's thread: no hand-off cost."""

    kind = "inline"

    def __init__(self, spec: ElementFnSpec):
        super().__init__()
        self._spec = spec
        self._fns: dict[tuple[int, ...], ElementFn] = {}
        self._done: list[Completion] = []

    @property
    def slots(self) -> int:
        return 1

    def submit(self, tag: int, pass_id: list[int], items: list[tuple[int, Any]]) -> None:
        key = tuple(pass_id)
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = self._spec.element_fn(list(pass_id))
        self._done.append(run_chunk(fn, tag, items, time.thread_time))
        self.in_flight += 1

    def poll(self, timeout: float) -> list[Completion]:
        del timeout
        done, self._done = self._done, []
        self.in_flight -= len(done)
        return done

    def close(self, wait: bool = True) -> None:
        del wait
        self._done = []
        self.in_flight = 0
