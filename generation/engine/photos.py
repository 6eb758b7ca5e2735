"""A subject's reference photos made ready for training: checks, square crops, captions, and a
report in plain words for the caregiver who chose them. Only near-duplicates are left out; every
other problem is advice, since a caregiver may have few photos of a loved one.

    prepared = prepare_photos(load_photo_folder(folder), token="sqgkhoju", class_word="woman", is_person=True)
    prepared.examples, prepared.report.to_dict()   # for the trainer; for the caregiver (stored on the job)
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

import cv2
import imagehash
import numpy as np
from PIL import Image, ImageOps

from .errors import EngineInputError
from .faces import Box, find_faces  # noqa: F401  (photos' reports and crops use them; tests too)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# Sharpness: variance of the Laplacian on a grey copy with its shorter side at SHARPNESS_SIDE, so
# big and small photos are judged alike. There, sharp photos measure about 150-1000+, a 1-pixel
# Gaussian blur brings them to 25-90 and a 2-pixel one below 15: 60 flags visibly soft photos only.
SHARPNESS_SIDE = 512
BLURRY_BELOW = 60.0
# Perceptual hashes (64 bits): re-saving, resizing or +3% brightness moves a photo 0-2 bits, cutting
# 5% off one edge about 6; different photos differ by 10 or more. Leaving out is the one thing done
# unasked, so only near-certain copies are. Photos typically closer than 12 show one pose in one place.
DUPLICATE_MAX_DISTANCE = 6
LITTLE_VARIETY_BELOW = 12
# Colours (of a 64x64 copy) straying from one line of shades (grey, or one tint: sepia, a faded print)
# by fewer levels than this are no real colour. Grey with JPEG noise is below 1, sepia 0.5-2, dull colour 6+.
GRAYSCALE_MAX_COLOUR_SPREAD = 4.0


@dataclass(frozen=True)
class Problem:
    """For a photo: too_small, blurry, near_duplicate, no_face, several_faces, grayscale; for the set:
    too_few, little_variety. The message says, in plain words, what would help."""
    code: str
    message: str


@dataclass
class PhotoReport:
    name: str
    width: int
    height: int
    sharpness: float  # variance of the Laplacian at SHARPNESS_SIDE
    perceptual_hash: str  # imagehash.phash, hex
    content_hash: str  # SHA-256 of the pixels, as lifebook.uploads computes it
    faces: list[Box] = field(default_factory=list)  # largest first; empty for non-person subjects
    problems: list[Problem] = field(default_factory=list)
    used: bool = True  # False only for a near-duplicate of an earlier photo
    duplicate_of: str | None = None


@dataclass
class SetReport:
    photos: list[PhotoReport]
    problems: list[Problem]

    @property
    def used_count(self) -> int:
        return sum(photo.used for photo in self.photos)

    def to_dict(self) -> dict:
        """Plain JSON types only, for a job row or the UI."""
        return {"used_count": self.used_count, "photo_count": len(self.photos),
                "problems": [asdict(p) for p in self.problems],
                "photos": [{**asdict(p), "faces": [list(box) for box in p.faces]} for p in self.photos]}


@dataclass
class TrainingExample:
    name: str
    image: Image.Image  # RGB, resolution x resolution
    caption: str
    content_hash: str


@dataclass
class PreparedSet:
    examples: list[TrainingExample]
    report: SetReport


def load_photo_folder(folder: Path) -> list[tuple[str, Image.Image]]:
    """Every JPEG/PNG/WebP in the folder, by name, upright (EXIF rotation applied), RGB, loaded."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EngineInputError(f"There is no photo folder at {folder}.")
    paths = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")  # hidden: ._x.jpg
                    and p.suffix.lower() in PHOTO_SUFFIXES), key=lambda p: p.name)
    if not paths:
        raise EngineInputError(f"The photo folder {folder} holds no photos (JPEG, PNG or WebP files).")
    photos = []
    for path in paths:
        try:
            with Image.open(path) as image:
                photos.append((path.name, ImageOps.exif_transpose(image).convert("RGB")))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise EngineInputError(f"The photo {path.name} cannot be read: it is damaged or not a picture.") from exc
    return photos


