"""stoker.ray.from_ray_data (a ray.data.Dataset read as a stoker dataset) and
stoker.ray.shard_for_worker (a pipeline split across Ray Train workers), on the session's
local cluster (tests/ray/conftest.py)."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import stoker
import stoker.ray
from stoker.errors import CheckpointError
from stoker.options import UNKNOWN_CARDINALITY

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Ray's own import-time deprecation warnings
    ray_data = pytest.importorskip("ray.data")

# Ray Data 2.60 warns about its own deprecated settings whenever a DataContext is made.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")


@pytest.fixture
def ordered() -> Iterator[None]:
    """Ray datasets made in the test keep their rows' order every pass (each copies the
    current DataContext when it is made)."""
    ctx = ray_data.DataContext.get_current()
    old = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        yield
    finally:
        ctx.execution_options.preserve_order = old


def _items(n: int) -> list[dict[str, Any]]:
    return [{"i": i, "s": f"row{i}", "v": np.arange(3) * i} for i in range(n)]


def test_rows_are_dicts_of_numpy_and_every_pass_reads_again() -> None:
    ds = stoker.ray.from_ray_data(ray_data.from_items(_items(6)))
    assert ds.cardinality() == 6
    for _ in range(2):  # two passes, each a fresh execution
        rows = sorted(ds, key=lambda r: int(r["i"]))
        assert [int(r["i"]) for r in rows] == list(range(6))
        for i, row in enumerate(rows):
            assert set(row) == {"i", "s", "v"}
            assert isinstance(row["i"], np.integer)
            assert row["s"] == f"row{i}"
            assert isinstance(row["v"], np.ndarray)
            np.testing.assert_array_equal(row["v"], np.arange(3) * i)
    # A stoker pipeline on top of it.
    doubled = ds.map(lambda r: r["i"] * 2).batch(10)
    (batch,) = list(doubled)
    assert sorted(batch.tolist()) == [0, 2, 4, 6, 8, 10]


def test_batches_and_unknown_cardinality(ordered: None) -> None:
    ray_ds = ray_data.range(10, override_num_blocks=2)
    ds = stoker.ray.from_ray_data(ray_ds, batch_size=4)
    assert ds.cardinality() == 3
    batches = list(ds)
    assert [b["id"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(isinstance(b["id"], np.ndarray) for b in batches)
    # Ray cannot know how many rows a filter keeps without running it.
    from ray.data.expressions import col

    high = stoker.ray.from_ray_data(ray_ds.filter(expr=col("id") > 5))
    assert high.cardinality() == UNKNOWN_CARDINALITY
    assert [int(r["id"]) for r in high] == [6, 7, 8, 9]


@pytest.mark.parametrize("batch_size", [None, 3])
def test_checkpoint_restores_by_reading_again(ordered: None, batch_size: int | None) -> None:
    ds = stoker.ray.from_ray_data(ray_data.range(20, override_num_blocks=2), batch_size=batch_size)

    def ids(elements: Any) -> list[int]:
        return [int(i) for e in elements for i in np.atleast_1d(e["id"])]

    whole = ids(ds)
    it = ds.iterator()
    head = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(it.get_state()))
    rest = ids(it)
    assert ids(head) + rest == whole == list(range(20))
    restored = ds.iterator(state)
    assert ids(restored) == rest
    # A position past the end of the dataset is not this dataset's.
    state["index"] = 1000
    with pytest.raises(CheckpointError, match="ended after"):
        next(ds.iterator(state))


def test_checkpoint_refused_without_preserve_order() -> None:
    ctx = ray_data.DataContext.get_current()
    assert not ctx.execution_options.preserve_order  # Ray Data's default
    it = stoker.ray.from_ray_data(ray_data.range(5, override_num_blocks=1)).iterator()
    next(it)
    with pytest.raises(CheckpointError, match="preserve_order"):
        it.get_state()
    it.close()


def test_close_mid_pass_and_bad_arguments() -> None:
    it = stoker.ray.from_ray_data(
        ray_data.range(1000, override_num_blocks=2), batch_size=10
    ).iterator()
    assert next(it)["id"].shape == (10,)
    it.close()
    with pytest.raises(StopIteration):
        next(it)
    with pytest.raises(TypeError, match=r"ray\.data\.Dataset, got list"):
        stoker.ray.from_ray_data([{"a": 1}])
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        stoker.ray.from_ray_data(ray_data.range(3, override_num_blocks=1), batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        stoker.ray.from_ray_data(ray_data.range(3, override_num_blocks=1), batch_size=2.5)  # type: ignore[arg-type]


def test_refuses_to_start_ray_off_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    it = stoker.ray.from_ray_data(ray_data.range(3, override_num_blocks=1)).iterator()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            next(it)
        except BaseException as e:
            errors.append(e)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as if Ray were not started
    thread = threading.Thread(target=first)
    thread.start()
    thread.join()
    monkeypatch.undo()
    it.close()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError), errors
    assert "not the main thread" in str(errors[0])


class _Context:
    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    def get_world_rank(self) -> int:
        return self.rank

    def get_world_size(self) -> int:
        return self.world


def test_shard_for_worker_splits_disjointly() -> None:
    files = stoker.Dataset.from_tensor_slices([f"f{i}" for i in range(7)])
    shards = [list(stoker.ray.shard_for_worker(files, context=_Context(r, 3))) for r in range(3)]
    assert shards == [["f0", "f3", "f6"], ["f1", "f4"], ["f2", "f5"]]
    with pytest.raises(ValueError, match="rank 3 of world size 3"):
        stoker.ray.shard_for_worker(files, context=_Context(3, 3))
    with pytest.raises(TypeError, match="stoker Dataset"):
        stoker.ray.shard_for_worker([1, 2], context=_Context(0, 1))  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_shard_for_worker_in_a_ray_train_run(tmp_path: Path) -> None:
    """Two real Ray Train workers (about 35 s on the loaded 2-core machine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = pytest.importorskip("ray.train")
        try:
            from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
        except ImportError:  # Ray before Train v2
            from ray.train.data_parallel_trainer import DataParallelTrainer

    def train_loop(config: dict[str, Any]) -> None:  # nested: pickled by value
        import ray.train

        import stoker
        import stoker.ray

        ds = stoker.ray.shard_for_worker(stoker.Dataset.range(10)).map(lambda x: x * 10)
        rank = ray.train.get_context().get_world_rank()
        out = Path(config["out"]) / f"{rank}.json"
        out.write_text(json.dumps([int(x) for x in ds]))

    out = tmp_path / "out"
    out.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Train's deprecation and migration notices
        trainer = DataParallelTrainer(
            train_loop,
            train_loop_config={"out": str(out)},
            scaling_config=train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
            run_config=train.RunConfig(storage_path=str(tmp_path / "runs"), name="shards"),
        )
        trainer.fit()
    got = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert got == {"0": [0, 20, 40, 60, 80], "1": [10, 30, 50, 70, 90]}
