"""The care-team page: who is on a patient's team, inviting people (by username or email, or by an emailed
link before they have an account), changing roles and taking people off.

Everyone on the team sees the list; only those who may manage the team (owners, staff) change it, and
anyone else gets a 404 on the changes, as therapists do on edit pages. The rules (valid roles, no one twice,
a book keeps an owner) stay in `accounts.access`; these views only show its refusals.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_POST

from .access import (TeamChangeRefused, can_manage_team, change_role, get_patient_for, patients_for,
                     remove_from_team)
from .models import CareTeamMember, Invitation

Role = CareTeamMember.Role
INVITE_ROLES = [
    (Role.CAREGIVER, "Caregiver: adds memories, photos and pictures"),
    (Role.THERAPIST, "Therapist: looks at the book, changes nothing"),
    (Role.OWNER, "Owner caregiver: like a caregiver, and also decides who is on the care team"),
]
# Owners first, then caregivers, then therapists (the model's own ordering is alphabetical by role).
ROLE_RANK = Case(When(role=Role.OWNER, then=Value(0)), When(role=Role.CAREGIVER, then=Value(1)), default=Value(2),
                 output_field=IntegerField())


class InviteForm(forms.Form):
    who = forms.CharField(
        label="Their username or email address", max_length=254,
        error_messages={"required": "Type their username, or their email address if they have no account yet."},
        help_text="Someone with a Lifebook account joins at once. Anyone else gets an email with a link to join.")
    role = forms.ChoiceField(label="What they may do", choices=INVITE_ROLES, initial=Role.CAREGIVER,
                             widget=forms.RadioSelect,
                             error_messages={"required": "Choose what they may do.",
                                             "invalid_choice": "Choose one of the roles shown."})

    def clean_who(self):
        who = self.cleaned_data["who"].strip()
        if "@" in who:
            try:
                validate_email(who)
            except ValidationError:
                raise ValidationError("That email address does not look right. Check it for typos.")
        return who


def _day(moment):
    return date_format(timezone.localtime(moment))


def _patient_to_manage(user, patient_id):
    """The patient whose team this user may change; 404 for everyone else, therapists and caregivers included."""
    patient = get_patient_for(user, patient_id)
    if not can_manage_team(user, patient):
        raise Http404("Only the book's owner changes its care team.")
    return patient


def _account_named(username):
    """The active account with this username (as add_to_team matches it), or None."""
    return get_user_model().objects.filter(is_active=True, username__iexact=username).first()


def _send_invitation(request, invitation):
    link = request.build_absolute_uri(reverse("invitation", args=[invitation.token]))
    context = {"invitation": invitation, "link": link, "inviter": invitation.invited_by,
               "patient_name": invitation.patient.display_name}
    send_mail(f"{invitation.invited_by} invited you to {invitation.patient.display_name}’s life book",
              render_to_string("lifebook/invitation_email.txt", context), None, [invitation.email])


def invite(request, patient, who, role):
    """Email an invitation link, to the address typed or to the account with the username typed. Nobody is
    added without saying yes, and the answer is the same whether or not an address has an account, so an
    inviter learns nothing about other people's accounts. Returns the message for the inviter."""
    if "@" in who:
        email = who
        already = patient.care_team.filter(user__email__iexact=who).exists()
    else:
        account = _account_named(who)
        if account is None or not account.email:
            raise TeamChangeRefused(f"No one has the username “{who}” with an email address to write to. "
                                    "Type their email address instead.")
        email = account.email
        already = patient.care_team.filter(user=account).exists()
    if already:
        raise TeamChangeRefused(f"{who} is already on this care team.")
    waiting = patient.invitations.filter(email__iexact=email, accepted_at__isnull=True).first()
    if waiting and not waiting.is_expired:
        raise TeamChangeRefused(f"{who} was already invited on {_day(waiting.created_at)}; that link works "
                                f"until {_day(waiting.expires_at)}. Withdraw it below to send a new one.")
    try:
        with transaction.atomic():
            if waiting:  # expired: it makes way for the new one
                waiting.delete()
            invitation = Invitation.objects.create(patient=patient, email=email, shown_as=who, role=role,
                                                   invited_by=request.user)
            try:
                _send_invitation(request, invitation)
            except OSError:  # SMTP errors are OSErrors; the invitation is rolled back, so nothing half-done stays
                raise TeamChangeRefused("The invitation email could not be sent just now. Please try again later.")
    except IntegrityError:  # the same address invited twice at the same moment
        raise TeamChangeRefused(f"{who} has already been invited to this care team.")
    return (f"We sent an invitation to {who}. When they open the link and say yes (signing up or logging in "
            f"first), they join as {invitation.get_role_display()}. The link works once, until "
            f"{_day(invitation.expires_at)}.")


