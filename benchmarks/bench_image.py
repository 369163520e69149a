"""The seed's image pipeline: stoker.image vs tf.data, a PyTorch DataLoader and a serial loop.

Workload ``pipeline``: 256x256 JPEGs in a TFRecord file of ``tf.train.Example``s (made here,
synthetic) -> parse -> decode -> random flip, brightness (0.2), saturation (0.5-1.5), hue
(0.1), contrast (0.5-1.5) -> resize to 224x224 -> scale to [0, 1] -> batch 64, in images/s:

* ``stoker`` (the row that counts): ``TFRecordDataset.random_map(augment,
  num_parallel_calls=AUTOTUNE)`` with stoker.image's ops (tf.image's values), the seed's
  function as written for tf.image, ``executor="auto"``, nothing else tuned (OpenCV's
  thread count left as it is). Variants: ``stoker-cv1`` calls ``cv2.setNumThreads(1)``
  first; ``stoker-thread`` / ``stoker-process`` pin the executor (with ``cv2`` at one
  thread in the parent); ``stoker-u8`` resizes uint8 to uint8 (``resize(...,
  dtype=np.uint8)``), keeps the images uint8 through ``batch`` and converts each batch to
  float32 with ``convert_image_dtype`` (values within 1/255 of the others: not the seed's
  values); ``stoker-tf`` is the seed's tf.data source run through ``import stoker.tf as
  tf``;
* ``tf.data``: the same pipeline with tf.image's ops, ``map(AUTOTUNE)``, ``prefetch(AUTOTUNE)``;
* ``torch``: ``DataLoader(num_workers=2, persistent_workers=True, batch_size=64)`` over a
  map-style dataset doing the plain OpenCV + NumPy version below (no torchvision);
* ``grain``: Grain's ``MapDataset`` doing that plain version on its read threads (one per
  core), ``batch(64)``;
* ``serial``: that plain version in a loop, one core (OpenCV's own threads off);
* ``limit``: serial x cores.

Workload ``op/<name>``: microseconds per call on one 256x256x3 image (uint8 unless the name
says f32), for every stoker.image op, and for tf.image's op (inside ``tf.function``) when
``--peer-python`` has TensorFlow.

Every figure is the median of ``--runs`` timed windows after a warm-up, on one iterator
over ``repeat()`` (steady state: pools and workers started); candidates run one after the
other, ``--rounds`` times in turn, and the median over rounds is reported, so a change in
the machine's load hits them all. ``img/cpu-s`` (images per CPU-second of the candidate's
process tree) is printed too: on a shared machine it shows the cost, where img/s also
shows how much of the machine the candidate got. Peers run in
``--peer-python`` (``PYTHONPATH=src``), each in its own process; missing ones are skipped::

    PATH=.venv/bin:$PATH python benchmarks/bench_image.py --peer-python /tmp/peers/bin/python
    python benchmarks/bench_image.py --quick --json /tmp/image.json   # CI smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _common as common
import numpy as np
import psutil

import stoker as sk
from stoker.io import FixedLenFeature, TFRecordReader, TFRecordWriter, make_example, parse_example
from stoker.options import cpu_count

CORES = cpu_count()
SIZE = 256
OUT = 224
BATCH = 64
BRIGHTNESS, SATURATION, HUE, CONTRAST = 0.2, (0.5, 1.5), 0.1, (0.5, 1.5)
FEATURES = {
    "image/encoded": FixedLenFeature((), "string"),
    "label": FixedLenFeature((), "int64"),
}
ROOT = Path(__file__).resolve().parent.parent


# -- data -------------------------------------------------------------------------------------


def synthetic_image(i: int) -> np.ndarray:
    """A photo-like 256x256 RGB image: gradients, a few shapes, sensor noise."""
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    a, b, c = rng.uniform(0, 1, 3)
    img = np.stack([a * x + (1 - a) * y, b * (1 - x) + (1 - b) * y, c * x * y + 0.2], -1)
    for _ in range(6):
        y0, x0 = rng.integers(0, SIZE - 48, 2)
        h, w = rng.integers(16, 96, 2)
        img[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 1, 3)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    return np.asarray(np.clip(img * 255, 0, 255), np.uint8)


def make_records(path: Path, n: int) -> None:
    import stoker.image as image

    with TFRecordWriter(str(path)) as w:
        for i in range(n):
            data = image.encode_jpeg(synthetic_image(i), quality=90)
            w.write(make_example({"image/encoded": data, "label": i % 1000}))


def read_records(path: str) -> list[bytes]:
    with TFRecordReader(path) as r:
        return [bytes(rec) for rec in r]


# -- the augmentation, three ways ---------------------------------------------------------------


def stoker_augment(record: bytes, rng: np.random.Generator, keep_u8: bool = False) -> Any:
    """The seed's function with stoker.image: tf.image's names, arguments and values."""
    import stoker.image as image

    ex = parse_example(record, FEATURES)
    img = image.decode_jpeg(ex["image/encoded"], channels=3)
    img = image.random_flip_left_right(img, seed=rng)
    img = image.random_brightness(img, BRIGHTNESS, seed=rng)
    img = image.random_saturation(img, *SATURATION, seed=rng)
    img = image.random_hue(img, HUE, seed=rng)
    img = image.random_contrast(img, *CONTRAST, seed=rng)
    if keep_u8:  # uint8 through the batch; run_stoker converts whole batches to float32
        return image.resize(img, (OUT, OUT), dtype=np.uint8), ex["label"]
    return image.resize(img, (OUT, OUT)) / np.float32(255), ex["label"]


def stoker_augment_u8(record: bytes, rng: np.random.Generator) -> Any:
    return stoker_augment(record, rng, keep_u8=True)


def _batch_to_float(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import stoker.image as image

    return image.convert_image_dtype(images, np.float32), labels


def plain_augment(record: bytes, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """The same work written directly with OpenCV and NumPy (float32 from the start, one
    HSV round trip for saturation and hue): what the DataLoader and serial rows run."""
    import cv2

    ex = parse_example(record, FEATURES)
    data = ex["image/encoded"]  # bytes, or a 0-d object array in older stoker.io
    buf = np.frombuffer(data if isinstance(data, bytes) else data.item(), np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR_RGB)
    if rng.random() < 0.5:
        img = cv2.flip(img, 1)
    x = np.multiply(img, np.float32(1 / 255), dtype=np.float32)
    x += np.float32(rng.uniform(-BRIGHTNESS, BRIGHTNESS))
    np.clip(x, 0, 1, out=x)
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV, dst=x)
    hsv[..., 1] *= np.float32(rng.uniform(*SATURATION))
    np.minimum(hsv[..., 1], 1, out=hsv[..., 1])
    hsv[..., 0] += np.float32(rng.uniform(-HUE, HUE) * 360 + 360)
    x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=hsv)
    mean = np.asarray(cv2.mean(x)[:3], np.float32)
    factor = np.float32(rng.uniform(*CONTRAST))
    x -= mean
    x *= factor
    x += mean
    np.clip(x, 0, 1, out=x)
    return cv2.resize(x, (OUT, OUT), interpolation=cv2.INTER_LINEAR), int(ex["label"])


# -- measuring ----------------------------------------------------------------------------------


def _tree_cpu_rss() -> tuple[float, float]:
    me = psutil.Process()
    cpu, rss = 0.0, 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss
        except psutil.Error:
            pass
    return cpu, rss / 2**20


def measure(batches: Iterator[Any], warmup: int, per_run: int, runs: int) -> dict[str, Any]:
    """Images/s over ``runs`` windows of ``per_run`` batches, after ``warmup`` batches."""
    for _ in range(warmup):
        next(batches)
    rates, cpus, peak = [], [], 0.0
    for _ in range(runs):
        cpu0, _ = _tree_cpu_rss()
        start = time.perf_counter()
        images = 0
        for _ in range(per_run):
            x = next(batches)[0]
            images += len(x)
        elapsed = time.perf_counter() - start
        cpu1, rss = _tree_cpu_rss()
        rates.append(images / elapsed)
        cpus.append(cpu1 - cpu0)
        peak = max(peak, rss)
    return {
        "value": statistics.median(rates),
        "cpu_s": statistics.median(cpus),
        "rss": peak,
        "images": images,
    }


def _set_cv_threads() -> None:
    import cv2

    cv2.setNumThreads(1)  # the pipeline parallelises; OpenCV's pool on top oversubscribes


def run_stoker(
    path: str, executor: str, u8: bool, sizes: dict[str, int], cv_threads: bool = True
) -> dict[str, Any]:
    if cv_threads:
        _set_cv_threads()
    fn = stoker_augment_u8 if u8 else stoker_augment
    ds = (
        sk.TFRecordDataset(path)
        .repeat()
        .random_map(fn, seed=0, num_parallel_calls=sk.AUTOTUNE, executor=executor)
        .batch(BATCH)
    )
    if u8:  # convert late: one pass over each uint8 batch, to float32 in [0, 1]
        ds = ds.map(_batch_to_float)
    ds = ds.prefetch(sk.AUTOTUNE)
    with ds.iterator() as it:
        got = measure(it, sizes["warmup"], sizes["per_run"], sizes["runs"])
        chosen = [
            str(v["executor"])
            for k, v in sk.stats.collect(it).items()
            if "map" in k and isinstance(v, dict) and v.get("executor")
        ]
        got["executor"] = chosen[0] if chosen else ""
        return got


def run_serial(path: str, sizes: dict[str, int]) -> dict[str, Any]:
    _set_cv_threads()
    records = read_records(path)

    def batches() -> Iterator[Any]:
        rng = np.random.default_rng(0)
        while True:
            for i in range(0, len(records) - BATCH + 1, BATCH):
                out = [plain_augment(records[j], rng) for j in range(i, i + BATCH)]
                yield np.stack([o[0] for o in out]), np.array([o[1] for o in out])

    return measure(batches(), 1, sizes["per_run"], sizes["runs"])


class _TorchRecords:
    """Map-style dataset over the records (read once), doing ``plain_augment``."""

    def __init__(self, path: str):
        self.records = read_records(path)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return plain_augment(self.records[i], np.random.default_rng(i))


def run_torch(path: str, sizes: dict[str, int]) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)
    loader = DataLoader(
        _TorchRecords(path),  # type: ignore[arg-type]
        batch_size=BATCH,
        num_workers=2,
        persistent_workers=True,
        worker_init_fn=lambda _: _set_cv_threads(),
        drop_last=True,
    )

    def batches() -> Iterator[Any]:
        while True:
            yield from loader

    return measure(batches(), sizes["warmup"], sizes["per_run"], sizes["runs"])


def run_grain(path: str, sizes: dict[str, int]) -> dict[str, Any]:
    """Grain: the plain OpenCV version as a ``MapDataset`` map, run by its read threads
    (one per core: OpenCV releases the GIL), batched by Grain."""
    import grain

    _set_cv_threads()
    records = read_records(path)

    def augment(i: int, record: bytes) -> tuple[np.ndarray, int]:
        return plain_augment(record, np.random.default_rng(i))

    ds = grain.MapDataset.source(records).repeat().map_with_index(augment)
    opts = grain.ReadOptions(num_threads=CORES, prefetch_buffer_size=2 * BATCH)
    batched = ds.to_iter_dataset(opts).batch(BATCH, drop_remainder=True)

    def batches() -> Iterator[Any]:
        yield from batched

    return measure(batches(), sizes["warmup"], sizes["per_run"], sizes["runs"])


def seed_pipeline(tf: Any, path: str) -> Any:
    """The seed's tf.data code, written once: ``tf`` is TensorFlow or ``stoker.tf``."""
    spec = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }

    def augment(record: Any) -> Any:
        ex = tf.io.parse_single_example(record, spec)
        img = tf.io.decode_jpeg(ex["image/encoded"], channels=3)
        img = tf.image.random_flip_left_right(img)
        img = tf.image.random_brightness(img, BRIGHTNESS)
        img = tf.image.random_saturation(img, *SATURATION)
        img = tf.image.random_hue(img, HUE)
        img = tf.image.random_contrast(img, *CONTRAST)
        return tf.image.resize(img, (OUT, OUT)) / 255.0, ex["label"]

    auto = tf.data.AUTOTUNE
    return (
        tf.data.TFRecordDataset(path)
        .repeat()
        .map(augment, num_parallel_calls=auto)
        .batch(BATCH)
        .prefetch(auto)
    )


