"""Book actions shared by the web forms and the REST API, so each rule is written once."""

from django.db import transaction
from django.utils import timezone

from accounts.models import CareTeamMember

from .models import Patient


def record_photo_consent(patient: Patient, consent: bool, user) -> None:
    """Consent is a record: who recorded it and when (kept while it stays given), cleared when withdrawn."""
    if consent and not patient.has_photo_consent:
        patient.photo_consent_by, patient.photo_consent_at = user, timezone.now()
    elif not consent:
        patient.photo_consent_by, patient.photo_consent_at, patient.photo_consent_note = None, None, ""


def create_patient(patient: Patient, owner) -> Patient:
    """A new book: the person who starts it is its owner."""
    with transaction.atomic():
        patient.save()
        CareTeamMember.objects.create(patient=patient, user=owner, role=CareTeamMember.Role.OWNER)
    return patient
