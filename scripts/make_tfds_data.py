"""Prepares the tiny TFDS datasets under tests/data/tfds/ and records what tfds.load gave.

Run once, with tensorflow-datasets and TensorFlow installed (not stoker dependencies)::

    PYTHONPATH=src /tmp/peers/bin/python scripts/make_tfds_data.py

It writes, under tests/data/tfds/:

- ``stoker_tiny/1.0.0/``: a builder of our own with every feature kind stoker.tfds decodes
  (PNG and JPEG images, class labels, text, scalars, a fixed and a varying tensor, a
  zlib-encoded tensor, a nested dict, sequences of dicts, labels, images and boxes), two splits of
  30 and 12 examples, 3 shards each;
- ``cats_vs_dogs/4.0.1/``: 24 small JPEGs with cats_vs_dogs' features (``image``,
  ``image/filename``, ``label`` = cat/dog), 2 shards, for examples/seed.py;
- ``reference.json``: for every split, what ``tfds.load`` gave (every leaf as dtype, shape
  and its bytes), the order of the examples' ids for a list of split specs (also with a
  small interleave cycle and block), which specs TFDS refuses, and the JPEG images decoded
  with TensorFlow's accurate IDCT (``dct_method="INTEGER_ACCURATE"``).

The examples are generated from fixed seeds, so a rerun writes the same examples and the
same reference.json (the record bytes may differ: TFDS serializes an Example's feature map
in no fixed order).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "tfds")

# Split specs whose order tfds.load fixes; chosen for TFDS's rounding (30 * 15% = 4.5
# rounds to 4, 12 * 12.5% = 1.5 to 2), negative bounds, shards and "+".
SPECS = [
    "train",
    "test",
    "train[:10%]",
    "train[10%:]",
    "train[:15%]",
    "train[:5%]",
    "train[:33%]",
    "train[-25%:]",
    "train[5:17]",
    "train[-7:]",
    "train[12:25]",
    "train[1shard]",
    "train[:-1shard]",
    "train[1shard:]",
    "test[:12.5%]",
    "test[:37.5%]",
    "test[25%:75%]+train[:3]",
    "train[:50%]+test[50%:]",
    "all",
    "train+test",
]
INTERLEAVED_SPECS = ["train", "train[5:27]", "test[1shard:]+train[:4]"]
BAD_SPECS = [
    "train[15:5]",
    "train[5:5]",
    "train[:101%]",
    "train[40:]",
    "nope",
    "train[3]",
    "all[:5]",
    "train[1:2:3]",
]


def _tiny_builder(tfds):  # type: ignore[no-untyped-def]
    class StokerTiny(tfds.core.GeneratorBasedBuilder):
        """Every feature kind stoker.tfds decodes, in a few dozen tiny examples."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):  # type: ignore[no-untyped-def]
            f = tfds.features
            return tfds.core.DatasetInfo(
                builder=self,
                description="stoker's test dataset",
                features=f.FeaturesDict(
                    {
                        "image": f.Image(shape=(None, None, 3)),
                        "gray": f.Image(shape=(None, None, 1), encoding_format="jpeg"),
                        "label": f.ClassLabel(names=["ant", "bee", "cat"]),
                        "text": f.Text(),
                        "tensor": f.Tensor(shape=(2, 3), dtype=np.float32),
                        "packed": f.Tensor(shape=(2, 2), dtype=np.uint16, encoding="zlib"),
                        "scalar": f.Scalar(dtype=np.int32),
                        "flag": f.Scalar(dtype=np.bool_),
                        "varlen": f.Tensor(shape=(None,), dtype=np.int64),
                        "meta": {
                            "id": np.int64,
                            "score": np.float32,
                            "kind": f.ClassLabel(names=["odd", "even"]),
                        },
                        "seq": f.Sequence({"tok": np.int64, "word": f.Text()}),
                        "labels": f.Sequence(f.ClassLabel(names=["x", "y"])),
                        "frames": f.Sequence(f.Image(shape=(4, 4, 3))),
                        "objects": f.Sequence(
                            {"bbox": f.BBoxFeature(), "kind": f.ClassLabel(names=["p", "q"])}
                        ),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):  # type: ignore[no-untyped-def]
            del dl_manager
            return {
                "train": self._generate_examples(30, 0, 1000),
                "test": self._generate_examples(12, 1, 2000),
            }

        def _generate_examples(self, n, seed, first_id):  # type: ignore[no-untyped-def]
            rng = np.random.default_rng(seed)
            for i in range(n):
                h, w = (int(v) for v in rng.integers(2, 7, 2))
                k = int(rng.integers(0, 4))
                yield (
                    i,
                    {
                        "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                        # Smooth, so that JPEG decoders agree closely (noise is where
                        # their IDCTs differ most).
                        "gray": (
                            np.add.outer(np.arange(h) * 20, np.arange(w) * 15)
                            + rng.integers(0, 10, (h, w))
                            + 40
                        ).astype(np.uint8)[..., None],
                        "label": i % 3,
                        "text": f"example {i} \u00e9",
                        "tensor": rng.random((2, 3), dtype=np.float32),
                        "packed": rng.integers(0, 65536, (2, 2), dtype=np.uint16),
                        "scalar": i * 7 - 50,
                        "flag": bool(i % 2),
                        "varlen": np.arange(k, dtype=np.int64) * i,
                        "meta": {"id": first_id + i, "score": i / 4, "kind": (i + 1) % 2},
                        "seq": {
                            "tok": np.arange(k, dtype=np.int64) + i,
                            "word": [f"w{i}.{j}" for j in range(k)],
                        },
                        "labels": [j % 2 for j in range(k)],
                        "frames": rng.integers(0, 256, (k % 3, 4, 4, 3), dtype=np.uint8),
                        "objects": {
                            "bbox": [
                                tfds.features.BBox(0.1 * j, 0.05, 0.1 * j + 0.5, 0.9)
                                for j in range(k)
                            ],
                            "kind": [(i + j) % 2 for j in range(k)],
                        },
                    },
                )

    return StokerTiny


def _cats_vs_dogs_builder(tfds, jpeg_dir: str):  # type: ignore[no-untyped-def]
    import cv2

    class CatsVsDogs(tfds.core.GeneratorBasedBuilder):
        """cats_vs_dogs' features and layout, with 24 small generated JPEGs."""

        VERSION = tfds.core.Version("4.0.1")

        def _info(self):  # type: ignore[no-untyped-def]
            f = tfds.features
            return tfds.core.DatasetInfo(
                builder=self,
                description="A small stand-in with cats_vs_dogs' features, for tests",
                features=f.FeaturesDict(
                    {
                        "image": f.Image(),
                        "image/filename": f.Text(),
                        "label": f.ClassLabel(names=["cat", "dog"]),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):  # type: ignore[no-untyped-def]
            del dl_manager
            return {"train": self._generate_examples()}

        def _generate_examples(self):  # type: ignore[no-untyped-def]
            rng = np.random.default_rng(7)
            for i in range(24):
                h, w = (int(v) for v in rng.integers(40, 72, 2))
                yy, xx = np.mgrid[0:h, 0:w]
                base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (h + w)], -1)
                noise = rng.integers(0, 40, (h, w, 3))
                image = np.clip(base + noise, 0, 255).astype(np.uint8)
                name = f"{'cat' if i % 2 == 0 else 'dog'}.{i}.jpg"
                path = os.path.join(jpeg_dir, name)
                ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])
                assert ok
                with open(path, "wb") as fh:
                    fh.write(data.tobytes())
                # A path: TFDS keeps the file's JPEG bytes as they are, as cats_vs_dogs does.
                yield name, {"image": path, "image/filename": name, "label": i % 2}

    return CatsVsDogs


