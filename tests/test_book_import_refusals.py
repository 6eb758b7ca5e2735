"""A ZIP brought in is untrusted: every bad copy is a 400 (or a form error) in plain words, and leaves nothing
behind, neither rows nor files."""

import io
import json
import struct
import zipfile

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import CareTeamMember
from lifebook import audit, book_import
from lifebook.book_export import export_book
from lifebook.models import AuditEvent, Chapter, Memory, MemoryImage, Patient, ReferencePhoto, Subject
from tests import factories
from tests.book_copies import build_book, make_zip, stored_files, unzip, zip_upload

pytestmark = pytest.mark.django_db

MODELS = (Patient, Subject, ReferencePhoto, Chapter, Memory, MemoryImage, CareTeamMember, AuditEvent)


@pytest.fixture
def copy(owner) -> bytes:
    with export_book(build_book(owner)) as archive:
        return archive.read()


@pytest.fixture
def lucia(db):
    return factories.UserFactory(username="lucia")


@pytest.fixture
def refused(lucia, private_media_root):
    """Posts a copy to the API as Lucía; checks the 400 names the problem and that nothing was left behind."""
    api = APIClient()
    api.force_authenticate(lucia)

    def post(data: bytes, *words: str):
        rows = {model: model.objects.count() for model in MODELS}
        files = stored_files(private_media_root)
        response = api.post("/api/patients/import/", {"file": zip_upload(data)}, format="multipart")
        assert response.status_code == 400, response.content
        message = response.json()["file"][0]
        for word in words:
            assert word in message, message
        assert {model: model.objects.count() for model in MODELS} == rows
        assert stored_files(private_media_root) == files
        return message

    return post


def rebuilt(copy: bytes, change=None, *, drop=(), replace=None) -> bytes:
    """The copy with its book.json changed by `change(data)`, some files left out or replaced."""
    files = unzip(copy)
    if change is not None:
        data = json.loads(files["book.json"])
        change(data)
        files["book.json"] = json.dumps(data).encode()
    for name in drop:
        del files[name]
    files.update(replace or {})
    return make_zip(files)


def book_of(copy: bytes) -> dict:
    return json.loads(unzip(copy)["book.json"])


def beach_pictures(data):
    return data["chapters"][0]["memories"][0]["pictures"]


# --- Not a copy at all -----------------------------------------------------------------------------------


def test_a_file_that_is_not_a_zip_is_refused(refused):
    refused(b"These are my notes, not a ZIP file.", "not a ZIP file")


def test_a_zip_without_a_book_is_refused(refused):
    refused(make_zip({"holiday.jpg": b"..."}), "no book.json")


def test_a_book_json_that_is_not_json_is_refused(refused):
    refused(make_zip({"book.json": "{“format”: lifebook"}), "damaged")


def test_a_zip_of_something_else_is_refused(refused):
    refused(make_zip({"book.json": json.dumps({"format": "photo-album", "format_version": 1})}), "something else")


def test_a_copy_from_a_newer_lifebook_is_refused(refused, copy):
    refused(rebuilt(copy, lambda data: data.update(format_version=2)), "newer Lifebook", "version 2")


# --- Zip bombs and odd archives --------------------------------------------------------------------------


def test_too_many_files_are_refused(refused, copy, monkeypatch):
    monkeypatch.setattr(book_import, "MAX_FILES", 5)
    refused(copy, "too many files", "more than 5")


def test_a_directory_that_claims_too_many_files_is_refused_before_it_is_read(refused, copy):
    data = bytearray(copy)
    end = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 65535, 65535)  # entries on this disk, entries in all
    refused(bytes(data), "too many files")


def test_a_file_that_unpacks_larger_than_an_upload_may_be_is_refused_unread(refused, copy, settings):
    settings.LIFEBOOK_MAX_UPLOAD_BYTES = 1024 * 1024
    bomb = rebuilt(copy, replace={"pictures/zeros.png": bytes(5 * 1024 * 1024)})
    assert len(bomb) < len(copy) + 100_000  # five megabytes of zeros pack into a few kilobytes
    refused(bomb, "pictures/zeros.png", "larger than 1.0")


def test_a_copy_that_unpacks_larger_than_a_book_can_be_is_refused(refused, copy, monkeypatch):
    monkeypatch.setattr(book_import, "max_total_bytes", lambda: 100_000)
    refused(copy, "Unpacked, this ZIP would take more than")


