"""A downloaded copy of a book (lifebook.book_export) brought back in as a new book, owned by whoever brings it.

A ZIP from outside is untrusted input, read with these guards, each refusal an `ImportRefused` in plain words:
- a cap on the number of files, checked from the ZIP's end record before its central directory is read (a
  directory of millions of entries would be a memory bomb by itself), a cap on each file
  (LIFEBOOK_MAX_UPLOAD_BYTES, as for any upload) and on the total unpacked size (twice the request cap: a real
  copy stores its pictures uncompressed, so it unpacks to about its own size); zipfile never unpacks more than
  an entry's declared size, and a lying entry fails its checksum;
- file names that could reach outside a folder (absolute, "..", backslashes, drive letters), repeated names
  and password-protected entries refuse the whole copy; nothing is ever unpacked by its own name;
- book.json is checked completely (types, lengths, choices, references between its parts, text the
  database can store) before anything is written;
- every picture and photo goes through lifebook.uploads, as a new upload would. A JPEG that is already what
  Lifebook stores (plain RGB JPEG, no metadata, nothing after its end) keeps its bytes, so a round trip loses
  nothing; any other JPEG is re-encoded like an upload; every other picture (generated pictures are PNG) is
  decoded and written again as PNG with exactly its pixels.
Everything is written in one transaction, and files stored before a failure are deleted, so a refused copy
leaves no rows and no files behind.

What comes back: the patient (consent "recorded by" the person importing, with the original date and note;
the audit trail says it came from a copy and who first recorded it), the subjects with new training tokens and
no adapters (training must run again), their photos, the chapters and memories in order with their words,
people and hidden flags, and every picture with its recipe, lineage and the chosen one. Recipe placeholders
`[[subject-N]]` become the new subjects' tokens.
"""

import io
import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from PIL import Image

from . import audit
from .book_cache import book_changed
from .book_export import ARCHIVE_NAME, FORMAT, FORMAT_VERSION
from .models import AuditEvent, Chapter, LifeStage, Memory, MemoryImage, Patient, ReferencePhoto, Subject
from .services import create_patient
from .uploads import UploadRejected, decode_upload, normalise_image

MAX_FILES = 20_000
# A central-directory entry is 46 bytes plus its name and extra fields; ours are far under this.
DIRECTORY_BYTES_PER_FILE = 400
MAX_PARAMETER_DEPTH = 32
PLACEHOLDER = re.compile(r"\[\[subject-(\d{1,9})\]\]")
HASH = re.compile(r"^[0-9a-f]{64}$")


