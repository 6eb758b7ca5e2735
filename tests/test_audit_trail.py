"""The audit trail: each look at a book and each consent change is recorded once, by the action that makes it,
and only the book's owners (and admins, read only) can read it."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from lifebook import audit
from lifebook.models import AuditEvent, Patient
from tests import factories

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action


@pytest.fixture
def memory(patient):
    return factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), title="At the beach")


def events(**filters):
    return list(AuditEvent.objects.filter(**filters).order_by("pk").values_list("action", "detail", "username"))


def api_for(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


# --- looks ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name, place", [
    ("patient_book", audit.BOOK_PAGE), ("book_carousel", audit.READER), ("book_pdf", audit.PDF)])
def test_a_look_at_the_book_is_recorded_once_per_person_and_place(client, therapist, patient, memory, url_name,
                                                                   place):
    client.force_login(therapist)
    for _ in range(3):
        assert client.get(reverse(url_name, args=[patient.pk])).status_code == 200
    assert events(patient=patient) == [(Action.VIEWED, place, "laura")]


def test_each_place_and_each_person_is_recorded_on_its_own(client, owner, therapist, patient, memory):
    client.force_login(therapist)
    client.get(reverse("patient_book", args=[patient.pk]))
    client.get(reverse("book_carousel", args=[patient.pk]))
    client.force_login(owner)
    client.get(reverse("patient_book", args=[patient.pk]))
    client.get(reverse("memory_page", args=[patient.pk, memory.pk]))
    client.get(reverse("memory_page", args=[patient.pk, memory.pk]))
    assert events(patient=patient) == [(Action.VIEWED, audit.BOOK_PAGE, "laura"), (Action.VIEWED, audit.READER, "laura"),
                                       (Action.VIEWED, audit.BOOK_PAGE, "marta"),
                                       (Action.VIEWED, audit.memory_page(memory.pk), "marta")]


def test_a_look_after_the_window_is_recorded_again(client, therapist, patient):
    from django.core.cache import cache

    client.force_login(therapist)
    client.get(reverse("patient_book", args=[patient.pk]))
    cache.clear()  # the 15 minutes have passed
    client.get(reverse("patient_book", args=[patient.pk]))
    assert len(events(patient=patient)) == 2


def test_reading_through_the_api_is_recorded_once(therapist, patient, memory, stranger):
    api = api_for(therapist)
    assert api.get(f"/api/patients/{patient.pk}/").status_code == 200
    assert api.get(f"/api/memories/{memory.pk}/").status_code == 200
    assert api.get("/api/memories/", {"patient": patient.pk}).status_code == 200
    assert events(patient=patient) == [(Action.VIEWED, audit.API, "laura")]
    their_book = stranger.care_teams.get().patient
    factories.MemoryFactory(chapter=factories.ChapterFactory(patient=their_book))
    api_for(stranger).get("/api/memories/")  # their own book's memories only
    assert events(username="stranger", patient=their_book) == [(Action.VIEWED, audit.API, "stranger")]
    assert not AuditEvent.objects.filter(patient=patient, username="stranger").exists()


def test_lists_of_books_and_refusals_record_nothing(client, stranger, patient):
    api_for(stranger).get(f"/api/patients/{patient.pk}/")  # 404
    client.force_login(stranger)
    assert client.get(reverse("patient_book", args=[patient.pk])).status_code == 404
    api_for(stranger).get("/api/patients/")
    assert not AuditEvent.objects.filter(patient=patient).exists()


# --- consent ----------------------------------------------------------------------------------------------------


def test_consent_given_on_the_web_is_recorded_once_when_the_book_starts(client, owner):
    client.force_login(owner)
    client.post(reverse("patient_create"), {"name": "Carmen", "photo_consent": "on",
                                            "photo_consent_note": "Carmen herself"})
    patient = Patient.objects.get(name="Carmen")
    assert events(patient=patient) == [(Action.CONSENT_GIVEN, audit.DETAILS_PAGE, "marta")]


def test_a_book_started_without_consent_records_nothing(client, owner):
    client.force_login(owner)
    client.post(reverse("patient_create"), {"name": "Carmen"})
    assert events() == []


def test_consent_changes_on_the_web_are_recorded_only_when_consent_changes(client, owner, patient):
    client.force_login(owner)
    url = reverse("patient_edit", args=[patient.pk])
    give = {"name": patient.name, "photo_consent": "on", "photo_consent_note": "Juan himself"}
    client.post(url, give)
    client.post(url, {**give, "name": "Juan P. Pacheco", "photo_consent_note": "Juan, in writing"})  # still given
    client.post(url, {"name": "Juan P. Pacheco"})  # withdrawn
    client.post(url, {"name": "Juan Pacheco"})  # still withdrawn
    assert [action for action, _, _ in events(patient=patient)] == [Action.CONSENT_GIVEN, Action.CONSENT_WITHDRAWN]


def test_consent_through_the_api_is_recorded_once_per_change(owner):
    api = api_for(owner)
    created = api.post("/api/patients/", {"name": "Rosa", "photo_consent": True, "photo_consent_note": "Rosa herself"},
                       format="json").json()
    url = f"/api/patients/{created['id']}/"
    api.patch(url, {"name": "Rosa María"}, format="json")
    api.patch(url, {"photo_consent": True}, format="json")
    withdrawn = api.patch(url, {"photo_consent": False}, format="json")
    assert withdrawn.status_code == 200 and withdrawn.json()["photo_consent"] is False
    api.patch(url, {"photo_consent": False}, format="json")
    assert events(patient_id=created["id"], action__startswith="consent") == [
        (Action.CONSENT_GIVEN, audit.API, "marta"), (Action.CONSENT_WITHDRAWN, audit.API, "marta")]


def test_a_refused_change_records_nothing(owner, patient, therapist):
    response = api_for(therapist).patch(f"/api/patients/{patient.pk}/", {"photo_consent": True,
                                                                         "photo_consent_note": "x"}, format="json")
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="consent").exists()


# --- reading the trail ------------------------------------------------------------------------------------------


def test_the_owner_reads_the_trail_in_plain_words(client, owner, therapist, patient, memory):
    client.force_login(therapist)
    client.get(reverse("book_carousel", args=[patient.pk]))
    client.get(reverse("book_pdf", args=[patient.pk]))
    client.force_login(owner)
    client.get(reverse("memory_page", args=[patient.pk, memory.pk]))
    gone = factories.UserFactory(username="pedro")
    audit.record_view(gone, patient, audit.BOOK_PAGE)
    html = client.get(reverse("book_audit", args=[patient.pk])).content.decode()
    for words in ("laura (therapist) read the book in the reader", "laura (therapist) downloaded the large-print PDF",
                  "marta (owner) opened the memory “At the beach”", "pedro (no longer on the care team) looked at the book"):
        assert words in html, words
    assert "<script" not in html.split("<main", 1)[1] and "style=" not in html


def test_the_trail_is_paginated_newest_first(client, owner, patient):
    for index in range(55):
        audit.record(owner, patient, Action.VIEWED, audit.memory_page(index))
    client.force_login(owner)
    first = client.get(reverse("book_audit", args=[patient.pk])).content.decode()
    assert "Page 1 of 2" in first and "?page=2" in first and first.count("<li>") == 50
    second = client.get(reverse("book_audit", args=[patient.pk]), {"page": 2}).content.decode()
    assert second.count("<li>") == 5 and "Newer" in second


def test_the_book_page_links_the_trail_for_owners_only(client, owner, therapist, patient):
    url = reverse("book_audit", args=[patient.pk])
    client.force_login(owner)
    assert url in client.get(reverse("patient_book", args=[patient.pk])).content.decode()
    client.force_login(therapist)
    assert url not in client.get(reverse("patient_book", args=[patient.pk])).content.decode()


@pytest.mark.parametrize("role", ["caregiver", "therapist"])
def test_caregivers_and_therapists_cannot_read_the_trail(client, patient, role):
    user = factories.UserFactory(username=f"a-{role}")
    factories.MembershipFactory(patient=patient, user=user, role=role)
    client.force_login(user)
    assert client.get(reverse("book_audit", args=[patient.pk])).status_code == 404
    assert api_for(user).get(f"/api/patients/{patient.pk}/audit/").status_code == 403


def test_another_family_gets_404_on_the_trail(client, stranger, patient):
    client.force_login(stranger)
    assert client.get(reverse("book_audit", args=[patient.pk])).status_code == 404
    assert api_for(stranger).get(f"/api/patients/{patient.pk}/audit/").status_code == 404


def test_the_api_gives_owners_the_trail(owner, therapist, patient):
    api_for(therapist).get(f"/api/patients/{patient.pk}/")
    response = api_for(owner).get(f"/api/patients/{patient.pk}/audit/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0] | {"id": 0, "at": ""} == {
        "id": 0, "at": "", "action": "viewed", "detail": "api", "user": "laura", "who": "laura (therapist)",
        "what": "read the book through the API"}


def test_the_schema_documents_the_trail(client, owner):
    client.force_login(owner)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    trail = schema["paths"]["/api/patients/{id}/audit/"]["get"]
    assert {"200", "403", "404"} <= set(trail["responses"])
    assert "PaginatedAuditEventList" in str(trail["responses"]["200"])


# --- the admin --------------------------------------------------------------------------------------------------


def test_the_admin_shows_the_trail_and_changes_nothing(client, owner, patient):
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    event = audit.record(owner, patient, Action.VIEWED, audit.BOOK_PAGE)
    client.force_login(admin_user)
    assert client.get(reverse("admin:lifebook_auditevent_changelist")).status_code == 200
    assert client.get(reverse("admin:lifebook_auditevent_changelist"), {"q": str(patient.pk)}).status_code == 200
    change = reverse("admin:lifebook_auditevent_change", args=[event.pk])
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change, {"username": "someone", "action": "erased"}).status_code == 403
    assert client.get(reverse("admin:lifebook_auditevent_add")).status_code == 403
    assert client.post(reverse("admin:lifebook_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    changelist = client.get(reverse("admin:lifebook_auditevent_changelist")).content.decode()
    assert "delete_selected" not in changelist
    event.refresh_from_db()
    assert (event.username, event.action) == ("marta", Action.VIEWED)
