"""``stoker.image``: tf.image's ops on NumPy images, for augmentations inside a pipeline.

The same names, arguments and values as ``tf.image`` (and ``tf.io``'s image codecs), on
HWC images and NHWC batches of uint8 or float32, computed by OpenCV (which releases the
GIL, so ``map(..., num_parallel_calls=...)`` on threads scales) and NumPy, with no pixel
loops in Python. A tf.data augmentation function ports by replacing ``tf.image`` with
``stoker.image`` and passing ``seed=rng`` to the random ops inside ``Dataset.random_map``::

    import stoker.image as image

    def augment(x, rng):
        img = image.decode_jpeg(x["image"], channels=3)
        img = image.random_flip_left_right(img, seed=rng)
        img = image.random_brightness(img, 0.2, seed=rng)
        return image.resize(img, (224, 224)) / 255.0

    ds = ds.random_map(augment, seed=0, num_parallel_calls=stoker.AUTOTUNE)

Needs the ``images`` extra: ``pip install 'stoker[images]'``. Where the values differ from
tf.image, and what stoker adds, is listed in docs/image.md.
"""

from stoker.image._codec import decode_image, decode_jpeg, decode_png, encode_jpeg, encode_png
from stoker.image._color import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    grayscale_to_rgb,
    hsv_to_rgb,
    per_image_standardization,
    rgb_to_grayscale,
    rgb_to_hsv,
)
from stoker.image._dtype import convert_image_dtype
from stoker.image._geometry import central_crop, flip_left_right, flip_up_down
from stoker.image._random import (
    random_brightness,
    random_contrast,
    random_crop,
    random_flip_left_right,
    random_flip_up_down,
    random_hue,
    random_saturation,
)
from stoker.image._resize import ResizeMethod, resize
from stoker.image._stateless import (
    stateless_random_brightness,
    stateless_random_contrast,
    stateless_random_crop,
    stateless_random_flip_left_right,
    stateless_random_flip_up_down,
    stateless_random_hue,
    stateless_random_saturation,
)

__all__ = [
    "ResizeMethod",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "central_crop",
    "convert_image_dtype",
    "decode_image",
    "decode_jpeg",
    "decode_png",
    "encode_jpeg",
    "encode_png",
    "flip_left_right",
    "flip_up_down",
    "grayscale_to_rgb",
    "hsv_to_rgb",
    "per_image_standardization",
    "random_brightness",
    "random_contrast",
    "random_crop",
    "random_flip_left_right",
    "random_flip_up_down",
    "random_hue",
    "random_saturation",
    "resize",
    "rgb_to_grayscale",
    "rgb_to_hsv",
    "stateless_random_brightness",
    "stateless_random_contrast",
    "stateless_random_crop",
    "stateless_random_flip_left_right",
    "stateless_random_flip_up_down",
    "stateless_random_hue",
    "stateless_random_saturation",
]
