"""tf.image's stateless_random_* ops: a required seed, the same draw every call."""

from __future__ import annotations

import numpy as np
import pytest

image = pytest.importorskip("stoker.image")

U8 = np.random.default_rng(0).integers(0, 256, size=(20, 30, 3), dtype=np.uint8)

CASES = [
    ("stateless_random_flip_left_right", ()),
    ("stateless_random_flip_up_down", ()),
    ("stateless_random_brightness", (0.3,)),
    ("stateless_random_contrast", (0.5, 1.5)),
    ("stateless_random_saturation", (0.5, 1.5)),
    ("stateless_random_hue", (0.3,)),
    ("stateless_random_crop", ((10, 10, 3),)),
]


@pytest.mark.parametrize(("name", "args"), CASES)
def test_same_seed_same_result_and_seeds_differ(name, args) -> None:
    fn = getattr(image, name)
    a = fn(U8, *args, seed=(1, 2))
    b = fn(U8, *args, seed=(1, 2))
    np.testing.assert_array_equal(a, b)
    outs = {fn(U8, *args, seed=(1, s)).tobytes() for s in range(12)}
    assert len(outs) > 1
    with pytest.raises(ValueError, match="seed=None"):
        fn(U8, *args, seed=None)


def test_stateless_equals_random_with_the_same_seed() -> None:
    np.testing.assert_array_equal(
        image.stateless_random_hue(U8, 0.2, seed=7), image.random_hue(U8, 0.2, seed=7)
    )