def run_tf(path: str, sizes: dict[str, int]) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    ds = seed_pipeline(tf, path)

    def batches() -> Iterator[Any]:
        for x, y in ds:
            yield x.numpy(), y.numpy()

    return measure(batches(), sizes["warmup"], sizes["per_run"], sizes["runs"])


def run_stoker_tf(path: str, sizes: dict[str, int]) -> dict[str, Any]:
    """The same source as :func:`run_tf` through ``import stoker.tf as tf``: the namespace
    is thin, so this row should match stoker's own ``map`` (executor ``"auto"``)."""
    _set_cv_threads()
    import stoker.tf as tf

    with seed_pipeline(tf, path).iterator() as it:
        return measure(it, sizes["warmup"], sizes["per_run"], sizes["runs"])


def _time_us(fn: Callable[[], Any], quick: bool) -> float:
    """CPU time of this process per call (all its threads: tf runs ops on its pool), the
    median of ``reps`` windows: on a shared, loaded machine CPU time is what the op costs,
    where wall time would add the waits for a core."""
    n, reps = (3, 2) if quick else (20, 7)
    fn()
    best = []
    for _ in range(reps):
        start = time.process_time()
        for _ in range(n):
            fn()
        best.append((time.process_time() - start) / n)
    return statistics.median(best) * 1e6


