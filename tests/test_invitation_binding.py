"""An invitation is accepted only by the account it was sent to: the one whose email is the invitation's address.
Signing up through the link gives the new account that address (opening the link proves the mailbox is theirs).
A forwarded or leaked link does not make anyone else a member, and the refusal never shows the address."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Invitation, User
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"
REFUSAL = "This invitation is for another email address."


@pytest.fixture
def invitation(patient, owner):
    return Invitation.objects.create(patient=patient, email="erin@example.org", role="owner", invited_by=owner)


@pytest.fixture
def path(invitation):
    return reverse("invitation", args=[invitation.token])


def sign_up(client, url, username, **extra):
    return client.post(url, {"username": username, "first_name": username.title(), "password1": PASSWORD,
                             "password2": PASSWORD, **extra})


def test_an_account_with_another_address_cannot_accept_an_owner_invitation(client, patient, invitation, path):
    """The crawl's finding: mallory@example.org opened an invitation sent to erin@example.org and became owner."""
    mallory = factories.UserFactory(username="mallory", email="mallory@example.org")
    client.force_login(mallory)
    page = client.get(path).content.decode()
    assert REFUSAL in page and "Join Juan’s care team" not in page
    response = client.post(path)
    assert response.status_code == 403 and REFUSAL in response.content.decode()
    assert not patient.care_team.filter(user=mallory).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None  # still there for Erin


def test_signing_up_with_another_address_and_then_opening_the_link_is_refused(client, patient, path):
    """The same, the way the crawl did it: a fresh sign-up (its address not confirmed) then the link."""
    response = sign_up(client, reverse("signup"), "mallory", email="mallory@example.org")
    assert response.status_code == 302
    assert client.post(path).status_code == 403
    assert not patient.care_team.filter(user__username="mallory").exists()


def test_an_account_with_no_confirmed_address_cannot_accept(client, patient, path):
    nobody = factories.UserFactory(username="nobody", email="")
    client.force_login(nobody)
    assert client.post(path).status_code == 403
    assert not patient.care_team.filter(user=nobody).exists()


def test_the_refusal_never_shows_the_invitations_address(client, path):
    client.force_login(factories.UserFactory(username="mallory", email="mallory@example.org"))
    for response in (client.get(path), client.post(path)):
        page = response.content.decode()
        assert REFUSAL in page and "erin" not in page.lower()


def test_the_account_with_the_address_accepts_whatever_its_case(client, patient, path):
    erin = factories.UserFactory(username="erin", email="Erin@Example.org")
    client.force_login(erin)
    page = client.get(path).content.decode()
    assert "Join Juan’s care team" in page and REFUSAL not in page
    assert client.post(path)["Location"] == reverse("patient_book", args=[patient.pk])
    assert patient.care_team.get(user=erin).role == "owner"


def test_signing_up_through_the_link_gives_the_account_the_invitations_address(client, patient, invitation, path):
    signup = f"{reverse('signup')}?next={path}"
    page = client.get(signup).content.decode()
    assert 'name="email"' not in page and "gets the email address this invitation was sent to" in page
    assert "erin@example.org" not in page
    # An address slipped into the form changes nothing: the link decides.
    response = sign_up(client, signup, "erin", email="mallory@example.org", next=path)
    assert response["Location"] == path
    erin = User.objects.get(username="erin")
    assert erin.email == "erin@example.org" and not mail.outbox  # the link was the proof: no confirmation email
    client.post(path)
    assert patient.care_team.get(user=erin).role == "owner"


def test_signing_up_through_the_link_when_its_address_has_an_account_says_to_log_in(client, path):
    factories.UserFactory(username="erin", email="erin@example.org")
    response = sign_up(client, f"{reverse('signup')}?next={path}", "erin2", next=path)
    page = response.content.decode()
    assert response.status_code == 200 and "already belongs to a Lifebook account. Log in with that account" in page
    assert not User.objects.filter(username="erin2").exists()


def test_a_dead_link_behind_sign_up_gives_the_ordinary_form(client, owner, patient, invitation, path):
    invitation.delete()
    page = client.get(f"{reverse('signup')}?next={path}").content.decode()
    assert 'name="email"' in page


def test_logging_out_from_the_refusal_comes_back_to_the_link(client, path):
    client.force_login(factories.UserFactory(username="mallory", email="mallory@example.org"))
    page = client.get(path).content.decode()
    assert f'action="{reverse("logout")}"' in page and f'name="next" value="{path}"' in page
    response = client.post(reverse("logout"), {"next": path})
    assert response["Location"] == path
    assert "Create an account" in client.get(path).content.decode()


def test_adding_the_address_to_an_account_then_lets_it_accept(client, patient, path):
    """An existing account invited at another of its owner's addresses: confirm that address first."""
    luis = factories.UserFactory(username="luis", email="luis@work.example")
    client.force_login(luis)
    assert "your account page" in client.get(path).content.decode()
    client.post(reverse("account"), {"email": "erin@example.org"})
    [confirmation] = mail.outbox
    link = confirmation.body.split("http://testserver")[1].split()[0]
    client.post(link)
    luis.refresh_from_db()
    assert luis.email == "erin@example.org"
    client.post(path)
    assert patient.care_team.get(user=luis).role == "owner"


def test_a_member_whose_address_it_is_keeps_their_role_and_the_invitation_is_used(client, patient, owner):
    ana = factories.UserFactory(username="ana", email="ana@example.org")
    factories.MembershipFactory(patient=patient, user=ana, role="therapist")
    invitation = Invitation.objects.create(patient=patient, email="ana@example.org", role="owner", invited_by=owner)
    client.force_login(ana)
    response = client.post(reverse("invitation", args=[invitation.token]), follow=True)
    assert "You are already on Juan’s care team, as Therapist." in response.content.decode()
    assert patient.care_team.get(user=ana).role == "therapist"
    invitation.refresh_from_db()
    assert invitation.accepted_by == ana


def test_the_owner_trying_the_link_is_refused_and_it_stays_open(client, owner, patient, invitation, path):
    client.force_login(owner)
    assert client.post(path).status_code == 403
    invitation.refresh_from_db()
    assert invitation.accepted_at is None and patient.care_team.get(user=owner).role == "owner"
