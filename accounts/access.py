"""Who may see which patient. Every view, endpoint and media request goes through here.

A user sees a patient when they are on its care team; staff see everything
(they run the service from the admin). Anything else is a 404, never a 403,
so that another family cannot even learn that a patient exists.
"""

from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _

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


def patients_managed_by(user):
    """The patients whose care team this user decides about: owners' (and, for staff, all)."""
    from lifebook.models import Patient

    if not user.is_authenticated or not user.is_active:
        return Patient.objects.none()
    if user.is_staff:
        return Patient.objects.all()
    owned = CareTeamMember.objects.filter(user=user, role=CareTeamMember.Role.OWNER)
    return Patient.objects.filter(pk__in=owned.values("patient_id"))


def get_patient_for(user, pk, *, edit=False):
    """The patient `pk` if this user may see it (or edit it), else Http404."""
    from lifebook.models import Patient

    try:
        return patients_for(user, edit=edit).get(pk=pk)
    except (ValueError, TypeError, Patient.DoesNotExist):
        raise Http404("No such patient.")


def get_owned_patient_for(user, pk):
    """The patient `pk` if this user is one of its owners (or staff): its care team, its audit trail and erasing
    it are theirs. Http404 for everyone else, the rest of its care team included."""
    patient = get_patient_for(user, pk)
    if not can_manage_team(user, patient):
        raise Http404("Only the book's owners may do this.")
    return patient


def memories_for(user):
    """The memories this user may see: those of their patients, except hidden ones where they may only view.

    Hiding keeps distressing material for the people who edit the book (owners, caregivers, staff); a therapist
    never meets it. The API's querysets and id fields and the media view's check all use this one rule.
    """
    from django.db.models import Q

    from lifebook.models import Memory

    return Memory.objects.filter(chapter__patient__in=patients_for(user)).filter(
        Q(hidden=False) | Q(chapter__patient__in=patients_for(user, edit=True)))


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


def change_role(member: CareTeamMember, role: str) -> None:
    if role not in CareTeamMember.Role.values:
        raise TeamChangeRefused(_("Choose a role: %(roles)s.") % {"roles": ", ".join(CareTeamMember.Role.values)})
    with transaction.atomic():
        if member.role == CareTeamMember.Role.OWNER and role != member.role:
            _keep_an_owner(member)
        member.role = role
        member.save(update_fields=["role"])


def remove_from_team(member: CareTeamMember) -> None:
    with transaction.atomic():
        if member.role == CareTeamMember.Role.OWNER:
            _keep_an_owner(member)
        member.delete()


def lock_books(patient_ids):
    """Lock these patients' rows until the transaction ends, so that two owners stepping down (or deleting their
    accounts) at the same moment cannot both count on the other and leave a book with no owner."""
    from lifebook.models import Patient

    list(Patient.objects.select_for_update().filter(pk__in=list(patient_ids)).order_by("pk").values_list("pk"))


def _keep_an_owner(member):
    lock_books([member.patient_id])
    if not CareTeamMember.objects.filter(patient=member.patient_id, role=CareTeamMember.Role.OWNER).exclude(
            pk=member.pk).exists():
        raise TeamChangeRefused(_("A book needs at least one owner: make someone else owner first."))