def stoker_ops(quick: bool) -> dict[str, float]:
    import stoker.image as image

    _set_cv_threads()
    u8 = synthetic_image(0)
    f32 = image.convert_image_dtype(u8, np.float32)
    jpeg = image.encode_jpeg(u8, quality=90)
    png = image.encode_png(u8)
    g = np.random.default_rng(0)
    ops: dict[str, Callable[[], Any]] = {
        "decode_jpeg": lambda: image.decode_jpeg(jpeg, channels=3),
        "decode_png": lambda: image.decode_png(png, channels=3),
        "encode_jpeg": lambda: image.encode_jpeg(u8),
        "encode_png": lambda: image.encode_png(u8),
        "flip_left_right": lambda: image.flip_left_right(u8),
        "flip_up_down": lambda: image.flip_up_down(u8),
        "adjust_brightness": lambda: image.adjust_brightness(u8, 0.1),
        "adjust_contrast": lambda: image.adjust_contrast(u8, 1.2),
        "adjust_saturation": lambda: image.adjust_saturation(u8, 1.2),
        "adjust_hue": lambda: image.adjust_hue(u8, 0.1),
        "adjust_brightness f32": lambda: image.adjust_brightness(f32, 0.1),
        "adjust_contrast f32": lambda: image.adjust_contrast(f32, 1.2),
        "adjust_saturation f32": lambda: image.adjust_saturation(f32, 1.2),
        "adjust_hue f32": lambda: image.adjust_hue(f32, 0.1),
        "rgb_to_hsv f32": lambda: image.rgb_to_hsv(f32),
        "hsv_to_rgb f32": lambda: image.hsv_to_rgb(f32),
        "rgb_to_grayscale": lambda: image.rgb_to_grayscale(u8),
        "convert_image_dtype u8->f32": lambda: image.convert_image_dtype(u8, np.float32),
        "convert_image_dtype f32->u8": lambda: image.convert_image_dtype(f32, np.uint8),
        "resize bilinear": lambda: image.resize(u8, (OUT, OUT)),
        "resize bilinear u8->u8": lambda: image.resize(u8, (OUT, OUT), dtype=np.uint8),
        "resize bilinear antialias": lambda: image.resize(u8, (OUT, OUT), antialias=True),
        "resize nearest": lambda: image.resize(u8, (OUT, OUT), method="nearest"),
        "resize bicubic": lambda: image.resize(u8, (OUT, OUT), method="bicubic"),
        "resize area": lambda: image.resize(u8, (OUT, OUT), method="area"),
        "resize lanczos3": lambda: image.resize(u8, (OUT, OUT), method="lanczos3"),
        "central_crop": lambda: image.central_crop(u8, 0.875),
        "per_image_standardization": lambda: image.per_image_standardization(u8),
        "random_flip_left_right": lambda: image.random_flip_left_right(u8, seed=g),
        "random_flip_up_down": lambda: image.random_flip_up_down(u8, seed=g),
        "random_brightness": lambda: image.random_brightness(u8, 0.2, seed=g),
        "random_contrast": lambda: image.random_contrast(u8, 0.5, 1.5, seed=g),
        "random_saturation": lambda: image.random_saturation(u8, 0.5, 1.5, seed=g),
        "random_hue": lambda: image.random_hue(u8, 0.1, seed=g),
        "random_crop": lambda: image.random_crop(u8, (OUT, OUT, 3), seed=g),
    }
    return {name: _time_us(fn, quick) for name, fn in ops.items()}


