"""Erasing a book from the web, the API and the admin: owners (and staff) only, after saying what will go."""

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from lifebook.models import AuditEvent, Patient
from tests import factories
from tests.test_erase import files_under, make_full_book

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def training_root(settings, tmp_path):
    settings.LIFEBOOK_TRAINING_DIR = tmp_path / "training"
    return settings.LIFEBOOK_TRAINING_DIR


@pytest.fixture
def book(patient, owner):
    return make_full_book(patient, owner)


def member(patient, role):
    user = factories.UserFactory(username=f"a-{role}")
    factories.MembershipFactory(patient=patient, user=user, role=role)
    return user


def test_the_erase_page_names_what_will_go_and_who_loses_access(client, owner, book):
    client.force_login(owner)
    html = client.get(reverse("book_erase", args=[book.patient.pk])).content.decode()
    for words in ("Erase Juan Pacheco’s book for good?", "2 chapters", "2 memories", "and their 2 pictures",
                  "2 people, places and pets", "and their 4 photos", "1 trained likeness",
                  "2 pictures or trainings still working or waiting", "The care team of 3 people",
                  "carmen (caregiver)", "laura (therapist)", "1 waiting invitation", "Type Juan Pacheco to confirm",
                  "Erase Juan’s book for good"):
        assert words in html, words
    assert "<script" not in html.split("<main", 1)[1] and "style=" not in html  # nothing a CSP would block


def test_the_owner_erases_the_book_by_typing_its_name(client, owner, book, django_capture_on_commit_callbacks):
    client.force_login(owner)
    url = reverse("book_erase", args=[book.patient.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"confirm_name": "  juan   PACHECO "}, follow=True)
    assert response.redirect_chain == [(reverse("dashboard"), 302)]
    assert "Juan Pacheco’s book was erased" in response.content.decode()
    assert not Patient.objects.filter(pk=book.patient.pk).exists()
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ERASED, patient_number=book.patient.pk).count() == 1


@pytest.mark.parametrize("typed, message", [("", "Type the name shown above"), ("Juan", "That is not the name")])
def test_a_wrong_or_missing_name_erases_nothing(client, owner, book, typed, message):
    client.force_login(owner)
    response = client.post(reverse("book_erase", args=[book.patient.pk]), {"confirm_name": typed})
    assert response.status_code == 200 and message in response.content.decode()
    assert Patient.objects.filter(pk=book.patient.pk).exists() and len(files_under(Path(settings.MEDIA_ROOT))) == 12


@pytest.mark.parametrize("role", ["caregiver", "therapist"])
def test_caregivers_and_therapists_cannot_erase_on_the_web(client, book, role):
    client.force_login(member(book.patient, role))
    url = reverse("book_erase", args=[book.patient.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"confirm_name": "Juan Pacheco"}).status_code == 404
    assert Patient.objects.filter(pk=book.patient.pk).exists()


def test_the_care_team_page_offers_erasing_to_owners_only(client, owner, book):
    url = reverse("care_team", args=[book.patient.pk])
    erase = reverse("book_erase", args=[book.patient.pk])
    client.force_login(owner)
    assert erase in client.get(url).content.decode()
    client.force_login(member(book.patient, "caregiver"))
    assert erase not in client.get(url).content.decode()


def test_staff_may_erase_any_book(client, book, django_capture_on_commit_callbacks):
    client.force_login(factories.UserFactory(username="admin", is_staff=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("book_erase", args=[book.patient.pk]), {"confirm_name": "Juan Pacheco"})
    assert response.status_code == 302 and not Patient.objects.filter(pk=book.patient.pk).exists()


# --- the API --------------------------------------------------------------------------------------------------


def api_for(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_api_erases_a_book_for_its_owner(owner, book, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(owner).delete(f"/api/patients/{book.patient.pk}/")
    assert response.status_code == 204
    assert not Patient.objects.filter(pk=book.patient.pk).exists()
    assert files_under(Path(settings.MEDIA_ROOT)) == [] and files_under(settings.LIFEBOOK_TRAINING_DIR) == []
    assert api_for(owner).delete(f"/api/patients/{book.patient.pk}/").status_code == 404


@pytest.mark.parametrize("role", ["caregiver", "therapist"])
def test_the_api_refuses_caregivers_and_therapists_with_403(book, role):
    response = api_for(member(book.patient, role)).delete(f"/api/patients/{book.patient.pk}/")
    assert response.status_code == 403 and "owner" in response.json()["detail"]
    assert Patient.objects.filter(pk=book.patient.pk).exists()


def test_the_api_answers_404_to_another_family(stranger, book):
    assert api_for(stranger).delete(f"/api/patients/{book.patient.pk}/").status_code == 404
    assert Patient.objects.filter(pk=book.patient.pk).exists()


def test_the_schema_documents_erasing(client, owner):
    client.force_login(owner)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    destroy = schema["paths"]["/api/patients/{id}/"]["delete"]
    assert "Erase" in destroy["description"] and {"204", "403", "404"} <= set(destroy["responses"])


# --- the admin ------------------------------------------------------------------------------------------------


@pytest.fixture
def superuser(db):
    return factories.UserFactory(username="root", is_staff=True, is_superuser=True)


def test_deleting_a_patient_in_the_admin_erases_its_files_too(client, superuser, book,
                                                              django_capture_on_commit_callbacks):
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:lifebook_patient_delete", args=[book.patient.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Patient.objects.filter(pk=book.patient.pk).exists()
    assert files_under(Path(settings.MEDIA_ROOT)) == [] and files_under(settings.LIFEBOOK_TRAINING_DIR) == []
    assert AuditEvent.objects.get(action=AuditEvent.Action.ERASED).username == "root"


def test_the_admins_delete_action_erases_every_chosen_book(client, superuser, book, django_capture_on_commit_callbacks):
    other = factories.PatientFactory(name="Rosa")
    make_full_book(other, superuser)
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:lifebook_patient_changelist"),
                    {"action": "delete_selected", "_selected_action": [book.patient.pk, other.pk], "post": "yes"})
    assert not Patient.objects.exists() and files_under(Path(settings.MEDIA_ROOT)) == []
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ERASED).count() == 2
