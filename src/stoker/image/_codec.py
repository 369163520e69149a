"""Decoding and encoding JPEG, PNG, BMP and GIF bytes, as ``tf.io.decode_*`` does.

OpenCV (libjpeg-turbo, libpng) decodes with the GIL released; GIF goes through Pillow. All
outputs are RGB(A) in HWC order, like tf's, never OpenCV's BGR.

JPEGs go through simplejpeg (libjpeg-turbo's TurboJPEG API, GIL released) when it is
installed (it is part of the ``images`` extra): it can use the fast integer DCT that tf
uses by default, so ``decode_jpeg`` is bit-exact with tf's, and it is faster than OpenCV.
Without it, or for what it cannot decode (CMYK, ``ratio``), OpenCV decodes, with the
accurate DCT (tf's ``dct_method="INTEGER_ACCURATE"``).
"""

from __future__ import annotations

import importlib
import io
from typing import Any

import numpy as np

from stoker.errors import InvalidElementError
from stoker.image._checks import to_numpy_dtype
from stoker.image._cv import cv2
from stoker.image._dtype import convert_image_dtype

__all__ = [
    "decode_image",
    "decode_jpeg",
    "decode_png",
    "encode_jpeg",
    "encode_png",
    "image_format",
]

_HAS_RGB_FLAG = hasattr(cv2, "IMREAD_COLOR_RGB")

try:
    _simplejpeg: Any = importlib.import_module("simplejpeg")
except ImportError:  # pragma: no cover - part of the images extra; OpenCV decodes instead
    _simplejpeg = None


def _decode_turbo(buf: np.ndarray, channels: int, dct_method: str, fancy: bool) -> Any:
    """simplejpeg's decode, or None where it does not apply (the caller uses OpenCV)."""
    if _simplejpeg is None:
        return None
    try:
        if channels == 0:
            colorspace = _simplejpeg.decode_jpeg_header(buf)[2]
            if colorspace not in ("Gray", "YCbCr", "RGB"):
                return None  # CMYK / YCCK: OpenCV converts those
            channels = 1 if colorspace == "Gray" else 3
        return _simplejpeg.decode_jpeg(
            buf,
            colorspace="GRAY" if channels == 1 else "RGB",
            fastdct=dct_method != "INTEGER_ACCURATE",
            fastupsample=not fancy,
        )
    except ValueError:
        return None  # not a JPEG it can read: OpenCV tries, and reports the failure


def _as_buffer(contents: Any, fn: str) -> np.ndarray:
    """``contents`` (bytes, a 0-d/1-element bytes array, or 1-D uint8) as a uint8 array."""
    if isinstance(contents, np.ndarray):
        if contents.dtype.kind in "OSV" and contents.size == 1:
            contents = contents.reshape(()).item()
        elif contents.dtype == np.uint8 and contents.ndim == 1:
            return contents
        else:
            raise TypeError(
                f"{fn}: contents must be bytes (or a 1-D uint8 array), got an array of "
                f"dtype {contents.dtype} and shape {contents.shape}"
            )
    if isinstance(contents, str):
        raise TypeError(f"{fn}: contents must be bytes, got str (open the file in 'rb' mode)")
    try:
        return np.frombuffer(contents, np.uint8)
    except TypeError:
        raise TypeError(f"{fn}: contents must be bytes, got {type(contents).__name__}") from None


def image_format(buf: np.ndarray | bytes) -> str | None:
    """``"jpeg"``, ``"png"``, ``"gif"``, ``"bmp"``, ``"webp"`` from the magic bytes, or None."""
    head = bytes(buf[:12])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def _fail(fn: str, buf: np.ndarray, why: str = "") -> InvalidElementError:
    first = bytes(buf[:16])
    reason = f" ({why})" if why else ""
    return InvalidElementError(
        f"{fn} could not decode {len(buf)} bytes starting {first!r}{reason}: not a valid "
        "image; wrap the pipeline in .ignore_errors() to skip such elements"
    )


def _check_channels(channels: int, allowed: tuple[int, ...], fn: str) -> int:
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)):
        raise TypeError(f"{fn}: channels={channels!r} must be an int")
    if int(channels) not in allowed:
        raise ValueError(f"{fn}: channels={channels} must be one of {allowed}")
    return int(channels)


