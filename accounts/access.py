"""Who may see which patient. Every view, endpoint and media request goes through here.

A user sees a patient when they are on its care team; staff see everything
(they run the service from the admin). Anything else is a 404, never a 403,
so that another family cannot even learn that a patient exists.
"""

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
