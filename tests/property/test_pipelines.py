"""Property tests over random pipelines (see reference.py for the model and the specs).

(a) a pipeline's elements equal the list model's (as a multiset after a shuffle);
(b) same seeds give the same elements, run after run;
(c) concatenated batches are the unbatched elements;
(d) a state saved at a random step resumes exactly, in this process and in a new one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stoker as sk

_HERE = Path(__file__).resolve().parent


def _load_reference() -> Any:
    # Loaded by path so the tests work whatever pytest's import mode (no __init__.py here).
    spec = importlib.util.spec_from_file_location(
        "stoker_property_reference", _HERE / "reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _load_reference()

# STOKER_PROPERTY_EXAMPLES=2000 for a thorough local run; the default keeps the suite fast.
_EXAMPLES = int(os.environ.get("STOKER_PROPERTY_EXAMPLES", "40"))
PROPERTY = settings(
    max_examples=_EXAMPLES,
    deadline=None,  # a shared, noisy machine: no timing
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

# -- strategies -----------------------------------------------------------------------------

_small = st.integers(-5, 5)

ARGS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "map_add": st.tuples(_small),
    "map_mul": st.tuples(st.integers(-3, 3)),
    "filter_mod": st.integers(2, 4).flatmap(lambda m: st.tuples(st.just(m), st.integers(0, m - 1))),
    "take": st.tuples(st.integers(-1, 12)),
    "skip": st.tuples(st.integers(-1, 12)),
    "repeat": st.tuples(st.integers(0, 3)),
    "shard": st.integers(1, 4).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    "batch": st.tuples(st.integers(1, 5), st.booleans()),
    "padded_batch": st.tuples(st.integers(1, 5)),
    "unbatch": st.just(()),
    "take_while_lt": st.tuples(st.integers(-2, 30)),
    "scan_sum": st.just(()),
    "unique": st.just(()),
    "enumerate": st.tuples(st.integers(-3, 3)),
    "concat_range": st.tuples(st.integers(-3, 5), st.integers(-3, 8)),
    "zip_range": st.tuples(st.integers(0, 15)),
    "flat_map_mod": st.tuples(st.integers(1, 4)),
    "interleave_mod": st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
    "map_pair_sum": st.just(()),
    "filter_pair": st.just(()),
    "shuffle": st.tuples(st.integers(1, 8), st.integers(0, 3)),
}

_ints = st.lists(st.integers(-20, 20), max_size=15)
SOURCES = st.one_of(
    st.tuples(st.just("range"), st.integers(0, 20)).map(list),
    st.tuples(st.just("range"), st.integers(-5, 5), st.integers(-5, 20), st.integers(1, 3)).map(
        list
    ),
    _ints.map(lambda xs: ["slices", xs]),
    st.integers(0, 12).flatmap(
        lambda n: st.tuples(
            st.just("pairs"),
            st.lists(st.integers(-9, 9), min_size=n, max_size=n),
            st.lists(st.integers(-9, 9), min_size=n, max_size=n),
        ).map(list)
    ),
)


def _draw_ops(draw: Any, kind: str, count: int, allowed: set[str] | None) -> tuple[list, str]:
    ops: list[list[Any]] = []
    for _ in range(count):
        names = sorted(
            name
            for name, (kinds, _) in ref.OPS.items()
            if kind in kinds and (allowed is None or name in allowed)
        )
        if not names:
            break
        name = draw(st.sampled_from(names))
        args = list(draw(ARGS[name]))
        if allowed is not None and name == "batch":
            args[1] = False  # drop_remainder depends on the order: keep the multiset exact
        ops.append([name, *args])
        kind = ref.OPS[name][1] or kind
    return ops, kind


@st.composite
def exact_pipelines(draw: Any, max_ops: int = 5) -> dict[str, Any]:
    """Pipelines without a shuffle: elements must equal the model's, in order."""
    source = draw(SOURCES)
    no_shuffle = set(ref.OPS) - {"shuffle"}
    ops, _ = _draw_ops(draw, ref.source_kind(source), draw(st.integers(0, max_ops)), no_shuffle)
    return {"source": source, "ops": ops}


@st.composite
def shuffled_pipelines(draw: Any) -> dict[str, Any]:
    """Exact prefix, a shuffle, then only ops that keep the multiset of values."""
    spec = draw(exact_pipelines(max_ops=3))
    spec["ops"].append(["shuffle", *draw(ARGS["shuffle"])])
    suffix, _ = _draw_ops(
        draw, ref.output_kind(spec), draw(st.integers(0, 3)), ref.ORDER_INSENSITIVE
    )
    spec["ops"] += suffix
    return spec


@st.composite
def any_pipelines(draw: Any) -> dict[str, Any]:
    """Any ops in any order, shuffles included."""
    source = draw(SOURCES)
    ops, _ = _draw_ops(draw, ref.source_kind(source), draw(st.integers(0, 5)), None)
    return {"source": source, "ops": ops}


def run(ds: sk.Dataset) -> list[Any]:
    return [ref.to_py(x) for x in ds]


def check_types(element: Any, kind: str) -> None:
    if kind == "int":
        assert type(element) is np.int64, type(element)
    elif kind == "vec":
        assert isinstance(element, np.ndarray) and element.dtype == np.int64
        assert element.ndim == 1 and len(element) > 0
    else:
        assert type(element) is tuple and len(element) == 2
        for v in element:
            check_types(v, "int")


# -- (a) against the model ------------------------------------------------------------------