def _imdecode(buf: np.ndarray, flags: int, fn: str) -> np.ndarray:
    try:
        out = cv2.imdecode(buf, flags)
    except cv2.error as e:
        raise _fail(fn, buf, str(e).strip().splitlines()[-1]) from None
    if out is None:
        raise _fail(fn, buf)
    return np.asarray(out)


def _to_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img[:, :, None]
    if img.shape[2] == 3:
        return np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    if img.shape[2] == 4:
        return np.asarray(cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA))
    return img


def _decode_cv(buf: np.ndarray, channels: int, depth16: bool, fn: str) -> np.ndarray:
    """Decode with OpenCV into ``channels`` (0: as stored) RGB(A) channels."""
    fmt = image_format(buf)
    anydepth = cv2.IMREAD_ANYDEPTH if depth16 else 0
    keep = cv2.IMREAD_IGNORE_ORIENTATION  # tf ignores EXIF orientation too
    if channels == 1:
        return _imdecode(buf, cv2.IMREAD_GRAYSCALE | anydepth | keep, fn)[:, :, None]
    if channels == 3:
        if _HAS_RGB_FLAG:
            img = _imdecode(buf, cv2.IMREAD_COLOR_RGB | anydepth | keep, fn)
            return img if img.ndim == 3 else img[:, :, None]
        return _to_rgb(_imdecode(buf, cv2.IMREAD_COLOR | anydepth | keep, fn))
    if channels == 0 and fmt == "jpeg":
        img = _imdecode(buf, cv2.IMREAD_UNCHANGED, fn)
        if img.ndim == 2:
            return img[:, :, None]
        return _to_rgb(img)
    img = _imdecode(buf, cv2.IMREAD_UNCHANGED, fn)
    if not depth16 and img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)  # as libpng's strip_16, which tf uses
    if fmt == "png" and channels == 0 and len(buf) > 25 and buf[25] == 4:
        img = img[:, :, [0, 3]] if img.ndim == 3 else img  # grey + alpha, stored as BGRA
        return np.ascontiguousarray(img)
    img = _to_rgb(img)
    if channels == 4 and img.shape[2] != 4:
        rgb = img if img.shape[2] == 3 else np.repeat(img[:, :, :1], 3, axis=2)
        alpha = np.full((*rgb.shape[:2], 1), np.iinfo(rgb.dtype).max, rgb.dtype)
        img = np.concatenate([rgb, alpha], axis=2)
    return img


def _decode_gif(buf: np.ndarray, channels: int, expand: bool, fn: str) -> np.ndarray:
    from PIL import Image, ImageSequence

    try:
        with Image.open(io.BytesIO(buf.tobytes())) as im:
            frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    except Exception as e:
        raise _fail(fn, buf, f"{type(e).__name__}: {e}") from None
    out = np.stack(frames) if expand else frames[0]
    if channels == 1:
        raise ValueError(f"{fn}: channels=1 is not supported for GIF (tf: 0 or 3)")
    return out


