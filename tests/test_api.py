"""The REST API: every endpoint for the owner, another family (404), a therapist (read only) and no one (401/403)."""

import io

import pytest
from django.core.cache import cache
from django.utils import timezone
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import CareTeamMember
from generation.models import GenerationJob, JobState, TrainingCheckpoint, TrainingJob
from lifebook.models import Memory
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


def png(size=(64, 64), color="white", mode="RGB"):
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, "PNG")
    return SimpleUploadedFile("drawing.png", buffer.getvalue(), content_type="image/png")


@pytest.fixture
def book(patient, owner, therapist):
    patient.photo_consent_at, patient.photo_consent_by, patient.photo_consent_note = timezone.now(), owner, "Juan"
    patient.save()
    subject = factories.SubjectFactory(patient=patient, name="Ana", class_word="woman")
    photo = add_reference_photo(subject, image_upload())
    chapter = factories.ChapterFactory(patient=patient, title="Youth")
    memory = factories.MemoryFactory(chapter=chapter, title="The dance", scene="Juan and Ana dancing")
    memory.subjects.add(subject)
    picture = factories.MemoryImageFactory(memory=memory)
    training = TrainingJob.objects.create(subject=subject, state=JobState.SUCCEEDED)
    checkpoint = TrainingCheckpoint(job=training, step=10, samples=[picture.image.name])
    checkpoint.adapter.save("lora.safetensors", ContentFile(b"weights"), save=False)
    checkpoint.save()
    TrainingJob.objects.filter(pk=training.pk).update(chosen_checkpoint=checkpoint)
    generation = GenerationJob.objects.create(memory=memory, kind="txt2img", parameters={"steps": 2})
    membership = CareTeamMember.objects.get(patient=patient, user=therapist)
    factories.UserFactory(username="pablo", email="pablo@example.org")
    return dict(patient=patient, subject=subject, photo=photo, chapter=chapter, memory=memory, picture=picture,
                training=training, checkpoint=checkpoint, generation=generation, membership=membership)


# name, list URL, the book's object, a create payload (multipart when it holds a file), an update payload
RESOURCES = {
    "patients": ("patient", lambda b: {"name": "Rosa Díaz"}, {"preferred_name": "Juanito"}),
    # Creating on the care team invites (202 with the waiting invitation): tests/test_api_care_team.py.
    "care-team": ("membership", lambda b: {"patient": b["patient"].pk, "email": "pablo@example.org",
                                           "role": "caregiver"}, {"role": "therapist"}),
    "subjects": ("subject", lambda b: {"patient": b["patient"].pk, "kind": "pet", "name": "Toby"}, {"name": "Ana M."}),
    "photos": ("photo", lambda b: {"subject": b["subject"].pk, "image": image_upload("new.jpg", color=(9, 99, 199))},
               None),
    "chapters": ("chapter", lambda b: {"patient": b["patient"].pk, "title": "Old age"}, {"title": "Young days"}),
    "memories": ("memory", lambda b: {"chapter": b["chapter"].pk, "title": "Wedding day"}, {"title": "The first dance"}),
    "memory-images": ("picture", lambda b: {"memory": b["memory"].pk, "image": image_upload("real.jpg")}, None),
    "training-jobs": ("training", lambda b: {"subject": b["subject"].pk, "steps": 100}, None),
    "checkpoints": ("checkpoint", None, None),
    "generation-jobs": ("generation", lambda b: {"memory": b["memory"].pk, "steps": 2, "width": 64, "height": 64},
                        None),
}
CREATED = {"training-jobs": 202, "generation-jobs": 202, "care-team": 202}
LOCATION = {"care-team": "care-team-invitations"}  # a 202's Location, when it is not the resource itself


def client_for(user):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def create(client, name, book):
    payload = RESOURCES[name][1](book)
    multipart = any(hasattr(v, "read") for v in payload.values())
    return client.post(f"/api/{name}/", payload, format="multipart" if multipart else "json")


def prepare_create(name, book):
    """Make room for a second active training (one per subject at a time)."""
    if name == "training-jobs":
        TrainingJob.objects.filter(subject=book["subject"], state=JobState.QUEUED).delete()


@pytest.mark.parametrize("name", RESOURCES)
def test_the_owner_lists_reads_creates_and_changes(name, book, owner):
    client = client_for(owner)
    key, payload, change = RESOURCES[name]
    obj = book[key]
    listed = client.get(f"/api/{name}/")
    assert listed.status_code == 200 and obj.pk in [row["id"] for row in listed.json()["results"]]
    assert client.get(f"/api/{name}/{obj.pk}/").status_code == 200
    if payload:
        prepare_create(name, book)
        response = create(client, name, book)
        assert response.status_code == CREATED.get(name, 201), response.content
        if name in CREATED:
            assert response["Location"].endswith(f"/api/{LOCATION.get(name, name)}/{response.json()['id']}/")
    if change:
        response = client.patch(f"/api/{name}/{obj.pk}/", change, format="json")
        assert response.status_code == 200, response.content
        for field, value in change.items():
            assert response.json()[field] == value


