"""stoker.tfds.load's behaviour beyond TFDS's recorded output: finding data, errors, options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import stoker
import stoker.tf as tf
import stoker.tfds as tfds
from stoker.io import TFRecordWriter, make_example
from stoker.testing import assert_checkpoint_roundtrip, assert_elements_equal

pytest.importorskip("cv2")


def _ids(ds: stoker.Dataset) -> list[int]:
    return [int(e["meta"]["id"]) for e in ds]


def test_not_prepared_says_so_where_it_looked_and_that_it_cannot_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        tfds.load("mnist", split="train", data_dir=tmp_path)
    message = str(info.value)
    assert "'mnist' is not prepared" in message
    assert str(tmp_path) in message
    assert "cannot download" in message


def test_version_directory_without_dataset_info_is_not_prepared(tmp_path: Path) -> None:
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no version directory"):
        tfds.load("mnist", split="train", data_dir=tmp_path)


def test_tfds_data_dir_is_the_default(data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFDS_DATA_DIR", data_dir)
    assert len(list(tfds.load("stoker_tiny", split="test"))) == 12


def test_home_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: str) -> None:
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="tensorflow_datasets"):
        tfds.load("stoker_tiny", split="test")
    shutil.copytree(data_dir, tmp_path / "tensorflow_datasets")
    assert len(list(tfds.load("stoker_tiny", split="test"))) == 12


def test_explicit_and_newest_version(data_dir: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(Path(data_dir) / "stoker_tiny" / "1.0.0", root / "stoker_tiny" / "1.0.0")
    newer = root / "stoker_tiny" / "1.10.0"
    shutil.copytree(root / "stoker_tiny" / "1.0.0", newer)
    info_path = newer / "dataset_info.json"
    info = json.loads(info_path.read_text())
    info["version"] = "1.10.0"
    info_path.write_text(json.dumps(info))
    assert tfds.builder("stoker_tiny", data_dir=root).info.version == "1.10.0"  # not "1.0.0"
    assert tfds.builder("stoker_tiny:1.0.0", data_dir=root).info.version == "1.0.0"
    with pytest.raises(FileNotFoundError, match=r"version 2\.0\.0 is not there"):
        tfds.builder("stoker_tiny:2.0.0", data_dir=root)


def test_split_none_and_list(data_dir: str) -> None:
    every = tfds.load("stoker_tiny", data_dir=data_dir)
    assert sorted(every) == ["test", "train"]
    assert len(list(every["train"])) == 30
    first, second = tfds.load("stoker_tiny", split=["test[:2]", "test[-2:]"], data_dir=data_dir)
    assert _ids(first) + _ids(second) == _ids(
        tfds.load("stoker_tiny", split="test[:2]+test[-2:]", data_dir=data_dir)
    )


def test_split_constants() -> None:
    assert tfds.Split.TRAIN == "train" and tfds.Split.TEST == "test"
    assert tfds.Split.VALIDATION == "validation" and tfds.Split.ALL == "all"
    assert tfds.Split.TRAIN + "[:10%]" == "train[:10%]"


def test_shuffle_files_keeps_files_whole_and_reshuffles(data_dir: str) -> None:
    plain = _ids(tfds.load("stoker_tiny", split="train", data_dir=data_dir))
    shards = [plain[0:10], plain[10:20], plain[20:30]]
    config = tfds.ReadConfig(shuffle_seed=3)
    ds = tfds.load(
        "stoker_tiny", split="train", data_dir=data_dir, shuffle_files=True, read_config=config
    )
    orders = []
    for _ in range(12):
        ids = _ids(ds)
        # Each shard is read whole and in order (block 16 > 10 records per shard).
        assert sorted(ids[i : i + 10] for i in range(0, 30, 10)) == sorted(shards)
        orders.append(ids)
    assert len({tuple(o) for o in orders}) > 1  # reshuffled each epoch
    again = tfds.load(
        "stoker_tiny", split="train", data_dir=data_dir, shuffle_files=True, read_config=config
    )
    assert [_ids(again) for _ in range(12)] == orders  # the seed fixes every epoch's order
    fixed = tfds.ReadConfig(shuffle_seed=3, shuffle_reshuffle_each_iteration=False)
    once = tfds.load(
        "stoker_tiny", split="train", data_dir=data_dir, shuffle_files=True, read_config=fixed
    )
    assert len({tuple(_ids(once)) for _ in range(4)}) == 1


def _numbers(root: Path) -> Path:
    """A dataset laid out as TFDS lays it out, written with stoker's own writer."""
    version = root / "numbers" / "2.0.0"
    version.mkdir(parents=True)
    tensor = "tensorflow_datasets.core.features.tensor_feature.Tensor"
    features = {
        "pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict",
        "featuresDict": {
            "features": {
                "x": {"pythonClassName": tensor, "tensor": {"dtype": "int64", "shape": {}}},
                "y": {
                    "pythonClassName": tensor,
                    "tensor": {"dtype": "float32", "shape": {"dimensions": ["2"]}},
                },
            }
        },
    }
    (version / "features.json").write_text(json.dumps(features))
    info = {
        "name": "numbers",
        "version": "2.0.0",
        "splits": [{"name": "train", "shardLengths": ["4", "3"]}],
    }
    (version / "dataset_info.json").write_text(json.dumps(info))
    values = iter(range(7))
    for shard, n in enumerate([4, 3]):
        path = version / f"numbers-train.tfrecord-{shard:05d}-of-00002"
        with TFRecordWriter(path) as writer:
            for _ in range(n):
                x = next(values)
                writer.write(make_example({"x": x, "y": np.float32([x, -x])}))
    return root


