from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Our own user model from the first migration, so it can grow without pain."""

    email = models.EmailField("email address", blank=True)

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
        OWNER = "owner", "Owner caregiver"
        CAREGIVER = "caregiver", "Caregiver"
        THERAPIST = "therapist", "Therapist"

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
