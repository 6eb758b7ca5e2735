"""Who may download a copy of a book (its owners and staff: caregivers and therapists are refused, another
family gets 404), and who may bring one in (anyone signed in)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from lifebook.book_export import export_book
from lifebook.models import AuditEvent
from tests import factories
from tests.book_copies import body_of, unzip, zip_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def caregiver(patient):
    user = factories.UserFactory(username="pedro")
    factories.MembershipFactory(patient=patient, user=user, role="caregiver")
    return user


@pytest.fixture
def staff(db):
    return factories.UserFactory(username="admin", is_staff=True)


def api_as(user):
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def exports(patient):
    return AuditEvent.objects.filter(patient=patient, action=AuditEvent.Action.EXPORTED).count()


def test_the_owner_and_staff_download_a_copy_from_the_web(client, patient, owner, staff):
    for user in (owner, staff):
        client.force_login(user)
        response = client.get(reverse("book_export", args=[patient.pk]))
        assert response.status_code == 200 and "book.json" in unzip(body_of(response))
    assert list(AuditEvent.objects.filter(action="exported").values_list("username", "detail")) == [
        ("admin", "web"), ("marta", "web")]


@pytest.mark.parametrize("role", ["caregiver", "therapist"])
def test_caregivers_and_therapists_are_refused_a_copy_on_the_web(client, patient, caregiver, therapist, role):
    client.force_login(caregiver if role == "caregiver" else therapist)
    response = client.get(reverse("book_export", args=[patient.pk]))
    assert response.status_code == 403
    assert "Only the book’s owners can download a copy" in response.content.decode()
    assert exports(patient) == 0


def test_another_family_gets_404_and_a_visitor_is_sent_to_log_in(client, patient, stranger):
    url = reverse("book_export", args=[patient.pk])
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(stranger)
    assert client.get(url).status_code == 404
    assert exports(patient) == 0


def test_the_api_gives_the_owner_a_zip_and_refuses_everyone_else(patient, owner, caregiver, therapist, stranger,
                                                                staff):
    url = f"/api/patients/{patient.pk}/export/"
    for user, status in ((caregiver, 403), (therapist, 403), (stranger, 404), (None, 403)):
        response = api_as(user).get(url)
        assert response.status_code == status, (user, response.content)
        assert response["Content-Type"] == "application/json"
    assert exports(patient) == 0
    for user in (owner, staff):
        response = api_as(user).get(url, HTTP_ACCEPT="application/zip")
        assert response.status_code == 200 and response["Content-Type"] == "application/zip"
        assert "book.json" in unzip(body_of(response))
    # Asking for a ZIP and being refused still gets the refusal as JSON.
    response = api_as(caregiver).get(url, HTTP_ACCEPT="application/zip")
    assert response.status_code == 403 and response["Content-Type"] == "application/json"
    assert "owners" in response.json()["detail"]
    assert exports(patient) == 2


def test_only_owners_see_the_download_button(client, patient, owner, caregiver, therapist):
    url = reverse("patient_book", args=[patient.pk])
    export_url = reverse("book_export", args=[patient.pk])
    for user, shown in ((owner, True), (caregiver, False), (therapist, False)):
        client.force_login(user)
        assert (export_url in client.get(url).content.decode()) is shown, user


def test_anyone_signed_in_may_bring_a_copy_in_from_the_dashboard(client, patient, therapist):
    with export_book(patient) as archive:
        copy = archive.read()
    client.force_login(therapist)  # a therapist with no book of their own becomes the owner of the new one
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert reverse("book_import") in dashboard and "Bring in a book from a downloaded copy" in dashboard
    assert client.get(reverse("book_import")).status_code == 200
    response = client.post(reverse("book_import"), {"file": zip_upload(copy)}, follow=True)
    new_book = response.context["patient"]
    assert new_book.pk != patient.pk and new_book.care_team.get().user == therapist
    assert "Juan’s book is here, and you are its owner." in response.content.decode()


def test_a_visitor_cannot_bring_a_copy_in(client):
    response = client.get(reverse("book_import"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert api_as(None).post("/api/patients/import/", {}, format="multipart").status_code in (401, 403)