def test_a_file_that_lies_about_its_size_is_refused_as_damaged(refused, copy):
    data = bytearray(copy)
    entry = data.index(b"PK\x01\x02")  # the central directory's first entry
    while True:  # find book.json's entry there and make it claim 10 bytes
        name_length = struct.unpack_from("<H", data, entry + 28)[0]
        if bytes(data[entry + 46:entry + 46 + name_length]) == b"book.json":
            struct.pack_into("<I", data, entry + 24, 10)
            break
        entry = data.index(b"PK\x01\x02", entry + 4)
    refused(bytes(data), "book.json", "damaged")


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/cron.d/job", "photos/..\\..\\outside.jpg",
                                  "C:/Windows/outside.txt", "pictures/../../outside.png"])
def test_a_name_that_could_reach_outside_the_folder_is_refused(refused, copy, name):
    refused(rebuilt(copy, replace={name: b"x"}), "could reach outside its folder")


def test_two_files_of_the_same_name_are_refused(refused, copy):
    buffer = io.BytesIO(copy)
    with pytest.warns(UserWarning), zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("book.json", "{}")
    refused(buffer.getvalue(), "two files called “book.json”")


def test_a_password_protected_file_is_refused(refused, copy):
    data = bytearray(copy)
    entry = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, entry + 8, struct.unpack_from("<H", data, entry + 8)[0] | 0x1)
    refused(bytes(data), "protected by a password")


# --- Files the book names --------------------------------------------------------------------------------


def test_a_picture_missing_from_the_zip_is_refused(refused, copy):
    missing = beach_pictures(book_of(copy))[0]["file"]
    refused(rebuilt(copy, drop=[missing]), missing, "not in the ZIP")


def test_a_file_name_in_the_book_that_lifebook_never_writes_is_refused(refused, copy):
    def change(data):
        beach_pictures(data)[0]["file"] = "pictures/../../../settings.py"

    refused(rebuilt(copy, change), "chapter 1, memory 1, picture 1", "is not one Lifebook writes")


def test_a_picture_that_is_not_a_picture_is_refused_and_the_files_stored_before_it_are_removed(refused, copy):
    # The shop's photo is the last file read, so every other photo and picture was stored before it.
    last = book_of(copy)["chapters"][1]["memories"][0]["pictures"][0]["file"]
    message = refused(rebuilt(copy, replace={last: b"GIF89a, or some other thing"}), last, "was not used")
    assert "JPEG, PNG, WebP or HEIC" in message


def test_an_svg_dressed_as_a_picture_is_refused(refused, copy):
    last = book_of(copy)["chapters"][1]["memories"][0]["pictures"][0]["file"]
    refused(rebuilt(copy, replace={last: b"<svg xmlns='http://www.w3.org/2000/svg'/>"}), "SVG")


def test_a_failure_after_every_file_is_stored_still_leaves_nothing_behind(refused, copy, monkeypatch):
    def broken(*args, **kwargs):
        raise book_import.ImportRefused("The audit trail could not be written.")

    monkeypatch.setattr(audit, "record", broken)
    refused(copy, "audit trail")


def test_the_same_photo_twice_for_one_subject_is_refused(refused, copy):
    def change(data):
        ana = data["subjects"][0]
        ana["photos"][1]["content_hash"] = ana["photos"][0]["content_hash"]

    refused(rebuilt(copy, change), "same photo as another one of Ana")


# --- book.json's contents --------------------------------------------------------------------------------


def _set(path, value):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


