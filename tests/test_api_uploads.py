"""Every upload the API takes is refused in the same plain words as on the web.

DRF's ImageField used to answer first, in Django's words ("Upload a valid image..."), for a PDF, a text
file, an SVG or a picture with too many pixels. Now the file goes untouched to the same service as the
web pages (lifebook.uploads, through generation.jobs for sketches and masks). Each bad file is sent to
each upload of the API and to the web page that takes the same kind of file; the two messages must be
the same, and nothing may be stored.
"""

import io
import struct
import zlib

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from generation.models import GenerationJob
from lifebook.models import MemoryImage, ReferencePhoto
from lifebook.uploads import UploadRejected, decode_upload
from tests import factories

pytestmark = pytest.mark.django_db


def encode(image, fmt, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def png_claiming(width, height) -> bytes:
    """A tiny PNG whose header claims `width`×`height`: Pillow's own verify gives up on it."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def animation() -> bytes:
    frames = [Image.new("RGB", (300, 300), (60 * i, 90, 200)) for i in range(3)]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)


def cut_in_half() -> bytes:
    data = encode(Image.effect_noise((300, 300), 60).convert("RGB"), "JPEG")
    return data[: len(data) // 2]


# name, file name, bytes, words the refusal must contain
BAD_FILES = [
    ("too many pixels", "huge.png", lambda: png_claiming(30_000, 30_000), "too many pixels"),
    ("a PDF", "letter.pdf", lambda: b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", "not a picture"),
    ("a text file", "notes.jpg", lambda: b"Shopping list: milk, bread, eggs.\n", "not a picture"),
    ("an SVG", "drawing.png", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "SVG"),
    ("a web page", "page.png", lambda: b"<!DOCTYPE html><html><body>hello</body></html>", "web file"),
    ("a GIF", "scan.gif", lambda: encode(Image.new("RGB", (300, 300), "red"), "GIF"), "format we accept"),
    ("a file cut in half", "cut.jpg", cut_in_half, "damaged"),
    ("an animation", "party.webp", animation, "animation"),
    ("an empty file", "empty.jpg", lambda: b"", "empty"),
]
BAD = [pytest.param(name, data, words, id=label) for label, name, data, words in BAD_FILES]


def bad_file(name, data):
    return SimpleUploadedFile(name, data(), content_type="application/octet-stream")


@pytest.fixture
def book(patient, owner):
    patient.photo_consent_by, patient.photo_consent_at, patient.photo_consent_note = owner, timezone.now(), "Juan"
    patient.save()
    subject = factories.SubjectFactory(patient=patient, name="Ana")
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="Juan at the beach")
    picture = factories.MemoryImageFactory(memory=memory)  # 64x64
    return dict(patient=patient, subject=subject, memory=memory, picture=picture)


@pytest.fixture
def api(owner):
    client = APIClient()
    client.force_authenticate(owner)
    return client


def nothing_stored(private_media_root, book):
    assert ReferencePhoto.objects.count() == 0
    assert list(MemoryImage.objects.all()) == [book["picture"]]
    assert not GenerationJob.objects.exists()
    stored = sorted(p.relative_to(private_media_root).as_posix() for p in private_media_root.rglob("*") if p.is_file())
    assert stored == [book["picture"].image.name]


@pytest.mark.parametrize("name, data, words", BAD)
def test_a_reference_photo_is_refused_in_the_webs_words(client, api, owner, book, private_media_root, name, data, words):
    web = client
    web.force_login(owner)
    page = web.post(reverse("photo_upload", args=[book["patient"].pk, book["subject"].pk]),
                    {"photos": bad_file(name, data)}, HTTP_X_REQUESTED_WITH="fetch")
    assert page.status_code == 400
    response = api.post("/api/photos/", {"subject": book["subject"].pk, "image": bad_file(name, data)},
                        format="multipart")
    assert response.status_code == 400
    assert response.json() == {"image": [page.content.decode()]}
    assert words in page.content.decode() and f"“{name}”" in page.content.decode()
    nothing_stored(private_media_root, book)


@pytest.mark.parametrize("name, data, words", BAD)
def test_a_real_photo_for_a_memory_is_refused_in_the_webs_words(client, api, owner, book, private_media_root,
                                                               name, data, words):
    client.force_login(owner)
    page = client.post(reverse("memory_upload_photo", args=[book["patient"].pk, book["memory"].pk]),
                       {"photo": bad_file(name, data)})
    web_messages = [str(message) for message in get_messages(page.wsgi_request)]
    response = api.post("/api/memory-images/", {"memory": book["memory"].pk, "image": bad_file(name, data)},
                        format="multipart")
    assert response.status_code == 400
    assert response.json() == {"image": web_messages}
    assert words in web_messages[0]
    nothing_stored(private_media_root, book)


@pytest.mark.parametrize("name, data, words", BAD)
def test_a_sketch_is_refused_in_the_webs_words(client, api, owner, book, private_media_root, name, data, words):
    client.force_login(owner)
    page = client.post(reverse("memory_from_sketch", args=[book["patient"].pk, book["memory"].pk]),
                       {"sketch": bad_file(name, data), "style": "photo", "follow": "0.25"})
    web_messages = [str(message) for message in get_messages(page.wsgi_request)]
    response = api.post("/api/generation-jobs/", {"memory": book["memory"].pk, "kind": "img2img",
                                                  "source_upload": bad_file(name, data)}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"source_upload": web_messages}
    assert words in web_messages[0]
    nothing_stored(private_media_root, book)


@pytest.mark.parametrize("name, data, words", BAD)
def test_a_mask_is_refused_in_the_upload_services_words(api, book, private_media_root, name, data, words):
    """The web's painting tool always sends a good PNG (its page has its own words for a broken one); an
    integrator's mask file gets what every other upload gets."""
    with pytest.raises(UploadRejected) as service:
        decode_upload(bad_file(name, data))
    response = api.post("/api/generation-jobs/", {
        "memory": book["memory"].pk, "kind": "inpaint", "source_image": book["picture"].pk,
        "mask_upload": bad_file(name, data)}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"mask_upload": [service.value.message]}
    assert words in service.value.message
    nothing_stored(private_media_root, book)


def test_text_where_a_file_should_be_gets_plain_words(api, book):
    response = api.post("/api/generation-jobs/", {"memory": book["memory"].pk, "kind": "img2img",
                                                  "source_upload": "a drawing"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"source_upload": ["Send a file here, as part of a multipart/form-data request."]}


def test_a_good_upload_still_goes_through(api, book):
    photo = SimpleUploadedFile("ana.png", encode(Image.effect_noise((300, 300), 60).convert("RGB"), "PNG"))
    response = api.post("/api/photos/", {"subject": book["subject"].pk, "image": photo}, format="multipart")
    assert response.status_code == 201, response.content
    assert ReferencePhoto.objects.get().original_name == "ana.png"
