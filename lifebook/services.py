"""Book actions shared by the web forms and the REST API, so each rule is written once."""

from django.db import transaction
from django.utils import timezone

from accounts.models import CareTeamMember

from . import audit
from .models import AuditEvent, Patient


def record_photo_consent(patient: Patient, consent: bool, user) -> str | None:
    """Consent is a record: who recorded it and when (kept while it stays given), cleared when withdrawn.

    Sets the fields on `patient` (the caller saves it) and returns the audit action when consent changes, else
    None. `save_patient` saves and records the event in one go: use it."""
    if consent and not patient.has_photo_consent:
        patient.photo_consent_by, patient.photo_consent_at = user, timezone.now()
        return AuditEvent.Action.CONSENT_GIVEN
    if not consent:
        was_given = patient.has_photo_consent
        patient.photo_consent_by, patient.photo_consent_at, patient.photo_consent_note = None, None, ""
        return AuditEvent.Action.CONSENT_WITHDRAWN if was_given else None
    return None


def save_patient(patient: Patient, *, consent: bool, user, where: str) -> Patient:
    """Saves a new or changed patient with its consent record. A new one gets `user` as its owner. When consent
    changes, the audit trail says so once (`where`: audit.DETAILS_PAGE or audit.API), in the same transaction."""
    with transaction.atomic():
        change = record_photo_consent(patient, consent, user)
        if patient.pk is None:
            create_patient(patient, user)
        else:
            patient.save()
        if change:
            audit.record(user, patient, change, where)
    return patient


def create_patient(patient: Patient, owner) -> Patient:
    """A new book: the person who starts it is its owner."""
    with transaction.atomic():
        patient.save()
        CareTeamMember.objects.create(patient=patient, user=owner, role=CareTeamMember.Role.OWNER)
    return patient
