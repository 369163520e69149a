"""stoker.image inside pipelines: reproducible augmentation, decode errors, ignore_errors."""

from __future__ import annotations

import numpy as np
import pytest

image = pytest.importorskip("stoker.image")
from stoker import Dataset  # noqa: E402
from stoker.errors import InvalidElementError  # noqa: E402
from stoker.testing import assert_checkpoint_roundtrip  # noqa: E402

IMAGES = np.random.default_rng(0).integers(0, 256, size=(12, 24, 32, 3), dtype=np.uint8)


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The seed's augmentations (flip, brightness, saturation, hue, contrast, resize, scale)."""
    x = image.random_flip_left_right(x, seed=rng)
    x = image.random_brightness(x, 0.2, seed=rng)
    x = image.random_saturation(x, 0.5, 1.5, seed=rng)
    x = image.random_hue(x, 0.1, seed=rng)
    x = image.random_contrast(x, 0.5, 1.5, seed=rng)
    x = image.random_crop(x, (20, 28, 3), seed=rng)
    return image.resize(x, (16, 16)) / 255.0


def run(ds: Dataset) -> list[np.ndarray]:
    return [np.asarray(x) for x in ds]


def pipeline(**kw) -> Dataset:
    return Dataset.from_tensor_slices(IMAGES).random_map(augment, seed=42, **kw)


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_same_seed_same_images_on_1_thread_8_threads_and_2_processes() -> None:
    serial = run(pipeline())
    assert len(serial) == 12
    assert len({x.tobytes() for x in serial}) == 12
    assert same(run(pipeline(num_parallel_calls=8, executor="thread")), serial)
    assert same(run(pipeline(num_parallel_calls=2, executor="process")), serial)
    unordered = run(pipeline(num_parallel_calls=8, executor="thread", deterministic=False))
    assert sorted(x.tobytes() for x in unordered) == sorted(x.tobytes() for x in serial)


def test_other_seed_and_next_epoch_give_other_images() -> None:
    first = run(pipeline())
    other = run(Dataset.from_tensor_slices(IMAGES).random_map(augment, seed=43))
    assert not any(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    two = run(pipeline(num_parallel_calls=4, executor="thread").repeat(2))
    assert same(two[:12], first)
    assert not any(np.array_equal(a, b) for a, b in zip(two[:12], two[12:], strict=True))


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_checkpoint_resume_gives_the_same_augmentations(executor: str) -> None:
    ds = pipeline(num_parallel_calls=2, executor=executor).repeat(2).batch(5)
    assert assert_checkpoint_roundtrip(ds, every=2 if executor == "process" else 1) == 5


def _records() -> list[bytes]:
    good = [image.encode_jpeg(img) for img in IMAGES[:4]]
    return [good[0], good[1], b"GIF89a but truncated", good[2], b"\x00" * 40, good[3]]


@pytest.mark.parametrize(("executor", "npc"), [("thread", None), ("thread", 4), ("process", 2)])
def test_undecodable_element_names_the_function_and_the_element(executor, npc) -> None:
    ds = Dataset.from_tensor_slices(_records()).map(
        lambda b: image.decode_image(b, channels=3),
        num_parallel_calls=npc,
        executor=executor,
        name="decode",
    )
    with pytest.raises(InvalidElementError) as e:
        run(ds)
    assert "decode_image could not decode 20 bytes starting b'GIF89a but trunc'" in str(e.value)
    notes = " ".join(getattr(e.value, "__notes__", []))
    assert "at stage decode[" in notes and "input element 2" in notes


@pytest.mark.parametrize(("executor", "npc"), [("thread", None), ("thread", 4), ("process", 2)])
def test_ignore_errors_skips_undecodable_elements(executor, npc) -> None:
    ds = (
        Dataset.from_tensor_slices(_records())
        .map(lambda b: image.decode_jpeg(b, channels=3), num_parallel_calls=npc, executor=executor)
        .ignore_errors()
    )
    out = run(ds)
    assert len(out) == 4
    for got, want in zip(out, IMAGES[:4], strict=True):
        assert got.shape == want.shape


_OPENCV_THREADS = """
import sys
import cv2
import numpy as np
import stoker as sk
import stoker.image as image

if sys.argv[1] == "chosen":
    cv2.setNumThreads(3)
before = cv2.getNumThreads()
image.adjust_hue(np.zeros((8, 8, 3), np.uint8), 0.1)  # on the main thread: left alone
outside = cv2.getNumThreads()

def op(x):
    image.flip_left_right(np.zeros((8, 8, 3), np.uint8))
    return cv2.getNumThreads()

got = list(sk.Dataset.range(4).map(op, num_parallel_calls=2, executor=sys.argv[2]))
print(before, outside, got[-1], cv2.getNumThreads())
"""


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_opencv_runs_one_thread_on_the_pipelines_workers(executor: str) -> None:
    """OpenCV's pool beside the map's workers only contends for their cores: the first op
    on a worker thread or in a worker process sets it to one thread, not outside."""
    import subprocess
    import sys

    def run_script(mode: str) -> list[int]:
        out = subprocess.run(
            [sys.executable, "-c", _OPENCV_THREADS, mode, executor],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return [int(v) for v in out.stdout.split()]

    default = image._cv.DEFAULT_THREADS
    before, outside, in_worker, parent_after = run_script("default")
    assert before == outside == default
    assert in_worker == 1
    assert parent_after == (1 if executor == "thread" else default)
    # A count the program chose itself is kept (a worker process starts afresh, with
    # OpenCV's default: it is set to one thread there all the same).
    assert run_script("chosen") == [3, 3, 3 if executor == "thread" else 1, 3]
