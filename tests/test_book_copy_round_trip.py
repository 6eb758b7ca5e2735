"""A book downloaded as a copy and brought in by someone else comes back whole: words, order, people, hidden
flags, consent, every picture's pixels, recipe and lineage, and the chosen pictures; its page shows it all."""

import hashlib
import json
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from lifebook.models import AuditEvent, Patient
from tests import factories
from tests.book_copies import CONSENT_AT, body_of, build_book, describe, unzip, zip_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(owner):
    return build_book(owner)


def web_export(client, user, patient) -> bytes:
    client.force_login(user)
    response = client.get(reverse("book_export", args=[patient.pk]))
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="juan-pacheco-ruiz-life-book.zip"'
    assert response["Cache-Control"] == "private, no-store"
    return body_of(response)


def api_client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def api_export(user, patient) -> bytes:
    response = api_client(user).get(f"/api/patients/{patient.pk}/export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    return body_of(response)


def web_import(client, user, data: bytes) -> Patient:
    client.force_login(user)
    before = set(Patient.objects.values_list("pk", flat=True))
    response = client.post(reverse("book_import"), {"file": zip_upload(data)})
    assert response.status_code == 302, response.content.decode()[:2000]
    patient = Patient.objects.exclude(pk__in=before).get()
    assert response["Location"] == reverse("patient_book", args=[patient.pk])
    return patient


def api_import(user, data: bytes) -> Patient:
    response = api_client(user).post("/api/patients/import/", {"file": zip_upload(data)}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "owner" and response.json()["photo_consent"] is True
    return Patient.objects.get(pk=response.json()["id"])


@pytest.mark.parametrize("way", ["web", "API"])
def test_a_book_exported_and_imported_by_someone_else_comes_back_whole(client, owner, book, way, settings):
    # The web's upload arrives in a temporary file on disk (as a large copy does), the API's in memory.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 if way == "web" else 50 * 1024 * 1024
    daughter = factories.UserFactory(username="lucia")
    copy = web_export(client, owner, book) if way == "web" else api_export(owner, book)
    copy_of = web_import(client, daughter, copy) if way == "web" else api_import(daughter, copy)

    assert copy_of.pk != book.pk
    assert describe(copy_of) == describe(book)
    # The one who brought it in owns it alone, and took over the consent record (its date and words stay).
    assert list(copy_of.care_team.values_list("user__username", "role")) == [("lucia", "owner")]
    assert copy_of.photo_consent_by == daughter and copy_of.photo_consent_at == CONSENT_AT
    # New subjects: new training tokens, no trainings (adapters are not in a copy).
    assert not set(copy_of.subjects.values_list("token", flat=True)) & set(book.subjects.values_list("token", flat=True))
    assert not any(subject.training_jobs.exists() for subject in copy_of.subjects.all())
    # Files keep their pixels; a JPEG that was already clean keeps its very bytes (no second encoding).
    original_photos = [photo.image.read() for subject in book.subjects.all() for photo in subject.photos.all()]
    copied_photos = [photo.image.read() for subject in copy_of.subjects.all() for photo in subject.photos.all()]
    assert copied_photos == original_photos
    assert all(name.startswith(f"patients/{copy_of.pk}/") for name in _stored_names(copy_of))

    exported = AuditEvent.objects.get(patient=book, action=AuditEvent.Action.EXPORTED)
    assert (exported.username, exported.detail) == ("marta", way)
    events = {(event.action, event.username): event.detail for event in copy_of.audit_events.all()}
    assert events[(AuditEvent.Action.IMPORTED, "lucia")] == way
    assert "first recorded by marta" in events[(AuditEvent.Action.CONSENT_GIVEN, "lucia")]


def _stored_names(patient):
    for subject in patient.subjects.all():
        yield from (photo.image.name for photo in subject.photos.all())
    for chapter in patient.chapters.all():
        for memory in chapter.memories.all():
            yield from (image.image.name for image in memory.images.all())


def test_a_copy_of_a_copy_holds_the_same_book(client, owner, book):
    first = unzip(web_export(client, owner, book))
    lucia = factories.UserFactory(username="lucia")
    second = unzip(web_export(client, lucia, web_import(client, lucia, web_export(client, owner, book))))

    def comparable(files):
        """book.json with each file named by its content: stored files get new random names in a new book."""
        text = files["book.json"].decode()
        for name, content in files.items():
            if "/" in name:
                text = text.replace(json.dumps(name), json.dumps(hashlib.sha256(content).hexdigest()))
        data = json.loads(text)
        data.pop("exported_at")
        data["patient"]["photo_consent"].pop("recorded_by")
        return data

    assert comparable(second) == comparable(first)
    assert json.loads(second["book.json"])["patient"]["photo_consent"]["recorded_by"] == "lucia"
    assert sorted(content for name, content in second.items() if "/" in name) == sorted(
        content for name, content in first.items() if "/" in name)


def test_the_copy_holds_the_book_as_data_and_no_training_token(client, owner, book):
    files = unzip(web_export(client, owner, book))
    data = json.loads(files["book.json"])

    assert (data["format"], data["format_version"]) == ("lifebook-book", 1)
    assert data["patient"] == {"name": "Juan Pacheco Ruiz", "preferred_name": "Juanito", "birth_year": 1944,
                               "notes": "Gets tired after 20 minutes.", "photo_consent": {
                                   "recorded_by": "marta", "recorded_at": "2024-03-05T10:30:00+00:00",
                                   "note": "Juan himself, in writing"}}
    assert [chapter["title"] for chapter in data["chapters"]] == ["Growing up in Cádiz", "The shop", "Still to write"]
    beach = data["chapters"][0]["memories"][0]
    ana = next(subject for subject in data["subjects"] if subject["name"] == "Ana")
    assert beach["pictures"][0]["parameters"]["prompt"].startswith(f"a photo of [[subject-{ana['id']}]] woman and")
    assert [picture["parent"] for picture in beach["pictures"]] == [None, 1, 2, None]
    assert beach["chosen_picture"] == 2 and [picture["source"] for picture in beach["pictures"]] == [
        "generated", "inpainted", "inpainted", "uploaded"]
    assert "token" not in ana and set(ana) >= {"kind", "name", "relationship", "life_stage", "class_word", "photos"}
    for token in book.subjects.values_list("token", flat=True):
        assert all(token.encode() not in content for content in files.values()), token
    # Our random file names, never the names the photos were uploaded with.
    assert not any(b"IMG_2041" in content for content in files.values())
    assert all(name in ("book.json", "README.html", "style.css") or name.startswith(("photos/", "pictures/"))
               for name in files)


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.scripts, self.styles = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        elif tag == "link":
            self.styles.append(attrs["href"])
        elif tag == "script":
            self.scripts += 1


def test_the_readme_page_shows_the_book_and_links_every_file_in_the_copy(client, owner, book):
    files = unzip(web_export(client, owner, book))
    html = files["README.html"].decode()
    page = Links()
    page.feed(html)

    pictures = {name for name in files if name.startswith(("photos/", "pictures/"))}
    assert len(pictures) == 4 + 6  # the reference photos and every memory picture
    assert set(page.images) == pictures  # every picture shows, and nothing else is asked for
    local = [link for link in page.links if not link.startswith("#")]
    assert set(local) == pictures
    assert page.styles == ["style.css"] and "style.css" in files
    assert page.scripts == 0 and "http" not in html and "style=" not in html
    for words in ("Juan Pacheco Ruiz’s life book", "Growing up in Cádiz", "Summer at La Caleta",
                  "He was seven.", "The night of the flood", "Hidden: this memory is not shown",
                  "No picture has been chosen for this memory yet.", "People, places and things", "his dog"):
        assert words in html, words
    assert html.index("Growing up in Cádiz") < html.index("The shop") < html.index("Still to write")


def test_a_stored_file_that_went_missing_is_left_out_and_the_rest_still_downloads(client, owner, book):
    beach = book.chapters.first().memories.first()
    beach.chosen_image.image.storage.delete(beach.chosen_image.image.name)

    files = unzip(web_export(client, owner, book))
    memory = json.loads(files["book.json"])["chapters"][0]["memories"][0]
    assert memory["chosen_picture"] is None and len(memory["pictures"]) == 3
    assert [picture["parent"] for picture in memory["pictures"]] == [None, None, None]  # its child lost its parent
    web_import(client, factories.UserFactory(username="lucia"), b"".join([web_export(client, owner, book)]))


def test_making_a_copy_takes_as_many_queries_for_a_big_book_as_for_a_small_one(owner, book):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from lifebook.book_export import export_book
    from tests.book_copies import generated

    def queries():
        with CaptureQueriesContext(connection) as captured, export_book(book):
            pass
        return len(captured)

    small = queries()
    for chapter in book.chapters.all():
        for n in range(3):
            memory = factories.MemoryFactory(chapter=chapter)
            memory.subjects.set(book.subjects.all())
            memory.chosen_image = generated(memory, 100 + n, parent=generated(memory, 200 + n))
            memory.save()
    assert queries() == small
