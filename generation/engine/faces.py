"""Finding faces in a picture, offline: the one place that knows which detector Lifebook uses.

The photo checks (does a reference photo show a face?), the face-centred training crops, and the face
pass of a composed picture all call `find_faces`, so changing the detector is a change here only.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from .errors import EngineConfigError

# Faces are looked for on a copy with its shorter side at most FACE_DETECT_SIDE (fast; the cascades
# gain nothing from more pixels). Hits under MIN_FACE_FRACTION of the shorter side are nearly always
# patterns in a curtain, and so small a face would teach little anyway.
FACE_DETECT_SIDE = 480
MIN_FACE_FRACTION = 0.1
FACE_MIN_NEIGHBOURS = 5  # OpenCV's usual value: fewer lets in patterns, more misses dim faces
SAME_FACE_OVERLAP = 0.3  # share of the smaller box: frontal and profile hits on one face merge
CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml")
Box = tuple[int, int, int, int]  # left, top, right, bottom in the picture's pixels


@lru_cache(maxsize=None)
def _cascade(filename: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + filename)
    if cascade.empty():
        raise EngineConfigError(f"OpenCV's face detector {filename} is missing; reinstall opencv-python-headless.")
    return cascade


def find_faces(image: Image.Image) -> list[Box]:
    """Faces (frontal, and profiles turned either way), largest first, in the photo's pixels."""
    width, height = image.size
    scale = min(1.0, FACE_DETECT_SIDE / min(width, height))
    # Not equalised: the cascades normalise each window; equalising makes faint shapes pass for faces.
    grey = np.asarray(image.convert("L").resize((max(1, round(width * scale)), max(1, round(height * scale)))))
    min_side = max(20, round(min(grey.shape) * MIN_FACE_FRACTION))
    # Frontal first, so it wins the merge over a profile hit on the same face. The profile cascade
    # knows faces turned one way only; on the mirrored copy it finds the other way.
    found = []
    for filename, mirrored in ((CASCADES[0], False), (CASCADES[1], False), (CASCADES[1], True)):
        picture = cv2.flip(grey, 1) if mirrored else grey
        hits = _cascade(filename).detectMultiScale(picture, scaleFactor=1.1, minNeighbors=FACE_MIN_NEIGHBOURS,
                                                   minSize=(min_side, min_side))
        for x, y, w, h in hits:
            x = picture.shape[1] - x - w if mirrored else x
            found.append((int(x), int(y), int(x + w), int(y + h)))
    kept = []
    for box in found:
        if all(_overlap(box, other) < SAME_FACE_OVERLAP for other in kept):
            kept.append(box)
    boxes = [tuple(min(limit, round(v / scale)) for v, limit in zip(box, (width, height) * 2)) for box in kept]
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def _overlap(a: Box, b: Box) -> float:
    """The shared area as a share of the smaller box (1.0 when one holds the other)."""
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return max(w, 0) * max(h, 0) / smaller if smaller else 0.0
