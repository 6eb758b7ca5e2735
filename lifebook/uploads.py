"""Upload normalisation: the one door every picture comes in through.

Web forms, the API, the admin and the demo loader all call `normalise_image`
(or the helpers below that store its result). It never trusts the file name
or the extension: it decodes the whole image with only the formats we allow,
refuses bombs, animations and broken files with a message that names the file
and the reason, and re-encodes a clean RGB JPEG, which drops EXIF and GPS.
"""

import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from .book_cache import book_changed

register_heif_opener()

# Pillow format names (pillow-heif registers HEIF for .heic and .heif).
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
ALLOWED_FORMATS_TEXT = "JPEG, PNG, WebP or HEIC"
MIN_SHORT_SIDE = 256  # below this a photo is refused
GOOD_SHORT_SIDE = 512  # below this it is accepted with a note (the thesis trained at 512)
JPEG_QUALITY = 92


class UploadRejected(Exception):
    """A picture we will not store. `message` is for the person who uploaded it."""

    def __init__(self, filename: str, reason: str):
        self.filename = filename
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"“{self.filename}” was not added: {self.reason}"


@dataclass
class NormalisedImage:
    original_name: str
    content: bytes  # RGB JPEG, no metadata
    width: int
    height: int
    content_hash: str  # SHA-256 of the decoded pixels, so a re-saved copy still matches
    notes: list[str] = field(default_factory=list)


def normalise_image(upload, *, min_short_side=MIN_SHORT_SIDE, good_short_side=GOOD_SHORT_SIDE) -> NormalisedImage:
    """Check and clean one uploaded file (a Django UploadedFile or any file object with .name)."""
    name = _display_name(upload)
    data = _read_capped(upload, name)
    # SVG and HTML start with "<", perhaps after a byte-order mark and blanks.
    if data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
        raise UploadRejected(name, f"it is a drawing or web file (such as SVG), not a photo. Use {ALLOWED_FORMATS_TEXT}.")

    image = _decode(data, name)
    notes = []
    if image.mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F"):
        notes.append("It is a black-and-white photo: colour photos teach colours better.")
    image = _to_srgb_rgb(image)

    width, height = image.size
    short = min(width, height)
    if short < min_short_side:
        raise UploadRejected(
            name,
            f"it is too small ({width}×{height} pixels). Photos need at least {min_short_side} pixels "
            f"on their shorter side, and {good_short_side} or more works best.",
        )
    if short < good_short_side:
        notes.append(
            f"It is quite small ({width}×{height} pixels): {good_short_side} pixels or more on the shorter side works best."
        )

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    digest = hashlib.sha256(f"{width}x{height}:".encode() + image.tobytes()).hexdigest()
    return NormalisedImage(name, buffer.getvalue(), width, height, digest, notes)


def decode_upload(upload) -> Image.Image:
    """Size-capped, fully decoded, for sketches and masks drawn in the browser (kept lossless, alpha
    kept: a mask may be strokes on a transparent canvas). Raises UploadRejected like normalise_image."""
    name = _display_name(upload)
    data = _read_capped(upload, name)
    if data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
        raise UploadRejected(name, f"it is a drawing or web file (such as SVG), not a picture. Use {ALLOWED_FORMATS_TEXT}.")
    return _decode(data, name)


def _display_name(upload) -> str:
    name = os.path.basename(str(getattr(upload, "name", "") or "")).strip()
    return (name or "The file")[:200]


def _read_capped(upload, name: str) -> bytes:
    limit = settings.LIFEBOOK_MAX_UPLOAD_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise UploadRejected(name, f"it is larger than {_size_text(limit)}. Use a smaller copy of the photo.")
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadRejected(name, f"it is larger than {_size_text(limit)}. Use a smaller copy of the photo.")
    if not data:
        raise UploadRejected(name, "the file is empty (0 bytes). Try choosing it again.")
    return data


def _size_text(limit: int) -> str:
    """The cap in plain words: "25 MB", "1.4 MB", "1000 bytes", never "0 MB"."""
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if limit >= size:
            return f"{_down_to_tenths(limit / size)} {unit}"
    return f"{limit} bytes"