BAD_BOOKS = [
    pytest.param(_set(["patient", "name"], ""), ["the person’s details", "the name is missing"], id="no-name"),
    pytest.param(_set(["patient", "birth_year"], 3000), ["the birth year is not a whole number from 1880 to 2100"],
                 id="birth-year"),
    pytest.param(_set(["patient", "photo_consent", "recorded_at"], "last Tuesday"), ["is not a date"],
                 id="consent-date"),
    pytest.param(_set(["patient", "photo_consent", "recorded_at"], "2999-01-01T00:00:00+00:00"), ["in the future"],
                 id="consent-in-the-future"),
    pytest.param(_set(["subjects", 0, "kind"], "ghost"), ["person, place or thing 1", "the kind is not one"],
                 id="kind"),
    pytest.param(_set(["chapters"], {"title": "One"}), ["the chapters are not written as a list"], id="chapters"),
    pytest.param(_set(["chapters", 0, "title"], None), ["in chapter 1, the title is missing"], id="no-title"),
    pytest.param(_set(["chapters", 0, "memories", 0, "title"], "x" * 141),
                 ["chapter 1, memory 1", "longer than 140 characters"], id="long-title"),
    pytest.param(_set(["chapters", 0, "memories", 0, "title"], "Summer\u0000"), ["damaged"], id="nul"),
    pytest.param(_set(["chapters", 0, "memories", 0, "scene"], "a beach \ud800"), ["damaged"], id="surrogate"),
    pytest.param(_set(["chapters", 0, "memories", 0, "pictures", 0, "parameters"], {"prompt": "a\u0000b"}),
                 ["damaged"], id="nul-in-recipe"),
    pytest.param(_set(["chapters", 0, "memories", 0, "subjects"], [True]), ["not in the book"], id="true-subject"),
    pytest.param(_set(["chapters", 0, "memories", 0, "hidden"], "no"), ["“hidden” is neither true nor false"],
                 id="hidden"),
    pytest.param(_set(["chapters", 0, "memories", 0, "subjects"], [99]), ["not in the book"], id="unknown-subject"),
    pytest.param(_set(["chapters", 0, "memories", 0, "chosen_picture"], 99), ["the chosen picture is not among"],
                 id="chosen"),
    pytest.param(_set(["chapters", 0, "memories", 0, "pictures", 0, "parent"], 3), ["in a circle"], id="cycle"),
    pytest.param(_set(["chapters", 0, "memories", 0, "pictures", 1, "parent"], 42),
                 ["repainted from a picture that is not among"], id="parent"),
    pytest.param(_set(["chapters", 0, "memories", 0, "pictures", 0, "seed"], None),
                 ["chapter 1, memory 1, picture 1", "the seed is not a whole number"], id="no-seed"),
    pytest.param(_set(["chapters", 0, "memories", 0, "pictures", 0, "source"], "stolen"),
                 ["where it came from is not one Lifebook knows"], id="source"),
    pytest.param(_set(["chapters", 0, "memories", 0, "pictures", 0, "parameters"], "steps=20"),
                 ["its recipe is not written"], id="recipe"),
    pytest.param(_set(["chapters", 0, "memories", 0, "pictures", 0, "id"], 2), ["its number is used twice"],
                 id="picture-number"),
]


@pytest.mark.parametrize("change, words", BAD_BOOKS)
def test_a_book_with_a_wrong_part_is_refused_with_where_and_what(refused, copy, change, words):
    refused(rebuilt(copy, change), "cannot be read" if words != ["damaged"] else "damaged", *words)


def test_numbers_json_cannot_store_are_refused(refused, copy):
    files = unzip(copy)
    files["book.json"] = files["book.json"].replace(b'"steps": 20', b'"steps": NaN', 1)
    assert b"NaN" in files["book.json"]
    refused(make_zip(files), "damaged")


# --- The doors -------------------------------------------------------------------------------------------


def test_the_api_asks_for_the_file_when_none_is_sent(lucia):
    api = APIClient()
    api.force_authenticate(lucia)
    response = api.post("/api/patients/import/", {"title": "no file"}, format="multipart")
    assert response.status_code == 400 and "“file”" in response.json()["file"][0]


def test_the_api_refuses_a_field_it_does_not_take_by_name_and_makes_no_book(lucia, copy):
    api = APIClient()
    api.force_authenticate(lucia)
    response = api.post("/api/patients/import/", {"file": zip_upload(copy), "name": "Another name"},
                        format="multipart")
    assert response.status_code == 400 and list(response.json()) == ["name"]
    assert not Patient.objects.filter(care_team__user=lucia).exists()


def test_the_web_page_shows_why_a_copy_was_refused_and_keeps_nothing(client, lucia, private_media_root):
    client.force_login(lucia)
    files = stored_files(private_media_root)
    response = client.post(reverse("book_import"), {"file": zip_upload(b"not a zip")})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The book was not brought in. This file is not a ZIP file." in page
    assert Patient.objects.count() == 0 and stored_files(private_media_root) == files

    assert "Choose the ZIP file of the book." in client.post(reverse("book_import"), {}).content.decode()