def _leaf(value):  # type: ignore[no-untyped-def]
    """One leaf as JSON: bytes as base64, arrays as dtype + shape + zlib-compressed bytes."""
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    arr = np.asarray(value)
    if arr.dtype == object:
        return {
            "dtype": "object",
            "shape": list(arr.shape),
            "bytes_list": [base64.b64encode(v).decode() for v in arr.ravel().tolist()],
        }
    return {
        "dtype": arr.dtype.name,
        "shape": list(arr.shape),
        "scalar": isinstance(value, np.generic),
        "zlib": base64.b64encode(zlib.compress(arr.tobytes(), 9)).decode(),
    }


def _tree(value):  # type: ignore[no-untyped-def]
    if isinstance(value, dict):
        return {"dict": {k: _tree(v) for k, v in value.items()}}
    if isinstance(value, tuple):
        return {"tuple": [_tree(v) for v in value]}
    return _leaf(value)


def _accurate(tfds, builder, split, key, channels):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    ds = builder.as_dataset(split=split, decoders={key: tfds.decode.SkipDecoding()})
    return [
        _leaf(tf.io.decode_jpeg(e[key], channels=channels, dct_method="INTEGER_ACCURATE").numpy())
        for e in ds
    ]


def _ids(tfds, builder, spec, **kwargs):  # type: ignore[no-untyped-def]
    ds = builder.as_dataset(split=spec, **kwargs)
    return [int(e["meta"]["id"]) for e in tfds.as_numpy(ds)]