def _pixels_text(limit: int) -> str:
    if limit >= 1_000_000:
        amount = _down_to_tenths(limit / 1_000_000)
        return f"{amount} megapixel{'' if amount == '1' else 's'}"
    return f"{limit:,} pixels"


def _down_to_tenths(value: float) -> str:
    # Rounded down, so "larger than …" stays true of every file it refuses.
    return f"{int(value * 10) / 10:.1f}".removesuffix(".0")


def _decode(data: bytes, name: str) -> Image.Image:
    not_a_picture = f"it is not a picture in a format we accept ({ALLOWED_FORMATS_TEXT}), or it is damaged."
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; we refuse.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            if image.width * image.height > settings.LIFEBOOK_MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError
            if image.format not in ("HEIF", "MPO") and getattr(image, "n_frames", 1) > 1:
                # HEIC files may hold extra images (depth, bursts), and cameras write JPEGs
                # with a second picture (MPO: stereo pairs, large previews); the first is the photo.
                raise UploadRejected(name, "it is an animation. Choose a still photo.")
            image.load()  # decode every byte: a truncated file fails here, not later
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = _pixels_text(settings.LIFEBOOK_MAX_IMAGE_PIXELS)
        raise UploadRejected(name, f"it has too many pixels (more than {limit}). Use a smaller copy.")
    except UnidentifiedImageError:
        raise UploadRejected(name, not_a_picture)
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, EOFError, MemoryError):
        raise UploadRejected(name, "the file is damaged or incomplete, so the picture could not be read to the end.")
    return image


def _to_srgb_rgb(image: Image.Image) -> Image.Image:
    """Upright, 8-bit sRGB, no alpha: what the engine trains on and browsers show."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block must not lose the photo; keep it as stored
        pass
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "CMYK"):
        try:
            image = ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # an unusable profile: plain conversion below is still a faithful picture
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float greyscale: scale to 8 bits instead of clipping to white.
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        image = Image.fromarray(np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


# --- Storing -----------------------------------------------------------------


# Said by every door a reference photo comes in through (the subject page, the API).
NO_PHOTO_CONSENT = gettext_lazy("Record photo consent on the patient's details first: photos of a person are "
                                "health data.")


def add_reference_photo(subject, upload, *, user=None):
    """Normalise and store a reference photo of `subject`. Raises UploadRejected."""
    from .models import ReferencePhoto

    clean = normalise_image(upload)
    duplicate = UploadRejected(clean.original_name, f"the same photo is already among {subject.name}’s photos.")
    if ReferencePhoto.objects.filter(subject=subject, content_hash=clean.content_hash).exists():
        raise duplicate
    photo = ReferencePhoto(
        subject=subject,
        original_name=clean.original_name,
        size_bytes=len(clean.content),
        content_hash=clean.content_hash,
        quality_notes=clean.notes,
        uploaded_by=user if user is not None and user.is_authenticated else None,
    )
    try:
        _save_with_file(photo, clean)
    except IntegrityError:
        if ReferencePhoto.objects.filter(subject=subject, content_hash=clean.content_hash).exists():
            # Another upload of the same photo won the race between our check and insert.
            raise duplicate
        raise
    return photo


def add_uploaded_memory_image(memory, upload, *, user=None, choose=False):
    """Store a real photo as a candidate picture for `memory` ("use a real photo instead")."""
    from .models import MemoryImage

    clean = normalise_image(upload)
    image = MemoryImage(
        memory=memory,
        source=MemoryImage.Source.UPLOADED,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    _save_with_file(image, clean)
    if choose:
        type(memory).objects.filter(pk=memory.pk).update(chosen_image=image)
        book_changed(memory.chapter.patient_id)  # update() sends no signal
        memory.chosen_image = image
    return image


def _save_with_file(instance, clean: NormalisedImage):
    """Write the file, then the row; if the row fails, remove the file so nothing is orphaned."""
    instance.image.save("upload.jpg", ContentFile(clean.content), save=False)
    # Known already; and ImageField's own re-read after save is unreliable here.
    instance.width, instance.height = clean.width, clean.height
    try:
        with transaction.atomic():
            instance.save()
    except Exception:
        instance.image.delete(save=False)
        raise
