"""stoker in one screen: write TFRecords, read them back through a pipeline, checkpoint.

Run: ``python examples/quickstart.py``. Everything it writes goes to a temporary folder.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

import stoker as sk
from stoker.io import TFRecordWriter, make_example, parse_example


def write_shards(folder: Path, shards: int = 4, per_shard: int = 250) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for s in range(shards):
        path = folder / f"train-{s:05d}-of-{shards:05d}.tfrecord"
        with TFRecordWriter(str(path)) as writer:
            for i in range(per_shard):
                label = (s * per_shard + i) % 10
                pixels = rng.integers(0, 256, size=28 * 28, dtype=np.uint8)
                writer.write(make_example({"image": pixels.tobytes(), "label": [label]}))
        paths.append(str(path))
    return paths


def decode(record: bytes) -> tuple[np.ndarray, np.int64]:
    features = parse_example(record)
    image = np.frombuffer(features["image"][0], dtype=np.uint8).reshape(28, 28)
    return image, features["label"][0]


def augment(image: np.ndarray, label: np.int64, rng: np.random.Generator) -> tuple:
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return image.astype(np.float32) / 255.0, label


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = write_shards(Path(tmp))
        ds = (
            sk.Dataset.from_tensor_slices(files)
            .interleave(sk.TFRecordDataset, cycle_length=2, num_parallel_calls=2)
            .map(decode, num_parallel_calls=sk.AUTOTUNE)
            .shuffle(256, seed=42)
            .random_map(augment, seed=7)
            .batch(64, drop_remainder=True)
            .prefetch(2)
        )
        print(f"pipeline: {ds.cardinality()} batches (-2 = unknown until read)")

        it = iter(ds)
        for step in range(3):
            images, labels = next(it)
            print(f"step {step}: images {images.shape} {images.dtype}, labels {labels[:8]}")

        state = json.dumps(it.get_state())
        print(f"checkpoint after 3 steps: {len(state)} bytes of JSON")
        expected = [labels for _, labels in it]
        it.close()

        resumed = ds.iterator(json.loads(state))
        got = [labels for _, labels in resumed]
        same = len(got) == len(expected) and all(
            np.array_equal(a, b) for a, b in zip(got, expected, strict=True)
        )
        print(f"resumed: {len(got)} more batches, identical to the uninterrupted run: {same}")
        if not same:
            raise SystemExit("resume mismatch")


if __name__ == "__main__":
    main()
