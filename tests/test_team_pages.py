"""The care-team page: everyone on the team sees who is on it; owners invite by email (an emailed link that the
invitee accepts), change roles and remove people, and the book always keeps an owner.
Which account may accept an invitation: tests/test_invitation_binding.py."""

import re
import smtplib
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import CareTeamMember, Invitation, User
from tests import factories

pytestmark = pytest.mark.django_db


def team_url(patient):
    return reverse("care_team", args=[patient.pk])


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def link_in(email):
    return re.search(r"https?://\S+/accounts/invitations/\S+/", email.body).group(0)


@pytest.fixture
def caregiver(patient):
    user = factories.UserFactory(username="ana", first_name="Ana", last_name="Pérez")
    factories.MembershipFactory(patient=patient, user=user, role="caregiver")
    return user


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


# --- Seeing the team ----------------------------------------------------------------------------------------


def test_the_owner_sees_members_with_their_roles_and_the_controls(owner_client, patient, caregiver, therapist):
    page = owner_client.get(team_url(patient)).content.decode()
    assert "Juan’s care team" in page
    for text in ("Ana Pérez", "ana@example.com", "marta", "laura"):
        assert text in page
    membership = patient.care_team.get(user=caregiver)
    assert reverse("care_team_role", args=[patient.pk, membership.pk]) in page
    assert reverse("care_team_remove", args=[patient.pk, membership.pk]) in page
    assert "Remove from the team" in page and 'name="email"' in page
    # Every role select has its own label, so a screen reader says whose role it is.
    assert f'<label class="visually-hidden" for="role-{membership.pk}">Role of Ana Pérez</label>' in page


@pytest.mark.parametrize("who", ["therapist", "caregiver"])
def test_members_who_do_not_own_the_book_see_the_list_read_only(client, patient, caregiver, therapist, who):
    client.force_login(therapist if who == "therapist" else caregiver)
    page = client.get(team_url(patient)).content.decode()
    assert "Ana Pérez" in page and "Therapist" in page and "Owner caregiver" in page
    assert "Remove from the team" not in page and "<select" not in page and 'name="email"' not in page
    assert "Only the book’s owner changes who is on the team." in page


@pytest.mark.parametrize("who", ["therapist", "caregiver"])
def test_members_who_do_not_own_the_book_get_404_on_every_change(client, owner, patient, caregiver, therapist, who):
    client.force_login(therapist if who == "therapist" else caregiver)
    owner_membership = patient.care_team.get(user=owner)
    invitation = Invitation.objects.create(patient=patient, email="new@example.com", invited_by=owner)
    attempts = [
        (team_url(patient), {"email": "someone@example.com", "role": "caregiver"}),
        (reverse("care_team_role", args=[patient.pk, owner_membership.pk]), {"role": "therapist"}),
        (reverse("care_team_remove", args=[patient.pk, owner_membership.pk]), {}),
        (reverse("care_team_withdraw", args=[patient.pk, invitation.pk]), {}),
    ]
    for url, data in attempts:
        assert client.post(url, data).status_code == 404, url
    assert client.get(reverse("care_team_remove", args=[patient.pk, owner_membership.pk])).status_code == 404
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner" and Invitation.objects.filter(pk=invitation.pk).exists()
    assert Invitation.objects.count() == 1 and not mail.outbox


def test_another_family_gets_404_on_the_team_page_and_its_actions(client, stranger, patient, caregiver):
    client.force_login(stranger)
    membership = patient.care_team.get(user=caregiver)
    assert client.get(team_url(patient)).status_code == 404
    assert client.post(team_url(patient), {"email": "stranger@example.com", "role": "owner"}).status_code == 404
    assert client.post(reverse("care_team_remove", args=[patient.pk, membership.pk])).status_code == 404
    assert patient.care_team.count() == 2 and not patient.care_team.filter(user=stranger).exists()


