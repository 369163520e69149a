"""The demo's two input pipelines over the same TFRecord shards and the same functions.

``stoker_pipeline`` is the seed's pipeline: ``list_files`` → ``interleave(TFRecordDataset)``
→ parse → decode → augment (``random_map``), each with ``AUTOTUNE`` parallelism → ``shuffle``
→ ``batch`` → ``prefetch``, handed to :func:`stoker.torch.prefetch_to_device`.
``naive_pipeline`` has the same ops in the same order with no parallelism and no prefetch:
every element is read, decoded and augmented on the training loop's thread when it asks.

Images stay ``uint8`` to the device (a quarter of float32's bytes); the training step
scales them to ``[0, 1]`` there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import stoker
from stoker import AUTOTUNE, Dataset, Options, TFRecordDataset
from stoker.io import FixedLenFeature, parse_example

__all__ = [
    "augmenter",
    "decode",
    "eval_arrays",
    "naive_pipeline",
    "parse",
    "pipeline_report",
    "shuffle_buffer",
    "stoker_pipeline",
    "trace",
]

_FEATURES = {
    "image/encoded": FixedLenFeature((), "string"),
    "image/class/label": FixedLenFeature((), "int64"),
}
#: Most elements the shuffle buffer holds. Both pipelines fill it before their first batch
#: of every epoch, a wait nothing can overlap, so it is kept small: the file order is
#: shuffled too, and interleave mixes four files.
SHUFFLE_BUFFER = 256


def shuffle_buffer(images: int, batch_size: int) -> int:
    """The shuffle buffer for an epoch of ``images``: at most an eighth of the epoch."""
    return max(batch_size, min(SHUFFLE_BUFFER, images // 8))


def parse(record: bytes) -> tuple[bytes, np.ndarray]:
    """A ``tf.train.Example`` record → ``(jpeg bytes, int64 label)``."""
    ex = parse_example(record, _FEATURES)
    return ex["image/encoded"], ex["image/class/label"]


def decode(jpeg: bytes, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """JPEG bytes → an RGB ``uint8`` HWC image."""
    from stoker import image

    return image.decode_jpeg(jpeg, channels=3), label


def _augment(
    img: np.ndarray, label: np.ndarray, rng: np.random.Generator, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The seed's augmentations, then a resize to ``size``x``size`` (still ``uint8``)."""
    from stoker import image

    img = image.random_flip_left_right(img, seed=rng)
    img = image.random_brightness(img, max_delta=0.15, seed=rng)
    img = image.random_saturation(img, 0.7, 1.3, seed=rng)
    img = image.random_hue(img, 0.05, seed=rng)
    img = image.random_contrast(img, 0.8, 1.2, seed=rng)
    # The stored images are twice the size: area resampling, kept uint8 (a stoker option).
    return image.resize(img, (size, size), method="area", dtype=np.uint8), label


def augmenter(size: int) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """:func:`augment` at ``size``, as a function named ``augment`` (the stage's name)."""

    def augment(
        img: np.ndarray, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return _augment(img, label, rng, size)

    return augment


def _files(train_files: list[str], seed: int) -> Dataset:
    return Dataset.list_files(train_files, shuffle=True, seed=seed)


def stoker_pipeline(
    train_files: list[str], size: int, batch_size: int, seed: int, cpu_budget: int, buffer: int
) -> Dataset:
    """The seed's pipeline, tuned by ``AUTOTUNE`` within ``cpu_budget`` cores."""
    ds = _files(train_files, seed).interleave(
        TFRecordDataset,
        cycle_length=min(4, len(train_files)),
        num_parallel_calls=AUTOTUNE,
        deterministic=False,
    )
    ds = ds.map(parse, num_parallel_calls=AUTOTUNE)
    ds = ds.map(decode, num_parallel_calls=AUTOTUNE)
    ds = ds.random_map(augmenter(size), seed=seed, num_parallel_calls=AUTOTUNE)
    ds = ds.shuffle(buffer, seed=seed).batch(batch_size, drop_remainder=True)
    return ds.prefetch(AUTOTUNE).with_options(Options(cpu_budget=cpu_budget, seed=seed))


def naive_pipeline(
    train_files: list[str], size: int, batch_size: int, seed: int, buffer: int
) -> Dataset:
    """The same ops, sequential: each batch is made on the consumer's thread when asked."""
    ds = _files(train_files, seed).interleave(
        TFRecordDataset, cycle_length=min(4, len(train_files))
    )
    ds = ds.map(parse).map(decode)
    ds = ds.random_map(augmenter(size), seed=seed)
    return ds.shuffle(buffer, seed=seed).batch(batch_size, drop_remainder=True)


def eval_arrays(eval_files: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out images (decoded, resized, not augmented) and labels, in memory."""
    from stoker import image

    def prepare(record: bytes) -> tuple[np.ndarray, np.ndarray]:
        jpeg, label = parse(record)
        img = image.decode_jpeg(jpeg, channels=3)
        return image.resize(img, (size, size), method="area", dtype=np.uint8), label

    ds = TFRecordDataset(eval_files).map(prepare, num_parallel_calls=AUTOTUNE).batch(10**6)
    images, labels = next(iter(ds))
    return images, labels


def pipeline_report(source: Any) -> Any:
    """``source.stats()`` when the iterator offers a report, else None."""
    stats = getattr(source, "stats", None)
    if callable(stats):
        try:
            return stats()
        except Exception:  # a report is a nicety here; the demo's own figures stand
            return None
    return None


def trace(path: str) -> Any:
    """``stoker.trace(path)`` when this build has it, else None."""
    make = getattr(stoker, "trace", None)
    return make(path) if callable(make) else None
