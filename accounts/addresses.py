"""An account's email address is set only by proof that its owner reads that mailbox.

Typing an address (at sign-up or on the account page) sends that address either a link that confirms it
for this account or, when another account already uses it, a note saying so to the person who owns it.
The page answers the same in both cases, so nobody learns from Lifebook whether an address has an account.
An invitation link is proof too: signing up through it gives the account the invitation's address.

The link is a signed value (account id and address) with the lifetime of a password-reset link; nothing is
stored until it is used, and using it is a button (POST), so a mail scanner that opens links confirms nothing.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

SALT = "accounts.addresses.confirm"


class BadLink(Exception):
    def __init__(self, expired=False):
        super().__init__("expired" if expired else "bad")
        self.expired = expired


def link_token(user, email: str) -> str:
    return signing.dumps({"user": user.pk, "email": email}, salt=SALT, compress=True)


def read_token(token: str):
    """(account, address) from a link; BadLink when it was altered, has expired or its account is gone."""
    try:
        value = signing.loads(token, salt=SALT, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.SignatureExpired:
        raise BadLink(expired=True)
    except (signing.BadSignature, ValueError):
        raise BadLink()
    user = get_user_model().objects.filter(pk=value.get("user"), is_active=True).first()
    if user is None or not value.get("email"):
        raise BadLink()
    return user, value["email"]


def used_by_another(user, email: str) -> bool:
    return get_user_model().objects.filter(email__iexact=email).exclude(pk=user.pk).exists()


def send_check(request, user, email: str) -> bool:
    """Email `email` a confirmation link for `user`, or, if another account uses it, tell that account's owner.
    Either way one email goes out, so the answer (and its timing) says nothing about other accounts.
    False when the email could not be sent (the caller says so and the account stays as it was)."""
    email = get_user_model().objects.normalize_email(email.strip())
    other = get_user_model().objects.filter(email__iexact=email).exclude(pk=user.pk).first()
    if other is not None:
        context = {"username": other.get_username(),
                   "login": request.build_absolute_uri(reverse("login")),
                   "reset": request.build_absolute_uri(reverse("password_reset"))}
        return _send(_("Your email address and Lifebook"), "registration/address_in_use_email.txt", context, email)
    link = request.build_absolute_uri(reverse("address_confirm", args=[link_token(user, email)]))
    context = {"username": user.get_username(), "link": link,
               "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)}
    return _send(_("Confirm your email address for Lifebook"), "registration/address_confirm_email.txt", context,
                 email)


def _send(subject, template, context, email) -> bool:
    try:
        send_mail(subject, render_to_string(template, context), None, [email])
    except OSError:  # SMTP errors are OSErrors
        return False
    return True