def tf_ops(quick: bool) -> dict[str, float]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    u8 = tf.constant(synthetic_image(0))
    f32 = tf.image.convert_image_dtype(u8, tf.float32)
    jpeg = tf.io.encode_jpeg(u8, quality=90)
    png = tf.io.encode_png(u8)
    ti = tf.image
    ops: dict[str, tuple[Callable[..., Any], Any]] = {
        "decode_jpeg": (lambda x: tf.io.decode_jpeg(x, channels=3), jpeg),
        "decode_png": (lambda x: tf.io.decode_png(x, channels=3), png),
        "encode_jpeg": (tf.io.encode_jpeg, u8),
        "encode_png": (tf.io.encode_png, u8),
        "flip_left_right": (ti.flip_left_right, u8),
        "flip_up_down": (ti.flip_up_down, u8),
        "adjust_brightness": (lambda x: ti.adjust_brightness(x, 0.1), u8),
        "adjust_contrast": (lambda x: ti.adjust_contrast(x, 1.2), u8),
        "adjust_saturation": (lambda x: ti.adjust_saturation(x, 1.2), u8),
        "adjust_hue": (lambda x: ti.adjust_hue(x, 0.1), u8),
        "adjust_brightness f32": (lambda x: ti.adjust_brightness(x, 0.1), f32),
        "adjust_contrast f32": (lambda x: ti.adjust_contrast(x, 1.2), f32),
        "adjust_saturation f32": (lambda x: ti.adjust_saturation(x, 1.2), f32),
        "adjust_hue f32": (lambda x: ti.adjust_hue(x, 0.1), f32),
        "rgb_to_hsv f32": (ti.rgb_to_hsv, f32),
        "hsv_to_rgb f32": (ti.hsv_to_rgb, f32),
        "rgb_to_grayscale": (ti.rgb_to_grayscale, u8),
        "convert_image_dtype u8->f32": (lambda x: ti.convert_image_dtype(x, tf.float32), u8),
        "convert_image_dtype f32->u8": (lambda x: ti.convert_image_dtype(x, tf.uint8), f32),
        "resize bilinear": (lambda x: ti.resize(x, (OUT, OUT)), u8),
        "resize bilinear antialias": (lambda x: ti.resize(x, (OUT, OUT), antialias=True), u8),
        "resize nearest": (lambda x: ti.resize(x, (OUT, OUT), method="nearest"), u8),
        "resize bicubic": (lambda x: ti.resize(x, (OUT, OUT), method="bicubic"), u8),
        "resize area": (lambda x: ti.resize(x, (OUT, OUT), method="area"), u8),
        "resize lanczos3": (lambda x: ti.resize(x, (OUT, OUT), method="lanczos3"), u8),
        "central_crop": (lambda x: ti.central_crop(x, 0.875), u8),
        "per_image_standardization": (ti.per_image_standardization, u8),
        "random_flip_left_right": (ti.random_flip_left_right, u8),
        "random_flip_up_down": (ti.random_flip_up_down, u8),
        "random_brightness": (lambda x: ti.random_brightness(x, 0.2), u8),
        "random_contrast": (lambda x: ti.random_contrast(x, 0.5, 1.5), u8),
        "random_saturation": (lambda x: ti.random_saturation(x, 0.5, 1.5), u8),
        "random_hue": (lambda x: ti.random_hue(x, 0.1), u8),
        "random_crop": (lambda x: ti.random_crop(x, (OUT, OUT, 3)), u8),
    }
    ops["(tf.function call overhead)"] = (tf.identity, u8)
    out = {}
    for name, (op, arg) in ops.items():
        fn = tf.function(op)
        out[name] = _time_us(lambda fn=fn, arg=arg: fn(arg).numpy(), quick)
    return out