@pytest.mark.parametrize("name", RESOURCES)
def test_another_family_gets_404_and_sees_nothing(name, book, stranger):
    client = client_for(stranger)
    key, payload, change = RESOURCES[name]
    obj = book[key]
    assert obj.pk not in [row["id"] for row in client.get(f"/api/{name}/").json()["results"]]
    assert client.get(f"/api/{name}/{obj.pk}/").status_code == 404
    assert client.patch(f"/api/{name}/{obj.pk}/", change or {}, format="json").status_code in (404, 405)
    assert client.delete(f"/api/{name}/{obj.pk}/").status_code in (404, 405)
    if payload and name != "patients":  # a new patient is their own book
        # An id from another book is answered exactly like an id that does not exist.
        foreign = create(client, name, book)
        assert foreign.status_code == 400
        parent_field = next(k for k in RESOURCES[name][1](book) if k in ("patient", "subject", "chapter", "memory"))
        parent_id = RESOURCES[name][1](book)[parent_field]
        assert foreign.json() == {parent_field: [f'Invalid pk "{parent_id}" - object does not exist.']}


@pytest.mark.parametrize("name", RESOURCES)
def test_a_therapist_reads_but_cannot_change_anything(name, book, therapist):
    client = client_for(therapist)
    key, payload, change = RESOURCES[name]
    obj = book[key]
    assert client.get(f"/api/{name}/{obj.pk}/").status_code == 200
    if payload and name != "patients":
        prepare_create(name, book)
        assert create(client, name, book).status_code == 403
    if change:
        assert client.patch(f"/api/{name}/{obj.pk}/", change, format="json").status_code == 403
    assert client.delete(f"/api/{name}/{obj.pk}/").status_code in (403, 405)
    type(obj).objects.get(pk=obj.pk)  # still there


@pytest.mark.parametrize("name", RESOURCES)
def test_no_one_logged_in_gets_nothing(name, book):
    client = client_for(None)
    obj = book[RESOURCES[name][0]]
    assert client.get(f"/api/{name}/").status_code in (401, 403)
    assert client.get(f"/api/{name}/{obj.pk}/").status_code in (401, 403)


def test_a_token_works_instead_of_a_session(book, owner):
    key = Token.objects.create(user=owner).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/patients/").json()["count"] == 1
    obtained = APIClient().post("/api/token/", {"username": "marta", "password": "wrong"}, format="json")
    assert obtained.status_code == 400


def test_a_new_patient_belongs_to_its_creator_with_consent_recorded(owner):
    client = client_for(owner)
    refused = client.post("/api/patients/", {"name": "Rosa", "photo_consent": True}, format="json")
    assert refused.status_code == 400 and "Say who gave consent" in str(refused.json())
    response = client.post("/api/patients/", {"name": "Rosa", "photo_consent": True,
                                              "photo_consent_note": "Rosa herself"}, format="json")
    body = response.json()
    assert body["role"] == "owner" and body["photo_consent"] is True and body["photo_consent_at"]


def test_a_bad_photo_gets_the_same_message_as_on_the_web(book, owner):
    response = client_for(owner).post("/api/photos/", {"subject": book["subject"].pk, "image": image_upload(
        "tiny.jpg", size=(100, 100))}, format="multipart")
    assert response.status_code == 400
    assert "too small (100×100 pixels)" in response.json()["image"][0]


def test_media_urls_go_through_the_access_checked_view(book, owner, stranger, client):
    body = client_for(owner).get(f"/api/photos/{book['photo'].pk}/").json()
    assert body["url"].startswith("http://testserver/media/patients/")
    path = body["url"].removeprefix("http://testserver")
    client.force_login(stranger)
    assert client.get(path).status_code == 404
    client.force_login(owner)
    assert client.get(path).status_code == 200


def test_the_care_team_is_the_owners_to_change_and_keeps_an_owner(book, owner, patient):
    client = client_for(owner)
    owner_membership = CareTeamMember.objects.get(patient=patient, user=owner)
    response = client.patch(f"/api/care-team/{owner_membership.pk}/", {"role": "caregiver"}, format="json")
    assert response.status_code == 400 and "at least one owner" in str(response.json())
    caregiver = factories.UserFactory(username="luis")
    factories.MembershipFactory(patient=patient, user=caregiver, role="caregiver")
    assert client_for(caregiver).delete(f"/api/care-team/{book['membership'].pk}/").status_code == 403