def decode_jpeg(
    contents: Any,
    channels: int = 0,
    ratio: int = 1,
    fancy_upscaling: bool = True,
    try_recover_truncated: bool = False,
    acceptable_fraction: float = 1,
    dct_method: str = "",
    name: str | None = None,
) -> np.ndarray:
    """Decode JPEG bytes to a uint8 HWC array (RGB, or 1 channel for greyscale JPEGs).

    Args:
        contents: The encoded bytes (``bytes``, a 1-element bytes array as ``parse_example``
            gives, or a 1-D uint8 array).
        channels: 0 (as stored), 1 (greyscale) or 3 (RGB).
        ratio: Downscale while decoding by 1, 2, 4 or 8 (libjpeg's DCT scaling: fast).
        fancy_upscaling: Smooth chroma upsampling (tf's default); False is faster.
        try_recover_truncated: Accepted for tf's signature; truncated data is an error.
        acceptable_fraction: Accepted for tf's signature.
        dct_method: ``""`` or ``"INTEGER_FAST"`` (tf's default, the fast integer DCT), or
            ``"INTEGER_ACCURATE"``. Without simplejpeg installed, OpenCV always uses the
            accurate one (values then differ from tf's default by a few levels).
        name: Unused.

    Returns:
        ``uint8`` array of shape ``(height, width, channels)``.

    Raises:
        InvalidElementError: The bytes are not an image (the message gives their length and
            first bytes; inside a ``map`` the stage's note names the element).

    Example::

        img = stoker.image.decode_jpeg(record["image/encoded"], channels=3)
    """
    del try_recover_truncated, acceptable_fraction, name
    channels = _check_channels(channels, (0, 1, 3), "decode_jpeg")
    if dct_method not in ("", "INTEGER_FAST", "INTEGER_ACCURATE"):
        raise ValueError(
            f"decode_jpeg: dct_method={dct_method!r} must be '', 'INTEGER_FAST' or "
            "'INTEGER_ACCURATE'"
        )
    buf = _as_buffer(contents, "decode_jpeg")
    if ratio == 1:
        img = _decode_turbo(buf, channels, dct_method, fancy_upscaling)
        if img is not None:
            return np.asarray(img)
    if ratio != 1:
        if ratio not in (2, 4, 8):
            raise ValueError(f"decode_jpeg: ratio={ratio} must be 1, 2, 4 or 8")
        reduced = {
            (1, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
            (1, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
            (1, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
            (3, 2): cv2.IMREAD_REDUCED_COLOR_2,
            (3, 4): cv2.IMREAD_REDUCED_COLOR_4,
            (3, 8): cv2.IMREAD_REDUCED_COLOR_8,
        }
        ch = 1 if channels == 1 else 3
        return _to_rgb(
            _imdecode(buf, reduced[ch, ratio] | cv2.IMREAD_IGNORE_ORIENTATION, "decode_jpeg")
        )
    return _decode_cv(buf, channels, False, "decode_jpeg")


def decode_png(
    contents: Any, channels: int = 0, dtype: Any = np.uint8, name: str | None = None
) -> np.ndarray:
    """Decode PNG bytes to a uint8 or uint16 HWC array.

    Args:
        contents: The encoded bytes.
        channels: 0 (as stored), 1 (grey), 3 (RGB) or 4 (RGBA).
        dtype: ``np.uint8`` or ``np.uint16``.
        name: Unused.

    Returns:
        Array of shape ``(height, width, channels)``.

    Raises:
        InvalidElementError: The bytes are not an image.

    Example::

        img = stoker.image.decode_png(data, channels=3)
    """
    del name
    channels = _check_channels(channels, (0, 1, 3, 4), "decode_png")
    out = to_numpy_dtype(dtype)
    if out not in (np.uint8, np.uint16):
        raise ValueError(f"decode_png: dtype={out} must be uint8 or uint16")
    buf = _as_buffer(contents, "decode_png")
    img = _decode_cv(buf, channels, out == np.uint16, "decode_png")
    return img if img.dtype == out else convert_image_dtype(img, out)


def decode_image(
    contents: Any,
    channels: int | None = None,
    dtype: Any = np.uint8,
    name: str | None = None,
    expand_animations: bool = True,
) -> np.ndarray:
    """Decode JPEG, PNG, BMP or GIF bytes, detecting the format from the magic bytes.

    Args:
        contents: The encoded bytes.
        channels: None or 0 (as stored), 1, 3 or 4.
        dtype: The output dtype; values are scaled as :func:`convert_image_dtype` does
            (16-bit PNGs keep their precision for ``uint16`` and float outputs).
        name: Unused.
        expand_animations: GIFs give a 4-D ``(frames, H, W, 3)`` array when True, else
            their first frame.

    Returns:
        A 3-D array (4-D for GIFs with ``expand_animations``).

    Raises:
        InvalidElementError: The bytes are not an image of a known format.

    Example::

        img = stoker.image.decode_image(data, channels=3, dtype=np.float32)
    """
    del name
    ch = _check_channels(0 if channels is None else channels, (0, 1, 3, 4), "decode_image")
    out = to_numpy_dtype(dtype)
    buf = _as_buffer(contents, "decode_image")
    fmt = image_format(buf)
    if fmt is None:
        raise _fail("decode_image", buf, "unknown format: not JPEG, PNG, GIF, BMP or WebP")
    if fmt == "gif":
        img = _decode_gif(buf, ch, expand_animations, "decode_image")
    elif fmt == "jpeg" and ch in (0, 1, 3):
        turbo = _decode_turbo(buf, ch, "", True)
        img = _decode_cv(buf, ch, False, "decode_image") if turbo is None else np.asarray(turbo)
    else:
        img = _decode_cv(buf, ch, out != np.uint8, "decode_image")
    return img if img.dtype == out else convert_image_dtype(img, out)


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.shape[2] == 3:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA))
    return image


def _encode_input(
    image: Any, fn: str, dtypes: tuple[type, ...], channels: tuple[int, ...]
) -> np.ndarray:
    arr = np.ascontiguousarray(image)
    if arr.ndim != 3:
        raise ValueError(f"{fn}: image must be 3-D (height, width, channels), got {arr.shape}")
    if arr.dtype not in dtypes:
        raise TypeError(f"{fn}: image dtype must be one of {dtypes}, got {arr.dtype}")
    if arr.shape[2] not in channels:
        raise ValueError(f"{fn}: image must have {channels} channels, got {arr.shape}")
    return arr


def encode_jpeg(
    image: Any,
    format: str = "",
    quality: int = 95,
    progressive: bool = False,
    optimize_size: bool = False,
    chroma_downsampling: bool = True,
    density_unit: str = "in",
    x_density: int = 300,
    y_density: int = 300,
    xmp_metadata: str = "",
    name: str | None = None,
) -> bytes:
    """Encode a uint8 HWC image (1 or 3 channels) as JPEG bytes.

    Args:
        image: ``uint8`` array ``(height, width, 1 or 3)``.
        format: ``""`` (from the channels), ``"grayscale"`` or ``"rgb"``.
        quality: 0-100.
        progressive: Write a progressive JPEG.
        optimize_size: Optimise the Huffman tables.
        chroma_downsampling: 4:2:0 chroma when True, else 4:4:4.
        density_unit: Accepted for tf's signature.
        x_density: Accepted for tf's signature.
        y_density: Accepted for tf's signature.
        xmp_metadata: Accepted for tf's signature (not written).
        name: Unused.

    Returns:
        The JPEG file's bytes.

    Example::

        data = stoker.image.encode_jpeg(np.zeros((8, 8, 3), np.uint8), quality=90)
    """
    del density_unit, x_density, y_density, xmp_metadata, name
    arr = _encode_input(image, "encode_jpeg", (np.uint8,), (1, 3))
    if not 0 <= quality <= 100:
        raise ValueError(f"encode_jpeg: quality={quality} must be in [0, 100]")
    if format == "grayscale" and arr.shape[2] == 3:
        arr = np.asarray(cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY))[:, :, None]
    elif format == "rgb" and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif format not in ("", "grayscale", "rgb"):
        raise ValueError(f"encode_jpeg: format={format!r} must be '', 'grayscale' or 'rgb'")
    sampling = (
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
        if chroma_downsampling
        else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
    )
    params = [
        cv2.IMWRITE_JPEG_QUALITY, int(quality),
        cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive),
        cv2.IMWRITE_JPEG_OPTIMIZE, int(optimize_size),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling,
    ]  # fmt: skip
    ok, data = cv2.imencode(".jpg", _bgr(arr), params)
    if not ok:  # pragma: no cover - OpenCV fails only on unsupported input, checked above
        raise ValueError("encode_jpeg: OpenCV could not encode the image")
    return bytes(data)


