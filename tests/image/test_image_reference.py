"""Every op against tf.image's own outputs (tests/data/image/reference.npz).

The file is written by scripts/make_image_reference.py with tensorflow-cpu. Tolerances:

* uint8 outputs: at most 1 level off, and on at most 1% of values (float32 rounding at a
  truncation boundary);
* JPEG decoding: bit-exact with tf, for both DCT methods, when simplejpeg is installed (the
  images extra); with OpenCV alone, bit-exact with ``dct_method="INTEGER_ACCURATE"`` and at
  most 4 levels (1.5 on average) from tf's default, the fast DCT (see docs/image.md);
* float outputs: 1e-5 absolute on [0, 1] images, 3e-3 on resize's [0, 255] values (both
  about 1e-5 of the range: float32 rounding in a different order of operations).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

image = pytest.importorskip("stoker.image")

HAS_SIMPLEJPEG = importlib.util.find_spec("simplejpeg") is not None

REF = np.load(
    Path(__file__).resolve().parent.parent / "data" / "image" / "reference.npz",
    allow_pickle=False,
)


def _file(key: str) -> bytes:
    return REF[f"file/{key}"].tobytes()


def close_u8(got: np.ndarray, want: np.ndarray, max_diff: int = 1, frac: float = 0.01) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (
        got.shape,
        got.dtype,
        want.shape,
        want.dtype,
    )
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max(initial=0) <= max_diff, f"max diff {diff.max()}"
    assert (diff > 0).mean() <= frac, f"{(diff > 0).mean():.3%} of values differ"


def close(got: np.ndarray, want: np.ndarray, atol: float = 1e-5) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if got.dtype.kind in "ui":
        close_u8(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)


SOURCES = ["u8", "f32", "batch"]


@pytest.mark.parametrize("key", ["jpeg", "jpeg_gray"])
@pytest.mark.parametrize("channels", [0, 1, 3])
def test_decode_jpeg(key: str, channels: int) -> None:
    fast = REF[f"out/decode_jpeg/{key}/{channels}"]
    accurate = REF[f"out/decode_jpeg_accurate/{key}/{channels}"]
    got = image.decode_jpeg(_file(key), channels=channels, dct_method="INTEGER_ACCURATE")
    np.testing.assert_array_equal(got, accurate)
    got = image.decode_jpeg(_file(key), channels=channels)
    if HAS_SIMPLEJPEG:  # tf's default, the fast integer DCT, bit for bit
        np.testing.assert_array_equal(got, fast)
    else:  # OpenCV decodes with the accurate DCT whatever dct_method says
        diff = np.abs(got.astype(np.int64) - fast)
        assert diff.max() <= 4 and diff.mean() <= 1.5


@pytest.mark.parametrize("key", ["png", "png_gray", "png_rgba"])
@pytest.mark.parametrize("channels", [0, 1, 3, 4])
def test_decode_png(key: str, channels: int) -> None:
    got = image.decode_png(_file(key), channels=channels)
    want = REF[f"out/decode_png/{key}/{channels}"]
    if channels == 1 and key != "png_gray":
        close_u8(got, want)  # colour to grey: libpng's and OpenCV's weights round differently
    else:
        np.testing.assert_array_equal(got, want)


def test_decode_png16_and_decode_image() -> None:
    np.testing.assert_array_equal(
        image.decode_png(_file("png16"), dtype=np.uint16), REF["out/decode_png/png16/0"]
    )
    close(image.decode_image(_file("png16"), dtype=np.float32), REF["out/decode_image/png16/f32"])
    got = image.decode_image(_file("jpeg"), dtype=np.float32)
    want = REF["out/decode_image/jpeg/f32"]
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.abs(got - want).max() <= (1e-6 if HAS_SIMPLEJPEG else 4 / 255 + 1e-6)
    np.testing.assert_array_equal(
        image.decode_image(_file("png_rgba"), channels=3), REF["out/decode_image/png_rgba/3"]
    )


@pytest.mark.parametrize("src", SOURCES)
def test_flips(src: str) -> None:
    np.testing.assert_array_equal(
        image.flip_left_right(REF[src]), REF[f"out/flip_left_right/{src}"]
    )
    np.testing.assert_array_equal(image.flip_up_down(REF[src]), REF[f"out/flip_up_down/{src}"])


@pytest.mark.parametrize("src", SOURCES)
@pytest.mark.parametrize("delta", [0.2, -0.3])
def test_adjust_brightness(src: str, delta: float) -> None:
    close(image.adjust_brightness(REF[src], delta), REF[f"out/adjust_brightness/{src}/{delta}"])


@pytest.mark.parametrize("src", SOURCES)
@pytest.mark.parametrize("factor", [0.5, 1.8])
def test_adjust_contrast(src: str, factor: float) -> None:
    close(image.adjust_contrast(REF[src], factor), REF[f"out/adjust_contrast/{src}/{factor}"])


@pytest.mark.parametrize("src", SOURCES)
@pytest.mark.parametrize("factor", [0.3, 2.5])
def test_adjust_saturation(src: str, factor: float) -> None:
    close(image.adjust_saturation(REF[src], factor), REF[f"out/adjust_saturation/{src}/{factor}"])


@pytest.mark.parametrize("src", SOURCES)
@pytest.mark.parametrize("delta", [0.2, -0.4])
def test_adjust_hue(src: str, delta: float) -> None:
    close(image.adjust_hue(REF[src], delta), REF[f"out/adjust_hue/{src}/{delta}"])


@pytest.mark.parametrize("src", SOURCES)
def test_grayscale_and_standardization(src: str) -> None:
    close(image.rgb_to_grayscale(REF[src]), REF[f"out/rgb_to_grayscale/{src}"])
    close(
        image.per_image_standardization(REF[src]),
        REF[f"out/per_image_standardization/{src}"],
        atol=1e-4,
    )


@pytest.mark.parametrize("src", SOURCES)
@pytest.mark.parametrize("frac", [0.5, 0.33])
def test_central_crop(src: str, frac: float) -> None:
    np.testing.assert_array_equal(
        image.central_crop(REF[src], frac), REF[f"out/central_crop/{src}/{frac}"]
    )


def test_hsv() -> None:
    # OpenCV divides by (V + FLT_EPSILON): S is off by up to 1.2e-7 / V (3e-5 at V = 1/255).
    close(image.rgb_to_hsv(REF["f32"]), REF["out/rgb_to_hsv/f32"], atol=5e-5)
    close(image.hsv_to_rgb(image.rgb_to_hsv(REF["f32"])), REF["out/hsv_to_rgb/f32"])
    close(image.hsv_to_rgb(REF["hsv"]), REF["out/hsv_to_rgb/hsv"])


@pytest.mark.parametrize(
    ("src", "dtype", "saturate", "key"),
    [
        ("f32", np.uint8, False, "f32_u8"),
        ("wide", np.uint8, True, "wide_u8_sat"),
        ("u8", np.float32, False, "u8_f32"),
        ("u8", np.float64, False, "u8_f64"),
        ("u8", np.uint16, False, "u8_u16"),
        ("u8", np.int32, False, "u8_i32"),
        ("u16", np.uint8, False, "u16_u8"),
        ("u16", np.float32, False, "u16_f32"),
        ("f32", np.uint16, False, "f32_u16"),
        ("f32", np.int16, False, "f32_i16"),
    ],
)
def test_convert_image_dtype(src: str, dtype: type, saturate: bool, key: str) -> None:
    x = (REF["u8"].astype(np.uint16) * 257 + 3).astype(np.uint16) if src == "u16" else REF[src]
    got = image.convert_image_dtype(x, dtype, saturate=saturate)
    want = REF[f"out/convert/{key}"]
    assert got.dtype == want.dtype
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=0)
    else:
        np.testing.assert_array_equal(got, want)


RESIZE_KEYS = sorted(k for k in REF.files if k.startswith("out/resize/") and k.count("/") == 5)


@pytest.mark.parametrize("key", RESIZE_KEYS)
def test_resize(key: str) -> None:
    _, _, method, size, aa, src = key.split("/")
    h, w = (int(s) for s in size.split("x"))
    got = image.resize(REF[src], (h, w), method=method, antialias=aa == "1")
    want = REF[key]
    # float32 rounding: 3e-3 on uint8's [0, 255] scale, 3e-5 on float [0, 1] images.
    close(got, want, atol=3e-3 if src == "u8" else 3e-5)


def test_resize_batch_and_aspect() -> None:
    close(image.resize(REF["batch"], (20, 30)), REF["out/resize/bilinear/batch"], atol=3e-3)
    close(
        image.resize(REF["u8"], (20, 20), preserve_aspect_ratio=True),
        REF["out/resize/aspect"],
        atol=3e-3,
    )