def test_hidden_memories_are_not_shown_to_therapists(book, owner, therapist):
    Memory.objects.filter(pk=book["memory"].pk).update(hidden=True)
    assert client_for(therapist).get(f"/api/memories/{book['memory'].pk}/").status_code == 404
    assert client_for(therapist).get(f"/api/memory-images/{book['picture'].pk}/").status_code == 404
    assert client_for(owner).get(f"/api/memories/{book['memory'].pk}/").json()["hidden"] is True


def test_memories_and_chapters_move_and_a_stale_order_is_a_conflict(book, owner, patient):
    client = client_for(owner)
    second = factories.ChapterFactory(patient=patient, title="Adulthood")
    moved = client.post(f"/api/chapters/{second.pk}/move/", {"position": 0}, format="json")
    assert moved.status_code == 200 and moved.json()["position"] == 0
    stale = client.post(f"/api/patients/{patient.pk}/chapter-order/", {"order": [second.pk]}, format="json")
    assert stale.status_code == 409 and "Reload" in stale.json()["detail"]
    ok = client.post(f"/api/patients/{patient.pk}/chapter-order/", {"order": [book["chapter"].pk, second.pk]},
                     format="json")
    assert ok.status_code == 204
    memory = client.post(f"/api/memories/{book['memory'].pk}/move/", {"position": 0, "chapter": second.pk},
                         format="json")
    assert memory.status_code == 200 and memory.json()["chapter"] == second.pk


def test_pictures_are_chosen_and_real_photos_uploaded_instead(book, owner):
    client = client_for(owner)
    chosen = client.post(f"/api/memory-images/{book['picture'].pk}/choose/")
    assert chosen.status_code == 200 and chosen.json()["chosen"] is True and chosen.json()["generated"] is True
    upload = client.post("/api/memory-images/", {"memory": book["memory"].pk, "image": image_upload("real.jpg"),
                                                 "choose": True}, format="multipart")
    assert upload.status_code == 201 and upload.json()["generated"] is False and upload.json()["chosen"] is True
    memory = client.get(f"/api/memories/{book['memory'].pk}/").json()
    assert memory["chosen_image"] == upload.json()["id"] and memory["chosen_image_url"].startswith("http://testserver/media/")


def test_jobs_are_submitted_followed_and_cancelled(book, owner):
    client = client_for(owner)
    submitted = client.post("/api/generation-jobs/", {"memory": book["memory"].pk, "steps": 2, "num_images": 1},
                            format="json")
    assert submitted.status_code == 202
    job = client.get(submitted["Location"]).json()
    assert job["state"] == "queued" and job["kind"] == "txt2img" and job["parameters"]["steps"] == 2
    assert client.post(f"/api/generation-jobs/{job['id']}/cancel/").json() == {"state": "cancelled"}
    refused = client.post("/api/generation-jobs/", {"memory": book["memory"].pk, "steps": 500}, format="json")
    assert refused.json() == {"steps": ["Ensure this value is less than or equal to 150."]}
    listed = client.get("/api/generation-jobs/", {"state": "cancelled"}).json()
    assert [row["id"] for row in listed["results"]] == [job["id"]]


def test_inpainting_through_the_api_takes_a_mask_upload(book, owner):
    client = client_for(owner)
    mask = png(color="black")
    Image.new("L", (64, 64), 0).paste(255, (0, 0, 10, 10))
    refused = client.post("/api/generation-jobs/", {"memory": book["memory"].pk, "kind": "inpaint",
                                                    "source_image": book["picture"].pk, "mask_upload": mask},
                          format="multipart")
    assert refused.status_code == 400 and "The mask is empty" in str(refused.json())
    painted = Image.new("L", (64, 64), 0)
    painted.paste(255, (8, 8, 24, 24))
    buffer = io.BytesIO()
    painted.save(buffer, "PNG")
    response = client.post("/api/generation-jobs/", {
        "memory": book["memory"].pk, "kind": "inpaint", "source_image": book["picture"].pk,
        "mask_upload": SimpleUploadedFile("mask.png", buffer.getvalue()), "inpaint_subject": book["subject"].pk,
        "strength": 0.6}, format="multipart")
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert job.kind == "inpaint" and job.inpaint_subject == book["subject"] and job.mask_file.name


def test_a_checkpoint_is_chosen_for_its_subject(book, owner):
    client = client_for(owner)
    training = client.get(f"/api/training-jobs/{book['training'].pk}/").json()
    assert training["checkpoints"][0]["samples"][0].startswith("http://testserver/media/patients/")
    response = client.post(f"/api/checkpoints/{book['checkpoint'].pk}/choose/")
    assert response.status_code == 200 and response.json()["chosen"] is True
    assert client.get(f"/api/subjects/{book['subject'].pk}/").json()["trained"] is True


