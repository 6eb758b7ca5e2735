"""The care-team page: who is on a patient's team, inviting people by email (accounts.invitations), changing
roles and taking people off; and the invitation link itself.

Everyone on the team sees the list; only those who may manage the team (owners, staff) change it, and
anyone else gets a 404 on the changes, as therapists do on edit pages. The rules (valid roles, no one twice,
a book keeps an owner, an invitation is its address's) stay in `accounts.access` and `accounts.invitations`;
these views only show their refusals.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from . import invitations
from .access import (TeamChangeRefused, can_manage_team, change_role, get_owned_patient_for, get_patient_for,
                     patients_for, remove_from_team)
from .models import CareTeamMember, Invitation

Role = CareTeamMember.Role
INVITE_ROLES = [
    (Role.CAREGIVER, gettext_lazy("Caregiver: adds memories, photos and pictures")),
    (Role.THERAPIST, gettext_lazy("Therapist: looks at the book, changes nothing")),
    (Role.OWNER, gettext_lazy("Owner caregiver: like a caregiver, and also decides who is on the care team")),
]
# Owners first, then caregivers, then therapists (the model's own ordering is alphabetical by role).
ROLE_RANK = Case(When(role=Role.OWNER, then=Value(0)), When(role=Role.CAREGIVER, then=Value(1)), default=Value(2),
                 output_field=IntegerField())


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("Their email address"), max_length=254,
        error_messages={"required": gettext_lazy("Type their email address."),
                        "invalid": gettext_lazy("That email address does not look right. Check it for typos.")},
        help_text=gettext_lazy("We email them a link. They join when they open it and say yes, signing up or "
                               "logging in with this address."))
    role = forms.ChoiceField(label=gettext_lazy("What they may do"), choices=INVITE_ROLES, initial=Role.CAREGIVER,
                             widget=forms.RadioSelect,
                             error_messages={"required": gettext_lazy("Choose what they may do."),
                                             "invalid_choice": gettext_lazy("Choose one of the roles shown.")})


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
                sent = invitations.invite(request, patient, form.cleaned_data["email"], form.cleaned_data["role"])
            except TeamChangeRefused as exc:
                form.add_error("email", exc.message)  # the form keeps what they typed
            else:
                messages.success(request, _(
                    "We sent an invitation to %(email)s. When they open the link and say yes (signing up or logging "
                    "in with that address), they join as %(role)s. The link works once, until %(until)s.") % {
                    "email": sent.email, "role": sent.get_role_display(), "until": invitations.day(sent.expires_at)})
                return redirect("care_team", patient_id=patient.pk)
    members = patient.care_team.select_related("user").annotate(rank=ROLE_RANK).order_by(
        "rank", "user__first_name", "user__username")
    waiting = (patient.invitations.filter(accepted_at__isnull=True).select_related("invited_by")
               if manage else Invitation.objects.none())
    return render(request, "lifebook/team.html", {
        "patient": patient, "members": members, "invitations": waiting, "manage": manage, "form": form,
        "roles": Role.choices})


@login_required
@require_POST
def member_role(request, patient_id, member_id):
    patient = get_owned_patient_for(request.user, patient_id)
    member = get_object_or_404(patient.care_team.select_related("user"), pk=member_id)
    role = request.POST.get("role", "")
    if role == member.role:
        messages.info(request, _("%(person)s is already %(role)s: nothing changed.")
                      % {"person": member.user, "role": member.get_role_display()})
        return redirect("care_team", patient_id=patient.pk)
    try:
        change_role(member, role)
    except TeamChangeRefused as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(person)s is now %(role)s.")
                         % {"person": member.user, "role": member.get_role_display()})
    return redirect("care_team", patient_id=patient.pk)


@login_required
def member_remove(request, patient_id, member_id):
    """GET asks to confirm (works without JavaScript); POST takes them off the team."""
    patient = get_owned_patient_for(request.user, patient_id)
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
        messages.success(request, _("You are no longer on %(patient)s’s care team.")
                         % {"patient": patient.display_name})
        return redirect("dashboard")
    messages.success(request, _("%(person)s is no longer on the care team and cannot see the book any more.")
                     % {"person": member.user})
    return redirect("care_team", patient_id=patient.pk)


@login_required
@require_POST
def invitation_withdraw(request, patient_id, invitation_id):
    patient = get_owned_patient_for(request.user, patient_id)
    invitation = get_object_or_404(patient.invitations.filter(accepted_at__isnull=True), pk=invitation_id)
    invitation.delete()
    messages.success(request, _("The invitation to %(email)s is withdrawn: its link no longer works.")
                     % {"email": invitation.shown_as or invitation.email})
    return redirect("care_team", patient_id=patient.pk)


def invitation(request, token):
    """The emailed link. It says who invited them to whose book; not logged in, it offers sign-up or log-in,
    both of which come back here (next=). Joining is a button (POST), so a link alone never puts anyone on a
    team: another page cannot send someone's browser here and make them join. Only the account whose email is
    the invitation's address may join; any other is told so, without the address being shown."""
    found = Invitation.objects.select_related("patient", "invited_by").filter(token=token).first()
    if found is None:
        return _invitation_unusable(request, "unknown", status=404)
    if found.is_used:
        if patients_for(request.user).filter(pk=found.patient_id).exists():  # they opened their email again
            return redirect("patient_book", patient_id=found.patient_id)
        return _invitation_unusable(request, "used", status=410)
    if found.is_expired:
        return _invitation_unusable(request, "expired", status=410)
    for_me = invitations.is_for(found, request.user)
    if request.method == "POST" and request.user.is_authenticated:
        if for_me:
            return _accept(request, found)
        status = 403
    else:
        status = 200
    return render(request, "lifebook/invitation.html", {
        "invitation": found, "inviter": found.invited_by, "patient_name": found.patient.display_name,
        "here": request.get_full_path(), "for_me": for_me}, status=status)


def _accept(request, found):
    patient = found.patient
    try:
        member, joined = invitations.accept(found, request.user)
    except Invitation.DoesNotExist:  # used or withdrawn between the page and the button
        return _invitation_unusable(request, "used", status=410)
    if joined:
        messages.success(request, _("Welcome to %(patient)s’s care team. You joined as %(role)s.")
                         % {"patient": patient.display_name, "role": member.get_role_display()})
    else:
        messages.info(request, _("You are already on %(patient)s’s care team, as %(role)s. To change what you may "
                                 "do, ask one of its owners.")
                      % {"patient": patient.display_name, "role": member.get_role_display()})
    return redirect("patient_book", patient_id=patient.pk)


def _invitation_unusable(request, reason, *, status):
    """A friendly page that names no patient and no person: whoever holds a dead link learns nothing."""
    return render(request, "lifebook/invitation_invalid.html", {"reason": reason}, status=status)
