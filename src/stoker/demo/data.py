"""The demo's embedded data set: labelled shapes drawn with OpenCV, in TFRecord shards.

Each image is a filled or outlined shape (one class per shape) in a random colour, size,
position and rotation, on a random two-colour gradient with light noise: a small CNN must
learn the shape, since colour and place tell it nothing. Images are JPEG-encoded into
``tf.train.Example`` records (``image/encoded``, ``image/class/label``, ``image/height``,
``image/width``, the names TFDS uses) across several TFRecord shards, plus one evaluation
shard.

A set is built once per ``(version, size, count, shards, seed)`` under the data directory
and reused. It is written into a temporary directory that is renamed into place when
complete, with ``manifest.json`` written last, so an interrupted build is never read.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CLASSES", "DataSet", "build", "default_data_dir", "draw"]

#: The classes, in label order.
CLASSES = ("circle", "square", "triangle", "cross", "ring", "plus")
#: Bump when the drawing changes, so an old cache directory is not reused.
_VERSION = 1
_JPEG_QUALITY = 90
_ENV_DATA_DIR = "STOKER_DEMO_DATA"
_MANIFEST = "manifest.json"


def default_data_dir() -> Path:
    """``$STOKER_DEMO_DATA`` if set, else the user cache directory's ``stoker/demo``."""
    env = os.environ.get(_ENV_DATA_DIR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("stoker")) / "demo"


def _regular_polygon(
    cx: float, cy: float, r: float, n: int, angle: float, inner: float | None = None
) -> np.ndarray:
    pts = []
    for k in range(n):
        a = angle + 2 * np.pi * k / n
        pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
        if inner is not None:
            b = a + np.pi / n
            pts.append((cx + inner * r * np.cos(b), cy + inner * r * np.sin(b)))
    return np.round(np.array(pts)).astype(np.int32)


