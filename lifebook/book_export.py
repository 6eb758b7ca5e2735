"""A downloadable copy of a whole book: one ZIP that a person can open and that Lifebook can bring back in.

Inside the ZIP:
  book.json      the book as data (FORMAT, FORMAT_VERSION): the patient with the consent record, the subjects,
                 the chapters and memories in order, and every picture with the recipe it was made with
  README.html    the book as a page that opens in a browser straight from the unzipped folder (no scripts, no
                 outside resources; style.css beside it), linking every picture and photo in the folder
  style.css
  photos/        the subjects' reference photos
  pictures/      every memory's pictures, chosen and candidates

Files keep their stored random names (an original name can carry personal details). Subjects' training tokens
stay inside Lifebook: wherever a recipe names one, the copy says `[[subject-N]]` (N is the subject's number in
book.json) and lifebook.book_import writes the new subject's token there. Trained adapters are not in the copy.

The ZIP is built in an anonymous temporary file, one stored file at a time (a book can be hundreds of MB), and
every file is read through the default storage (filesystem or S3).
"""

import json
from datetime import datetime
import re
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify

from .models import LifeStage, Memory, MemoryImage, Patient, Subject

FORMAT = "lifebook-book"
FORMAT_VERSION = 1
# A file name inside the copy: one folder, our random name, an extension. Anything else is refused on import.
ARCHIVE_NAME = re.compile(r"^(photos|pictures)/[A-Za-z0-9_-]{1,100}\.[A-Za-z0-9]{2,5}$")
COPY_CHUNK = 1024 * 1024


def subject_placeholder(number: int) -> str:
    return f"[[subject-{number}]]"


@dataclass
class _Archive:
    """The ZIP being written, and the names already used in it."""

    zip: zipfile.ZipFile
    names: set = field(default_factory=set)
    when: tuple = field(default_factory=lambda: timezone.localtime().timetuple()[:6])

    def add_stored_file(self, folder: str, stored_name: str) -> str | None:
        """Copy a stored file into `folder/`; its name in the copy, or None when the file is missing or unreadable
        (the copy is still made, without it: a lost file must not make the whole book impossible to download)."""
        if not stored_name:
            return None
        base = stored_name.rsplit("/", 1)[-1]
        name = f"{folder}/{base}"
        if name in self.names or not ARCHIVE_NAME.match(name):  # never for our own names; a fresh one then
            extension = base.rsplit(".", 1)[-1]
            name = f"{folder}/{uuid.uuid4().hex}.{extension if re.fullmatch('[A-Za-z0-9]{2,5}', extension) else 'img'}"
        try:
            source = default_storage.open(stored_name, "rb")
        except (OSError, ValueError):
            return None
        with source:
            info = zipfile.ZipInfo(name, date_time=self.when)
            info.compress_type = zipfile.ZIP_STORED  # JPEG and PNG are compressed already
            with self.zip.open(info, "w", force_zip64=True) as target:
                shutil.copyfileobj(source, target, COPY_CHUNK)
        self.names.add(name)
        return name

    def add_text(self, name: str, text: str) -> None:
        info = zipfile.ZipInfo(name, date_time=self.when)
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, text.encode("utf-8"))


def export_book(patient: Patient):
    """The book as a ZIP in a temporary file, rewound; the caller closes it (which deletes it)."""
    out = tempfile.TemporaryFile(dir=getattr(settings, "FILE_UPLOAD_TEMP_DIR", None))
    try:
        with zipfile.ZipFile(out, "w") as archive_zip:
            archive = _Archive(archive_zip)
            book = _book_data(patient, archive)
            archive.add_text("book.json", json.dumps(book, ensure_ascii=False, indent=1))
            archive.add_text("README.html", render_to_string("lifebook/export/README.html", readme_context(book)))
            archive.add_text("style.css", render_to_string("lifebook/export/style.css"))
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def download_name(patient: Patient) -> str:
    """Safe ASCII for Content-Disposition: 'José Pérez' -> 'jose-perez-life-book.zip'."""
    return f"{slugify(patient.name) or 'patient'}-life-book.zip"


