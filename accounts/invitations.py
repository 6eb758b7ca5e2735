"""Care-team invitations: the one way onto a team, for the web page and the API alike.

An owner invites an email address. The answer is the same whether or not that address has an account, and
nobody joins without saying yes. An invitation belongs to its address: only an account whose email is that
address accepts it, and signing up through the link gives the new account that address (opening the link
proves they read that mailbox). So a forwarded or leaked link does not make another account a member.
"""

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from .access import TeamChangeRefused
from .models import CareTeamMember, Invitation


class EmailNotSent(TeamChangeRefused):
    """The mail server did not take the invitation; nothing was kept."""


class NotForThisAccount(Exception):
    """The invitation was sent to an address this account does not have."""


def day(moment):
    return date_format(timezone.localtime(moment))


def same_address(a: str, b: str) -> bool:
    """Emails compare without case, as the unique constraint on accounts does."""
    return bool(a) and bool(b) and a.strip().lower() == b.strip().lower()


def is_for(invitation: Invitation, user) -> bool:
    return user.is_authenticated and same_address(user.email, invitation.email)


def usable(token):
    """The waiting, unexpired invitation with this token, or None."""
    found = Invitation.objects.select_related("patient", "invited_by").filter(
        token=token, accepted_at__isnull=True).first()
    return found if found and not found.is_expired else None


def invite(request, patient, email: str, role: str) -> Invitation:
    """Email an invitation link to `email`. Refusals (TeamChangeRefused) name only what the inviter typed or can
    already see on the team page, so nothing tells whether the address has an account."""
    email = email.strip()
    if role not in CareTeamMember.Role.values:
        raise TeamChangeRefused(_("Choose a role: %(roles)s.") % {"roles": ", ".join(CareTeamMember.Role.values)})
    if patient.care_team.filter(user__email__iexact=email).exists():  # members' addresses are on the team page
        raise TeamChangeRefused(_("%(email)s is already on this care team.") % {"email": email})
    waiting = patient.invitations.filter(email__iexact=email, accepted_at__isnull=True).first()
    if waiting and not waiting.is_expired:
        raise TeamChangeRefused(
            _("%(email)s was already invited on %(sent)s; that link works until %(until)s. Withdraw that "
              "invitation to send a new one.") % {"email": email, "sent": day(waiting.created_at),
                                                  "until": day(waiting.expires_at)})
    try:
        with transaction.atomic():
            if waiting:  # expired: it makes way for the new one
                waiting.delete()
            invitation = Invitation.objects.create(patient=patient, email=email, shown_as=email, role=role,
                                                   invited_by=request.user)
            try:
                _send(request, invitation)
            except OSError:  # SMTP errors are OSErrors; the invitation is rolled back, so nothing half-done stays
                raise EmailNotSent(_("The invitation email could not be sent just now. Please try again later."))
    except IntegrityError:  # the same address invited twice at the same moment
        raise TeamChangeRefused(_("%(email)s has already been invited to this care team.") % {"email": email})
    return invitation


def _send(request, invitation):
    link = request.build_absolute_uri(reverse("invitation", args=[invitation.token]))
    names = {"inviter": invitation.invited_by, "patient": invitation.patient.display_name}
    context = {"invitation": invitation, "link": link, "inviter": invitation.invited_by,
               "patient_name": invitation.patient.display_name}
    send_mail(_("%(inviter)s invited you to %(patient)s’s life book") % names,
              render_to_string("lifebook/invitation_email.txt", context), None, [invitation.email])


def accept(invitation: Invitation, user) -> tuple[CareTeamMember, bool]:
    """Put `user` on the team, if the invitation is for them. Returns (membership, joined now); raises
    NotForThisAccount, or Invitation.DoesNotExist when it was used or withdrawn meanwhile."""
    if not is_for(invitation, user):
        raise NotForThisAccount()
    with transaction.atomic():
        # Locked, so that two clicks at once cannot both use the invitation.
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk, accepted_at__isnull=True)
        member, created = CareTeamMember.objects.get_or_create(
            patient_id=invitation.patient_id, user=user, defaults={"role": invitation.role})
        # Used up either way: it was theirs (already on the team, they keep their role; an owner changes it).
        invitation.accepted_at, invitation.accepted_by = timezone.now(), user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return member, created
