"""stoker.jax.prefetch_to_device on JAX's CPU backend."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import stoker.jax as sj  # noqa: E402
from stoker import Dataset  # noqa: E402

Pair = collections.namedtuple("Pair", ["image", "label"])


def test_values_order_structure_and_dtypes():
    ds = Dataset.range(12).map(
        lambda i: Pair(np.full((2, 2), i, np.uint8), {"y": np.float32(i), "name": b"x"})
    )
    out = list(sj.prefetch_to_device(ds.batch(4), size=2))
    assert len(out) == 3
    for b, batch in enumerate(out):
        assert type(batch) is Pair
        assert isinstance(batch.image, jax.Array) and batch.image.dtype == np.uint8
        np.testing.assert_array_equal(
            np.asarray(batch.image[:, 0, 0]), np.arange(b * 4, b * 4 + 4, dtype=np.uint8)
        )
        assert batch.label["y"].dtype == np.float32
        assert isinstance(batch.label["name"], np.ndarray)  # bytes: passed through


def test_size_elements_are_sent_ahead():
    pulled = []

    def source():
        for i in range(6):
            pulled.append(i)
            yield np.array([i])

    it = iter(sj.prefetch_to_device(source(), size=3))
    assert int(next(it)[0]) == 0
    assert len(pulled) == 3  # elements 0, 1, 2 were put before 0 was handed out
    assert [int(x[0]) for x in it] == [1, 2, 3, 4, 5]
    assert [int(x[0]) for x in sj.prefetch_to_device([np.array([7])], size=4)] == [7]


def test_reiterable_and_scalars():
    loader = sj.prefetch_to_device(Dataset.range(3), size=1)
    assert [int(x) for x in loader] == [0, 1, 2]
    assert [int(x) for x in loader] == [0, 1, 2]


def test_sharding_and_device_are_used():
    device = jax.devices()[0]
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    n = len(jax.devices()) * 2
    for target in (device, spec):
        [x] = list(sj.prefetch_to_device([np.arange(n, dtype=np.int32)], sharding=target))
        assert x.tolist() == list(range(n))
        if target is spec:
            assert x.sharding == spec
        else:
            assert x.devices() == {device}


def test_batch_is_split_over_devices():
    # Two CPU devices need an XLA flag set before jax is imported: a fresh interpreter.
    code = textwrap.dedent(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import jax, numpy as np
        import stoker.jax as sj
        from stoker import Dataset
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
        spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
        batches = list(sj.prefetch_to_device(Dataset.range(8).batch(4), sharding=spec))
        assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
        shards = sorted((s.device.id, s.data.tolist()) for s in batches[0].addressable_shards)
        print(len(jax.devices()), shards)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "2 [(0, [0, 1]), (1, [2, 3])]"


def test_shard_for_process_is_identity_with_one_process():
    ds = Dataset.range(5)
    assert sj.shard_for_process(ds) is ds


def test_bad_size_and_missing_jax(monkeypatch):
    with pytest.raises(ValueError, match="size=0"):
        sj.prefetch_to_device([], size=0)
    monkeypatch.setitem(sys.modules, "jax", None)
    with pytest.raises(ImportError, match=r"pip install 'stoker\[jax\]'"):
        sj.prefetch_to_device([])


def test_sharding_across_processes_builds_global_arrays(monkeypatch):
    # One process cannot make a sharding that spans two; check the dispatch with a stand-in.
    class Spanning:
        is_fully_addressable = False

    calls = []
    monkeypatch.setattr(
        jax,
        "make_array_from_process_local_data",
        lambda sharding, rows: calls.append((sharding, rows.tolist())) or rows,
        raising=False,
    )
    spanning = Spanning()
    out = list(sj.prefetch_to_device([(np.array([1, 2]), b"id")], sharding=spanning))
    assert calls == [(spanning, [1, 2])]
    assert out[0][1] == b"id"