def test_a_member_of_another_team_cannot_be_changed_through_this_patients_url(owner_client, patient, stranger):
    their_membership = CareTeamMember.objects.get(user=stranger)
    url = reverse("care_team_role", args=[patient.pk, their_membership.pk])
    assert owner_client.post(url, {"role": "therapist"}).status_code == 404
    their_membership.refresh_from_db()
    assert their_membership.role == "owner"


def test_the_book_page_links_to_the_care_team_for_every_member(client, patient, therapist):
    client.force_login(therapist)
    assert f'href="{team_url(patient)}"' in client.get(reverse("patient_book", args=[patient.pk])).content.decode()


# --- Inviting by email -------------------------------------------------------------------------------------


def test_inviting_an_address_that_has_an_account_sends_an_invitation_not_a_seat(owner_client, patient):
    """Nobody joins a team without saying yes."""
    pilar = factories.UserFactory(username="pilar", first_name="Pilar Gómez", email="pilar@example.com")
    response = owner_client.post(team_url(patient), {"email": "pilar@example.com", "role": "therapist"})
    assert response.status_code == 302
    assert not patient.care_team.filter(user=pilar).exists()
    [email] = mail.outbox
    assert email.to == ["pilar@example.com"]
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role) == ("pilar@example.com", "therapist")
    team_page = owner_client.get(team_url(patient)).content.decode()
    assert "pilar@example.com" in team_page and "Gómez" not in team_page and ">pilar<" not in team_page


def test_an_email_gets_the_same_answer_whether_or_not_it_has_an_account(owner_client, patient):
    factories.UserFactory(username="pilar", first_name="Pilar Gómez", email="pilar@example.com")
    known = owner_client.post(team_url(patient), {"email": "  PILAR@example.com ", "role": "caregiver"})
    unknown = owner_client.post(team_url(patient), {"email": "nobody@example.com", "role": "caregiver"})
    assert known.status_code == unknown.status_code == 302
    assert messages_of(known)[-1].replace("PILAR@example.com", "X") == messages_of(unknown)[-1].replace(
        "nobody@example.com", "X")
    assert mail.outbox[0].body.replace(Invitation.objects.get(email__iexact="pilar@example.com").token, "T") == \
        mail.outbox[1].body.replace(Invitation.objects.get(email="nobody@example.com").token, "T")
    assert len(mail.outbox) == 2 and patient.care_team.count() == 1


def test_the_page_invites_by_email_only(owner_client, patient):
    """A username names an account, and with it whether it exists; an invitation must be bound to an address the
    inviter knows. So the form takes an email address, and a username is just a badly typed address."""
    factories.UserFactory(username="pilar", email="pilar@example.com")
    page = owner_client.get(team_url(patient)).content.decode()
    assert "Their email address" in page and 'type="email"' in page and "username or email" not in page
    response = owner_client.post(team_url(patient), {"email": "pilar", "role": "caregiver"})
    page = response.content.decode()
    assert "That email address does not look right. Check it for typos." in page
    assert "No one has" not in page and "username" not in page.split("Invite someone")[1]
    assert not Invitation.objects.exists() and not mail.outbox


def test_inviting_someone_already_on_the_team_is_refused_in_plain_words(owner_client, patient, caregiver):
    response = owner_client.post(team_url(patient), {"email": "ana@example.com", "role": "therapist"})
    assert response.status_code == 200
    assert "ana@example.com is already on this care team." in response.content.decode()
    assert patient.care_team.get(user=caregiver).role == "caregiver"


@pytest.mark.parametrize("typed, reason", [
    ("", "Type their email address."),
    ("pilar@", "That email address does not look right. Check it for typos."),
    ("pilar@@example", "That email address does not look right. Check it for typos."),
    ("nobody-by-that-name", "That email address does not look right. Check it for typos."),
])
def test_bad_input_is_refused_with_a_reason_and_keeps_what_was_typed(owner_client, patient, typed, reason):
    response = owner_client.post(team_url(patient), {"email": typed, "role": "caregiver"})
    page = response.content.decode()
    assert response.status_code == 200 and reason in page
    assert f'value="{typed}"' in page
    assert patient.care_team.count() == 1 and not Invitation.objects.exists() and not mail.outbox


