"""Who may see which patient. Every view, endpoint and media request goes through here.

A user sees a patient when they are on its care team; staff see everything
(they run the service from the admin). Anything else is a 404, never a 403,
so that another family cannot even learn that a patient exists.
"""

from django.db import IntegrityError, transaction
from django.http import Http404

from .models import CareTeamMember


def patients_for(user, *, edit=False):
    """The patients this user may see (or, with edit=True, change)."""
    from lifebook.models import Patient

    if not user.is_authenticated or not user.is_active:
        return Patient.objects.none()
    if user.is_staff:
        return Patient.objects.all()
    memberships = CareTeamMember.objects.filter(user=user)
    if edit:
        memberships = memberships.filter(role__in=CareTeamMember.EDIT_ROLES)
    return Patient.objects.filter(pk__in=memberships.values("patient_id"))


def get_patient_for(user, pk, *, edit=False):
    """The patient `pk` if this user may see it (or edit it), else Http404."""
    from lifebook.models import Patient

    try:
        return patients_for(user, edit=edit).get(pk=pk)
    except (ValueError, TypeError, Patient.DoesNotExist):
        raise Http404("No such patient.")


def role_for(user, patient):
    """The user's CareTeamMember.Role on this patient, or None (staff get None too)."""
    return (
        CareTeamMember.objects.filter(user=user, patient=patient).values_list("role", flat=True).first()
        if user.is_authenticated
        else None
    )


def can_edit(user, patient) -> bool:
    return patients_for(user, edit=True).filter(pk=patient.pk).exists()


def can_manage_team(user, patient) -> bool:
    """Owners (and staff) decide who is on a patient's care team."""
    return user.is_staff or role_for(user, patient) == CareTeamMember.Role.OWNER


class TeamChangeRefused(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def add_to_team(patient, identifier: str, role: str) -> CareTeamMember:
    """Add an existing account, named by username or email, to the care team."""
    from django.contrib.auth import get_user_model

    identifier = (identifier or "").strip()
    users = get_user_model().objects.filter(is_active=True)
    user = users.filter(username__iexact=identifier).first() or (
        users.filter(email__iexact=identifier).first() if "@" in identifier else None)
    if user is None:
        raise TeamChangeRefused(f"No one with the username or email “{identifier}” has a Lifebook account yet. "
                                "Ask them to sign up first.")
    if role not in CareTeamMember.Role.values:
        raise TeamChangeRefused(f"Choose a role: {', '.join(CareTeamMember.Role.values)}.")
    if CareTeamMember.objects.filter(patient=patient, user=user).exists():
        raise TeamChangeRefused(f"{user.username} is already on this care team.")
    try:
        with transaction.atomic():
            return CareTeamMember.objects.create(patient=patient, user=user, role=role)
    except IntegrityError:  # the same request twice at the same moment: the other one added them
        raise TeamChangeRefused(f"{user.username} is already on this care team.")


def change_role(member: CareTeamMember, role: str) -> None:
    if role not in CareTeamMember.Role.values:
        raise TeamChangeRefused(f"Choose a role: {', '.join(CareTeamMember.Role.values)}.")
    if member.role == CareTeamMember.Role.OWNER and role != member.role:
        _keep_an_owner(member)
    member.role = role
    member.save(update_fields=["role"])


def remove_from_team(member: CareTeamMember) -> None:
    if member.role == CareTeamMember.Role.OWNER:
        _keep_an_owner(member)
    member.delete()


def _keep_an_owner(member):
    if not CareTeamMember.objects.filter(patient=member.patient_id, role=CareTeamMember.Role.OWNER).exclude(
            pk=member.pk).exists():
        raise TeamChangeRefused("A book needs at least one owner: make someone else owner first.")
