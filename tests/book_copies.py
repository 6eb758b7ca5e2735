"""Shared by the tests of downloaded copies (export and import): a book with one of everything, a description
of a book that two books can be compared by, and ZIP helpers."""

import datetime
import hashlib
import io
import json
import zipfile

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from lifebook.models import MemoryImage, Patient
from lifebook.uploads import add_reference_photo, add_uploaded_memory_image
from tests import factories

CONSENT_AT = datetime.datetime(2024, 3, 5, 10, 30, tzinfo=datetime.timezone.utc)


def noise(seed: int, size=(96, 64)) -> Image.Image:
    """Pixels that differ everywhere, so a changed pixel shows in a hash."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def photo_upload(seed: int, name="IMG_2041 Ana at home.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, encoded(noise(seed, (320, 280)), "JPEG", quality=90))


def generated(memory, seed, *, source=MemoryImage.Source.GENERATED, parent=None, prompt="a photo", **fields):
    fields.setdefault("parameters", {"operation": "txt2img", "prompt": prompt, "steps": 20, "seeds": [seed],
                                     "stages": [{"stage": "picture", "active_adapters": ["subject1_checkpoint2"]}]})
    return factories.MemoryImageFactory(memory=memory, source=source, seed=seed, parent=parent,
                                        image=ContentFile(encoded(noise(seed), "PNG"), name="picture.png"), **fields)


def build_book(owner) -> Patient:
    """Subjects with photos, three chapters in a chosen order (one empty), memories with uploaded and generated
    pictures (an inpainted child of a generated one), chosen pictures, a hidden memory, and consent."""
    patient = factories.PatientFactory(name="Juan Pacheco Ruiz", preferred_name="Juanito", birth_year=1944,
                                       notes="Gets tired after 20 minutes.", photo_consent_by=owner,
                                       photo_consent_at=CONSENT_AT, photo_consent_note="Juan himself, in writing")
    factories.MembershipFactory(patient=patient, user=owner, role="owner")
    ana = factories.SubjectFactory(patient=patient, name="Ana", relationship="his mother", class_word="woman")
    child = factories.SubjectFactory(patient=patient, name="Juan", relationship="", life_stage="childhood",
                                     class_word="boy")
    toby = factories.SubjectFactory(patient=patient, kind="pet", name="Toby", relationship="his dog",
                                    class_word="")
    factories.SubjectFactory(patient=patient, kind="place", name="La Caleta", relationship="the beach")
    for seed, subject in ((1, ana), (2, ana), (3, child), (4, toby)):
        add_reference_photo(subject, photo_upload(seed), user=owner)

    # Made in this order, then put in another: the copy keeps the book's order, not the order of making.
    work = factories.ChapterFactory(patient=patient, title="The shop", life_stage="adulthood")
    childhood = factories.ChapterFactory(patient=patient, title="Growing up in Cádiz", life_stage="childhood")
    factories.ChapterFactory(patient=patient, title="Still to write")
    from lifebook import positions
    positions.reorder(patient, patient.chapters.all(), [childhood.pk, work.pk, patient.chapters.last().pk])

    beach = factories.MemoryFactory(chapter=childhood, title="Summer at La Caleta",
                                    description="Juan with his mother Ana at the beach.\nHe was seven.",
                                    scene="a boy and his mother on a sandy beach, 1951")
    beach.subjects.set([ana, child])
    first = generated(beach, 11, prompt=f"a photo of {ana.token} woman and {child.token} boy at the beach")
    fixed = generated(beach, 12, source=MemoryImage.Source.INPAINTED, parent=first, from_demo_model=True,
                      prompt=f"a photo of {ana.token} woman, smiling",
                      parameters={"operation": "inpaint", "prompt": f"a photo of {ana.token} woman", "seeds": [12],
                                  "mask_mode": "masked", "stages": [{"stage": "picture", "active_adapters": []}]})
    generated(beach, 13, source=MemoryImage.Source.INPAINTED, parent=fixed)  # a grandchild, not chosen
    add_uploaded_memory_image(beach, photo_upload(21, "beach.jpg"), user=owner)
    beach.chosen_image = fixed
    beach.save()

    flood = factories.MemoryFactory(chapter=childhood, title="The night of the flood", description="Too hard.",
                                    hidden=True)
    sketch = generated(flood, 31, source=MemoryImage.Source.FROM_SKETCH, from_demo_model=True)
    flood.chosen_image = sketch
    flood.save()

    shop = factories.MemoryFactory(chapter=work, title="Opening day", description="Juan behind the counter.")
    shop.subjects.set([toby])
    add_uploaded_memory_image(shop, photo_upload(41, "shop.jpg"), user=owner, choose=True)
    factories.MemoryFactory(chapter=work, title="No picture yet", description="")
    return patient


def pixels_hash(field_file) -> str:
    with field_file.open("rb") as stored:
        image = Image.open(stored)
        image.load()
    return hashlib.sha256(f"{image.size}{image.mode}".encode() + image.tobytes()).hexdigest()


def describe(patient: Patient) -> dict:
    """Everything a copy must carry, with subjects named by name (tokens and ids differ between books)."""
    patient = Patient.objects.get(pk=patient.pk)
    names = {subject.token: f"<{subject.name}>" for subject in patient.subjects.all()}

    def untokened(value):
        text = json.dumps(value, sort_keys=True)
        for token, name in names.items():
            text = text.replace(token, name)
        return json.loads(text)

    chapters = []
    for chapter in patient.chapters.all():
        memories = []
        for memory in chapter.memories.all():
            images = list(memory.images.all())  # newest first, as the memory page lists them
            index = {image.pk: position for position, image in enumerate(images)}
            memories.append({
                "title": memory.title, "description": memory.description, "scene": memory.scene,
                "hidden": memory.hidden, "subjects": sorted(subject.name for subject in memory.subjects.all()),
                "chosen": index.get(memory.chosen_image_id),
                "pictures": [{
                    "source": image.source, "parameters": untokened(image.parameters), "seed": image.seed,
                    "from_demo_model": image.from_demo_model, "parent": index.get(image.parent_id),
                    "size": (image.width, image.height), "pixels": pixels_hash(image.image),
                    "extension": image.image.name.rsplit(".", 1)[-1],
                } for image in images],
            })
        chapters.append({"title": chapter.title, "life_stage": chapter.life_stage, "memories": memories})
    return {
        "patient": {"name": patient.name, "preferred_name": patient.preferred_name, "birth_year": patient.birth_year,
                    "notes": patient.notes, "consent_at": patient.photo_consent_at,
                    "consent_note": patient.photo_consent_note},
        "subjects": [{
            "kind": subject.kind, "name": subject.name, "relationship": subject.relationship,
            "life_stage": subject.life_stage, "class_word": subject.class_word,
            "photos": [(pixels_hash(photo.image), photo.width, photo.height, photo.content_hash)
                       for photo in subject.photos.all()],
        } for subject in patient.subjects.all()],
        "chapters": chapters,
    }


def stored_files(media_root) -> list:
    if not media_root.exists():
        return []
    return sorted(str(path) for path in media_root.rglob("*") if path.is_file())


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def make_zip(entries: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content if isinstance(content, bytes) else content.encode())
    return buffer.getvalue()


def zip_upload(data: bytes, name="juan-pacheco-life-book.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/zip")