def test_an_unknown_role_is_refused(owner_client, patient):
    response = owner_client.post(team_url(patient), {"email": "pilar@example.com", "role": "boss"})
    assert "Choose one of the roles shown." in response.content.decode()
    assert patient.care_team.count() == 1 and not Invitation.objects.exists()


# --- Inviting someone new by email --------------------------------------------------------------------------


def test_a_new_email_gets_an_invitation_and_signing_up_through_its_link_joins_the_team(client, owner, patient):
    client.force_login(owner)
    response = client.post(team_url(patient), {"email": "Pilar@Example.com", "role": "therapist"})
    assert any("We sent an invitation to Pilar@Example.com" in m for m in messages_of(response))
    invitation = Invitation.objects.get()
    assert (invitation.patient, invitation.role, invitation.invited_by) == (patient, "therapist", owner)
    assert len(invitation.token) >= 40 and invitation.accepted_at is None
    [email] = mail.outbox
    assert email.to == ["Pilar@Example.com"] and "Juan’s life book" in email.subject
    link = link_in(email)
    assert link.endswith(reverse("invitation", args=[invitation.token]))

    # The newcomer opens the link without an account: who invited them to whose book, and the two ways in.
    client.logout()
    path = reverse("invitation", args=[invitation.token])
    page = client.get(path).content.decode()
    assert "You are invited to Juan’s life book" in page and "marta" in page and "Therapist" in page
    signup_link = f"{reverse('signup')}?next={path}"
    assert f'href="{signup_link}"' in page and f'href="{reverse("login")}?next={path}"' in page

    # Signing up comes back to the link, where one button puts them on the team and opens the book. The account
    # gets the invitation's address: the sign-up form through the link asks for none.
    signup_page = client.get(signup_link).content.decode()
    assert "join the care team you were invited to" in signup_page and 'name="email"' not in signup_page
    response = client.post(signup_link, {"username": "pilar", "first_name": "Pilar",
                                         "password1": "a-long-test-password", "password2": "a-long-test-password"},
                           follow=True)
    pilar = User.objects.get(username="pilar")
    assert pilar.email == "Pilar@Example.com" and len(mail.outbox) == 1  # no confirmation needed: the link was it
    assert response.redirect_chain[-1][0] == path
    assert "Join Juan’s care team" in response.content.decode()
    assert not patient.care_team.filter(user=pilar).exists()  # opening the link is not saying yes
    response = client.post(path, follow=True)
    assert response.redirect_chain[-1][0] == reverse("patient_book", args=[patient.pk])
    assert patient.care_team.get(user=pilar).role == "therapist"
    assert "Welcome to Juan’s care team. You joined as Therapist." in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.accepted_by == pilar and invitation.accepted_at is not None


def test_logging_in_through_the_link_joins_the_team(client, owner, patient):
    pilar = factories.UserFactory(username="pilar", email="PILAR@example.com")
    invitation = Invitation.objects.create(patient=patient, email="pilar@example.com", role="caregiver",
                                           invited_by=owner)
    path = reverse("invitation", args=[invitation.token])
    response = client.post(f"{reverse('login')}?next={path}",
                           {"username": "pilar", "password": "a-long-test-password", "next": path}, follow=True)
    assert response.redirect_chain[-1][0] == path and "Join Juan’s care team" in response.content.decode()
    client.post(path)
    assert patient.care_team.get(user=pilar).role == "caregiver"


def test_opening_the_link_while_logged_in_asks_before_joining(client, owner, patient):
    """A page elsewhere could send someone's browser to a link; only their own button press joins them."""
    pilar = factories.UserFactory(username="pilar", email="p@example.com")
    invitation = Invitation.objects.create(patient=patient, email="p@example.com", role="caregiver", invited_by=owner)
    client.force_login(pilar)
    path = reverse("invitation", args=[invitation.token])
    page = client.get(path).content.decode()
    assert "Join Juan’s care team" in page and 'method="post"' in page
    assert not patient.care_team.filter(user=pilar).exists()
    response = client.post(path)
    assert response["Location"] == reverse("patient_book", args=[patient.pk])
    assert patient.care_team.get(user=pilar).role == "caregiver"