@login_required
def team_page(request, patient_id):
    """The list for everyone on the team; the invite form (POST here) for those who manage it."""
    patient = get_patient_for(request.user, patient_id)
    manage = can_manage_team(request.user, patient)
    form = InviteForm()
    if request.method == "POST":
        if not manage:
            raise Http404("Only the book's owner changes its care team.")
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                messages.success(request, invite(request, patient, form.cleaned_data["who"],
                                                 form.cleaned_data["role"]))
                return redirect("care_team", patient_id=patient.pk)
            except TeamChangeRefused as exc:
                form.add_error("who", exc.message)  # the form keeps what they typed
    members = patient.care_team.select_related("user").annotate(rank=ROLE_RANK).order_by(
        "rank", "user__first_name", "user__username")
    invitations = (patient.invitations.filter(accepted_at__isnull=True).select_related("invited_by")
                   if manage else Invitation.objects.none())
    return render(request, "lifebook/team.html", {
        "patient": patient, "members": members, "invitations": invitations, "manage": manage, "form": form,
        "roles": Role.choices})


@login_required
@require_POST
def member_role(request, patient_id, member_id):
    patient = _patient_to_manage(request.user, patient_id)
    member = get_object_or_404(patient.care_team.select_related("user"), pk=member_id)
    role = request.POST.get("role", "")
    if role == member.role:
        messages.info(request, f"{member.user} is already {member.get_role_display()}: nothing changed.")
        return redirect("care_team", patient_id=patient.pk)
    try:
        change_role(member, role)
    except TeamChangeRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{member.user} is now {member.get_role_display()}.")
    return redirect("care_team", patient_id=patient.pk)


@login_required
def member_remove(request, patient_id, member_id):
    """GET asks to confirm (works without JavaScript); POST takes them off the team."""
    patient = _patient_to_manage(request.user, patient_id)
    member = get_object_or_404(patient.care_team.select_related("user"), pk=member_id)
    if request.method != "POST":
        return render(request, "lifebook/team_remove.html", {"patient": patient, "member": member,
                                                             "is_me": member.user_id == request.user.pk})
    try:
        remove_from_team(member)
    except TeamChangeRefused as exc:
        messages.error(request, exc.message)
        return redirect("care_team", patient_id=patient.pk)
    if member.user_id == request.user.pk and not patients_for(request.user).filter(pk=patient.pk).exists():
        messages.success(request, f"You are no longer on {patient.display_name}’s care team.")
        return redirect("dashboard")
    messages.success(request, f"{member.user} is no longer on the care team and cannot see the book any more.")
    return redirect("care_team", patient_id=patient.pk)


@login_required
@require_POST
def invitation_withdraw(request, patient_id, invitation_id):
    patient = _patient_to_manage(request.user, patient_id)
    invitation = get_object_or_404(patient.invitations.filter(accepted_at__isnull=True), pk=invitation_id)
    invitation.delete()
    messages.success(request, f"The invitation to {invitation.shown_as or invitation.email} is withdrawn: "
                              "its link no longer works.")
    return redirect("care_team", patient_id=patient.pk)


def invitation(request, token):
    """The emailed link. It says who invited them to whose book; not logged in, it offers sign-up or log-in,
    both of which come back here (next=). Joining is a button (POST), so a link alone never puts anyone on a
    team: another page cannot send someone's browser here and make them join."""
    found = Invitation.objects.select_related("patient", "invited_by").filter(token=token).first()
    if found is None:
        return _invitation_unusable(request, "unknown", status=404)
    if found.is_used:
        if patients_for(request.user).filter(pk=found.patient_id).exists():  # they opened their email again
            return redirect("patient_book", patient_id=found.patient_id)
        return _invitation_unusable(request, "used", status=410)
    if found.is_expired:
        return _invitation_unusable(request, "expired", status=410)
    if request.method == "POST" and request.user.is_authenticated:
        return _accept(request, found)
    return render(request, "lifebook/invitation.html", {
        "invitation": found, "inviter": found.invited_by, "patient_name": found.patient.display_name,
        "here": request.get_full_path()})


def _accept(request, found):
    patient = found.patient
    with transaction.atomic():
        # Locked, so that two clicks at once cannot both use the invitation.
        found = Invitation.objects.select_for_update().get(pk=found.pk)
        if found.is_used:
            return _invitation_unusable(request, "used", status=410)
        member, created = CareTeamMember.objects.get_or_create(
            patient=patient, user=request.user, defaults={"role": found.role})
        if not created:
            # Already on the team (e.g. the owner trying the link): it stays for the person it was sent to.
            messages.info(request, f"You are already on {patient.display_name}’s care team. The invitation "
                                   f"stays open for {found.shown_as or found.email}.")
            return redirect("patient_book", patient_id=patient.pk)
        found.accepted_at, found.accepted_by = timezone.now(), request.user
        found.save(update_fields=["accepted_at", "accepted_by"])
    messages.success(request, f"Welcome to {patient.display_name}’s care team. You joined as "
                              f"{member.get_role_display()}.")
    return redirect("patient_book", patient_id=patient.pk)


def _invitation_unusable(request, reason, *, status):
    """A friendly page that names no patient and no person: whoever holds a dead link learns nothing."""
    return render(request, "lifebook/invitation_invalid.html", {"reason": reason}, status=status)
