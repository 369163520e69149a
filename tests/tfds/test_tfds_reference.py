"""stoker.tfds against tensorflow-datasets: the same elements, in the same order.

``tests/data/tfds/`` was prepared by tensorflow-datasets (``scripts/make_tfds_data.py``),
which also recorded what ``tfds.load`` gave. Every leaf must have TFDS's type, dtype and
shape and its values exactly, JPEG-encoded images included: TFDS decodes them with
TensorFlow's default IDCT (``dct_method=""``, libjpeg's fast integer one), and so does
``stoker.image.decode_jpeg`` (libjpeg-turbo through simplejpeg, in the ``images`` extra).
The same bytes decoded with ``dct_method="INTEGER_ACCURATE"`` also equal TensorFlow's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import REFERENCE, decode_tree

import stoker.tfds as tfds

decode_jpeg = pytest.importorskip("stoker.image").decode_jpeg

pytest.importorskip("cv2")


def _assert_same(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for k in expected:
            _assert_same(actual[k], expected[k], f"{where}/{k}")
        return
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_same(a, e, f"{where}[{i}]")
        return
    if isinstance(expected, bytes):
        assert type(actual) is bytes and actual == expected, f"{where}: {actual!r} != {expected!r}"
        return
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    assert actual.dtype == expected.dtype, f"{where}: {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{where}: {actual.shape} != {expected.shape}"
    if expected.dtype == object:
        assert actual.tolist() == expected.tolist(), where
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=where)


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_element_equals_tfds(data_dir: str, split: str) -> None:
    expected = [decode_tree(e) for e in REFERENCE["splits"][split]]
    actual = list(tfds.load("stoker_tiny", split=split, data_dir=data_dir))
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        _assert_same(a, e, f"{split}[{i}]")


def test_as_supervised_equals_tfds(data_dir: str) -> None:
    expected = [decode_tree(e) for e in REFERENCE["supervised"]["test"]]
    actual = list(tfds.load("stoker_tiny", split="test", data_dir=data_dir, as_supervised=True))
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        _assert_same(a, e, f"test[{i}]")


def test_cats_vs_dogs_equals_tfds(data_dir: str) -> None:
    expected = [decode_tree(e) for e in REFERENCE["cats_vs_dogs"]]
    actual = list(tfds.load("cats_vs_dogs", split=tfds.Split.TRAIN, data_dir=data_dir))
    assert len(actual) == len(expected) == 24
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        _assert_same(a, e, f"cats_vs_dogs[{i}]")
        assert a["image"].shape[2] == 3


@pytest.mark.parametrize("key", sorted(REFERENCE["jpeg_accurate"]))
def test_jpeg_pixels_equal_tensorflows_accurate_idct(data_dir: str, key: str) -> None:
    name, split, feature = key.split("/")
    expected = [decode_tree(e) for e in REFERENCE["jpeg_accurate"][key]]
    encoded = tfds.load(
        name, split=split, data_dir=data_dir, decoders={feature: tfds.decode.SkipDecoding()}
    )
    actual = [
        decode_jpeg(e[feature], channels=want.shape[-1], dct_method="INTEGER_ACCURATE")
        for e, want in zip(encoded, expected, strict=True)
    ]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert a.dtype == e.dtype and a.shape == e.shape, f"{key}[{i}]"
        np.testing.assert_array_equal(a, e, err_msg=f"{key}[{i}]")


def _ids(ds: Any) -> list[int]:
    return [int(e["meta"]["id"]) for e in ds]


@pytest.mark.parametrize("spec", sorted(REFERENCE["orders"]))
def test_split_slices_select_what_tfds_selects(data_dir: str, spec: str) -> None:
    ds = tfds.load("stoker_tiny", split=spec, data_dir=data_dir)
    assert _ids(ds) == REFERENCE["orders"][spec]


@pytest.mark.parametrize("spec", sorted(REFERENCE["interleaved"]))
def test_interleave_order_is_tfds_order(data_dir: str, spec: str) -> None:
    config = tfds.ReadConfig(interleave_cycle_length=2, interleave_block_length=3)
    ds = tfds.load("stoker_tiny", split=spec, data_dir=data_dir, read_config=config)
    assert _ids(ds) == REFERENCE["interleaved"][spec]


@pytest.mark.parametrize("spec", sorted(REFERENCE["bad_specs"]))
def test_specs_tfds_refuses_are_refused(data_dir: str, spec: str) -> None:
    assert REFERENCE["bad_specs"][spec] is not None  # TFDS refused it
    with pytest.raises(ValueError, match="split"):
        tfds.load("stoker_tiny", split=spec, data_dir=data_dir)


def test_info(data_dir: str) -> None:
    ds, info = tfds.load("stoker_tiny", split="train", data_dir=data_dir, with_info=True)
    assert info.name == "stoker_tiny" and info.version == "1.0.0"
    assert info.full_name == "stoker_tiny/1.0.0"
    assert {k: s.num_examples for k, s in info.splits.items()} == {"train": 30, "test": 12}
    assert info.splits["train"].num_shards == 3
    assert info.features["label"].names == ["ant", "bee", "cat"]
    assert info.features["label"].num_classes == 3
    assert info.features["label"].int2str(2) == "cat"
    assert info.features["label"].str2int("bee") == 1
    assert info.features["meta"]["kind"].names == ["odd", "even"]
    assert info.features["labels"].feature.names == ["x", "y"]
    assert info.features["objects"]["kind"].names == ["p", "q"]
    assert info.features["objects"]["bbox"].shape == (4,)
    assert info.features["seq"]["word"].dtype == object
    assert info.features["tensor"].shape == (2, 3)
    assert info.features["image"].shape == (None, None, 3)
    assert info.supervised_keys == ("image", "label")
    assert info.description == "stoker's test dataset"
    assert sorted(info.features.keys()) == sorted(REFERENCE["splits"]["train"][0]["dict"])
    assert len(list(ds)) == 30


def test_cats_vs_dogs_info(data_dir: str) -> None:
    info = tfds.builder("cats_vs_dogs", data_dir=data_dir).info
    assert info.features["label"].names == ["cat", "dog"]
    assert list(info.features.keys()) == ["image", "image/filename", "label"]
    assert info.splits["train"].num_examples == 24
