"""Care teams in the API: an owner invites by email as the web page does (202 with the waiting invitation, the
same answer whether or not the address has an account), nobody is added directly, and owners list and withdraw
waiting invitations."""

import smtplib

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Invitation
from tests import factories

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def invite(client, patient, email, role="caregiver", **extra):
    return client.post("/api/care-team/", {"patient": patient.pk, "email": email, "role": role, **extra},
                       format="json")


def test_inviting_an_existing_account_sends_an_invitation_and_adds_no_one(owner, patient):
    """The crawl's finding: POST /api/care-team/ put an existing account on the team at once, without consent."""
    pablo = factories.UserFactory(username="pablo", email="pablo@example.org")
    response = invite(client_for(owner), patient, "pablo@example.org", role="owner")
    assert response.status_code == 202, response.content
    assert not patient.care_team.filter(user=pablo).exists()
    body = response.json()
    invitation = Invitation.objects.get()
    assert body == {"id": invitation.pk, "patient": patient.pk, "email": "pablo@example.org", "role": "owner",
                    "invited_by": "marta", "created_at": body["created_at"], "expires_at": body["expires_at"],
                    "expired": False}
    assert response["Location"].endswith(f"/api/care-team-invitations/{invitation.pk}/")
    assert invitation.token not in response.content.decode()  # the link's key goes only by email
    [email] = mail.outbox
    assert email.to == ["pablo@example.org"] and invitation.token in email.body


def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(owner, patient):
    factories.UserFactory(username="pablo", email="pablo@example.org")
    client = client_for(owner)
    known, unknown = invite(client, patient, "PABLO@example.org"), invite(client, patient, "nobody@example.org")
    assert known.status_code == unknown.status_code == 202

    def shape(response, email):
        body = response.json()
        return {key: value for key, value in body.items() if key not in ("id", "created_at", "expires_at")} | {
            "email": body["email"].replace(email, "X")}

    assert shape(known, "PABLO@example.org") == shape(unknown, "nobody@example.org")


def test_inviting_by_username_is_refused_with_a_reason_that_names_the_field(owner, patient):
    factories.UserFactory(username="pablo", email="pablo@example.org")
    response = client_for(owner).post("/api/care-team/", {"patient": patient.pk, "user_identifier": "pablo",
                                                          "role": "caregiver"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "invited by email address" in body["user_identifier"][0] and "email" in body
    assert patient.care_team.count() == 1 and not Invitation.objects.exists() and not mail.outbox


@pytest.mark.parametrize("email", ["pablo", "pablo@", ""])
def test_a_bad_address_is_a_400(owner, patient, email):
    response = invite(client_for(owner), patient, email)
    assert response.status_code == 400 and "email" in response.json()
    assert not Invitation.objects.exists()


def test_someone_on_the_team_or_already_invited_is_refused_in_plain_words(owner, patient, therapist):
    client = client_for(owner)
    on_team = invite(client, patient, therapist.email)
    assert on_team.status_code == 400 and on_team.json() == {"email": [f"{therapist.email} is already on this care "
                                                                        "team."]}
    assert invite(client, patient, "new@example.org").status_code == 202
    again = invite(client, patient, "NEW@example.org")
    assert again.status_code == 400 and "already invited" in again.json()["email"][0]


def test_only_owners_invite(patient, therapist):
    caregiver = factories.MembershipFactory(patient=patient, role="caregiver").user
    for user in (caregiver, therapist):
        assert invite(client_for(user), patient, "new@example.org").status_code == 403
    assert not Invitation.objects.exists()


def test_another_family_cannot_invite_to_a_book_it_cannot_see(patient, stranger):
    response = invite(client_for(stranger), patient, "new@example.org")
    assert response.status_code == 400 and "does not exist" in response.json()["patient"][0]
    assert not Invitation.objects.exists()


def test_when_the_email_cannot_be_sent_the_answer_is_503_and_nothing_is_kept(owner, patient, monkeypatch):
    def broken_mail(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("connection lost")

    monkeypatch.setattr("accounts.invitations.send_mail", broken_mail)
    response = invite(client_for(owner), patient, "new@example.org")
    assert response.status_code == 503 and "could not be sent" in response.json()["detail"]
    assert not Invitation.objects.exists()


# --- Waiting invitations --------------------------------------------------------------------------------------


@pytest.fixture
def waiting(patient, owner):
    return Invitation.objects.create(patient=patient, email="new@example.org", role="therapist", invited_by=owner)


def test_owners_list_and_read_waiting_invitations(owner, patient, waiting):
    Invitation.objects.create(patient=patient, email="used@example.org", accepted_at=waiting.created_at)
    client = client_for(owner)
    listed = client.get("/api/care-team-invitations/").json()
    assert [row["email"] for row in listed["results"]] == ["new@example.org"]
    assert client.get("/api/care-team-invitations/", {"patient": patient.pk}).json()["count"] == 1
    detail = client.get(f"/api/care-team-invitations/{waiting.pk}/")
    assert detail.status_code == 200 and detail.json()["role"] == "therapist"
    assert "token" not in detail.json() and waiting.token not in detail.content.decode()


def test_withdrawing_an_invitation_kills_its_link(owner, patient, waiting, client):
    assert client_for(owner).delete(f"/api/care-team-invitations/{waiting.pk}/").status_code == 204
    assert not Invitation.objects.exists()
    assert client.get(reverse("invitation", args=[waiting.token])).status_code == 404


def test_members_who_do_not_own_the_book_and_other_families_see_no_invitations(patient, therapist, stranger,
                                                                               waiting):
    caregiver = factories.MembershipFactory(patient=patient, role="caregiver").user
    for user in (caregiver, therapist, stranger):
        client = client_for(user)
        assert client.get("/api/care-team-invitations/").json()["count"] == 0
        assert client.get(f"/api/care-team-invitations/{waiting.pk}/").status_code == 404
        assert client.delete(f"/api/care-team-invitations/{waiting.pk}/").status_code == 404
    assert Invitation.objects.filter(pk=waiting.pk).exists()


def test_no_one_logged_in_gets_nothing(waiting):
    assert client_for(None).get("/api/care-team-invitations/").status_code in (401, 403)
    assert client_for(None).post("/api/care-team/", {}, format="json").status_code in (401, 403)


def test_the_schema_documents_inviting_and_the_invitations(owner, client):
    client.force_login(owner)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    create = schema["paths"]["/api/care-team/"]["post"]
    assert "202" in create["responses"] and "201" not in create["responses"]
    request = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][request]["properties"]) == {"patient", "email", "role"}
    invitations = schema["paths"]["/api/care-team-invitations/{id}/"]
    assert set(invitations) >= {"get", "delete"} and "patch" not in invitations