# -- peers in their own processes ---------------------------------------------------------------


def run_peer(python: str, kind: str, path: str, sizes: dict[str, int], quick: bool) -> Any:
    """Run ``--peer-run kind`` in ``python``; its result, or None (printed why) if it fails."""
    cmd = [python, str(Path(__file__).resolve()), "--peer-run", kind, "--data", path]
    cmd += ["--sizes", json.dumps(sizes)] + (["--quick"] if quick else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"  {kind}: skipped ({tail[0][:160]})")
        return None
    return json.loads(lines[-1][len("RESULT ") :])


def peer_main(kind: str, path: str, sizes: dict[str, int], quick: bool) -> None:
    runners: dict[str, Callable[[], Any]] = {
        "tf.data": lambda: run_tf(path, sizes),
        "torch": lambda: run_torch(path, sizes),
        "grain": lambda: run_grain(path, sizes),
        "serial": lambda: run_serial(path, sizes),
        "tf.image-ops": lambda: tf_ops(quick),
        "stoker-ops": lambda: stoker_ops(quick),
        "stoker": lambda: run_stoker(path, "auto", False, sizes, cv_threads=False),
        "stoker-cv1": lambda: run_stoker(path, "auto", False, sizes),
        "stoker-thread": lambda: run_stoker(path, "thread", False, sizes),
        "stoker-process": lambda: run_stoker(path, "process", False, sizes),
        "stoker-u8": lambda: run_stoker(path, "auto", True, sizes),
        "stoker-tf": lambda: run_stoker_tf(path, sizes),
    }
    print("RESULT " + json.dumps(runners[kind]()), flush=True)


