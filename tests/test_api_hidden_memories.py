"""A therapist (view-only role) never meets a hidden memory through the API: not its rows, not its picture jobs,
not among the choices of an id field (the browsable API's <select>s). Who edits the book sees everything."""

import pytest
from rest_framework.test import APIClient, APIRequestFactory

from accounts.access import memories_for
from generation import jobs
from generation.api import GenerationJobSerializer
from lifebook.api.serializers import MemoryImageSerializer
from lifebook.models import Memory
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(patient, owner):
    chapter = factories.ChapterFactory(patient=patient)
    shown = factories.MemoryFactory(chapter=chapter, title="The dance", scene="Juan dancing")
    hidden = factories.MemoryFactory(chapter=chapter, title="The hospital", scene="Juan in hospital", hidden=True)
    return {
        "shown": shown, "hidden": hidden,
        "shown_picture": factories.MemoryImageFactory(memory=shown),
        "hidden_picture": factories.MemoryImageFactory(memory=hidden),
        "shown_job": jobs.submit_generation(shown, user=owner, prompt="sunny"),
        "hidden_job": jobs.submit_generation(hidden, user=owner, prompt="oxygen mask"),
    }


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_memories_for_leaves_hidden_memories_out_only_for_view_only_roles(book, patient, owner, therapist, stranger):
    caregiver = factories.MembershipFactory(patient=patient, role="caregiver").user
    admin = factories.UserFactory(username="admin", is_staff=True)
    both = {book["shown"], book["hidden"]}
    assert set(memories_for(owner)) == set(memories_for(caregiver)) == both
    assert both <= set(memories_for(admin))
    assert set(memories_for(therapist)) == {book["shown"]}
    assert not memories_for(stranger).filter(pk__in=[m.pk for m in both]).exists()


def test_a_therapist_does_not_get_the_picture_jobs_of_a_hidden_memory(book, therapist):
    client = api(therapist)
    listed = client.get("/api/generation-jobs/").json()["results"]
    assert [row["id"] for row in listed] == [book["shown_job"].pk]
    assert "oxygen mask" not in str(listed)
    assert client.get("/api/generation-jobs/", {"memory": book["hidden"].pk}).json()["count"] == 0
    assert client.get(f"/api/generation-jobs/{book['hidden_job'].pk}/").status_code == 404
    assert client.post(f"/api/generation-jobs/{book['hidden_job'].pk}/cancel/").status_code == 404
    assert client.get(f"/api/generation-jobs/{book['shown_job'].pk}/").status_code == 200


def test_the_owner_still_gets_the_picture_jobs_of_a_hidden_memory(book, owner):
    client = api(owner)
    ids = {row["id"] for row in client.get("/api/generation-jobs/").json()["results"]}
    assert ids == {book["shown_job"].pk, book["hidden_job"].pk}
    assert client.get(f"/api/generation-jobs/{book['hidden_job'].pk}/").status_code == 200


def choices(serializer_class, user, field):
    request = APIRequestFactory().get("/")
    request.user = user
    serializer = serializer_class(context={"request": request})
    return {int(value) for value in serializer.fields[field].get_choices()}


def test_id_fields_offer_a_therapist_no_hidden_memory_nor_its_pictures(book, therapist):
    assert choices(GenerationJobSerializer, therapist, "memory") == {book["shown"].pk}
    assert choices(GenerationJobSerializer, therapist, "source_image") == {book["shown_picture"].pk}
    assert choices(MemoryImageSerializer, therapist, "memory") == {book["shown"].pk}


def test_id_fields_offer_who_edits_the_book_every_memory(book, owner):
    assert choices(GenerationJobSerializer, owner, "memory") == {book["shown"].pk, book["hidden"].pk}
    assert choices(GenerationJobSerializer, owner, "source_image") == {book["shown_picture"].pk,
                                                                       book["hidden_picture"].pk}


def test_the_memory_rules_are_the_same_as_before_for_memories_and_pictures(book, therapist, owner):
    for path in (f"/api/memories/{book['hidden'].pk}/", f"/api/memory-images/{book['hidden_picture'].pk}/"):
        assert api(therapist).get(path).status_code == 404
        assert api(owner).get(path).status_code == 200
    Memory.objects.filter(pk=book["hidden"].pk).update(hidden=False)  # shown again: the therapist sees it
    assert api(therapist).get(f"/api/generation-jobs/{book['hidden_job'].pk}/").status_code == 200
