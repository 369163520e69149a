"""stoker.image beyond tf's reference values: arguments, errors, dtypes, random draws."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

image = pytest.importorskip("stoker.image")
from stoker.errors import InvalidElementError  # noqa: E402

RNG = np.random.default_rng(0)
U8 = RNG.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
F32 = image.convert_image_dtype(U8, np.float32)
BATCH = RNG.integers(0, 256, size=(4, 20, 30, 3), dtype=np.uint8)


# -- bad arguments name the argument ----------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: image.adjust_saturation(np.zeros((4, 4), np.uint8), 2.0),
            "image must be at least 3-D",
        ),
        (
            lambda: image.adjust_saturation(np.zeros((4, 4, 4), np.uint8), 2.0),
            "image must have 3 channels",
        ),
        (lambda: image.adjust_hue(np.zeros((4, 4), np.float32), 0.1), "image must be at least 3-D"),
        (lambda: image.adjust_hue(U8, 1.5), "delta=1.5 must be in"),
        (
            lambda: image.adjust_contrast(np.zeros((4, 4), np.uint8), 2.0),
            "images must be at least 3-D",
        ),
        (lambda: image.random_brightness(U8, -0.1), "max_delta=-0.1 must be non-negative"),
        (lambda: image.random_hue(U8, -0.1), "max_delta=-0.1 must be non-negative"),
        (lambda: image.random_hue(U8, 0.6), "max_delta=0.6 must be <= 0.5"),
        (lambda: image.random_contrast(U8, 1.2, 0.8), "upper=0.8 must be > lower=1.2"),
        (lambda: image.random_contrast(U8, -0.5, 0.8), "lower=-0.5 must be non-negative"),
        (lambda: image.random_saturation(U8, 2.0, 1.0), "upper=1.0 must be > lower=2.0"),
        (lambda: image.random_saturation(U8, -1.0, 1.0), "lower=-1.0 must be non-negative"),
        (lambda: image.random_crop(U8, (30, 30, 3)), "size=.* must be within"),
        (lambda: image.random_crop(U8, (10, 10)), "size=.* one entry per dimension"),
        (lambda: image.central_crop(U8, 0.0), "central_fraction=0.0 must be within"),
        (lambda: image.central_crop(U8, 1.5), "central_fraction=1.5 must be within"),
        (lambda: image.resize(U8, (0, 10)), "size=.* must be positive"),
        (lambda: image.resize(U8, (10,)), "size=.* two ints"),
        (lambda: image.resize(U8, (10, 10), method="lanczos9"), "method='lanczos9'"),
        (lambda: image.resize(np.zeros((2, 2, 2, 2, 3)), (4, 4)), "images must be 3 or 4-D"),
        (lambda: image.flip_left_right(np.zeros((4, 4))), "image must be at least 3-D"),
        (lambda: image.decode_jpeg(b"\xff\xd8", channels=2), "channels=2 must be one of"),
        (lambda: image.decode_png(b"", dtype=np.float32), "dtype=float32 must be uint8 or uint16"),
        (lambda: image.encode_jpeg(F32), "encode_jpeg: image dtype"),
        (lambda: image.encode_png(U8[..., 0]), "encode_png: image must be 3-D"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(call, match) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_tf_messages_for_random_ops_raise_value_error() -> None:
    with pytest.raises(ValueError):
        image.random_brightness(U8, -1)
    with pytest.raises(ValueError):
        image.random_contrast(U8, 1.0, 1.0)


def test_float_only_ops_reject_integers() -> None:
    with pytest.raises(TypeError, match="rgb_to_hsv: images must be float"):
        image.rgb_to_hsv(U8)
    with pytest.raises(TypeError, match="seed="):
        image.random_flip_left_right(U8, seed=1.5)
    with pytest.raises(TypeError, match="dtype="):
        image.convert_image_dtype(U8, "str")


# -- decoding bad bytes -----------------------------------------------------------------------


@pytest.mark.parametrize("fn", ["decode_jpeg", "decode_png", "decode_image"])
def test_bytes_that_are_not_an_image(fn: str) -> None:
    junk = b"this is not an image at all"
    with pytest.raises(InvalidElementError, match=f"{fn} could not decode {len(junk)} bytes") as e:
        getattr(image, fn)(junk)
    assert "b'this is not an i'" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_truncated_jpeg_and_empty_bytes() -> None:
    data = image.encode_jpeg(U8)
    with pytest.raises(InvalidElementError, match="could not decode"):
        image.decode_jpeg(data[: len(data) // 3])
    with pytest.raises(InvalidElementError, match="could not decode 0 bytes"):
        image.decode_jpeg(b"")
    with pytest.raises(TypeError, match="got str"):
        image.decode_jpeg("a path.jpg")


# -- codecs -----------------------------------------------------------------------------------


def test_encode_decode_roundtrips() -> None:
    for arr in (U8, U8[..., :1], np.concatenate([U8, U8[..., :1]], -1)):
        np.testing.assert_array_equal(image.decode_png(image.encode_png(arr)), arr)
    u16 = (U8.astype(np.uint16) * 257).astype(np.uint16)
    np.testing.assert_array_equal(image.decode_png(image.encode_png(u16), dtype=np.uint16), u16)
    smooth = np.repeat(np.repeat(U8[:5, :5], 8, 0), 8, 1)
    back = image.decode_jpeg(image.encode_jpeg(smooth, quality=100, chroma_downsampling=False))
    assert np.abs(back.astype(int) - smooth).mean() < 2
    gray = image.decode_jpeg(image.encode_jpeg(smooth, format="grayscale"))
    assert gray.shape == (40, 40, 1)
    la = np.concatenate([U8[..., :1], U8[..., 1:2]], -1)
    np.testing.assert_array_equal(image.decode_png(image.encode_png(la)), la)


def test_decode_accepts_arrays_and_ratio() -> None:
    data = image.encode_jpeg(np.zeros((64, 48, 3), np.uint8))
    a = image.decode_jpeg(np.frombuffer(data, np.uint8))
    b = image.decode_jpeg(np.array([data], dtype=object))
    assert a.shape == b.shape == (64, 48, 3)
    assert image.decode_jpeg(data, ratio=2).shape == (32, 24, 3)
    assert image.decode_jpeg(data, ratio=4, channels=1).shape == (16, 12, 1)


def test_decode_gif_and_bmp() -> None:
    from PIL import Image

    frames = [Image.fromarray(np.full((6, 8, 3), v, np.uint8)) for v in (0, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    gif = buf.getvalue()
    assert image.decode_image(gif).shape == (2, 6, 8, 3)
    assert image.decode_image(gif, expand_animations=False).shape == (6, 8, 3)
    buf = io.BytesIO()
    Image.fromarray(U8).save(buf, format="BMP")
    np.testing.assert_array_equal(image.decode_image(buf.getvalue()), U8)


# -- dtypes, batches, shapes ------------------------------------------------------------------


@pytest.mark.parametrize("x", [U8, F32, BATCH], ids=["u8", "f32", "batch"])
def test_colour_ops_keep_shape_and_dtype(x) -> None:
    for out in (
        image.adjust_brightness(x, 0.1),
        image.adjust_contrast(x, 1.3),
        image.adjust_saturation(x, 1.3),
        image.adjust_hue(x, 0.1),
        image.flip_left_right(x),
        image.flip_up_down(x),
    ):
        assert out.shape == x.shape and out.dtype == x.dtype


def test_batch_ops_work_per_image() -> None:
    whole = image.adjust_contrast(BATCH, 1.7)
    for i, img in enumerate(BATCH):
        np.testing.assert_array_equal(whole[i], image.adjust_contrast(img, 1.7))
    np.testing.assert_array_equal(image.adjust_hue(BATCH, 0.3)[2], image.adjust_hue(BATCH[2], 0.3))


def test_uint8_lookup_tables_match_the_float_computation() -> None:
    for delta in (-0.7, -0.01, 0.0, 0.33, 1.2):
        want = image.convert_image_dtype(np.clip(F32 + np.float32(delta), -1, 2), np.uint8, True)
        np.testing.assert_array_equal(image.adjust_brightness(U8, delta), want)
    got = image.adjust_contrast(U8, 1.5)
    flt = image.adjust_contrast(F32, 1.5)
    want = image.convert_image_dtype(flt, np.uint8, saturate=True)
    assert np.abs(got.astype(int) - want).max() <= 1


def test_float_brightness_is_not_clipped() -> None:
    assert image.adjust_brightness(F32, 0.9).max() > 1.5


def test_resize_dtype_extension() -> None:
    flt = image.resize(U8, (13, 17))
    small = image.resize(U8, (13, 17), dtype=np.uint8)
    assert flt.dtype == np.float32 and small.dtype == np.uint8
    assert np.abs(small.astype(np.float32) - flt).max() <= 1.0
    area = image.resize(U8, (10, 15), method="area", dtype=np.uint8)
    assert np.abs(area - image.resize(U8, (10, 15), method="area")).max() <= 1.0
    cubic = image.resize(U8, (40, 60), method="bicubic", dtype=np.uint8)
    want = np.clip(np.rint(image.resize(U8, (40, 60), method="bicubic")), 0, 255)
    np.testing.assert_array_equal(cubic, want)
    assert image.resize(U8, (7, 9), method="nearest").dtype == np.uint8
    assert image.resize(BATCH, (7, 9), method="bicubic", antialias=True).shape == (4, 7, 9, 3)
    gray = image.resize(U8[..., :1], (7, 9))
    assert gray.shape == (7, 9, 1)


def test_grayscale_roundtrip_and_standardization_of_constant() -> None:
    g = image.rgb_to_grayscale(U8)
    assert g.shape == (20, 30, 1) and g.dtype == np.uint8
    assert image.grayscale_to_rgb(g).shape == (20, 30, 3)
    assert not image.per_image_standardization(np.full((4, 4, 3), 7, np.uint8)).any()
    x = image.per_image_standardization(BATCH)
    assert np.allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    assert np.allclose(x.std(axis=(1, 2, 3)), 1, atol=1e-4)


# -- random ops -------------------------------------------------------------------------------


def test_generator_seed_draws_like_the_deterministic_op() -> None:
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    got = image.random_brightness(U8, 0.3, seed=g1)
    np.testing.assert_array_equal(got, image.adjust_brightness(U8, g2.uniform(-0.3, 0.3)))
    got = image.random_contrast(U8, 0.5, 1.5, seed=g1)
    np.testing.assert_array_equal(got, image.adjust_contrast(U8, g2.uniform(0.5, 1.5)))
    got = image.random_saturation(U8, 0.5, 1.5, seed=g1)
    np.testing.assert_array_equal(got, image.adjust_saturation(U8, g2.uniform(0.5, 1.5)))
    got = image.random_hue(U8, 0.2, seed=g1)
    np.testing.assert_array_equal(got, image.adjust_hue(U8, g2.uniform(-0.2, 0.2)))


def test_int_seed_is_stateless_and_generators_advance() -> None:
    a = [image.random_hue(U8, 0.5, seed=11) for _ in range(3)]
    assert all(np.array_equal(a[0], x) for x in a)
    g = np.random.default_rng(0)
    outs = {image.random_brightness(U8, 0.5, seed=g).tobytes() for _ in range(5)}
    assert len(outs) == 5
    assert image.random_brightness(U8, 0.5, seed=[1, 2]).shape == U8.shape
    unseeded = {image.random_brightness(U8, 0.5).tobytes() for _ in range(5)}
    assert len(unseeded) == 5


def test_random_flips_pick_each_side_and_flip_batches_per_image() -> None:
    g = np.random.default_rng(1)
    flipped = sum(
        np.array_equal(image.random_flip_left_right(U8, seed=g), U8[:, ::-1]) for _ in range(200)
    )
    assert 60 < flipped < 140
    big = RNG.integers(0, 256, size=(64, 4, 5, 3), dtype=np.uint8)
    out = image.random_flip_up_down(big, seed=5)
    same = [np.array_equal(o, b) for o, b in zip(out, big, strict=True)]
    flips = [np.array_equal(o, b[::-1]) for o, b in zip(out, big, strict=True)]
    assert all(s or f for s, f in zip(same, flips, strict=True))
    assert 10 < sum(flips) < 54


def test_random_crop_takes_a_window_of_the_input() -> None:
    g = np.random.default_rng(2)
    seen = set()
    for _ in range(30):
        crop = image.random_crop(U8, (5, 7, 3), seed=g)
        assert crop.shape == (5, 7, 3)
        hits = [
            (i, j)
            for i in range(16)
            for j in range(24)
            if np.array_equal(U8[i : i + 5, j : j + 7], crop)
        ]
        assert hits
        seen.add(hits[0])
    assert len(seen) > 10


def test_random_draws_stay_in_range() -> None:
    g = np.random.default_rng(4)
    for _ in range(50):
        out = image.random_brightness(F32, 0.1, seed=g)
        delta = float((out - F32).mean())
        assert -0.1 <= delta <= 0.1


# -- packaging --------------------------------------------------------------------------------


def test_import_stoker_does_not_import_opencv() -> None:
    code = "import sys, stoker; print('cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_opencv_gives_the_pip_command() -> None:
    code = "import sys; sys.modules['cv2'] = None; import stoker.image"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pip install 'stoker[images]'" in out.stderr


def _tf_uint8_brightness(img: np.ndarray, delta: float) -> np.ndarray:
    """tf's definition: to float32, add, back to uint8 with saturation."""
    flt = image.convert_image_dtype(img, np.float32) + np.float32(delta)
    return image.convert_image_dtype(flt, np.uint8, saturate=True)


