"""No page tells whether an account uses an email address or a username (issue #12, defect 4).

Sign-up and the account page answer the same for a new address and a known one: the address becomes the
account's only through a link emailed to it, and a known address's owner gets a note instead. Login has one
message for every failure; password reset always says "if an account uses that email". The one unavoidable
exception: a username that is taken, at sign-up."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import User
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"|"X-CSRFToken": "[^"]+"')


def sign_up(client, username, email):
    return client.post(reverse("signup"), {"username": username, "first_name": username.title(), "email": email,
                                           "password1": PASSWORD, "password2": PASSWORD}, follow=True)


def page_text(response, *replace):
    text = CSRF.sub("", response.content.decode())
    for old in replace:
        text = text.replace(old, "X")
    return text


def link_in(message):
    return re.search(r"http://testserver(/accounts/address/\S+/)", message.body).group(1)


@pytest.fixture
def pilar(db):
    return factories.UserFactory(username="pilar", email="pilar@example.org")


# --- Sign-up ----------------------------------------------------------------------------------------------------


def test_sign_up_with_an_address_in_use_answers_as_with_a_new_one(client, pilar):
    known = sign_up(client, "mallory", "PILAR@example.org")
    client.logout()
    new = sign_up(client, "rosa", "rosa@example.org")
    assert known.status_code == new.status_code == 200
    assert known.redirect_chain == new.redirect_chain == [(reverse("dashboard"), 302)]
    assert page_text(known, "PILAR@example.org", "mallory", "Mallory") == page_text(new, "rosa@example.org", "rosa",
                                                                                      "Rosa")
    # Both accounts exist, and neither has an address yet: it comes with the link.
    assert User.objects.get(username="mallory").email == "" and User.objects.get(username="rosa").email == ""
    pilar.refresh_from_db()
    assert pilar.email == "pilar@example.org"


def test_each_address_gets_one_email_and_only_a_new_one_gets_a_confirmation_link(client, pilar):
    sign_up(client, "mallory", "pilar@example.org")
    client.logout()
    sign_up(client, "rosa", "rosa@example.org")
    note, confirmation = mail.outbox
    assert note.to == ["pilar@example.org"] and confirmation.to == ["rosa@example.org"]
    # The address's owner is told it is already theirs (by their own username), with no link that adds it.
    assert "already belongs to your Lifebook account pilar" in note.body and "/accounts/address/" not in note.body
    assert "mallory" not in note.body
    assert "/accounts/address/" in confirmation.body and "rosa" in confirmation.body


def test_the_old_refusal_is_gone(client, owner):
    response = sign_up(client, "other", owner.email.upper())
    assert b"already exists" not in response.content and b"already in use" not in response.content
    assert User.objects.filter(username="other").exists()


def test_a_taken_username_is_refused_and_that_is_all_sign_up_says(client, pilar):
    response = client.post(reverse("signup"), {"username": "PILAR", "first_name": "P", "email": "p2@example.org",
                                               "password1": PASSWORD, "password2": PASSWORD})
    page = response.content.decode()
    assert response.status_code == 200 and "That username is taken. Choose another one." in page
    assert User.objects.count() == 1 and not mail.outbox


def test_the_confirmation_link_asks_first_and_then_sets_the_address(client):
    sign_up(client, "rosa", "rosa@example.org")
    link = link_in(mail.outbox[0])
    client.logout()
    page = client.get(link).content.decode()  # a mail scanner opening the link changes nothing
    assert "Make rosa@example.org the email address of the Lifebook account <strong>rosa</strong>?" in page
    assert User.objects.get(username="rosa").email == ""
    response = client.post(link)
    assert response["Location"] == reverse("login")
    assert User.objects.get(username="rosa").email == "rosa@example.org"
    assert "Your email address is confirmed" in client.get(link).content.decode()


def test_a_link_for_an_address_another_account_took_meanwhile_is_refused(client):
    sign_up(client, "rosa", "rosa@example.org")
    link = link_in(mail.outbox[0])
    factories.UserFactory(username="rosa2", email="ROSA@example.org")
    response = client.post(link)
    assert response.status_code == 409 and "already the address of another Lifebook account" in \
        response.content.decode()
    assert User.objects.get(username="rosa").email == ""


def test_an_altered_or_expired_link_does_not_work(client, settings):
    sign_up(client, "rosa", "rosa@example.org")
    link = link_in(mail.outbox[0])
    assert client.post(link.replace("/address/", "/address/x")).status_code == 404
    settings.PASSWORD_RESET_TIMEOUT = -1  # every link is older than that
    response = client.post(link)
    assert response.status_code == 410 and "This link has expired" in response.content.decode()
    assert User.objects.get(username="rosa").email == ""


# --- The account page's address form ----------------------------------------------------------------------------


def test_changing_the_address_answers_the_same_for_a_new_and_a_known_address(client, pilar):
    rosa = factories.UserFactory(username="rosa", email="rosa@example.org")
    client.force_login(rosa)
    known = client.post(reverse("account"), {"email": "pilar@example.org"}, follow=True)
    new = client.post(reverse("account"), {"email": "rosa@home.example"}, follow=True)
    assert page_text(known, "pilar@example.org") == page_text(new, "rosa@home.example")
    rosa.refresh_from_db()
    assert rosa.email == "rosa@example.org"  # unchanged until the new address's link is used
    client.post(link_in(mail.outbox[1]))
    rosa.refresh_from_db()
    assert rosa.email == "rosa@home.example"


# --- Login and password reset -------------------------------------------------------------------------------------


def test_login_says_the_same_for_an_unknown_username_and_a_wrong_password(client, pilar):
    unknown = client.post(reverse("login"), {"username": "nobody", "password": "wrong-password"})
    wrong = client.post(reverse("login"), {"username": "pilar", "password": "wrong-password"})
    assert unknown.status_code == wrong.status_code == 200
    assert page_text(unknown, "nobody") == page_text(wrong, "pilar")
    assert "That username and password do not match an account." in wrong.content.decode()


def test_an_inactive_account_gets_the_same_login_message(client, pilar):
    User.objects.filter(pk=pilar.pk).update(is_active=False)
    inactive = client.post(reverse("login"), {"username": "pilar", "password": PASSWORD})
    unknown = client.post(reverse("login"), {"username": "nobody", "password": PASSWORD})
    assert page_text(inactive, "pilar") == page_text(unknown, "nobody")


def test_password_reset_answers_the_same_for_a_known_and_an_unknown_address(client, pilar):
    known = client.post(reverse("password_reset"), {"email": "pilar@example.org"}, follow=True)
    unknown = client.post(reverse("password_reset"), {"email": "nobody@example.org"}, follow=True)
    assert known.redirect_chain == unknown.redirect_chain
    assert page_text(known) == page_text(unknown)
    assert "If an account uses that email address" in known.content.decode()
    assert [m.to for m in mail.outbox] == [["pilar@example.org"]]