def test_batch_size(tmp_path: Path) -> None:
    root = _numbers(tmp_path)
    batches = list(tfds.load("numbers", split="train", data_dir=root, batch_size=3))
    assert [b["x"].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches[0]["y"].dtype == np.float32 and batches[0]["y"].shape == (3, 2)
    with pytest.raises(ValueError, match="batch_size=-1"):
        tfds.load("numbers", split="train", data_dir=root, batch_size=-1)


def test_default_file_template(tmp_path: Path) -> None:
    root = _numbers(tmp_path)
    x = [int(e["x"]) for e in tfds.load("numbers", split="train[2:6]", data_dir=root)]
    assert x == [2, 3, 4, 5]


def test_checkpoint_resumes_exactly(data_dir: str) -> None:
    ds = tfds.load(
        "stoker_tiny",
        split="train[3:25]",
        data_dir=data_dir,
        read_config=tfds.ReadConfig(interleave_cycle_length=2, interleave_block_length=3),
    )
    assert_checkpoint_roundtrip(ds)


def test_parallel_decode_and_read_keep_the_order(data_dir: str) -> None:
    plain = tfds.ReadConfig(
        interleave_cycle_length=2, interleave_block_length=3, num_parallel_calls_for_decode=None
    )
    parallel = tfds.ReadConfig(
        interleave_cycle_length=2,
        interleave_block_length=3,
        num_parallel_calls_for_decode=2,
        num_parallel_calls_for_interleave_files=2,
    )
    a = _ids(tfds.load("stoker_tiny", split="train", data_dir=data_dir, read_config=plain))
    b = _ids(tfds.load("stoker_tiny", split="train", data_dir=data_dir, read_config=parallel))
    assert a == b


def test_as_supervised_needs_supervised_keys(data_dir: str, tmp_path: Path) -> None:
    root = tmp_path / "stoker_tiny" / "1.0.0"
    shutil.copytree(Path(data_dir) / "stoker_tiny" / "1.0.0", root)
    info = json.loads((root / "dataset_info.json").read_text())
    del info["supervisedKeys"]
    (root / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="no supervised_keys"):
        tfds.load("stoker_tiny", split="test", data_dir=tmp_path, as_supervised=True)


def test_damaged_files_are_named(data_dir: str, tmp_path: Path) -> None:
    root = tmp_path / "stoker_tiny" / "1.0.0"
    shutil.copytree(Path(data_dir) / "stoker_tiny" / "1.0.0", root)
    (root / "features.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"features\.json is not valid JSON"):
        tfds.builder("stoker_tiny", data_dir=tmp_path)
    (root / "features.json").unlink()
    with pytest.raises(ValueError, match=r"features\.json is missing"):
        tfds.builder("stoker_tiny", data_dir=tmp_path)


def test_unsupported_feature_names_itself(data_dir: str, tmp_path: Path) -> None:
    root = tmp_path / "stoker_tiny" / "1.0.0"
    shutil.copytree(Path(data_dir) / "stoker_tiny" / "1.0.0", root)
    features = json.loads((root / "features.json").read_text())
    features["featuresDict"]["features"]["video"] = {
        "pythonClassName": "tensorflow_datasets.core.features.video_feature.Video",
        "video": {},
    }
    (root / "features.json").write_text(json.dumps(features))
    with pytest.raises(ValueError, match=r"features\.json/video: feature .*Video is not one"):
        tfds.builder("stoker_tiny", data_dir=tmp_path)


def test_record_missing_a_feature_names_it(tmp_path: Path, data_dir: str) -> None:
    root = tmp_path / "stoker_tiny" / "1.0.0"
    shutil.copytree(Path(data_dir) / "stoker_tiny" / "1.0.0", root)
    features = json.loads((root / "features.json").read_text())
    features["featuresDict"]["features"]["extra"] = {
        "pythonClassName": "tensorflow_datasets.core.features.text_feature.Text",
        "text": {},
    }
    (root / "features.json").write_text(json.dumps(features))
    with pytest.raises(KeyError, match="no feature 'extra'"):
        next(iter(tfds.load("stoker_tiny", split="test", data_dir=tmp_path)))


def test_skip_decoding_gives_the_encoded_bytes(data_dir: str) -> None:
    skip = tfds.decode.SkipDecoding()
    decoded = list(tfds.load("stoker_tiny", split="test", data_dir=data_dir))
    raw = list(
        tfds.load(
            "stoker_tiny",
            split="test",
            data_dir=data_dir,
            decoders={"image": skip, "frames": skip, "gray": skip},
        )
    )
    for d, r in zip(decoded, raw, strict=True):
        assert type(r["image"]) is bytes and r["image"].startswith(b"\x89PNG")
        assert type(r["gray"]) is bytes and r["gray"].startswith(b"\xff\xd8")
        np.testing.assert_array_equal(tf.io.decode_png(r["image"], channels=3), d["image"])
        np.testing.assert_array_equal(tf.io.decode_jpeg(r["gray"], channels=1), d["gray"])
        assert r["frames"].dtype == object and len(r["frames"]) == len(d["frames"])
        for frame, image in zip(r["frames"], d["frames"], strict=True):
            np.testing.assert_array_equal(tf.io.decode_png(frame, channels=3), image)
        np.testing.assert_array_equal(r["tensor"], d["tensor"])  # the rest as before
    cats = tfds.load(
        "cats_vs_dogs",
        split="train[:2]",
        data_dir=data_dir,
        as_supervised=True,
        decoders={"image": skip},
    )
    assert [type(image) for image, _ in cats] == [bytes, bytes]


@pytest.mark.parametrize(
    ("decoders", "error", "message"),
    [
        ({"label": tfds.decode.SkipDecoding()}, TypeError, "supported for Image features"),
        ({"nope": tfds.decode.SkipDecoding()}, ValueError, "no feature 'nope'"),
        ({"image": None}, TypeError, "must be tfds.decode.SkipDecoding"),
        ({"meta": {"id": tfds.decode.SkipDecoding()}}, TypeError, r"'meta/id' is a Tensor"),
        ({"image": {"x": tfds.decode.SkipDecoding()}}, TypeError, "is a dict but"),
    ],
)
def test_bad_decoders_name_the_feature(
    data_dir: str, decoders: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        tfds.load("stoker_tiny", split="test", data_dir=data_dir, decoders=decoders)


def test_as_numpy_and_builder(data_dir: str) -> None:
    b = tfds.builder("stoker_tiny", data_dir=data_dir)
    b.download_and_prepare()  # already prepared: nothing to do
    ds = b.as_dataset(split="test")
    assert tfds.as_numpy(ds) is ds
    assert len(list(tfds.as_numpy(ds))) == 12
    assert "stoker_tiny/1.0.0" in repr(b)


def test_corrupt_shard_names_the_file(data_dir: str, tmp_path: Path) -> None:
    root = tmp_path / "stoker_tiny" / "1.0.0"
    shutil.copytree(Path(data_dir) / "stoker_tiny" / "1.0.0", root)
    shard = root / "stoker_tiny-test.tfrecord-00001-of-00003"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(stoker.DataLossError) as info:
        list(tfds.load("stoker_tiny", split="test", data_dir=tmp_path))
    assert info.value.path is not None and info.value.path.endswith(shard.name)


_LEGACY_CLASS = {
    "featuresDict": "FeaturesDict",
    "sequence": "Sequence",
    "image": "Image",
    "classLabel": "ClassLabel",
    "text": "Text",
    "tensor": "Tensor",
    "boundingBox": "BBoxFeature",
}


def _to_legacy(node: dict, as_proto: bool) -> dict:
    """features.json in the form TFDS wrote before 4.5 (class dicts, or proto_cls JSON)."""
    (key,) = [k for k in node if k != "pythonClassName"]
    kind = node["pythonClassName"]
    body = node[key]
    if key == "featuresDict":
        content: object = {k: _to_legacy(v, as_proto) for k, v in body["features"].items()}
        return {"type": kind, "content": content}
    if key == "sequence":
        length = int(body.get("length", -1))
        content = {
            "feature": _to_legacy(body["feature"], as_proto),
            "length": None if length < 0 else length,
        }
        return {"type": kind, "content": content}
    if as_proto:
        return {
            "type": kind,
            "proto_cls": f"tensorflow_datasets.{_LEGACY_CLASS[key]}Feature",
            "content": json.dumps(body),
        }
    shape = [None if int(d) < 0 else int(d) for d in body.get("shape", {}).get("dimensions", [])]
    if key == "image":
        content = {"shape": shape, "dtype": "uint8", "encoding_format": body.get("encodingFormat")}
    elif key == "classLabel":
        content = {"num_classes": int(body["numClasses"])}
    elif key == "text":
        content = {}
    else:
        content = {"shape": shape, "dtype": body["dtype"], "encoding": body.get("encoding", "none")}
    return {"type": kind, "content": content}


@pytest.mark.parametrize("as_proto", [False, True])
def test_legacy_features_json(data_dir: str, tmp_path: Path, as_proto: bool) -> None:
    root = tmp_path / "stoker_tiny" / "1.0.0"
    shutil.copytree(Path(data_dir) / "stoker_tiny" / "1.0.0", root)
    features = json.loads((root / "features.json").read_text())
    (root / "features.json").write_text(json.dumps(_to_legacy(features, as_proto)))
    new = list(tfds.load("stoker_tiny", split="test", data_dir=data_dir))
    old, info = tfds.load("stoker_tiny", split="test", data_dir=tmp_path, with_info=True)
    assert info.features["label"].names == ["ant", "bee", "cat"]
    for a, b in zip(old, new, strict=True):
        assert_elements_equal(a, b)
