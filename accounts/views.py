"""Sign-up, the account page (email address, password, deleting the account) and the address-confirmation link.

No page here tells whether another account uses a username's email address: sign-up and the account page
answer the same for a new and a known address (accounts.addresses), login has one message for every failure,
and the password-reset page always says "if an account uses that email". The one unavoidable exception is a
taken username at sign-up.
"""

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from . import addresses, invitations
from .deletion import AccountDeletionRefused, books_only_they_own, delete_account
from .forms import AddressForm, EmailSettingsForm, PasswordCheckForm, SignUpForm
from .models import CareTeamMember


def _safe_next(request):
    """The `next=` page to come back to (an invitation link), if it is one of ours; else ''."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                              require_https=request.is_secure())
    return target if allowed else ""


def _invitation_behind(url):
    """The waiting invitation whose link `url` is, or None."""
    try:
        match = resolve(url.split("?")[0]) if url else None
    except Resolver404:
        return None
    if match is None or match.url_name != "invitation":
        return None
    return invitations.usable(match.kwargs.get("token"))


def _address_sent_message(email, sent):
    if not sent:
        return messages.WARNING, _("We could not send an email to %(email)s just now. Try again later from your "
                                   "account page.") % {"email": email}
    return messages.INFO, _("We sent an email to %(email)s. Open the link in it to confirm the address: until "
                            "then it is not your account's address.") % {"email": email}


def signup(request):
    """Caregivers sign themselves up; others join through a care-team invitation, which sends them here with
    next= pointing back at it. Signing up through an invitation gives the account the invitation's address
    (the link was read in that mailbox); otherwise the typed address gets a confirmation link."""
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url or "dashboard")
    invitation = _invitation_behind(next_url)
    form = SignUpForm(request.POST or None, invitation=invitation)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                user = form.save()
        except IntegrityError:  # the same username or address taken at the same moment
            form.add_error(None, _("Someone else took that username or address a moment ago. Try again."))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            if invitation is None:
                email = form.cleaned_data["email"]
                messages.add_message(request, *_address_sent_message(email, addresses.send_check(request, user, email)))
            if next_url:
                return redirect(next_url)
            messages.success(request, _("Welcome to Lifebook. Start by adding the person whose book you are "
                                        "making."))
            return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form, "next": next_url,
                                                        "invited": invitation is not None or _is_invitation(next_url)})


def _is_invitation(url):
    try:
        return bool(url) and resolve(url.split("?")[0]).url_name == "invitation"
    except Resolver404:
        return False


def _memberships(user):
    return CareTeamMember.objects.filter(user=user).select_related("patient").order_by("patient__name", "pk")


@login_required
def account(request):
    """Your details, your care teams, and the ways to change your address or password or delete the account."""
    if request.method == "POST" and request.POST.get("form") == "emails":  # the email settings, not the address
        EmailSettingsForm(request.POST, instance=request.user).save()
        messages.success(request, _("Saved."))
        return redirect("account")
    form = AddressForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        if invitations.same_address(email, request.user.email):
            messages.info(request, _("%(email)s is already your account's address.") % {"email": email})
        else:
            messages.add_message(request, *_address_sent_message(email, addresses.send_check(request, request.user,
                                                                                              email)))
        return redirect("account")
    return render(request, "registration/account.html", {"form": form, "memberships": _memberships(request.user),
                                                          "email_settings": EmailSettingsForm(instance=request.user)})


@require_http_methods(["GET", "POST"])
def address_confirm(request, token):
    """The emailed link: a page that says which account the address is for, and a button that confirms it."""
    try:
        user, email = addresses.read_token(token)
    except addresses.BadLink as bad:
        return render(request, "registration/address_confirm.html",
                      {"state": "expired" if bad.expired else "bad"}, status=410 if bad.expired else 404)
    context = {"account_name": user.get_username(), "email": email}
    if invitations.same_address(user.email, email):
        return render(request, "registration/address_confirm.html", {**context, "state": "done"})
    if addresses.used_by_another(user, email):  # the mailbox's owner reads this: it tells them of their own account
        return render(request, "registration/address_confirm.html", {**context, "state": "taken"}, status=409)
    if request.method == "POST":
        user.email = email
        try:
            with transaction.atomic():
                user.save(update_fields=["email"])
        except IntegrityError:  # another account took it a moment ago
            return render(request, "registration/address_confirm.html", {**context, "state": "taken"}, status=409)
        messages.success(request, _("%(email)s is now the address of the Lifebook account %(account)s.")
                         % {"email": email, "account": user.get_username()})
        return redirect("account" if request.user == user else "login")
    return render(request, "registration/address_confirm.html", {**context, "state": "ask"})


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request):
    """GET says what happens (and what stops it); POST with the password deletes the account."""
    user = request.user
    form = PasswordCheckForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        try:
            delete_account(user)
        except AccountDeletionRefused:
            pass  # someone changed the team meanwhile: the page below names the books
        else:
            logout(request)
            messages.success(request, _("Your account is deleted. The books you helped with stay with their "
                                        "care teams."))
            return redirect("login")
    return render(request, "registration/account_delete.html", {
        "form": form, "memberships": _memberships(user), "only_owner_of": list(books_only_they_own(user))})