class ImportRefused(Exception):
    """A copy that cannot be brought in; `message` says why, for the person who chose the file."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def max_file_bytes() -> int:
    return settings.LIFEBOOK_MAX_UPLOAD_BYTES


def max_total_bytes() -> int:
    return 2 * settings.LIFEBOOK_MAX_REQUEST_BYTES


def import_book(zip_file, owner, *, via: str = "") -> Patient:
    """A new book from a downloaded copy (a file object), owned by `owner`. Raises ImportRefused."""
    with _Zip(zip_file) as archive:
        book = _read_book(archive)
        return _create(book, archive, owner, via)


# --- The ZIP ---------------------------------------------------------------------------------------------


def _unsafe_name(name: str) -> bool:
    return (name.startswith("/") or "\\" in name or "\x00" in name or re.match(r"^[A-Za-z]:", name) is not None
            or ".." in name.split("/"))


class _Zip:
    """The uploaded ZIP, checked as a whole when opened; `read` gives one entry's bytes, capped."""

    def __init__(self, upload):
        self._check_end_record(upload)
        try:
            upload.seek(0)
            self.zip = zipfile.ZipFile(upload)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
                RuntimeError, IndexError, KeyError):
            raise ImportRefused(_("This file is not a ZIP file. Choose the ZIP file that Lifebook gave you when "
                                  "you downloaded a copy of a book."))
        try:
            self.entries = self._checked_entries()
        except BaseException:
            self.zip.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()

    @staticmethod
    def _check_end_record(upload):
        """Refuse a central directory too large to read, before zipfile reads it into memory."""
        end_record = getattr(zipfile, "_EndRecData", None)  # zipfile's own reader of the end record
        try:
            upload.seek(0)
            end = end_record(upload) if end_record else None
        except Exception:  # unreadable: zipfile's constructor will say it is not a ZIP
            return
        if end and (end[zipfile._ECD_ENTRIES_TOTAL] > MAX_FILES
                    or end[zipfile._ECD_SIZE] > MAX_FILES * DIRECTORY_BYTES_PER_FILE):
            raise _too_many_files()

    def _checked_entries(self) -> dict:
        infos = self.zip.infolist()
        if len(infos) > MAX_FILES:
            raise _too_many_files()
        entries, total = {}, 0
        for info in infos:
            name = info.filename
            if _unsafe_name(name):
                raise ImportRefused(_("This ZIP holds a file whose name could reach outside its folder (“%(name)s”), "
                                      "so it was not opened.") % {"name": name[:200]})
            if name in entries:
                raise ImportRefused(_("This ZIP holds two files called “%(name)s”, so it is not clear which one to "
                                      "use.") % {"name": name[:200]})
            if info.flag_bits & 0x1:
                raise ImportRefused(_("The file “%(name)s” in this ZIP is protected by a password. Use the copy "
                                      "exactly as Lifebook gave it.") % {"name": name[:200]})
            if info.file_size > max_file_bytes():
                raise _file_too_large(name)
            total += info.file_size
            entries[name] = info
        if total > max_total_bytes():
            raise ImportRefused(_("Unpacked, this ZIP would take more than %(size)s: more than a copy of a book "
                                  "can hold. It may be damaged, or not a copy of a book.")
                                % {"size": filesizeformat(max_total_bytes())})
        return entries

    def read(self, name: str) -> bytes:
        info = self.entries.get(name)
        if info is None or info.is_dir():
            raise ImportRefused(_("The book names the file “%(name)s”, but it is not in the ZIP. Use the copy "
                                  "exactly as Lifebook gave it.") % {"name": name})
        try:
            with self.zip.open(info) as entry:
                data = entry.read(max_file_bytes() + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
            raise ImportRefused(_("The file “%(name)s” in this ZIP is damaged and could not be read.")
                                % {"name": name})
        if len(data) > max_file_bytes():
            raise _file_too_large(name)
        return data


def _too_many_files():
    return ImportRefused(_("This ZIP holds too many files (more than %(limit)s). A copy of a book never holds that "
                           "many: it may be damaged, or not a copy of a book.") % {"limit": f"{MAX_FILES:,}"})


def _file_too_large(name):
    return ImportRefused(_("The file “%(name)s” in this ZIP is larger than %(size)s, the most Lifebook takes for "
                           "one file.") % {"name": name[:200], "size": filesizeformat(max_file_bytes())})


# --- book.json -------------------------------------------------------------------------------------------


@dataclass
class _Consent:
    recorded_by: str
    recorded_at: datetime
    note: str


@dataclass
class _Photo:
    file: str
    content_hash: str


@dataclass
class _Subject:
    number: int
    fields: dict
    photos: list[_Photo]


@dataclass
class _Picture:
    number: int
    file: str
    fields: dict
    parent: int | None


@dataclass
class _Memory:
    fields: dict
    subjects: list[int]
    chosen: int | None
    pictures: list[_Picture]


@dataclass
class _Chapter:
    fields: dict
    memories: list[_Memory] = field(default_factory=list)


@dataclass
class _Book:
    patient: dict
    consent: _Consent | None
    subjects: list[_Subject]
    chapters: list[_Chapter]


class _Fields:
    """One object of book.json, read field by field; `where` names it in refusals ("chapter 2, memory 3")."""

    def __init__(self, value, where: str):
        if not isinstance(value, dict):
            raise _bad(where, _("it is not written the way Lifebook writes it"))
        self.value, self.where = value, where

    def refuse(self, problem: str):
        raise _bad(self.where, problem)

    def text(self, key: str, label: str, *, model=None, required=False, max_length=None) -> str:
        value = self.value.get(key)
        value = "" if value is None else value
        if not isinstance(value, str):
            self.refuse(_("%(label)s is not text") % {"label": label})
        if required and not value.strip():
            self.refuse(_("%(label)s is missing") % {"label": label})
        if model is not None:
            max_length = model._meta.get_field(key).max_length
        if max_length and len(value) > max_length:
            self.refuse(_("%(label)s is longer than %(count)s characters") % {"label": label, "count": max_length})
        return value

    def choice(self, key: str, label: str, choices, *, blank=True) -> str:
        value = self.value.get(key) or ""
        if not isinstance(value, str) or (value not in choices and not (blank and value == "")):
            self.refuse(_("%(label)s is not one Lifebook knows") % {"label": label})
        return value

    def boolean(self, key: str, label: str) -> bool:
        value = self.value.get(key, False)
        if not isinstance(value, bool):
            self.refuse(_("%(label)s is neither true nor false") % {"label": label})
        return value

    def number(self, key: str, label: str, low: int, high: int, *, required=False) -> int | None:
        value = self.value.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.refuse(_("%(label)s is not a whole number from %(low)s to %(high)s")
                        % {"label": label, "low": low, "high": high})
        return value

    def items(self, key: str, label: str) -> list:
        value = self.value.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.refuse(_("%(label)s are not written as a list") % {"label": label})
        return value


def _bad(where: str, problem: str) -> ImportRefused:
    return ImportRefused(_("The book in this ZIP cannot be read: in %(where)s, %(problem)s.")
                         % {"where": where, "problem": problem})


def _read_book(archive: _Zip) -> _Book:
    if "book.json" not in archive.entries:
        raise ImportRefused(_("This ZIP is not a copy of a Lifebook book: there is no book.json in it. Choose the "
                              "ZIP file that Lifebook gave you when you downloaded a copy of a book."))
    damaged = ImportRefused(_("The book.json in this ZIP is damaged, so the book cannot be read from it. Download "
                              "a new copy of the book and try again."))
    try:
        data = json.loads(archive.read("book.json").decode("utf-8"), parse_constant=_no_constants)
        _check_text_everywhere(data)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, NaN, huge numbers, unstorable text, too deep
        raise damaged
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ImportRefused(_("This ZIP is not a copy of a Lifebook book: its book.json is about something else."))
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise damaged
    if version > FORMAT_VERSION:
        raise ImportRefused(_("This copy was made by a newer Lifebook (its format is version %(version)s; this "
                              "Lifebook reads version %(ours)s). Bring it into an up-to-date Lifebook.")
                            % {"version": version, "ours": FORMAT_VERSION})

    top = _Fields(data, _("the book"))
    person = _Fields(data.get("patient"), _("the person’s details"))
    patient = {
        "name": person.text("name", _("the name"), model=Patient, required=True),
        "preferred_name": person.text("preferred_name", _("the preferred name"), model=Patient),
        "birth_year": person.number("birth_year", _("the birth year"), 1880, 2100),
        "notes": person.text("notes", _("the notes"), max_length=100_000),
    }
    consent = None
    if person.value.get("photo_consent") is not None:
        consent = _read_consent(_Fields(person.value["photo_consent"], _("the photo consent")))
    subjects = _read_subjects(top, archive)
    chapters = []
    for chapter_number, chapter_value in enumerate(top.items("chapters", _("the chapters")), 1):
        where = _("chapter %(number)s") % {"number": chapter_number}
        chapter = _Fields(chapter_value, where)
        plan = _Chapter({"title": chapter.text("title", _("the title"), model=Chapter, required=True),
                         "life_stage": chapter.choice("life_stage", _("the life stage"), LifeStage.values)})
        for memory_number, memory_value in enumerate(chapter.items("memories", _("the memories")), 1):
            plan.memories.append(_read_memory(
                _Fields(memory_value, _("%(chapter)s, memory %(number)s") % {"chapter": where, "number": memory_number}),
                {subject.number for subject in subjects}, archive))
        chapters.append(plan)
    return _Book(patient, consent, subjects, chapters)


def _no_constants(name):
    raise ValueError(f"{name} is not a number")


def _check_text_everywhere(value, depth=0):
    """Text the database can store (no NUL, no lone surrogates), nested no deeper than recipes ever are."""
    if depth > MAX_PARAMETER_DEPTH:
        raise ValueError("too deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL")
        value.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
    elif isinstance(value, list):
        for item in value:
            _check_text_everywhere(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text_everywhere(key, depth + 1)
            _check_text_everywhere(item, depth + 1)


def _read_consent(consent: _Fields) -> _Consent:
    recorded_at = consent.text("recorded_at", _("the date it was recorded"), required=True, max_length=64)
    try:
        when = parse_datetime(recorded_at)
    except ValueError:
        when = None
    if when is None:
        consent.refuse(_("the date it was recorded is not a date"))
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    if when > timezone.now() + timedelta(days=1):
        consent.refuse(_("the date it was recorded is in the future"))
    return _Consent(consent.text("recorded_by", _("who recorded it"), max_length=150), when,
                    consent.text("note", _("who gave consent"), max_length=Patient._meta.get_field(
                        "photo_consent_note").max_length))


def _archive_name(fields: _Fields, archive: _Zip) -> str:
    name = fields.text("file", _("the file name"), required=True, max_length=200)
    if not ARCHIVE_NAME.match(name):
        fields.refuse(_("the file name “%(name)s” is not one Lifebook writes") % {"name": name})
    if name not in archive.entries:
        raise ImportRefused(_("The book names the file “%(name)s”, but it is not in the ZIP. Use the copy exactly "
                              "as Lifebook gave it.") % {"name": name})
    return name


def _read_subjects(top: _Fields, archive: _Zip) -> list[_Subject]:
    subjects = []
    for index, value in enumerate(top.items("subjects", _("the people, places and things")), 1):
        subject = _Fields(value, _("person, place or thing %(number)s") % {"number": index})
        number = subject.number("id", _("its number"), 1, 10**9, required=True)
        if any(other.number == number for other in subjects):
            subject.refuse(_("its number is used twice"))
        fields = {
            "kind": subject.choice("kind", _("the kind"), Subject.Kind.values, blank=False),
            "name": subject.text("name", _("the name"), model=Subject, required=True),
            "relationship": subject.text("relationship", _("the relationship"), model=Subject),
            "life_stage": subject.choice("life_stage", _("the life stage"), LifeStage.values),
            "class_word": subject.text("class_word", _("the plain word for what it is"), model=Subject),
        }
        photos = []
        for photo_index, photo_value in enumerate(subject.items("photos", _("the photos")), 1):
            photo = _Fields(photo_value, _("%(subject)s, photo %(number)s")
                            % {"subject": subject.where, "number": photo_index})
            content_hash = photo.value.get("content_hash")
            photos.append(_Photo(_archive_name(photo, archive),
                                 content_hash if isinstance(content_hash, str) and HASH.match(content_hash) else ""))
        subjects.append(_Subject(number, fields, photos))
    return subjects


def _read_memory(memory: _Fields, subject_numbers: set, archive: _Zip) -> _Memory:
    fields = {
        "title": memory.text("title", _("the title"), model=Memory, required=True),
        "description": memory.text("description", _("the caption"), max_length=100_000),
        "scene": memory.text("scene", _("the scene"), max_length=100_000),
        "hidden": memory.boolean("hidden", _("“hidden”")),
    }
    subjects = memory.items("subjects", _("the people in it"))
    if not all(type(number) is int and number in subject_numbers for number in subjects):  # not True, not 1.0
        memory.refuse(_("it names someone or something that is not in the book"))
    pictures = []
    for index, value in enumerate(memory.items("pictures", _("the pictures")), 1):
        picture = _Fields(value, _("%(memory)s, picture %(number)s") % {"memory": memory.where, "number": index})
        number = picture.number("id", _("its number"), 1, 10**9, required=True)
        if any(other.number == number for other in pictures):
            picture.refuse(_("its number is used twice"))
        source = picture.choice("source", _("where it came from"), MemoryImage.Source.values, blank=False)
        seed = picture.number("seed", _("the seed"), -(2**63), 2**63 - 1, required=source != MemoryImage.Source.UPLOADED)
        parameters = picture.value.get("parameters") or {}
        if not isinstance(parameters, dict):
            picture.refuse(_("its recipe is not written the way Lifebook writes it"))
        pictures.append(_Picture(number, _archive_name(picture, archive), {
            "source": source, "seed": seed, "parameters": parameters,
            "from_demo_model": picture.boolean("from_demo_model", _("“made by the demo model”")),
        }, picture.number("parent", _("the picture it was repainted from"), 1, 10**9)))
    numbers = {picture.number for picture in pictures}
    for picture in pictures:
        if picture.parent is not None and (picture.parent not in numbers or picture.parent == picture.number):
            memory.refuse(_("a picture was repainted from a picture that is not among this memory’s"))
    _refuse_lineage_cycles(memory, {picture.number: picture.parent for picture in pictures})
    chosen = memory.number("chosen_picture", _("the chosen picture"), 1, 10**9)
    if chosen is not None and chosen not in numbers:
        memory.refuse(_("the chosen picture is not among its pictures"))
    return _Memory(fields, sorted(set(subjects)), chosen, pictures)


def _refuse_lineage_cycles(memory: _Fields, parents: dict):
    for start in parents:
        seen, current = set(), start
        while current is not None:
            if current in seen:
                memory.refuse(_("its pictures were repainted from each other in a circle"))
            seen.add(current)
            current = parents.get(current)


# --- Writing the new book ----------------------------------------------------------------------------------


def _create(book: _Book, archive: _Zip, owner, via: str) -> Patient:
    written = []  # storage names, deleted if anything fails
    try:
        with transaction.atomic():
            patient = Patient(**book.patient)
            if book.consent:
                # The person bringing the copy in takes responsibility for the consent; its date and note stay.
                patient.photo_consent_by = owner
                patient.photo_consent_at = book.consent.recorded_at
                patient.photo_consent_note = book.consent.note
            create_patient(patient, owner)
            subjects = {}
            for plan in book.subjects:
                subject = subjects[plan.number] = Subject.objects.create(patient=patient, **plan.fields)
                hashes = set()
                for photo in plan.photos:
                    _store_photo(archive, subject, photo, owner, hashes, written)
            for chapter_position, chapter_plan in enumerate(book.chapters):
                chapter = Chapter.objects.create(patient=patient, position=chapter_position, **chapter_plan.fields)
                for memory_position, memory_plan in enumerate(chapter_plan.memories):
                    _create_memory(archive, chapter, memory_position, memory_plan, subjects, owner, written)
            book_changed(patient.pk)  # parents and chosen pictures were set with update(), which sends no signal
            audit.record(owner, patient, AuditEvent.Action.IMPORTED, via)
            if book.consent:
                first = book.consent.recorded_by or _("someone")
                audit.record(owner, patient, AuditEvent.Action.CONSENT_GIVEN,
                             _("carried over from a downloaded copy (first recorded by %(who)s)") % {"who": first})
    except BaseException:
        for name in written:
            try:
                default_storage.delete(name)
            except OSError:
                pass
        raise
    return patient


def _create_memory(archive, chapter, position, plan: _Memory, subjects: dict, owner, written):
    memory = Memory.objects.create(chapter=chapter, position=position, **plan.fields)
    memory.subjects.set([subjects[number] for number in plan.subjects])
    tokens = {number: subject.token for number, subject in subjects.items()}
    pictures = {}
    for picture in plan.pictures:  # in the order they were made: the candidates list stays newest first
        content, extension, width, height = _clean_picture(archive, picture.file)
        row = MemoryImage(memory=memory, created_by=owner, width=width, height=height, **{
            **picture.fields, "parameters": _with_tokens(picture.fields["parameters"], tokens)})
        row.image.save(f"picture.{extension}", ContentFile(content), save=False)
        written.append(row.image.name)
        row.width, row.height = width, height
        row.save()
        pictures[picture.number] = row
    for picture in plan.pictures:
        if picture.parent is not None:
            MemoryImage.objects.filter(pk=pictures[picture.number].pk).update(parent=pictures[picture.parent])
    if plan.chosen is not None:
        Memory.objects.filter(pk=memory.pk).update(chosen_image=pictures[plan.chosen])


def _with_tokens(value, tokens: dict):
    """The recipe with each `[[subject-N]]` written as the new subject's training token."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: tokens.get(int(match.group(1)), match.group(0)), value)
    if isinstance(value, list):
        return [_with_tokens(item, tokens) for item in value]
    if isinstance(value, dict):
        return {_with_tokens(key, tokens): _with_tokens(item, tokens) for key, item in value.items()}
    return value


def _refused_file(name: str, exc: UploadRejected) -> ImportRefused:
    return ImportRefused(_("The picture “%(name)s” in this ZIP was not used: %(reason)s") % {"name": name,
                                                                                             "reason": exc.reason})


def _store_photo(archive, subject, photo: _Photo, owner, hashes: set, written: list):
    upload = SimpleUploadedFile(os.path.basename(photo.file), archive.read(photo.file))
    try:
        clean = normalise_image(upload)  # the same door as a photo uploaded on the web
    except UploadRejected as exc:
        raise _refused_file(photo.file, exc)
    content = _kept_jpeg(upload, clean) or clean.content
    # The copy's hash is of the pixels first uploaded (before Lifebook's JPEG), so a later upload of the same
    # original is still known as a duplicate; without one, the pixels as they arrive.
    content_hash = photo.content_hash or clean.content_hash
    if content_hash in hashes:
        raise ImportRefused(_("“%(name)s” is the same photo as another one of %(subject)s in this copy.")
                            % {"name": photo.file, "subject": subject.name})
    hashes.add(content_hash)
    row = ReferencePhoto(subject=subject, original_name=upload.name, size_bytes=len(content),
                         content_hash=content_hash, quality_notes=clean.notes, uploaded_by=owner)
    row.image.save("photo.jpg", ContentFile(content), save=False)
    written.append(row.image.name)
    row.width, row.height = clean.width, clean.height
    row.save()


def _clean_picture(archive, name: str) -> tuple[bytes, str, int, int]:
    """(content, extension, width, height) of a memory's picture, decoded and cleaned as an upload is."""
    upload = SimpleUploadedFile(os.path.basename(name), archive.read(name))
    try:
        if upload.file.getvalue()[:3] == b"\xff\xd8\xff":  # JPEG (real photos): the upload door, any size
            clean = normalise_image(upload, min_short_side=1, good_short_side=1)
            return _kept_jpeg(upload, clean) or clean.content, "jpg", clean.width, clean.height
        image = decode_upload(upload)  # generated pictures are PNG: keep every pixel exactly
    except UploadRejected as exc:
        raise _refused_file(name, exc)
    image = _rgb(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # written anew: no text chunks or other metadata come along
    return buffer.getvalue(), "png", image.width, image.height


def _kept_jpeg(upload, clean) -> bytes | None:
    """The uploaded bytes when they are already exactly what Lifebook stores: an RGB JPEG with no metadata (only
    the JFIF header), upright, ending at its end marker. Re-encoding it would only lose a little quality."""
    data = upload.file.getvalue()
    if not (data.startswith(b"\xff\xd8\xff") and data.endswith(b"\xff\xd9")):
        return None
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
        markers = [marker for marker, _content in getattr(image, "applist", [])]
        clean_header = markers in ([], ["APP0"]) and all(
            content.startswith(b"JFIF\x00") for marker, content in image.applist)
        if (image.format == "JPEG" and image.mode == "RGB" and clean_header and image.size == (clean.width, clean.height)
                and not {"exif", "icc_profile", "comment", "xmp"} & set(image.info)):
            return data
    return None


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")