def row(
    workload: str,
    peer: str,
    value: float,
    unit: str,
    limit: float | None = None,
    cpu_s: float | None = None,
    rss: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One row of the suite's JSON contract (:func:`_common.row`), from this script's figures."""
    cell = (
        None if cpu_s is None and rss is None else common.Cell(cpu_s=cpu_s or 0.0, peak_rss_mb=rss)
    )
    return common.row(workload, peer, value, unit, limit, cell, note)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    parser.add_argument("--json", default=None, help="write the rows to this path")
    parser.add_argument("--peer-python", default=None, help="Python with tensorflow/torch")
    parser.add_argument("--runs", type=int, default=None, help="timed windows per candidate")
    parser.add_argument("--rounds", type=int, default=None, help="turns over all candidates")
    parser.add_argument("--images", type=int, default=None, help="records in the data file")
    parser.add_argument("--no-ops", action="store_true", help="skip the per-op costs")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated candidates to run (e.g. stoker,tf.data): the others are skipped",
    )
    parser.add_argument("--peer-run", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer_run:
        peer_main(args.peer_run, args.data, json.loads(args.sizes), args.quick)
        return
    quick = args.quick
    sizes = {
        "warmup": 1 if quick else 4,
        "per_run": 1 if quick else 6,
        "runs": args.runs or (1 if quick else 3),
    }
    rounds = args.rounds or (1 if quick else 3)
    n = args.images or (2 * BATCH if quick else 16 * BATCH)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"stoker {sk.__version__}, Python {sys.version.split()[0]}, {CORES} cores, "
        f"load average {load}, quick={quick}; {n} JPEGs {SIZE}x{SIZE} -> {OUT}, batch {BATCH}"
    )
    rows: list[dict[str, Any]] = []
    me = sys.executable
    with tempfile.TemporaryDirectory(prefix="stoker-bench-image-") as tmp:
        path = str(Path(tmp) / "images.tfrecord")
        make_records(Path(path), n)
        candidates = (
            "serial",
            "stoker",
            "stoker-cv1",
            "stoker-thread",
            "stoker-process",
            "stoker-u8",
            "stoker-tf",
        )
        if quick:  # a smoke run: every code path once, not every executor
            candidates = ("serial", "stoker", "stoker-u8", "stoker-tf")
        kinds = [(me, k) for k in candidates]
        if args.peer_python:
            kinds += [(args.peer_python, k) for k in ("tf.data", "torch", "grain")]
        else:
            print("  tf.data, torch, grain: skipped (no --peer-python)")
        if args.only:
            wanted = {k.strip() for k in args.only.split(",")}
            kinds = [(py, k) for py, k in kinds if k in wanted]
        # Each candidate in its own process: no state (pools, caches, allocator) carries over.
        per_round: dict[str, list[dict[str, Any]]] = {k: [] for _, k in kinds}
        for r in range(rounds):
            for python, kind in kinds:
                res = run_peer(python, kind, path, sizes, quick)
                if res is not None:
                    per_round[kind].append(res)
                    chose = f"  (executor: {res['executor']})" if res.get("executor") else ""
                    print(
                        f"  round {r + 1}: {kind:15s} {res['value']:7.0f} img/s{chose}", flush=True
                    )
        results: dict[str, Any] = {
            kind: {
                key: statistics.median(x[key] for x in got) for key in got[0] if key != "executor"
            }
            for kind, got in per_round.items()
            if got
        }
        serial = results.get("serial")
        limit = serial["value"] * CORES if serial else None
        print(f"\npipeline (images/s; limit = serial x {CORES} cores = {limit or 0:.0f})")
        for kind, res in results.items():
            if res is None:
                continue
            per_cpu = res["images"] / res["cpu_s"] if res["cpu_s"] else 0.0
            note = f"{per_cpu:.0f} images per CPU-second"
            r = row("pipeline", kind, res["value"], "img/s", limit, res["cpu_s"], res["rss"], note)
            rows.append(r)
            ratio = f"{r['ratio_to_limit']:.2f} of limit" if limit else ""
            print(f"  {kind:16s} {res['value']:8.0f} img/s  {ratio:14s} {per_cpu:6.0f} img/cpu-s")
        if limit:
            rows.append(row("pipeline", "limit", limit, "img/s", limit, note="serial x cores"))
        tf_res = results.get("tf.data")
        variants = ("stoker-cv1", "stoker-thread", "stoker-process", "stoker-u8", "stoker-tf")
        for kind in ("stoker", *variants):
            ours_res = results.get(kind)
            if tf_res and ours_res:
                speed = ours_res["value"] / tf_res["value"]
                cost = (tf_res["cpu_s"] / tf_res["images"]) / (
                    ours_res["cpu_s"] / ours_res["images"]
                )
                what = "the bar: ahead of tf.data" if kind == "stoker" else "a variant"
                print(
                    f"  {kind:14s} / tf.data: {speed:.2f}x img/s, {cost:.2f}x img/cpu-s  ({what})"
                )
        for kind in ("stoker", *variants):  # each round side by side: the steadier ratio
            got, ref = per_round.get(kind, []), per_round.get("tf.data", [])
            if got and len(got) == len(ref):
                pairs = zip(got, ref, strict=True)
                ratios = ", ".join(f"{a['value'] / b['value']:.2f}" for a, b in pairs)
                print(f"  {kind:14s} / tf.data per round: {ratios}")
        if not args.no_ops:
            ours = run_peer(me, "stoker-ops", path, sizes, quick) or {}
            theirs = (
                run_peer(args.peer_python, "tf.image-ops", path, sizes, quick)
                if args.peer_python
                else None
            ) or {}
            print("\nper-op cost (CPU us per 256x256 image; tf.image inside tf.function)")
            print(f"  {'op':30s} {'stoker':>9s} {'tf.image':>9s}")
            overhead = theirs.get("(tf.function call overhead)")
            if overhead is not None:
                print(f"  (tf.image figures include {overhead:.0f} us of tf.function dispatch)")
                rows.append(row("op/tf.function-overhead", "tf.image", overhead, "us/el"))
            for name, us in ours.items():
                rows.append(row(f"op/{name}", "stoker", us, "us/el"))
                tf_us = theirs.get(name)
                if tf_us is not None:
                    rows.append(row(f"op/{name}", "tf.image", tf_us, "us/el"))
                shown = f"{tf_us:9.0f}" if tf_us is not None else f"{'-':>9s}"
                print(f"  {name:30s} {us:9.0f} {shown}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load}")
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "image", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