@PROPERTY
@given(exact_pipelines())
def test_matches_the_reference_model(spec: dict[str, Any]) -> None:
    ds = ref.build(spec)
    elements = list(ds)
    assert [ref.to_py(x) for x in elements] == ref.model(spec)
    kind = ref.output_kind(spec)
    for x in elements:
        check_types(x, kind)
    n = ds.cardinality()
    assert n in (sk.UNKNOWN_CARDINALITY, len(elements)), f"cardinality {n}, got {len(elements)}"


@PROPERTY
@given(shuffled_pipelines())
def test_shuffled_pipelines_are_permutations_of_the_model(spec: dict[str, Any]) -> None:
    assert ref.order_insensitive_after(spec)
    got = ref.flat_values(run(ref.build(spec)))
    assert sorted(got) == sorted(ref.flat_values(ref.model(spec)))


# -- (b) seeded determinism -----------------------------------------------------------------


@PROPERTY
@given(any_pipelines())
def test_same_seed_same_elements(spec: dict[str, Any]) -> None:
    a, b = ref.build(spec), ref.build(spec)
    # Two builds agree pass by pass (a reshuffling pass differs from the one before it,
    # but the sequence of passes is the seed's).
    assert run(a) == run(b)
    assert run(a) == run(b)


# -- (c) batch partitioning -----------------------------------------------------------------


@PROPERTY
@given(any_pipelines(), st.integers(1, 6), st.booleans())
def test_batches_concatenate_to_the_unbatched_elements(
    spec: dict[str, Any], size: int, drop: bool
) -> None:
    to_int = {"int": [], "vec": [["unbatch"]], "pair": [["map_pair_sum"]]}
    spec = {"source": spec["source"], "ops": spec["ops"] + to_int[ref.output_kind(spec)]}
    unbatched = run(ref.build(spec))
    batched = [ref.to_py(b) for b in ref.build(spec).batch(size, drop_remainder=drop)]
    assert all(len(b) == size for b in batched[:-1])
    if drop:
        assert all(len(b) == size for b in batched)
        unbatched = unbatched[: len(unbatched) - len(unbatched) % size]
    assert [x for b in batched for x in b] == unbatched
    rebatched = run(ref.build(spec).batch(size, drop_remainder=drop).unbatch())
    assert rebatched == unbatched


# -- (d) checkpoints ------------------------------------------------------------------------


def resume_point(spec: dict[str, Any], fraction: float) -> tuple[list[Any], int, dict[str, Any]]:
    """The uninterrupted run, a step, and the JSON state saved after that many elements."""
    full = run(ref.build(spec))
    step = min(len(full), int(fraction * (len(full) + 1)))
    it = ref.build(spec).iterator()
    head = [ref.to_py(next(it)) for _ in range(step)]
    assert head == full[:step]
    state = json.loads(json.dumps(it.get_state()))
    it.close()
    return full, step, state


@PROPERTY
@given(any_pipelines(), st.floats(0, 1))
def test_resume_from_a_random_step(spec: dict[str, Any], fraction: float) -> None:
    full, step, state = resume_point(spec, fraction)
    # A fresh build, as a restarted job would have.
    assert run(ref.build(spec).iterator(state)) == full[step:]


_RESUME_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("reference", sys.argv[1])
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    cases = json.load(sys.stdin)
    out = [[ref.to_py(x) for x in ref.build(c["spec"]).iterator(c["state"])] for c in cases]
    json.dump(out, sys.stdout)
    """
)


@settings(PROPERTY, max_examples=max(3, _EXAMPLES // 20))
@given(st.lists(st.tuples(any_pipelines(), st.floats(0, 1)), min_size=8, max_size=8))
def test_resume_in_a_new_process(cases: list[tuple[dict[str, Any], float]]) -> None:
    payload, expected = [], []
    for spec, fraction in cases:
        full, step, state = resume_point(spec, fraction)
        payload.append({"spec": spec, "state": state})
        expected.append(full[step:])
    proc = subprocess.run(
        [sys.executable, "-c", _RESUME_SCRIPT, str(_HERE / "reference.py")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    # JSON turns tuples into lists: compare in that form.
    assert got == json.loads(json.dumps(expected))


_PICKLED_SCRIPT = textwrap.dedent(
    """
    import json, pickle, sys
    ds, state = pickle.load(sys.stdin.buffer)
    json.dump([[int(v) for v in x] for x in ds.iterator(state)], sys.stdout)
    """
)


def test_resume_a_cloudpickled_pipeline_in_a_new_process() -> None:
    # Lambdas and an unseeded shuffle: the state carries what the new process needs.
    ds = sk.Dataset.range(60).map(lambda x: x * 3).filter(lambda x: x % 2 == 0).shuffle(7).batch(4)
    it = ds.iterator()
    for _ in range(3):
        next(it)
    state = json.loads(json.dumps(it.get_state()))
    rest = [[int(v) for v in b] for b in it]
    proc = subprocess.run(
        [sys.executable, "-c", _PICKLED_SCRIPT],
        input=cloudpickle.dumps((ds, state)),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == rest


# -- sample_from_datasets -------------------------------------------------------------------


@PROPERTY
@given(exact_pipelines(max_ops=3), exact_pipelines(max_ops=3), st.integers(0, 3))
def test_sample_from_datasets_merges_its_inputs(a: dict, b: dict, seed: int) -> None:
    def tagged(spec: dict[str, Any], tag: int) -> sk.Dataset:
        return sk.Dataset.zip(sk.Dataset.from_tensors(np.int64(tag)).repeat(), ref.build(spec))

    def build() -> sk.Dataset:
        return sk.Dataset.sample_from_datasets([tagged(a, 0), tagged(b, 1)], seed=seed)

    got = run(build())
    assert got == run(build())
    for tag, spec in ((0, a), (1, b)):
        assert [x for t, x in got if t == tag] == ref.model(spec)
