"""The audit trail of a book: who viewed, exported, imported, erased or changed consent, and when.

Written in the database (`AuditEvent`), readable by the book's owners (its "Who has looked at this book" page and
`GET /api/patients/<id>/audit/`) and by admins (read only). Views are recorded at most once per person, book
and place every VIEW_WINDOW, so reading a book page by page does not write a row per click. The window is kept
in Django's cache (per process with the default cache), so several web processes may each record one.

Where the events come from:
- viewed: the book page, the reader, the PDF, a memory's page (`memory_page(id)`), and the API's patient
  detail and memory reads (`API`);
- consent given / withdrawn: `lifebook.services.save_patient`, when consent really changes (web and API);
- erased: `lifebook.erase.erase_book`; exported / imported: the export service.
"""

from django.core.cache import cache
from django.utils.translation import gettext as _

from .models import AuditEvent

VIEW_WINDOW_SECONDS = 15 * 60

# Places, stored in AuditEvent.detail: short, stable, never health data. `describe` turns them into words.
BOOK_PAGE = "book"
READER = "reader"
PDF = "pdf"
API = "api"
DETAILS_PAGE = "details"
MEMORY_PREFIX = "memory:"


def memory_page(memory_id) -> str:
    return f"{MEMORY_PREFIX}{memory_id}"


def record(user, patient, action: str, detail: str = "") -> AuditEvent:
    """One event, now. `user` may be None (a command or the system)."""
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return AuditEvent.objects.create(
        patient=patient, patient_number=patient.pk, user=user if authenticated else None,
        username=user.get_username() if authenticated else "", action=action, detail=detail[:200])


def record_view(user, patient, detail: str) -> None:
    """A look at the book (its page, the reader, the PDF, the API), once per window per person and place."""
    record_views(user, [patient.pk], detail)


def record_views(user, patient_ids, detail: str) -> None:
    """Looks at several books at once (an API list): one event per book not seen in the window."""
    if not getattr(user, "is_authenticated", False):
        return
    new = [pk for pk in sorted(set(patient_ids))
           if cache.add(f"audit-view:{user.pk}:{pk}:{detail.replace(' ', '_')}", True, VIEW_WINDOW_SECONDS)]
    AuditEvent.objects.bulk_create(
        AuditEvent(patient_id=pk, patient_number=pk, user=user, username=user.get_username(),
                   action=AuditEvent.Action.VIEWED, detail=detail[:200]) for pk in new)


# --- in plain words -------------------------------------------------------------------------------------


def describe(event: AuditEvent, memory_titles=None) -> str:
    """What the person did, as the end of a sentence that starts with their name: "read the book in the reader".
    `memory_titles` ({id: title}) names the memories whose pages were opened."""
    action, detail = event.action, event.detail
    Action = AuditEvent.Action
    if action == Action.VIEWED:
        if detail == BOOK_PAGE:
            return _("looked at the book")
        if detail == READER:
            return _("read the book in the reader")
        if detail == PDF:
            return _("downloaded the large-print PDF")
        if detail == API:
            return _("read the book through the API")
        if detail.startswith(MEMORY_PREFIX):
            title = (memory_titles or {}).get(memory_id(event))
            if title is None:
                return _("opened a memory that has since been deleted")
            return _("opened the memory “%(title)s”") % {"title": title}
        return _("looked at the book")
    through_api = detail == API
    if action == Action.CONSENT_GIVEN:
        return _("recorded consent to use photos, through the API") if through_api else \
            _("recorded consent to use photos")
    if action == Action.CONSENT_WITHDRAWN:
        return _("withdrew consent to use photos, through the API") if through_api else \
            _("withdrew consent to use photos")
    if action == Action.EXPORTED:
        return _("downloaded a copy of the book")
    if action == Action.IMPORTED:
        return _("made this book from a downloaded copy")
    if action == Action.ERASED:
        return _("erased the book")
    return event.get_action_display()


def memory_id(event: AuditEvent) -> int | None:
    number = event.detail.removeprefix(MEMORY_PREFIX)
    return int(number) if event.detail.startswith(MEMORY_PREFIX) and number.isdigit() else None


def who(event: AuditEvent, roles: dict) -> str:
    """ "Laura (therapist)": the name now, and the role now on this book's care team (`roles`: user id -> role)."""
    from accounts.models import CareTeamMember

    if event.user is None:
        if event.username:
            return _("%(username)s (account deleted)") % {"username": event.username}
        return _("Lifebook itself")
    name = str(event.user)
    role = roles.get(event.user_id)
    words = {CareTeamMember.Role.OWNER: _("owner"), CareTeamMember.Role.CAREGIVER: _("caregiver"),
             CareTeamMember.Role.THERAPIST: _("therapist")}
    if role in words:
        return _("%(name)s (%(role)s)") % {"name": name, "role": words[role]}
    if event.user.is_staff:
        return _("%(name)s (administrator)") % {"name": name}
    return _("%(name)s (no longer on the care team)") % {"name": name}


def trail(patient, events):
    """(event, who, what) for a page of a book's events: two queries, whatever the page's length."""
    from .models import Memory

    events = list(events)
    roles = dict(patient.care_team.values_list("user_id", "role"))
    ids = {memory_id(event) for event in events} - {None}
    titles = dict(Memory.objects.filter(pk__in=ids, chapter__patient=patient).values_list("pk", "title"))
    return [(event, who(event, roles), describe(event, titles)) for event in events]