def test_an_invitation_works_once(client, owner, patient):
    invitation = Invitation.objects.create(patient=patient, email="p@example.com", role="owner", invited_by=owner)
    path = reverse("invitation", args=[invitation.token])
    first = factories.UserFactory(username="first", email="p@example.com")
    second = factories.UserFactory(username="second")
    client.force_login(first)
    client.post(path, follow=True)  # followed, so the welcome message is shown and gone
    # The one who used it, opening the email again, simply lands on the book.
    assert client.get(path)["Location"] == reverse("patient_book", args=[patient.pk])
    client.force_login(second)
    for response in (client.get(path), client.post(path)):
        page = response.content.decode()
        assert response.status_code == 410 and "This invitation has already been used" in page
    assert "Juan" not in page and "marta" not in page  # a used link tells its holder nothing about the family
    assert not patient.care_team.filter(user=second).exists()


def test_an_invitation_expires_after_the_configured_days(client, owner, patient, settings):
    settings.LIFEBOOK_INVITATION_DAYS = 3
    invitation = Invitation.objects.create(patient=patient, email="p@example.com", invited_by=owner,
                                           created_at=timezone.now() - timedelta(days=3, minutes=1))
    pilar = factories.UserFactory(username="pilar")
    client.force_login(pilar)
    response = client.get(reverse("invitation", args=[invitation.token]))
    page = response.content.decode()
    assert response.status_code == 410 and "This invitation has expired" in page and "Juan" not in page
    assert not patient.care_team.filter(user=pilar).exists()


def test_the_default_lifetime_is_fourteen_days(owner, patient):
    fresh = Invitation.objects.create(patient=patient, email="p@example.com",
                                      created_at=timezone.now() - timedelta(days=13, hours=23))
    assert not fresh.is_expired
    fresh.created_at -= timedelta(hours=2)
    assert fresh.is_expired


@pytest.mark.parametrize("logged_in", [False, True])
def test_a_bad_link_is_a_friendly_404_page(client, owner, patient, logged_in):
    Invitation.objects.create(patient=patient, email="p@example.com", invited_by=owner)
    if logged_in:
        client.force_login(factories.UserFactory(username="pilar"))
    response = client.get(reverse("invitation", args=["not-a-real-link"]))
    page = response.content.decode()
    assert response.status_code == 404 and "This invitation link does not work" in page
    assert "Juan" not in page and "marta" not in page


def test_a_waiting_invitation_is_listed_and_can_be_withdrawn(owner_client, patient, owner):
    invitation = Invitation.objects.create(patient=patient, email="pilar@example.com", role="therapist",
                                           invited_by=owner)
    page = owner_client.get(team_url(patient)).content.decode()
    withdraw = reverse("care_team_withdraw", args=[patient.pk, invitation.pk])
    assert "pilar@example.com" in page and f'action="{withdraw}"' in page
    response = owner_client.post(withdraw)
    assert any("withdrawn" in m for m in messages_of(response)) and not Invitation.objects.exists()
    # The emailed link is dead from now on.
    assert owner_client.get(reverse("invitation", args=[invitation.token])).status_code == 404


def test_the_same_address_is_not_invited_twice_while_the_first_link_works(owner_client, patient):
    owner_client.post(team_url(patient), {"email": "pilar@example.com", "role": "caregiver"})
    response = owner_client.post(team_url(patient), {"email": "PILAR@example.com", "role": "therapist"})
    assert "pilar@example.com was already invited" in response.content.decode().lower()
    assert Invitation.objects.count() == 1 and len(mail.outbox) == 1


def test_an_expired_invitation_makes_way_for_a_new_one(owner_client, patient, owner):
    old = Invitation.objects.create(patient=patient, email="pilar@example.com", invited_by=owner,
                                    created_at=timezone.now() - timedelta(days=30))
    owner_client.post(team_url(patient), {"email": "pilar@example.com", "role": "caregiver"})
    [new] = Invitation.objects.all()
    assert new.pk != old.pk and not new.is_expired and len(mail.outbox) == 1


