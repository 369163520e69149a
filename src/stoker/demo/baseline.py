"""A tuned ``torch.utils.data.DataLoader`` over the same files and functions (``--baseline``).

What a PyTorch user would write for TFRecord shards: an ``IterableDataset`` whose worker
``w`` of ``W`` reads every ``W``-th file (interleaving four at a time, as the stoker pipeline
does), parses, decodes and augments each record with the demo's own functions, and keeps a
per-worker shuffle buffer; the DataLoader batches, with ``num_workers`` set to the cores the
pipeline may use, ``persistent_workers=True`` (workers start once, not every epoch),
``prefetch_factor=4`` and ``pin_memory`` on CUDA. Worker processes use ``forkserver``:
the training process already runs threads, so plain fork is unsafe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["ShapesShards", "dataloader"]  # noqa: F822 - ShapesShards is made on first use


def _records(files: list[str]) -> Iterator[bytes]:
    from stoker.io import TFRecordReader

    readers = [TFRecordReader(f) for f in files[:4]]
    pending = list(files[4:])
    while readers:
        for reader in list(readers):
            record = next(reader, None)
            if record is None:
                reader.close()
                readers.remove(reader)
                if pending:
                    readers.append(TFRecordReader(pending.pop(0)))
                continue
            yield record


def _make_dataset_class() -> type:
    import torch

    from stoker.demo import pipeline

    base: type = torch.utils.data.IterableDataset

    class ShapesShards(base):  # type: ignore[misc]
        def __init__(self, files: list[str], size: int, seed: int, buffer: int):
            super().__init__()
            self.files = files
            self.size = size
            self.seed = seed
            self.buffer = buffer
            self.epoch = 0

        def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            info = torch.utils.data.get_worker_info()
            workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
            self.epoch += 1  # each persistent worker counts its own passes
            rng = np.random.default_rng([self.seed, self.epoch, worker])
            files = [self.files[i] for i in rng.permutation(len(self.files))]
            augment = pipeline.augmenter(self.size)
            held: list[tuple[np.ndarray, np.ndarray]] = []
            share = max(1, self.buffer // workers)
            for record in _records(files[worker::workers]):
                img, label = pipeline.decode(*pipeline.parse(record))
                held.append(augment(img, label, rng))
                if len(held) >= share:
                    yield held.pop(int(rng.integers(len(held))))
            while held:
                yield held.pop(int(rng.integers(len(held))))

    # Pickled by reference for the worker processes: __getattr__ below makes it there too.
    ShapesShards.__module__ = __name__
    ShapesShards.__qualname__ = "ShapesShards"
    globals()["ShapesShards"] = ShapesShards
    return ShapesShards


def __getattr__(name: str) -> Any:
    # The class subclasses torch's, so it is made when first asked for: importing this
    # module must work without torch installed.
    if name == "ShapesShards":
        return _make_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dataloader(
    train_files: list[str],
    size: int,
    batch_size: int,
    seed: int,
    buffer: int,
    workers: int,
    pin_memory: bool,
) -> Any:
    """The tuned DataLoader; iterate it once per epoch (its workers persist)."""
    import torch

    dataset = __getattr__("ShapesShards")(train_files, size, seed, buffer)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        drop_last=True,
        num_workers=workers,
        persistent_workers=True,
        prefetch_factor=4,
        pin_memory=pin_memory,
        multiprocessing_context="forkserver",
    )
