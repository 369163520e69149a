"""Run a pipeline's expensive stages on Ray actors, on one host or across a cluster.

``ds.map(f, num_parallel_calls=AUTOTUNE, executor="ray")`` computes ``f`` on Ray actors;
everything else in the pipeline, and its semantics (order, ``deterministic=False``,
errors with the user's traceback, ``ignore_errors``, checkpoints), stays as it is. Ray is
an optional extra (``pip install 'stoker[ray]'``), imported only when a stage asks for it.

Which cluster, how many actors and how work is sent: :func:`configure` (process-wide
defaults of the ``"ray"`` executor) or :class:`RayExecutor`'s arguments; which cluster
``address`` means, and who shuts it down: :mod:`stoker.ray._cluster`. docs/ray.md runs the
same pipeline on a laptop, a big host and a cluster.

Ray Data and Ray Train: :func:`from_ray_data` reads a ``ray.data.Dataset`` as a stoker
dataset; :func:`shard_for_worker` gives each Ray Train worker its shard of a pipeline.

Example::

    import stoker, stoker.ray
    stoker.ray.configure(address=None, actors=(2, 8))  # None: local cluster if none runs
    ds = stoker.Dataset.range(1000).map(f, num_parallel_calls=stoker.AUTOTUNE,
                                        executor="ray")
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from stoker.exec import register_executor
from stoker.options import AUTOTUNE
from stoker.ray._cluster import connect, owns_cluster
from stoker.ray._cluster import shutdown as _shutdown_cluster
from stoker.ray._data import from_ray_data, shard_for_worker
from stoker.ray.executor import RayExecutor, clear_parked

__all__ = [
    "RayConfig",
    "RayExecutor",
    "config",
    "configure",
    "connect",
    "executor_for",
    "from_ray_data",
    "owns_cluster",
    "shard_for_worker",
    "shutdown",
]


@dataclasses.dataclass(frozen=True)
class RayConfig:
    """What ``executor="ray"`` builds its :class:`RayExecutor` with (see its arguments).

    ``actors=None`` takes the stage's ``num_parallel_calls`` when it is a number (``n``
    actors), else ``(1, CPUs of the cluster)``.
    """

    address: str | None = "auto"
    actors: int | tuple[int, int] | None = None
    in_flight_per_actor: int = 2
    chunk_size: int = AUTOTUNE
    max_bytes_in_flight: int = 256 << 20
    num_cpus: float = 1.0
    ray_options: dict[str, Any] | None = None


_lock = threading.Lock()
_config = RayConfig()


def config() -> RayConfig:
    """The configuration ``executor="ray"`` uses now."""
    return _config


def configure(**settings: Any) -> RayConfig:
    """Set the defaults of ``executor="ray"`` (fields of :class:`RayConfig`); returns the
    previous configuration (pass its fields back to restore it).

    Example::

        stoker.ray.configure(address="ray://head:10001", actors=(4, 64))
    """
    global _config
    fields = {f.name for f in dataclasses.fields(RayConfig)}
    unknown = set(settings) - fields
    if unknown:
        raise TypeError(
            f"configure(): unknown setting(s) {sorted(unknown)}; known: {sorted(fields)}"
        )
    with _lock:
        old = _config
        _config = dataclasses.replace(old, **settings)
    return old


def executor_for(request: Any) -> RayExecutor:
    """The ``"ray"`` executor for a stage's request (the engine's ``ExecutorRequest``)."""
    cfg = _config
    actors = cfg.actors
    if actors is None and not getattr(request, "autotune", True):
        actors = int(request.concurrency)
    return RayExecutor(
        request.spec,
        request.stage,
        address=cfg.address,
        actors=actors,
        in_flight_per_actor=cfg.in_flight_per_actor,
        chunk_size=cfg.chunk_size,
        max_bytes_in_flight=cfg.max_bytes_in_flight,
        num_cpus=cfg.num_cpus,
        seed=getattr(request, "seed", None),
        owner=getattr(request, "owner", None),
        ray_options=cfg.ray_options,
    )


def shutdown() -> None:
    """Stop the actors kept between passes, and the local cluster if stoker started it."""
    clear_parked()
    _shutdown_cluster()


register_executor("ray", executor_for)