def test_when_the_email_cannot_be_sent_nothing_is_kept_and_the_owner_is_told(owner_client, patient, monkeypatch):
    def broken_mail(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("connection lost")

    monkeypatch.setattr("accounts.invitations.send_mail", broken_mail)
    response = owner_client.post(team_url(patient), {"email": "pilar@example.com", "role": "caregiver"})
    assert "The invitation email could not be sent just now" in response.content.decode()
    assert not Invitation.objects.exists()


def test_sign_up_ignores_a_next_address_on_another_site(client):
    response = client.post(f"{reverse('signup')}?next=https://evil.example/", {
        "username": "pilar", "first_name": "Pilar", "email": "pilar@example.com",
        "password1": "a-long-test-password", "password2": "a-long-test-password"})
    assert response["Location"] == reverse("dashboard")


# --- Changing roles and removing people ---------------------------------------------------------------------


def test_the_owner_changes_a_members_role(owner_client, patient, caregiver):
    membership = patient.care_team.get(user=caregiver)
    response = owner_client.post(reverse("care_team_role", args=[patient.pk, membership.pk]), {"role": "therapist"})
    membership.refresh_from_db()
    assert membership.role == "therapist"
    assert "Ana Pérez is now Therapist." in messages_of(response)


def test_the_last_owner_cannot_be_demoted_or_removed(owner_client, patient, owner):
    membership = patient.care_team.get(user=owner)
    refusal = "A book needs at least one owner: make someone else owner first."
    response = owner_client.post(reverse("care_team_role", args=[patient.pk, membership.pk]), {"role": "caregiver"},
                                 follow=True)
    assert refusal in response.content.decode()
    response = owner_client.post(reverse("care_team_remove", args=[patient.pk, membership.pk]), follow=True)
    assert refusal in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "owner"


def test_with_a_second_owner_the_first_may_step_down(owner_client, patient, owner, caregiver):
    patient.care_team.filter(user=caregiver).update(role="owner")
    membership = patient.care_team.get(user=owner)
    owner_client.post(reverse("care_team_role", args=[patient.pk, membership.pk]), {"role": "caregiver"})
    membership.refresh_from_db()
    assert membership.role == "caregiver"
    # No longer an owner, so the team's controls are gone for them.
    assert owner_client.post(team_url(patient), {"email": "x@example.com", "role": "caregiver"}).status_code == 404


def test_removing_asks_first_and_then_takes_them_off_the_team(client, owner, patient, caregiver):
    client.force_login(owner)
    membership = patient.care_team.get(user=caregiver)
    url = reverse("care_team_remove", args=[patient.pk, membership.pk])
    page = client.get(url).content.decode()
    assert "Remove Ana Pérez from the care team?" in page and 'method="post"' in page
    assert patient.care_team.filter(user=caregiver).exists()  # asking removes nothing

    response = client.post(url)
    assert response["Location"] == team_url(patient)
    assert not patient.care_team.filter(user=caregiver).exists()
    assert "Ana Pérez is no longer on the care team and cannot see the book any more." in messages_of(response)
    client.force_login(caregiver)
    assert client.get(reverse("patient_book", args=[patient.pk])).status_code == 404


def test_an_owner_who_leaves_goes_back_to_their_books(owner_client, patient, owner, caregiver):
    patient.care_team.filter(user=caregiver).update(role="owner")
    response = owner_client.post(reverse("care_team_remove", args=[patient.pk, patient.care_team.get(user=owner).pk]))
    assert response["Location"] == reverse("dashboard")
    assert not patient.care_team.filter(user=owner).exists()


def test_invitations_are_in_the_admin_and_searchable_by_email(client, owner, patient):
    Invitation.objects.create(patient=patient, email="pilar@example.com", invited_by=owner)
    client.force_login(factories.UserFactory(username="root", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:accounts_invitation_changelist"), {"q": "pilar"}).content.decode()
    assert "pilar@example.com" in page
