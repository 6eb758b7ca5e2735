"""Deleting one's own account, from the account page and from the API: it asks for the password, says what
happens, takes the account off every care team and leaves the books and everything added to them; it is refused,
naming the books, while the account is the only owner of a book."""

import threading
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection, connections
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import deletion
from accounts.models import CareTeamMember, Invitation, User
from lifebook.models import ReferencePhoto
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"


@pytest.fixture
def ana(patient):
    """A caregiver on Juan's team who added a photo, and also a therapist on another book."""
    ana = factories.UserFactory(username="ana", first_name="Ana")
    factories.MembershipFactory(patient=patient, user=ana, role="caregiver")
    factories.MembershipFactory(patient=factories.PatientFactory(name="Rosa Díaz", preferred_name="Rosa"), user=ana,
                                role="therapist")
    return ana


def delete_url():
    return reverse("account_delete")


def test_the_account_page_shows_the_account_and_links_to_deleting_it(client, ana):
    client.force_login(ana)
    page = client.get(reverse("account")).content.decode()
    assert "ana@example.com" in page and "Juan’s care team" in page and "Rosa’s care team" in page
    assert f'href="{delete_url()}"' in page and f'href="{reverse("password_change")}"' in page
    assert f'href="{reverse("account")}"' in client.get(reverse("dashboard")).content.decode()


def test_the_page_says_what_happens_and_asks_for_the_password(client, ana):
    client.force_login(ana)
    page = client.get(delete_url()).content.decode()
    assert "Juan’s book (Caregiver)" in page and "Rosa’s book (Therapist)" in page
    assert "cannot be undone" in page and "the memories, photos and pictures you added stay in them" in page
    assert 'type="password"' in page and "Yes, delete my account" in page
    assert User.objects.filter(pk=ana.pk).exists()  # asking deletes nothing


def test_a_wrong_password_deletes_nothing(client, ana):
    client.force_login(ana)
    response = client.post(delete_url(), {"password": "not-my-password"})
    assert response.status_code == 200 and "That is not your password. Try again." in response.content.decode()
    assert User.objects.filter(pk=ana.pk).exists() and CareTeamMember.objects.filter(user=ana).count() == 2


def test_deleting_takes_them_off_every_team_and_leaves_what_they_added(client, owner, patient, ana):
    subject = factories.SubjectFactory(patient=patient)
    photo = add_reference_photo(subject, image_upload(), user=ana)
    sent = Invitation.objects.create(patient=patient, email="new@example.com", invited_by=ana)
    Token.objects.create(user=ana)
    client.force_login(ana)
    response = client.post(delete_url(), {"password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    assert "Your account is deleted." in response.content.decode()
    assert SESSION_KEY not in client.session
    assert not User.objects.filter(username="ana").exists()
    assert not CareTeamMember.objects.filter(user_id=ana.pk).exists() and not Token.objects.exists()
    photo = ReferencePhoto.objects.get(pk=photo.pk)  # still in Juan's book, no longer marked as hers
    assert photo.uploaded_by is None and photo.image.storage.exists(photo.image.name)
    sent.refresh_from_db()
    assert sent.invited_by is None
    assert patient.care_team.get().user == owner


def test_the_only_owner_of_a_book_is_refused_with_its_name(client, owner, patient):
    factories.MembershipFactory(patient=factories.PatientFactory(name="Rosa Díaz", preferred_name="Rosa"),
                                user=owner, role="caregiver")
    client.force_login(owner)
    page = client.get(delete_url()).content.decode()
    assert "you are the only owner of this book" in page and "Juan’s book" in page
    assert f'href="{reverse("care_team", args=[patient.pk])}"' in page and "erase the book" in page
    assert "Yes, delete my account" not in page
    response = client.post(delete_url(), {"password": PASSWORD})
    assert "you are the only owner of this book" in response.content.decode()
    assert User.objects.filter(pk=owner.pk).exists() and patient.care_team.filter(role="owner").count() == 1


def test_with_another_owner_the_owner_may_go(client, owner, patient, ana):
    patient.care_team.filter(user=ana).update(role="owner")
    client.force_login(owner)
    client.post(delete_url(), {"password": PASSWORD})
    assert not User.objects.filter(pk=owner.pk).exists()
    assert patient.care_team.get().user == ana


def test_becoming_the_only_owner_after_the_page_was_shown_still_refuses(client, owner, patient, ana):
    patient.care_team.filter(user=ana).update(role="owner")
    client.force_login(owner)
    assert "Yes, delete my account" in client.get(delete_url()).content.decode()
    patient.care_team.filter(user=ana).delete()  # meanwhile, the other owner left
    response = client.post(delete_url(), {"password": PASSWORD})
    assert "you are the only owner of this book" in response.content.decode()
    assert User.objects.filter(pk=owner.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_two_owners_deleting_their_accounts_at_once_leave_the_book_one(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's in-memory test database is not shared between threads; PostgreSQL runs this in CI")
    patient = factories.PatientFactory()
    owners = [factories.MembershipFactory(patient=patient, role="owner").user for _ in range(2)]
    counted = deletion.books_only_they_own

    def slow_count(user):
        books = list(counted(user))
        time.sleep(0.3)  # widens the gap between counting the owners and deleting (not a timing assertion)
        return books

    monkeypatch.setattr(deletion, "books_only_they_own", slow_count)
    start, outcomes = threading.Barrier(2), []

    def leave(user):
        start.wait()
        try:
            deletion.delete_account(user)
            outcomes.append("deleted")
        except deletion.AccountDeletionRefused:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=leave, args=(user,)) for user in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["deleted", "refused"]
    assert patient.care_team.filter(role="owner").count() == 1


def test_visitors_are_sent_to_log_in(client):
    for url in (reverse("account"), delete_url()):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- The API ----------------------------------------------------------------------------------------------------


def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_the_api_shows_your_account_and_teams(ana, patient):
    body = api(ana).get("/api/me/").json()
    assert body["username"] == "ana" and body["email"] == "ana@example.com"
    assert sorted((team["patient_name"], team["role"]) for team in body["care_teams"]) == [
        ("Juan", "caregiver"), ("Rosa", "therapist")]


def test_the_api_deletes_your_account_with_your_password(ana):
    client = api(ana)
    wrong = client.post("/api/me/delete/", {"password": "nope"}, format="json")
    assert wrong.status_code == 400 and "password" in wrong.json()
    assert client.post("/api/me/delete/", {}, format="json").status_code == 400
    assert client.post("/api/me/delete/", {"password": PASSWORD}, format="json").status_code == 204
    assert not User.objects.filter(username="ana").exists()
    assert client.get("/api/me/").status_code in (401, 403)  # the token went with it


def test_the_api_refuses_the_only_owner_with_409_and_the_books(owner, patient):
    response = api(owner).post("/api/me/delete/", {"password": PASSWORD}, format="json")
    assert response.status_code == 409
    assert response.json()["books"] == [patient.pk] and "Juan" in response.json()["detail"]
    assert User.objects.filter(pk=owner.pk).exists()


def test_the_schema_documents_the_account_endpoints(owner, client):
    client.force_login(owner)
    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert "get" in paths["/api/me/"] and set(paths["/api/me/delete/"]["post"]["responses"]) >= {"204", "400",
                                                                                                 "409"}