def _tf_uint8_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    flt = image.convert_image_dtype(img, np.float32)
    means = (img.astype(np.float64).mean(axis=(0, 1)) / 255).astype(np.float32)
    out = (flt - means) * np.float32(factor) + means
    return image.convert_image_dtype(out, np.uint8, saturate=True)


def test_uint8_brightness_and_contrast_are_tf_arithmetic_on_any_shape():
    """The RGB fast path (an OpenCV affine transform, checked against the exact table on
    the 256 levels) gives tf's values exactly, whatever the size (SIMD body and tail)."""
    rng = np.random.default_rng(7)
    for trial in range(120):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        delta = float(rng.uniform(-0.6, 0.6))
        np.testing.assert_array_equal(
            image.adjust_brightness(img, delta), _tf_uint8_brightness(img, delta), str(trial)
        )
        factor = float(rng.uniform(0.0, 2.5))
        got = image.adjust_contrast(img, factor)
        np.testing.assert_array_equal(got, _tf_uint8_contrast(img, factor), str(trial))
    batch = rng.integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        image.adjust_brightness(batch, 0.13), _tf_uint8_brightness(batch, 0.13)
    )
    strided = batch[0, :, ::2]  # not contiguous
    np.testing.assert_array_equal(
        image.adjust_brightness(strided, -0.2), _tf_uint8_brightness(strided, -0.2)
    )
