"""The seed's augmentation function with stoker.image: tf.image's names, on NumPy images.

Makes 128 small synthetic JPEGs in a TFRecord file (in a temporary folder), then runs the
tf.data-style pipeline: parse -> decode -> random flip, brightness, saturation, hue,
contrast -> resize to 224 -> scale to [0, 1] -> batch, in parallel, reproducibly.

Run: ``python examples/augment.py`` (needs ``pip install 'stoker[images]'``; a few seconds).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import stoker as sk
import stoker.image as image  # was: tf.image
from stoker.io import FixedLenFeature, TFRecordWriter, make_example, parse_example

FEATURES = {
    "image/encoded": FixedLenFeature((), "string"),
    "label": FixedLenFeature((), "int64"),
}


def write_jpegs(path: Path, n: int = 128) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:160]
    with TFRecordWriter(str(path)) as writer:
        for i in range(n):
            base = np.stack([x * 255 // 159, y * 255 // 127, (x + y + 8 * i) % 256], -1)
            noisy = base + rng.normal(0, 8, base.shape)
            pixels = np.clip(noisy, 0, 255).astype(np.uint8)
            writer.write(
                make_example(
                    {"image/encoded": image.encode_jpeg(pixels, quality=90), "label": i % 10}
                )
            )


def augment(record: bytes, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """tf.image's calls, with ``seed=rng``: the Generator random_map gives each element."""
    features = parse_example(record, FEATURES)
    img = image.decode_jpeg(features["image/encoded"], channels=3)
    img = image.random_flip_left_right(img, seed=rng)
    img = image.random_brightness(img, max_delta=0.2, seed=rng)
    img = image.random_saturation(img, 0.5, 1.5, seed=rng)
    img = image.random_hue(img, max_delta=0.1, seed=rng)
    img = image.random_contrast(img, 0.5, 1.5, seed=rng)
    img = image.resize(img, (224, 224))  # float32 on the 0-255 scale, as tf.image.resize
    return img / np.float32(255), features["label"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.tfrecord"
        write_jpegs(path)

        def pipeline() -> sk.Dataset:
            return (
                sk.TFRecordDataset(str(path))
                .shuffle(64, seed=0)
                # OpenCV releases the GIL: threads. ("auto" measures; on a busy machine
                # its two-thread probe can come out low and pick worker processes.)
                .random_map(augment, seed=42, num_parallel_calls=sk.AUTOTUNE, executor="thread")
                .batch(32)
                .prefetch(2)
            )

        ds = pipeline()
        firsts = []
        for epoch in range(2):  # each pass over ds is a new epoch: new shuffle, new draws
            for step, (images, labels) in enumerate(ds):
                if step == 0:
                    firsts.append(images)
                    print(
                        f"epoch {epoch}: batch {images.shape} {images.dtype} in "
                        f"[{images.min():.2f}, {images.max():.2f}], labels {labels[:8]}"
                    )
        # The same seed gives the same augmented images run to run (and after a resume).
        again = next(iter(pipeline()))[0]
        print("a fresh pipeline's first batch equals epoch 0's:", np.array_equal(again, firsts[0]))


if __name__ == "__main__":
    main()