def test_job_submissions_are_throttled_per_user(book, owner, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    cache.clear()
    rates = {"jobs": "2/minute"}
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        client = client_for(owner)
        codes = [client.post("/api/generation-jobs/", {"memory": book["memory"].pk}, format="json").status_code
                 for _ in range(3)]
        assert codes == [202, 202, 429]
        assert client.get("/api/generation-jobs/").status_code == 200  # reading is not throttled
    finally:
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        cache.clear()


def test_lists_are_paginated_and_filtered(book, owner, patient):
    for index in range(3):
        factories.ChapterFactory(patient=patient)
    other = factories.PatientFactory()
    factories.MembershipFactory(patient=other, user=owner, role="owner")
    factories.ChapterFactory(patient=other)
    client = client_for(owner)
    page = client.get("/api/chapters/", {"page_size": 2}).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]
    only = client.get("/api/chapters/", {"patient": other.pk}).json()
    assert only["count"] == 1
    assert client.get("/api/chapters/", {"patient": "x"}).status_code == 400
    # Past a database integer: a clear 400, not a 500 (found by schemathesis).
    huge = client.get("/api/memories/", {"patient": "99999999999999999999"})
    assert huge.status_code == 400 and "is not an id" in str(huge.json())
    assert client.get("/api/memories/", {"patient": "²"}).status_code == 400  # a digit to Python, not to int()
    assert client.get("/api/generation-jobs/", {"state": "done"}).status_code == 400


@pytest.mark.parametrize("body", [0, None, "AAA", [None], {"order": "1,2"}, {"order": [None]}])
def test_a_malformed_chapter_order_is_a_400(book, owner, patient, body):
    response = client_for(owner).post(f"/api/patients/{patient.pk}/chapter-order/", body, format="json")
    assert response.status_code == 400


def changing_actions(book, patient):
    """Every action that changes something, with a body it takes: (url, body)."""
    return [
        (f"/api/patients/{patient.pk}/chapter-order/", {"order": [book["chapter"].pk]}),
        (f"/api/chapters/{book['chapter'].pk}/move/", {"position": 0}),
        (f"/api/memories/{book['memory'].pk}/move/", {"position": 0}),
        (f"/api/memory-images/{book['picture'].pk}/choose/", {}),
        (f"/api/checkpoints/{book['checkpoint'].pk}/choose/", {}),
        (f"/api/training-jobs/{book['training'].pk}/cancel/", {}),
        (f"/api/generation-jobs/{book['generation'].pk}/cancel/", {}),
    ]


def test_a_therapist_cannot_use_any_changing_action(book, therapist, patient):
    client = client_for(therapist)
    for url, body in changing_actions(book, patient):
        assert client.post(url, body, format="json").status_code == 403, url
    book["generation"].refresh_from_db()
    assert not book["generation"].cancel_requested


def test_an_api_url_that_matches_nothing_answers_json(owner, client):
    client.force_login(owner)
    response = client.get("/api/patients/1.5/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and "text/html" in page["Content-Type"]


@pytest.mark.parametrize("name, make", [
    ("subjects", lambda patient: factories.SubjectFactory(patient=patient)),
    ("patients", lambda patient: factories.MembershipFactory(user=patient.care_team.first().user, role="caregiver")),
    ("memories", lambda patient: factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient))),
    ("memory-images", lambda patient: factories.MemoryImageFactory(
        memory=factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient)))),
])
def test_a_list_costs_the_same_queries_for_two_rows_or_ten(name, make, owner, patient):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(owner)

    def count():
        cache.clear()  # each request records its look at the book afresh (lifebook.audit: one insert, any length)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/api/{name}/").status_code == 200
        return len(queries)

    for _ in range(2):
        make(patient)
    few = count()
    for _ in range(8):
        make(patient)
    assert count() == few


def test_no_reference_photos_through_the_api_before_consent_is_recorded(owner, patient, private_media_root):
    """As on the subject page: photos of a person are health data, so consent comes first."""
    from lifebook.models import ReferencePhoto

    patient.photo_consent_at = None
    patient.save()
    subject = factories.SubjectFactory(patient=patient)
    response = client_for(owner).post("/api/photos/", {"subject": subject.pk, "image": image_upload()},
                                      format="multipart")
    assert response.status_code == 400 and "consent" in response.json()["image"][0]
    assert not ReferencePhoto.objects.exists() and not list(private_media_root.rglob("*.jpg"))
