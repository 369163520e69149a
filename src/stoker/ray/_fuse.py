"""Consecutive element-wise maps on Ray run as one stage: ``g(f(x))`` in one call.

``ds.map(f, num_parallel_calls=..., executor="ray").map(g, ..., executor="ray")`` would
send every element to an actor for ``f``, back to the driver, and out again for ``g``: two
round trips of 0.5-1.5 ms per call, and every array through the object store twice. When
the two maps are consecutive (nothing between them) and fusing changes nothing a user
can see, they run as one parallel stage whose element function is ``g(f(x))``
(:class:`FusedMapDataset`), with the same chunking (calls of ~30 ms of work), so each
element makes one round trip.

Fused when, for every map of the chain:

* it is a parallel ``map``/``random_map`` (``num_parallel_calls`` set) going to Ray
  (``executor="ray"``, or ``"auto"`` with ``Options.executor="ray"``), and nothing stands
  between it and the next (``ignore_errors``, ``with_options``, ``prefetch``, any other op
  ends the chain);
* its ``deterministic`` (its own, else the pipeline's) is the same as the others';
* it draws no randomness keyed by its element index, unless it is the chain's first map:
  a ``random_map`` is fused only as the first map, and nothing is fused when
  ``Options.seed`` is set (worker generators are reseeded per element then). After an
  element of ``f`` raises (and ``ignore_errors`` or the caller goes on), the element
  indices ``g`` sees shift by one; a fused ``g`` would see ``f``'s, so its draws would
  differ.

What stays the same: order (``deterministic``), every value, errors (an exception raised
in ``g`` is raised as itself with the actor's traceback as ``__cause__``, and a note names
``g`` and its stage, then the fused stage), ``ignore_errors`` (drops the element, whichever
map raised), ``random_map``'s draws in the first map. What changes: the pipeline has one
stage, named ``map(f)+map(g)`` (``name=`` of each map where given) in errors, ``it.stats()``
and traces; ``num_parallel_calls`` is the largest of the maps' (``AUTOTUNE`` if any is);
checkpoints of the fused pipeline restore into the fused pipeline.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

from stoker.ops._common import annotate, stop_iteration_error
from stoker.ops.map import MapDataset
from stoker.options import AUTOTUNE, Options
from stoker.stats import stage_label

__all__ = ["FusedMapDataset", "fused"]

# ds -> (what decided the fusion, the fused dataset); weak: it lives as long as ds.
_CACHE: weakref.WeakKeyDictionary[MapDataset, tuple[Any, MapDataset]] = weakref.WeakKeyDictionary()


class _Chain:
    """Stands for the fused maps' functions in messages (``f+g``); computing goes through
    :meth:`FusedMapDataset.element_fn`."""

    def __init__(self, fns: list[Any]):
        self.fns = fns
        names = [getattr(f, "__qualname__", None) or type(f).__name__ for f in fns]
        self.__qualname__ = self.__name__ = "+".join(names)

    def __call__(self, *_args: Any) -> Any:
        raise RuntimeError(
            f"internal error: the fused Ray stage {self.__qualname__} runs through element_fn()"
        )


class FusedMapDataset(MapDataset):
    """Consecutive Ray maps (``stages``, first to last) as one parallel map stage."""

    _state_params = ()

    def __init__(self, stages: list[MapDataset], deterministic: bool):
        npcs = [s._num_parallel_calls for s in stages]
        npc = AUTOTUNE if AUTOTUNE in npcs else max(int(n) for n in npcs if n is not None)
        labels = [stage_label(s) for s in stages]
        super().__init__(
            stages[0]._input,
            _Chain([s._fn for s in stages]),
            npc,
            deterministic,
            "ray",
            "+".join(labels),
        )
        # Without their inputs: the spec is pickled to the actors, and must not carry
        # the pipeline's source with it.
        self._stages = [_detached(s) for s in stages]
        self._labels = labels

    def _random_access(self) -> Any:
        return None

    def element_fn(self, pass_id: list[int]) -> Any:
        """``f(index, element)`` running every map in turn; an exception names its map."""
        steps = [
            (s.element_fn(pass_id), label, s._fn)
            for s, label in zip(self._stages, self._labels, strict=True)
        ]

        def run(index: int, x: Any) -> Any:
            for fn, label, user_fn in steps:
                try:
                    x = fn(index, x)
                except StopIteration:
                    raise stop_iteration_error(label, user_fn) from None
                except Exception as e:
                    annotate(e, label, user_fn, index)
                    raise
            return x

        return run


def _detached(ds: MapDataset) -> MapDataset:
    d = copy.copy(ds)
    d.__dict__.update(_input=None, _inputs=())
    d.__dict__.pop("_root_passes", None)
    return d


def _on_ray(ds: Any, opts: Options) -> bool:
    return (
        isinstance(ds, MapDataset)
        and not isinstance(ds, FusedMapDataset)
        and ds._num_parallel_calls is not None
        and (ds._executor == "ray" or (ds._executor == "auto" and opts.executor == "ray"))
    )


def _deterministic(ds: MapDataset, opts: Options) -> bool:
    return bool(ds._deterministic if ds._deterministic is not None else opts.deterministic)


def fused(ds: MapDataset, opts: Options) -> MapDataset:
    """``ds`` and the Ray maps right before it as one :class:`FusedMapDataset` when the
    module docstring's rules allow it; else ``ds``. ``opts``: the pipeline's resolved
    options. The fused dataset is made once per ``ds`` and options, so its passes count
    as ``ds``'s would (``random_map`` draws per pass)."""
    if not _on_ray(ds, opts) or opts.seed is not None:
        return ds
    det = _deterministic(ds, opts)
    chain = [ds]
    while not chain[-1]._rng:  # a random_map may only be the first map
        up = chain[-1]._input
        if not isinstance(up, MapDataset) or not _on_ray(up, opts):
            break
        if _deterministic(up, opts) != det:
            break
        chain.append(up)
    if len(chain) == 1:
        return ds
    chain.reverse()
    key = (len(chain), det, opts.executor)
    cached = _CACHE.get(ds)
    if cached is not None and cached[0] == key:
        return cached[1]
    out = FusedMapDataset(chain, det)
    _CACHE[ds] = (key, out)
    return out
