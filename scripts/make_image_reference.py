"""Write tests/data/image/reference.npz: small inputs and what tf.image returns for them.

Run once, with a Python that has tensorflow-cpu (not a stoker dependency)::

    PYTHONPATH=src /tmp/peers/bin/python scripts/make_image_reference.py

The file holds only NumPy arrays (encoded images as uint8 arrays), so the tests load it with
``np.load(..., allow_pickle=False)``. Keys are ``<case>`` for inputs and ``out/<case>`` for
tf.image's outputs; tests/image/test_reference.py names the op and arguments of each case.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "image" / "reference.npz"
H, W = 32, 48


def _image(seed: int) -> np.ndarray:
    """A smooth colour gradient plus noise: all hues, saturated and grey pixels, 0 and 255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack(
        [255 * x / (W - 1), 255 * y / (H - 1), 255 * (1 - x / (W - 1)) * (y / (H - 1))], -1
    )
    noisy = base + rng.normal(0, 25, size=base.shape)
    img = np.clip(noisy, 0, 255).astype(np.uint8)
    img[0, 0] = 0
    img[0, 1] = 255
    img[1, :4] = 128  # grey: hue undefined
    return img


def main() -> None:
    ref: dict[str, np.ndarray] = {}
    u8 = _image(0)
    batch = np.stack([u8, _image(1)])
    f32 = (u8.astype(np.float32) / 255).astype(np.float32)
    ref["u8"], ref["batch"], ref["f32"] = u8, batch, f32

    def put(name: str, value: tf.Tensor | np.ndarray) -> None:
        ref[f"out/{name}"] = np.asarray(value)

    # Encoded inputs (tf's encoders) and their decodings.
    gray = u8[..., :1]
    rgba = np.concatenate([u8, (u8[..., :1] // 2 + 100)], -1)
    u16 = (u8.astype(np.uint16) * 257 + 3).astype(np.uint16)
    files = {
        "jpeg": tf.io.encode_jpeg(u8, quality=90).numpy(),
        "jpeg_gray": tf.io.encode_jpeg(gray, quality=90).numpy(),
        "png": tf.io.encode_png(u8).numpy(),
        "png_gray": tf.io.encode_png(gray).numpy(),
        "png_rgba": tf.io.encode_png(rgba).numpy(),
        "png16": tf.io.encode_png(u16).numpy(),
    }
    for key, data in files.items():
        ref[f"file/{key}"] = np.frombuffer(data, np.uint8)
    for key in ("jpeg", "jpeg_gray"):
        for ch in (0, 1, 3):
            put(f"decode_jpeg/{key}/{ch}", tf.io.decode_jpeg(files[key], channels=ch))
            accurate = tf.io.decode_jpeg(files[key], channels=ch, dct_method="INTEGER_ACCURATE")
            put(f"decode_jpeg_accurate/{key}/{ch}", accurate)
    for key in ("png", "png_gray", "png_rgba"):
        for ch in (0, 1, 3, 4):
            put(f"decode_png/{key}/{ch}", tf.io.decode_png(files[key], channels=ch))
    put("decode_png/png16/0", tf.io.decode_png(files["png16"], dtype=tf.uint16))
    put("decode_image/png16/f32", tf.io.decode_image(files["png16"], dtype=tf.float32))
    put("decode_image/jpeg/f32", tf.io.decode_image(files["jpeg"], dtype=tf.float32))
    put("decode_image/png_rgba/3", tf.io.decode_image(files["png_rgba"], channels=3))

    for src in ("u8", "f32", "batch"):
        x = ref[src]
        put(f"flip_left_right/{src}", tf.image.flip_left_right(x))
        put(f"flip_up_down/{src}", tf.image.flip_up_down(x))
        for d in (0.2, -0.3):
            put(f"adjust_brightness/{src}/{d}", tf.image.adjust_brightness(x, d))
        for c in (0.5, 1.8):
            put(f"adjust_contrast/{src}/{c}", tf.image.adjust_contrast(x, c))
        for s in (0.3, 2.5):
            put(f"adjust_saturation/{src}/{s}", tf.image.adjust_saturation(x, s))
        for h in (0.2, -0.4):
            put(f"adjust_hue/{src}/{h}", tf.image.adjust_hue(x, h))
        put(f"rgb_to_grayscale/{src}", tf.image.rgb_to_grayscale(x))
        put(f"per_image_standardization/{src}", tf.image.per_image_standardization(x))
        for frac in (0.5, 0.33):
            put(f"central_crop/{src}/{frac}", tf.image.central_crop(x, frac))
    put("rgb_to_hsv/f32", tf.image.rgb_to_hsv(f32))
    put("hsv_to_rgb/f32", tf.image.hsv_to_rgb(tf.image.rgb_to_hsv(f32)))
    hsv = np.random.default_rng(5).uniform(0, 1, size=(H, W, 3)).astype(np.float32)
    ref["hsv"] = hsv
    put("hsv_to_rgb/hsv", tf.image.hsv_to_rgb(hsv))

    # convert_image_dtype: every direction, with out-of-range floats for saturate.
    wide = np.linspace(-0.2, 1.2, 64, dtype=np.float32).reshape(4, 16, 1)
    ref["wide"] = wide
    put("convert/f32_u8", tf.image.convert_image_dtype(f32, tf.uint8))
    put("convert/wide_u8_sat", tf.image.convert_image_dtype(wide, tf.uint8, saturate=True))
    put("convert/u8_f32", tf.image.convert_image_dtype(u8, tf.float32))
    put("convert/u8_f64", tf.image.convert_image_dtype(u8, tf.float64))
    put("convert/u8_u16", tf.image.convert_image_dtype(u8, tf.uint16))
    put("convert/u8_i32", tf.image.convert_image_dtype(u8, tf.int32))
    put("convert/u16_u8", tf.image.convert_image_dtype(u16, tf.uint8))
    put("convert/u16_f32", tf.image.convert_image_dtype(u16, tf.float32))
    put("convert/f32_u16", tf.image.convert_image_dtype(f32, tf.uint16))
    put("convert/f32_i16", tf.image.convert_image_dtype(f32, tf.int16))

    # uint8 in (tf returns float32 on the 0-255 scale); one float32 case per method.
    for method in ("bilinear", "nearest", "area", "bicubic"):
        for size in ((20, 30), (50, 70), (16, 24)):
            for aa in (False, True):
                out = tf.image.resize(u8, size, method=method, antialias=aa)
                put(f"resize/{method}/{size[0]}x{size[1]}/{int(aa)}/u8", out)
        put(f"resize/{method}/20x30/0/f32", tf.image.resize(f32, (20, 30), method=method))
    put("resize/bilinear/32x48/0/u8", tf.image.resize(u8, (32, 48)))
    # scale_and_translate's other kernels: down with and without antialias; up for two.
    for method in ("lanczos3", "lanczos5", "gaussian", "mitchellcubic"):
        cases = [((16, 24), False), ((16, 24), True)]
        if method in ("lanczos3", "mitchellcubic"):
            cases.append(((34, 50), False))
        for size, aa in cases:
            out = tf.image.resize(u8, size, method=method, antialias=aa)
            put(f"resize/{method}/{size[0]}x{size[1]}/{int(aa)}/u8", out)
    put("resize/bilinear/batch", tf.image.resize(batch, (20, 30)))
    put("resize/aspect", tf.image.resize(u8, (20, 20), preserve_aspect_ratio=True))

    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **ref)
    print(f"wrote {len(ref)} arrays to {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
