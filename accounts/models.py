import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """Our own user model from the first migration, so it can grow without pain."""

    email = models.EmailField("email address", blank=True)
    email_when_jobs_end = models.BooleanField(
        "email me when pictures or learning finish", default=True,
        help_text="A short email when a job you started is done, failed or was stopped.")

    class Meta:
        constraints = [
            # Invitations look people up by email, so one address is one person.
            models.UniqueConstraint(
                models.functions.Lower("email"),
                condition=~models.Q(email=""),
                name="unique_user_email_ci",
            )
        ]

    def __str__(self):
        return self.get_full_name() or self.username


class CareTeamMember(models.Model):
    """A user's place on one patient's care team, with what they may do."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner caregiver")
        CAREGIVER = "caregiver", _("Caregiver")
        THERAPIST = "therapist", _("Therapist")

    # Roles that may change the book; therapists only look at it.
    EDIT_ROLES = (Role.OWNER, Role.CAREGIVER)

    patient = models.ForeignKey("lifebook.Patient", on_delete=models.CASCADE, related_name="care_team")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="care_teams")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CAREGIVER)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "user"], name="one_membership_per_user_and_patient"),
        ]
        ordering = ["patient_id", "role", "user__username"]
        verbose_name = "care-team member"

    def __str__(self):
        return f"{self.user} — {self.get_role_display()} of {self.patient}"

    @property
    def can_edit(self) -> bool:
        return self.role in self.EDIT_ROLES


def new_invitation_token() -> str:
    """43 random URL-safe characters (256 bits): the link in the email is the only key to the invitation."""
    return secrets.token_urlsafe(32)


class Invitation(models.Model):
    """An emailed link that puts someone on a care team once they say yes (signing up or logging in first).

    Everyone is invited this way, by email address, with or without an account: nobody joins a team without
    agreeing, only the account with this address may accept (accounts.invitations), and the inviter never learns
    another account's name or address (`shown_as` is what the inviter typed: the address)."""

    patient = models.ForeignKey("lifebook.Patient", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    shown_as = models.CharField(max_length=254, blank=True, help_text="The username or email the inviter typed.")
    role = models.CharField(max_length=16, choices=CareTeamMember.Role.choices, default=CareTeamMember.Role.CAREGIVER)
    token = models.CharField(max_length=64, unique=True, default=new_invitation_token, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="invitations_sent")
    # A default, not auto_now_add, so that tests and the admin can date an invitation in the past.
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="invitations_accepted")

    class Meta:
        constraints = [
            # One waiting invitation per address and book, so a person never gets two links to the same team.
            models.UniqueConstraint(
                models.functions.Lower("email"), "patient",
                condition=models.Q(accepted_at__isnull=True),
                name="one_pending_invitation_per_email_and_patient",
                violation_error_message="This address has already been invited to this care team.",
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.email} invited to {self.patient} as {self.get_role_display()}"

    @property
    def expires_at(self):
        return self.created_at + timedelta(days=settings.LIFEBOOK_INVITATION_DAYS)

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def is_used(self) -> bool:
        return self.accepted_at is not None