def encode_png(image: Any, compression: int = -1, name: str | None = None) -> bytes:
    """Encode a uint8 or uint16 HWC image (1-4 channels) as PNG bytes.

    Args:
        image: ``uint8`` or ``uint16`` array ``(height, width, channels)``.
        compression: zlib level 0-9; -1 is zlib's default (6).
        name: Unused.

    Returns:
        The PNG file's bytes.

    Example::

        data = stoker.image.encode_png(np.zeros((8, 8, 4), np.uint8))
    """
    del name
    arr = _encode_input(image, "encode_png", (np.uint8, np.uint16), (1, 2, 3, 4))
    if not -1 <= compression <= 9:
        raise ValueError(f"encode_png: compression={compression} must be in [-1, 9]")
    level = 6 if compression == -1 else int(compression)
    if arr.shape[2] == 2:  # grey + alpha: OpenCV writes 1, 3 or 4 channels
        from PIL import Image

        buf = io.BytesIO()
        if arr.dtype != np.uint8:
            raise TypeError("encode_png: 2-channel (grey + alpha) images must be uint8")
        Image.fromarray(arr, "LA").save(buf, format="PNG", compress_level=level)
        return buf.getvalue()
    ok, data = cv2.imencode(".png", _bgr(arr), [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:  # pragma: no cover
        raise ValueError("encode_png: OpenCV could not encode the image")
    return bytes(data)
