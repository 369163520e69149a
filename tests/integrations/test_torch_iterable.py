"""stoker.torch.IterableDataset: each element once over DataLoader workers and ranks."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import stoker.torch as st  # noqa: E402
from stoker import Dataset  # noqa: E402


def _square(x):
    return x * x


def _pipeline():
    return Dataset.range(50).map(_square)


def _collect(dataset, num_workers=0):
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers)
    return [int(x) for x in loader]


# Real DataLoader worker processes, in a fresh interpreter: there fork is safe and fast
# (this process may hold threads, and JAX, imported by other tests, warns on fork).
_WORKERS = textwrap.dedent(
    """
    import json, sys
    import torch
    import stoker.torch as st
    from stoker import Dataset

    def square(x):
        return x * x

    def sharded(num_shards, index):
        return Dataset.range(50).shard(num_shards, index).map(square)

    out = {}
    for kind in ("dataset", "function"):
        for rank in range(3):
            source = Dataset.range(50).map(square) if kind == "dataset" else sharded
            ds = st.IterableDataset(source, rank=rank, world_size=3)
            loader = torch.utils.data.DataLoader(
                ds, batch_size=None, num_workers=2, multiprocessing_context="fork"
            )
            out[f"{kind}-{rank}"] = [int(x) for x in loader]
    print(json.dumps(out))
    """
)


def test_workers_and_ranks_share_disjoint_and_complete():
    done = subprocess.run(
        [sys.executable, "-c", _WORKERS], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    for kind in ("dataset", "function"):
        everything = []
        for rank in range(3):
            share = got[f"{kind}-{rank}"]
            assert len(share) == len(set(share)), (kind, rank)
            # Worker w of rank r reads shard r * W + w of R * W (here W=2, R=3).
            expected = [i * i for w in range(2) for i in range(rank * 2 + w, 50, 6)]
            assert sorted(share) == sorted(expected), (kind, rank)
            everything.extend(share)
        assert sorted(everything) == [i * i for i in range(50)], kind


def test_main_process_yields_everything_in_order():
    assert _collect(st.IterableDataset(_pipeline())) == [i * i for i in range(50)]


def test_batches_become_tensors():
    ds = st.IterableDataset(Dataset.range(10).map(lambda x: (x, np.float32(x))).batch(5))
    batches = list(torch.utils.data.DataLoader(ds, batch_size=None))
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert batches[0][1].dtype == torch.float32


def test_defaults_without_torch_distributed():
    ds = st.IterableDataset(_pipeline())
    assert (ds.rank, ds.world_size) == (0, 1)


def test_reads_torch_distributed_when_initialised(monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 2)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 4)
    ds = st.IterableDataset(_pipeline())
    assert (ds.rank, ds.world_size) == (2, 4)
    assert _collect(ds) == [i * i for i in range(2, 50, 4)]


def test_bad_rank_and_world_size():
    with pytest.raises(ValueError, match="both rank and world_size"):
        st.IterableDataset(_pipeline(), rank=0)
    with pytest.raises(ValueError, match=r"rank=3 must be an int in \[0, 3\)"):
        st.IterableDataset(_pipeline(), rank=3, world_size=3)
    with pytest.raises(ValueError, match="world_size=0"):
        st.IterableDataset(_pipeline(), rank=0, world_size=0)


def test_pickles_by_reference():
    ds = st.IterableDataset(_pipeline(), rank=0, world_size=2)
    back = pickle.loads(pickle.dumps(ds))
    assert type(back) is type(ds) and back.world_size == 2
    assert isinstance(back, torch.utils.data.IterableDataset)
