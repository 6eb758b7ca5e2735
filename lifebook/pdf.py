"""The large-print PDF of a life book, drawn by WeasyPrint.

One memory per page, as reminiscence practice asks: a cover, a title page per
chapter, then each visible memory with a large picture, its title and caption.
Hidden memories are never printed, whoever asks.

Pictures never travel over HTTP: the server would be fetching from itself, and
media is access-checked. The template names each picture with an internal
`lifebook-media:` URL, and `BookFetcher` resolves only those, only for this
patient's files, read through Django's default storage (filesystem or S3) and
downscaled in memory. Every other URL (http, file, data, another patient's
path) is refused.
"""

import io
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils.text import slugify
from PIL import Image, ImageOps

from .media import PATIENT_FILE
from .models import Memory, Patient

# WeasyPrint reports every step and every page at INFO (a 200-memory book is
# 200+ lines per download); set before the import, which already logs steps.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

import weasyprint  # noqa: E402
from PIL import ImageFile  # noqa: E402
from weasyprint.urls import URLFetcher, URLFetcherResponse  # noqa: E402

# WeasyPrint's import sets Pillow's process-wide LOAD_TRUNCATED_IMAGES, which would let a cut-off upload
# through lifebook.uploads in this process. Its pictures come from us already decoded and re-encoded
# (embeddable_image), so it never needs that leniency: put the strict default back.
ImageFile.LOAD_TRUNCATED_IMAGES = False

SCHEME = "lifebook-media"
# A4 at 150 dpi is about 1240 x 1750 px, so 1600 px on the long side prints
# sharp; a 200-memory book stays around tens of megabytes, not gigabytes.
MAX_PICTURE_SIDE = 1600
JPEG_QUALITY = 85


class RefusedURL(ValueError):
    """A URL the book may not fetch. WeasyPrint logs it and prints the picture's alt text (its title) instead."""


@dataclass
class Picture:
    url: str
    generated: bool
    from_demo_model: bool


@dataclass
class BookMemory:
    title: str
    caption: str
    picture: Picture | None


@dataclass
class BookChapter:
    title: str
    life_stage: str
    memories: list[BookMemory] = field(default_factory=list)


def internal_url(file_name: str) -> str:
    return f"{SCHEME}:{file_name}"


def book_chapters(patient: Patient) -> list[BookChapter]:
    """The chapters and visible memories, in book order.

    A chapter with no visible memories is left out rather than printed with
    "no memories yet": for the person reading it, a page announcing that
    something is missing can feel like a loss or a test they failed, and
    an empty chapter is the caregiver's work in progress, not part of the book.
    """
    visible = Memory.objects.filter(hidden=False).select_related("chosen_image")
    chapters = []
    for chapter in patient.chapters.prefetch_related(Prefetch("memories", queryset=visible)):
        memories = [
            BookMemory(title=memory.title, caption=memory.description, picture=_picture(memory))
            for memory in chapter.memories.all()
        ]
        if memories:
            stage = chapter.get_life_stage_display() if chapter.life_stage else ""
            # "Childhood" under a chapter called "Childhood" says nothing twice.
            chapters.append(BookChapter(chapter.title, "" if stage == chapter.title else stage, memories))
    return chapters


def _picture(memory: Memory) -> Picture | None:
    image = memory.chosen_image
    if image is None or not image.image:
        return None
    return Picture(internal_url(image.image.name), image.is_generated, image.from_demo_model)


def render_book_html(patient: Patient) -> str:
    chapters = book_chapters(patient)
    memories = [memory for chapter in chapters for memory in chapter.memories]
    # The cover shows the first picture in the book (the first memory's, unless it has none yet).
    cover = next((memory for memory in memories if memory.picture), None)
    return render_to_string(
        "lifebook/book_pdf.html",
        {"patient": patient, "chapters": chapters, "cover": cover, "has_memories": bool(memories)},
    )


def render_book_pdf(patient: Patient) -> bytes:
    html = weasyprint.HTML(string=render_book_html(patient), url_fetcher=BookFetcher(patient.pk))
    # Tagged PDF: screen readers and reflowing readers follow the book's structure and alt text.
    return html.write_pdf(pdf_tags=True)


def download_name(patient: Patient) -> str:
    """Safe ASCII for Content-Disposition: 'José Pérez' -> 'jose-perez-life-book.pdf'."""
    return f"{slugify(patient.name) or 'patient'}-life-book.pdf"


class BookFetcher(URLFetcher):
    """Resolves `lifebook-media:patients/<this patient>/...` from storage; refuses anything else.

    `fetch` never calls urllib (the parent's opener), so http, file and data
    URLs cannot be reached even if they slip into the HTML.
    """

    def __init__(self, patient_id: int):
        super().__init__(allowed_protocols=[SCHEME], allow_redirects=False)
        self.patient_id = int(patient_id)

    def fetch(self, url, headers=None):
        path = self.storage_path(url)
        try:
            with default_storage.open(path, "rb") as stored:
                data = downscaled_jpeg(stored)
        except (OSError, Image.DecompressionBombError, ValueError) as error:
            raise RefusedURL(f"The picture {path} could not be read: {error}") from error
        return URLFetcherResponse(url, data, {"Content-Type": "image/jpeg"})

    def storage_path(self, url: str) -> str:
        """The storage path the URL names, if it is one of this patient's files."""
        prefix = f"{SCHEME}:"
        if not url.startswith(prefix):
            raise RefusedURL(f"Only this book's own pictures are printed, not {url!r}.")
        path = url.removeprefix(prefix)
        match = PATIENT_FILE.match(path)  # no "..", no absolute paths, no odd characters
        if match is None or int(match["patient_id"]) != self.patient_id:
            raise RefusedURL(f"{path!r} is not one of this patient's files.")
        return path


def downscaled_jpeg(file_obj) -> bytes:
    """The picture as an RGB JPEG no larger than MAX_PICTURE_SIDE, made in memory."""
    data = file_obj.read()
    image = Image.open(io.BytesIO(data))
    if image.width * image.height > settings.LIFEBOOK_MAX_IMAGE_PIXELS:
        raise ValueError(f"it is too large ({image.width}×{image.height} pixels)")
    fits = max(image.size) <= MAX_PICTURE_SIDE
    if image.format == "JPEG" and image.mode == "RGB" and fits and not image.getexif():
        return data  # already what the page needs (uploads are stored like this): no second encoding
    if image.format == "JPEG":
        # Decode a large JPEG at 1/2, 1/4 or 1/8 of its size: far faster than decoding it whole.
        image.draft("RGB", _fitted(image.size))
    ImageOps.exif_transpose(image, in_place=True)  # a phone photo stored on its side prints upright
    if image.mode not in ("RGB", "RGBA"):
        transparent = image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if transparent else "RGB")
    if not fits:
        image = image.resize(_fitted(image.size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    if image.mode == "RGBA":
        # Flatten transparency onto the white page, not onto black (after resizing: 4 times fewer pixels).
        page = Image.new("RGB", image.size, "white")
        page.paste(image, mask=image.getchannel("A"))
        image = page
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _fitted(size: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled down, in proportion, to at most MAX_PICTURE_SIDE on its longer side."""
    width, height = size
    scale = min(1.0, MAX_PICTURE_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