def main() -> None:
    import tensorflow_datasets as tfds

    tmp = tempfile.mkdtemp(prefix="stoker-tfds-")
    try:
        shutil.rmtree(OUT, ignore_errors=True)
        os.makedirs(OUT)
        config = tfds.download.DownloadConfig(num_shards=3)
        with tfds.core.registered.skip_registration():
            tiny_cls = _tiny_builder(tfds)
            cats_cls = _cats_vs_dogs_builder(tfds, tmp)
        tiny = tiny_cls(data_dir=OUT)
        tiny.download_and_prepare(download_config=config)
        cats = cats_cls(data_dir=OUT)
        cats.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=2))
        reference: dict = {
            "splits": {},
            "orders": {},
            "bad_specs": {},
            "supervised": {},
            "interleaved": {},
        }
        for split in ("train", "test"):
            ds = tiny.as_dataset(split=split)
            reference["splits"][split] = [_tree(e) for e in tfds.as_numpy(ds)]
        sup = tiny.as_dataset(split="test", as_supervised=True)
        reference["supervised"]["test"] = [_tree(e) for e in tfds.as_numpy(sup)]
        for spec in SPECS:
            reference["orders"][spec] = _ids(tfds, tiny, spec)
        # Shards hold fewer than 16 records, so the default interleave reads them one after
        # another; a small cycle and block make the interleave order visible.
        small = tfds.ReadConfig(interleave_cycle_length=2, interleave_block_length=3)
        for spec in INTERLEAVED_SPECS:
            reference["interleaved"][spec] = _ids(tfds, tiny, spec, read_config=small)
        for spec in BAD_SPECS:
            try:
                _ids(tfds, tiny, spec)
            except Exception as exc:  # recording which specs TFDS refuses
                reference["bad_specs"][spec] = type(exc).__name__
            else:
                reference["bad_specs"][spec] = None
        cats_ds = cats.as_dataset(split="train")
        reference["cats_vs_dogs"] = [_tree(e) for e in tfds.as_numpy(cats_ds)]
        # TFDS decodes JPEGs with TensorFlow's default IDCT (dct_method "": libjpeg's fast
        # integer one); record the accurate IDCT's pixels as well, which OpenCV uses.
        reference["jpeg_accurate"] = {
            "stoker_tiny/train/gray": _accurate(tfds, tiny, "train", "gray", 1),
            "stoker_tiny/test/gray": _accurate(tfds, tiny, "test", "gray", 1),
            "cats_vs_dogs/train/image": _accurate(tfds, cats, "train", "image", 3),
        }
        # TFDS leaves a downloads/ folder behind; the tests need only the prepared data.
        shutil.rmtree(os.path.join(OUT, "downloads"), ignore_errors=True)
        with open(os.path.join(OUT, "reference.json"), "w") as f:
            json.dump(reference, f, separators=(",", ":"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(OUT) for n in names)
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