def draw(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size``x``size`` RGB uint8 image of class ``label`` (see :data:`CLASSES`)."""
    import cv2

    # Background: a gradient between two dark colours, in a random direction.
    c0, c1 = rng.uniform(0, 110, 3), rng.uniform(0, 110, 3)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    ramp = t[None, :] if rng.random() < 0.5 else t[:, None]
    img = (c0 + (c1 - c0) * ramp[..., None]).astype(np.float32)
    img = np.broadcast_to(img, (size, size, 3)).copy()
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)

    colour = tuple(int(v) for v in rng.uniform(140, 255, 3))
    r = rng.uniform(0.18, 0.34) * size
    cx, cy = rng.uniform(r + 2, size - r - 2, 2)
    angle = rng.uniform(0, 2 * np.pi)
    thick = max(2, round(r * 0.28))
    centre = (round(cx), round(cy))
    name = CLASSES[label]
    if name == "circle":
        cv2.circle(img, centre, int(r), colour, -1, cv2.LINE_AA)
    elif name == "ring":
        cv2.circle(img, centre, int(r - thick / 2), colour, thick, cv2.LINE_AA)
    elif name == "square":
        cv2.fillPoly(img, [_regular_polygon(cx, cy, r, 4, angle)], colour, cv2.LINE_AA)
    elif name == "triangle":
        cv2.fillPoly(img, [_regular_polygon(cx, cy, r, 3, angle)], colour, cv2.LINE_AA)
    elif name in ("cross", "plus"):
        base = angle if name == "plus" else angle + np.pi / 4
        # Plus: arms along a near-axis direction; cross: the same turned by 45 degrees.
        base = (base % (np.pi / 2)) * 0.2 + (0 if name == "plus" else np.pi / 4)
        for a in (base, base + np.pi / 2):
            dx, dy = r * np.cos(a), r * np.sin(a)
            p0 = (round(cx - dx), round(cy - dy))
            p1 = (round(cx + dx), round(cy + dy))
            cv2.line(img, p0, p1, colour, thick, cv2.LINE_AA)
    else:  # pragma: no cover - CLASSES and this function change together
        raise ValueError(f"label={label} is not a class of {CLASSES}")
    return np.asarray(img)


@dataclass(frozen=True)
class DataSet:
    """A built data set: where its shards are and what they hold."""

    path: Path
    train_files: list[str]
    eval_files: list[str]
    train_images: int
    eval_images: int
    image_size: int
    classes: tuple[str, ...]
    built: bool  # True when this call built it, False when an existing one was reused


def _name(image_size: int, train_images: int, shards: int, seed: int) -> str:
    return f"shapes-v{_VERSION}-{image_size}px-{train_images}x{shards}-seed{seed}"


def _write_shard(
    path: Path, labels: np.ndarray, size: int, seed: int, tick: Callable[[], None]
) -> None:
    import cv2

    from stoker.io import TFRecordWriter, make_example

    rng = np.random.default_rng(seed)
    with TFRecordWriter(path) as writer:
        for label in labels:
            img = draw(int(label), size, rng)
            ok, jpeg = cv2.imencode(
                ".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]
            )
            if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
                raise RuntimeError(f"could not JPEG-encode a demo image for {path}")
            writer.write(
                make_example(
                    {
                        "image/encoded": jpeg.tobytes(),
                        "image/class/label": int(label),
                        "image/height": size,
                        "image/width": size,
                    }
                )
            )
            tick()


def build(
    data_dir: str | os.PathLike[str] | None = None,
    image_size: int = 128,
    train_images: int = 6144,
    eval_images: int = 768,
    shards: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> DataSet:
    """Build the data set under ``data_dir`` (default :func:`default_data_dir`), or reuse it.

    Args:
        data_dir: Directory holding data sets (one subdirectory each).
        image_size: Width and height of the stored images. [Unit: pixel]
        train_images: Training images, spread evenly over ``shards`` files.
        eval_images: Held-out images, in one more file.
        shards: TFRecord files for the training images.
        seed: Seed of the drawing; the same arguments give the same bytes.
        progress: Show a progress bar (tqdm) while building.

    Returns:
        The :class:`DataSet`.

    Example::

        data = build(image_size=64, train_images=512, shards=4)
        Dataset.list_files(data.train_files)
    """
    for arg, value, low in (
        ("image_size", image_size, 16),
        ("train_images", train_images, 1),
        ("eval_images", eval_images, 1),
        ("shards", shards, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"build(): {arg}={value!r} must be an int >= {low}")
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    final = root / _name(image_size, train_images, shards, seed)
    manifest = final / _MANIFEST
    built = False
    if not manifest.exists():
        _build_into(root, final, image_size, train_images, eval_images, shards, seed, progress)
        built = True
    info: dict[str, Any] = json.loads(manifest.read_text())
    return DataSet(
        path=final,
        train_files=[str(final / f) for f in info["train_files"]],
        eval_files=[str(final / f) for f in info["eval_files"]],
        train_images=int(info["train_images"]),
        eval_images=int(info["eval_images"]),
        image_size=int(info["image_size"]),
        classes=tuple(info["classes"]),
        built=built,
    )


def _build_into(
    root: Path,
    final: Path,
    image_size: int,
    train_images: int,
    eval_images: int,
    shards: int,
    seed: int,
    progress: bool,
) -> None:
    from tqdm import tqdm

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        rng = np.random.default_rng(seed)
        n = len(CLASSES)
        labels = rng.permutation(np.arange(train_images) % n)
        eval_labels = rng.permutation(np.arange(eval_images) % n)
        plan = [
            (f"train-{i:05d}-of-{shards:05d}.tfrecord", labels[i::shards]) for i in range(shards)
        ]
        plan.append(("eval-00000-of-00001.tfrecord", eval_labels))
        with tqdm(
            total=train_images + eval_images,
            desc="stoker demo: drawing the data set",
            unit="img",
            disable=not progress,
            leave=False,
        ) as bar:
            for k, (name, shard_labels) in enumerate(plan):
                _write_shard(tmp / name, shard_labels, image_size, seed * 1000 + k, bar.update)
        info = {
            "version": _VERSION,
            "classes": list(CLASSES),
            "image_size": image_size,
            "train_images": train_images,
            "eval_images": eval_images,
            "train_files": [name for name, _ in plan[:-1]],
            "eval_files": [plan[-1][0]],
            "jpeg_quality": _JPEG_QUALITY,
            "seed": seed,
        }
        (tmp / _MANIFEST).write_text(json.dumps(info, indent=2))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _MANIFEST).exists():  # another process did not win the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
