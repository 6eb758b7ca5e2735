"""Another caregiver gets a 404 on every URL that names a patient's data, media included."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from django.core.files.base import ContentFile

from accounts.models import Invitation
from generation.models import GenerationJob, TrainingCheckpoint, TrainingJob
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


def _named_patterns(resolver=None, prefix="", namespace=""):
    """(name, route) of every named URL in the project, admin excluded (staff only)."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if getattr(entry, "app_name", None) == "admin":
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _named_patterns(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield namespace + entry.name, prefix + str(entry.pattern)


@pytest.fixture
def book(patient):
    """One of everything, so each patient-scoped URL has an object to point at."""
    subject = factories.SubjectFactory(patient=patient)
    photo = add_reference_photo(subject, image_upload())
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient))
    image = factories.MemoryImageFactory(memory=memory)
    training = TrainingJob.objects.create(subject=subject, state="succeeded")
    checkpoint = TrainingCheckpoint(job=training, step=1)
    checkpoint.adapter.save("lora.safetensors", ContentFile(b"weights"), save=False)
    checkpoint.save()
    api_objects = {  # the API's router names (api:<basename>-detail, ...) -> the object they point at
        "patient": patient, "care-team": patient.care_team.first(), "subject": subject, "photo": photo,
        "chapter": memory.chapter, "memory": memory, "memory-image": image, "training-job": training,
        "checkpoint": checkpoint, "generation-job": GenerationJob.objects.create(memory=memory, kind="txt2img"),
    }
    return {"patient_id": patient.pk, "subject_id": subject.pk, "photo_id": photo.pk, "job_id": training.pk,
            "memory_id": memory.pk, "image_id": image.pk, "chapter_id": memory.chapter.pk,
            "member_id": patient.care_team.first().pk,
            "invitation_id": Invitation.objects.create(patient=patient, email="new@example.com").pk,
            "checkpoint_id": checkpoint.pk, "path": photo.image.name, "image_path": image.image.name,
            "api": api_objects}


# URLs with parameters that hold no patient data.
# "invitation": its token is the key; a bad one is a friendly 404 (tests/test_team_pages.py).
NOT_PATIENT_DATA = {"password_reset_confirm", "invitation"}


def patient_scoped_urls(book):
    urls = []
    for name, route in _named_patterns():
        if "<" not in route or name in NOT_PATIENT_DATA:
            continue
        if name == "media":
            urls += [reverse("media", kwargs={"path": book["path"]}),
                     reverse("media", kwargs={"path": book["image_path"]})]
            continue
        if name == "rendition":  # resized copies of a stored picture, checked like media
            urls.append(reverse("rendition", kwargs={"width": 480, "path": book["image_path"]}))
            continue
        kwargs = {}
        if name.startswith("api:") and "<pk>" in route:
            basename = name.removeprefix("api:").rsplit("-", 1)[0]
            for suffix in ("-chapter", "-move", "-choose", "-cancel"):  # actions: api:<basename>-<action>
                basename = basename.removesuffix(suffix)
            kwargs["pk"] = book["api"][basename].pk
        for param in ("patient_id", "subject_id", "photo_id", "job_id", "checkpoint_id", "memory_id", "image_id",
                      "chapter_id", "member_id", "invitation_id"):
            if f"{param}>" in route:
                kwargs[param] = book[param]
        # A new URL with another parameter must be added here, so it cannot escape this test.
        assert route.count("<") == len(kwargs), f"teach test_privacy about the parameters of {name}: {route}"
        urls.append(reverse(name, kwargs=kwargs))
    return urls


def test_the_list_of_patient_urls_is_not_empty(book):
    urls = patient_scoped_urls(book)
    assert any("/media/" in u for u in urls) and any(u.startswith(f"/patients/{book['patient_id']}/") for u in urls)


def test_the_owner_reaches_every_patient_url(client, owner, book):
    client.force_login(owner)
    for url in patient_scoped_urls(book):
        expected = (200, 405)  # actions take POST only
        assert client.get(url).status_code in expected, url


def test_another_caregiver_gets_404_on_every_patient_url(client, stranger, book):
    client.force_login(stranger)
    for url in patient_scoped_urls(book):
        statuses = {client.get(url).status_code, client.post(url).status_code}
        # 405 (a method the URL never takes, whatever the id) reveals nothing; the other method must 404.
        assert 404 in statuses and statuses <= {404, 405}, (url, statuses)


def test_an_anonymous_visitor_never_gets_patient_data(client, book):
    for url in patient_scoped_urls(book):
        response = client.get(url)
        assert response.status_code in ((401, 403) if url.startswith("/api/") else (302, 404, 405)), url
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("login"))


def test_a_therapist_cannot_reach_edit_pages(client, therapist, book):
    client.force_login(therapist)
    assert client.get(reverse("patient_book", args=[book["patient_id"]])).status_code == 200
    assert client.get(reverse("patient_edit", args=[book["patient_id"]])).status_code == 404