def _book_data(patient: Patient, archive: _Archive) -> dict:
    subjects = list(patient.subjects.prefetch_related("photos"))
    numbers = {subject.pk: number for number, subject in enumerate(subjects, 1)}
    tokens = _TokenScrubber({subject.token: subject_placeholder(numbers[subject.pk]) for subject in subjects})
    # Oldest first, the order they were made in: a repainted picture comes after the one it was made from.
    pictures = MemoryImage.objects.order_by("created_at", "pk")
    memories = Memory.objects.prefetch_related("subjects", Prefetch("images", queryset=pictures))
    chapters = patient.chapters.prefetch_related(Prefetch("memories", queryset=memories))

    consent = None
    if patient.has_photo_consent:
        recorded_by = patient.photo_consent_by.get_username() if patient.photo_consent_by else ""
        consent = {"recorded_by": recorded_by, "recorded_at": patient.photo_consent_at.isoformat(),
                   "note": patient.photo_consent_note}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "patient": {"name": patient.name, "preferred_name": patient.preferred_name,
                    "birth_year": patient.birth_year, "notes": patient.notes, "photo_consent": consent},
        "subjects": [
            {"id": numbers[subject.pk], "kind": subject.kind, "name": subject.name,
             "relationship": subject.relationship, "life_stage": subject.life_stage,
             "class_word": subject.class_word,
             "photos": [{"file": name, "content_hash": photo.content_hash, "width": photo.width,
                         "height": photo.height}
                        for photo in subject.photos.all()
                        if (name := archive.add_stored_file("photos", photo.image.name))]}
            for subject in subjects
        ],
        "chapters": [
            {"title": chapter.title, "life_stage": chapter.life_stage,
             "memories": [_memory_data(memory, numbers, tokens, archive) for memory in chapter.memories.all()]}
            for chapter in chapters
        ],
    }


def _memory_data(memory: Memory, numbers: dict, tokens: "_TokenScrubber", archive: _Archive) -> dict:
    numbered = {}  # picture pk -> its number in this copy (only pictures whose file made it in)
    pictures = []
    for image in memory.images.all():
        name = archive.add_stored_file("pictures", image.image.name)
        if name is None:
            continue
        numbered[image.pk] = len(numbered) + 1
        pictures.append({
            "id": numbered[image.pk], "file": name, "source": image.source,
            "parameters": tokens.scrub(image.parameters), "seed": image.seed,
            "from_demo_model": image.from_demo_model, "parent_id": image.parent_id,
            "width": image.width, "height": image.height,
        })
    for picture in pictures:
        picture["parent"] = numbered.get(picture.pop("parent_id"))
    return {
        "title": memory.title, "description": memory.description, "scene": memory.scene, "hidden": memory.hidden,
        "subjects": sorted(numbers[subject.pk] for subject in memory.subjects.all()),
        "chosen_picture": numbered.get(memory.chosen_image_id),
        "pictures": pictures,
    }


class _TokenScrubber:
    """Writes every subject token in a recipe as its placeholder, at any depth (prompts, stage lists...)."""

    def __init__(self, placeholders: dict[str, str]):
        self.placeholders = placeholders
        self.pattern = re.compile(r"\b(" + "|".join(map(re.escape, placeholders)) + r")\b") if placeholders else None

    def scrub(self, value):
        if self.pattern is None:
            return value
        if isinstance(value, str):
            return self.pattern.sub(lambda match: self.placeholders[match.group(1)], value)
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, dict):
            return {self.scrub(key): self.scrub(item) for key, item in value.items()}
        return value


# --- README.html --------------------------------------------------------------------------------------------


def readme_context(book: dict) -> dict:
    """What README.html shows, from book.json's data (so the page and the data cannot disagree)."""
    subjects = [{**subject, "kind_label": Subject.Kind(subject["kind"]).label,
                 "stage_label": _stage_label(subject["life_stage"])} for subject in book["subjects"]]
    names = {subject["id"]: subject["name"] for subject in subjects}
    chapters = []
    for chapter in book["chapters"]:
        memories = []
        for memory in chapter["memories"]:
            pictures = [{**picture, "source_label": MemoryImage.Source(picture["source"]).label}
                        for picture in memory["pictures"]]
            chosen = next((picture for picture in pictures if picture["id"] == memory["chosen_picture"]), None)
            memories.append({
                **memory, "chosen": chosen, "others": [picture for picture in pictures if picture is not chosen],
                "people": [names[number] for number in memory["subjects"] if number in names],
            })
        chapters.append({**chapter, "stage_label": _stage_label(chapter["life_stage"]), "memories": memories})
    return {"book": book, "patient": book["patient"], "subjects": subjects, "chapters": chapters,
            "exported_at": timezone.localtime(datetime.fromisoformat(book["exported_at"]))}


def _stage_label(value: str) -> str:
    return LifeStage(value).label if value else ""
