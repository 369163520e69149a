"""``import stoker.tf as tf``: what is served is stoker's own object; the rest raises clearly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import stoker
import stoker.io
import stoker.tf as tf
from stoker.tf.data.experimental import AUTOTUNE


def test_tf_data_is_stoker_itself() -> None:
    assert tf.data.Dataset is stoker.Dataset
    assert tf.data.TFRecordDataset is stoker.TFRecordDataset
    assert tf.data.TextLineDataset is stoker.TextLineDataset
    assert tf.data.Options is stoker.Options
    assert tf.data.AUTOTUNE is stoker.AUTOTUNE
    assert AUTOTUNE is stoker.AUTOTUNE
    assert tf.data.experimental.AUTOTUNE is stoker.AUTOTUNE
    assert tf.data.INFINITE_CARDINALITY == tf.data.experimental.INFINITE_CARDINALITY == -1
    assert tf.data.UNKNOWN_CARDINALITY == tf.data.experimental.UNKNOWN_CARDINALITY == -2
    assert tf.TensorSpec is stoker.TensorSpec


def test_a_pipeline_through_tf_is_a_stoker_pipeline() -> None:
    ds = tf.data.Dataset.range(10).map(lambda x: x * 2, num_parallel_calls=AUTOTUNE).batch(4)
    assert type(ds).__module__.startswith("stoker.ops")
    assert [b.tolist() for b in ds.prefetch(tf.data.AUTOTUNE)] == [
        [0, 2, 4, 6],
        [8, 10, 12, 14],
        [16, 18],
    ]


def test_experimental_functions() -> None:
    ds = tf.data.Dataset.range(3)
    assert tf.data.experimental.cardinality(ds) == 3
    assert tf.data.experimental.cardinality(ds.repeat()) == tf.data.INFINITE_CARDINALITY
    bad = ds.map(lambda x: 1 // (x - 1))
    assert list(bad.apply(tf.data.experimental.ignore_errors())) == [-1, 1]
    mixed = tf.data.experimental.choose_from_datasets(
        [tf.data.Dataset.range(2), tf.data.Dataset.range(10, 12)],
        tf.data.Dataset.from_tensor_slices(np.int64([1, 0, 1, 0])),
    )
    assert [int(x) for x in mixed] == [10, 0, 11, 1]
    sampled = tf.data.experimental.sample_from_datasets(
        [tf.data.Dataset.range(5), tf.data.Dataset.range(5, 10)], seed=1
    )
    assert sorted(int(x) for x in sampled) == list(range(10))


def test_tf_io_is_stoker_io() -> None:
    assert tf.io.FixedLenFeature is stoker.io.FixedLenFeature
    assert tf.io.VarLenFeature is stoker.io.VarLenFeature


def test_tf_image_is_stoker_image() -> None:
    image = pytest.importorskip("stoker.image")
    assert tf.image.__all__ == sorted(image.__all__)
    for name in image.__all__:
        assert getattr(tf.image, name) is getattr(image, name), name
    for name in ("decode_jpeg", "decode_png", "decode_image", "encode_jpeg"):
        assert getattr(tf.io, name) is getattr(image, name), name
    assert set(image.__all__) <= set(dir(tf.image))


def test_import_does_not_load_opencv() -> None:
    code = (
        "import sys, stoker.tf as tf, stoker.tfds\n"
        "from stoker.tf.data.experimental import AUTOTUNE\n"
        "tf.data.Dataset.range(3); tf.io.FixedLenFeature([], tf.string)\n"
        "assert 'cv2' not in sys.modules and 'stoker.image' not in sys.modules, 'loaded'\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_dtypes_are_numpy_dtypes() -> None:
    assert tf.float32 == np.float32 and tf.uint8 == np.uint8 and tf.int64 == np.int64
    assert tf.int32 == np.int32 and tf.float16 == np.float16 and tf.float64 == np.float64
    assert tf.bool == np.bool_ and tf.string == np.dtype(object)
    assert tf.half is tf.float16 and tf.double is tf.float64
    assert tf.as_dtype("string") == tf.string and tf.as_dtype(np.uint8) == tf.uint8
    with pytest.raises(TypeError, match="not a dtype"):
        tf.as_dtype("floaty")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("reduce_mean", "numpy.mean"),
        ("zeros", "numpy.zeros"),
        ("py_function", "calling the function directly"),
        ("random", "random_map"),
        ("keras", "not part of an input pipeline"),
        ("Variable", "not part of an input pipeline"),
        ("no_such_thing", "with NumPy inside your map function"),
    ],
)
def test_other_names_raise_attribute_error(name: str, hint: str) -> None:
    with pytest.raises(AttributeError) as info:
        getattr(tf, name)
    message = str(info.value)
    assert repr(name) in message
    assert "only TensorFlow's input pipeline" in message
    assert hint in message


def test_submodules_name_what_they_serve() -> None:
    with pytest.raises(AttributeError, match=r"'FixedLengthRecordDataset'.*serves Dataset"):
        tf.data.FixedLengthRecordDataset  # noqa: B018
    with pytest.raises(AttributeError, match=r"'snapshot'.*serves AUTOTUNE"):
        tf.data.experimental.snapshot  # noqa: B018
    with pytest.raises(AttributeError, match=r"'gfile'.*glob.glob"):
        tf.io.gfile  # noqa: B018
    with pytest.raises(AttributeError, match=r"'FixedLenSequenceFeature'.*VarLenFeature"):
        tf.io.FixedLenSequenceFeature  # noqa: B018
    assert not hasattr(tf, "__wrapped__")
    assert not hasattr(tf.io, "__wrapped__")
    with pytest.raises(ImportError):
        from stoker.tf import reduce_sum  # noqa: F401


def test_image_names_not_in_stoker_image_raise() -> None:
    pytest.importorskip("stoker.image")
    with pytest.raises(AttributeError, match=r"'draw_bounding_boxes'.*serves what stoker.image"):
        tf.image.draw_bounding_boxes  # noqa: B018


def test_migration_doc_lists_what_is_served() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "migration.md").read_text()
    dtypes = {n for n in tf.__all__ if isinstance(getattr(tf, n), np.dtype)}
    modules = {"data", "image", "io"}
    for name in sorted(set(tf.__all__) - dtypes - modules):
        assert f"`tf.{name}" in doc, f"tf.{name} is not in docs/migration.md"
    for name in tf.io.__all__:
        assert f"tf.io.{name}" in doc or f"`{name}`" in doc, f"tf.io.{name}"
    for name in tf.data.experimental.__all__:
        assert f"`{name}" in doc, f"tf.data.experimental.{name}"