def prepare_photos(photos: list[tuple[str, Image.Image]], *, token: str, class_word: str, is_person: bool,
                   resolution: int = 512, min_photos: int = 10) -> PreparedSet:
    """Check every photo and the set, leave out near-duplicates, crop and caption the rest."""
    if not photos:
        raise EngineInputError("There are no photos to prepare: add some photos of the subject first.")
    if not token.strip() or not class_word.strip():
        raise EngineInputError("The token and the class word must not be empty.")
    caption = f"a photo of {token} {class_word}"
    reports, examples, used_hashes = [], [], []  # used_hashes: (name, phash) of photos kept so far
    for name, image in photos:
        image = image.convert("RGB")
        report = check_photo(name, image, is_person=is_person, resolution=resolution)
        phash = imagehash.hex_to_hash(report.perceptual_hash)
        # Compared with kept photos only, so "almost the same as X" always names a photo in the set.
        twin = next((earlier for earlier, h in used_hashes if phash - h <= DUPLICATE_MAX_DISTANCE), None)
        if twin is not None:
            report.used, report.duplicate_of = False, twin
            report.problems.append(Problem("near_duplicate", f"This photo is almost the same as “{twin}”, so it "
                                           "is left out. Photos that differ from each other teach more."))
        else:
            used_hashes.append((name, phash))
            square = image.crop(square_crop_box(image.size, report.faces[0] if report.faces else None))
            examples.append(TrainingExample(name, square.resize((resolution, resolution), Image.LANCZOS),
                                            caption, report.content_hash))
        reports.append(report)
    if not examples:  # only near-duplicates are left out, so not yet possible; kept for future checks
        raise EngineInputError("None of the photos can be used for learning.")
    return PreparedSet(examples, SetReport(reports, _set_problems([h for _, h in used_hashes], min_photos)))


def check_photo(name: str, image: Image.Image, *, is_person: bool, resolution: int) -> PhotoReport:
    """One RGB photo's own checks (duplicates are a matter of the set: see prepare_photos)."""
    width, height = image.size
    sharpness = laplacian_sharpness(image)
    faces = find_faces(image) if is_person else []
    checks = [
        (min(width, height) < resolution, "too_small", f"This photo is small ({width}×{height} pixels), so it will "
         f"be enlarged, which makes it softer. A photo at least {resolution} pixels on its shorter side works better."),
        (sharpness < BLURRY_BELOW, "blurry", "This photo is blurry. A sharper one will teach the model "
         f"{'the face' if is_person else 'the details'} better."),
        (is_person and not faces, "no_face", "We could not find a face in this photo. Photos where the face is "
         "clearly visible, looking towards the camera, work best."),
        (len(faces) > 1, "several_faces", f"We found {len(faces)} faces in this photo. Photos of this person alone "
         "work best; we will centre on the largest face."),
        (colour_spread(image) < GRAYSCALE_MAX_COLOUR_SPREAD, "grayscale", "This photo is black-and-white or sepia. "
         "Colour photos teach the colours of skin, hair and clothes better."),
    ]
    content_hash = hashlib.sha256(f"{width}x{height}:".encode() + image.tobytes()).hexdigest()
    return PhotoReport(name, width, height, round(sharpness, 1), str(imagehash.phash(image)), content_hash, faces,
                       [Problem(code, message) for failed, code, message in checks if failed])


def _set_problems(hashes: list, min_photos: int) -> list[Problem]:
    used = len(hashes)
    alike = used >= 2 and statistics.median(a - b for a, b in combinations(hashes, 2)) < LITTLE_VARIETY_BELOW
    checks = [
        (used < min_photos, "too_few", f"{used} photo{'' if used == 1 else 's'} can be used. About {min_photos} "
         f"varied photos work best, so {min_photos - used} more would help."),
        (alike, "little_variety", "The photos are very alike. Photos with different angles, distances, lighting, "
         "expressions and clothes teach the model better."),
    ]
    return [Problem(code, message) for failed, code, message in checks if failed]


def laplacian_sharpness(image: Image.Image) -> float:
    """Variance of the Laplacian (edge strength) at SHARPNESS_SIDE: low means blurry."""
    grey = np.asarray(image.convert("L"))
    height, width = grey.shape
    scale = min(SHARPNESS_SIDE / min(width, height), 4 * SHARPNESS_SIDE / max(width, height))  # thin strips stay small
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def colour_spread(image: Image.Image) -> float:
    """How far the colours stray from one line of shades: the two minor principal axes in RGB."""
    pixels = np.asarray(image.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float64).reshape(-1, 3)
    minor = np.linalg.eigvalsh(np.cov(pixels, rowvar=False))[:2].sum()
    return float(np.sqrt(max(minor, 0.0)))


def square_crop_box(size: tuple[int, int], face: Box | None = None) -> Box:
    """The largest square in the photo, centred on the face (or the middle), kept inside the photo."""
    width, height = size
    side = min(width, height)
    cx, cy = ((face[0] + face[2]) / 2, (face[1] + face[3]) / 2) if face else (width / 2, height / 2)
    left = round(min(max(cx - side / 2, 0), width - side))
    top = round(min(max(cy - side / 2, 0), height - side))
    return left, top, left + side, top + side
