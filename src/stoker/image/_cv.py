"""The one place that imports OpenCV, so a missing extra gives one clear message."""

from __future__ import annotations

from typing import Any

__all__ = ["cv2"]

try:
    import cv2 as _cv2
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("stoker.image needs OpenCV and Pillow: pip install 'stoker[images]'") from e

cv2: Any = _cv2
