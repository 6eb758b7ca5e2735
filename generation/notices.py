"""When a job ends (done, failed or stopped), the person who started it finds a notice on their dashboard
and, unless they turned it off on their account page, gets a short email.

`job_ended` is called right after the conditional state change that ended the job (generation.runner.finish,
generation.jobs.cancel and sweep): that change happens once, and the notice's constraint (one per job end)
makes a second call harmless. The email names the book, never the memory or its description.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from .models import FINISHED, GenerationJob, JobState, Notice, TrainingJob

log = logging.getLogger(__name__)


def job_ended(job) -> Notice | None:
    """Leave the notice (and queue the email) for this job's end; None when there is no one to tell."""
    model = type(job)
    row = (model.objects.select_related("created_by").filter(pk=job.pk, state__in=FINISHED).first())
    if row is None or row.created_by is None or row.finished_at is None:
        return None
    user = row.created_by
    if isinstance(row, TrainingJob):
        fields = {"kind": Notice.Kind.TRAINING, "subject_id": row.subject_id, "patient_id": row.subject.patient_id}
    else:
        memory = row.memory
        fields = {"kind": Notice.Kind.PICTURES, "memory_id": memory.pk, "patient_id": memory.chapter.patient_id}
    if not _may_see(user, row, fields["patient_id"]):
        return None  # left the care team since: they no longer hear about this book
    try:
        with transaction.atomic():  # a savepoint: a duplicate leaves the caller's transaction usable
            notice = Notice.objects.create(user=user, job_id=row.pk, outcome=row.state,
                                           job_finished_at=row.finished_at, **fields)
    except IntegrityError:
        return None  # this end was already told
    if user.email_when_jobs_end and user.email:
        transaction.on_commit(lambda: send_notice_email(notice.pk))
    return notice


def _may_see(user, job, patient_id) -> bool:
    from accounts.access import memories_for, patients_for

    if isinstance(job, GenerationJob):
        return memories_for(user).filter(pk=job.memory_id).exists()  # a hidden memory: editors only
    return patients_for(user).filter(pk=patient_id).exists()


def notice_text(notice: Notice, *, in_email: bool = False) -> str:
    """The notice in plain words. The email leaves out who the training was about."""
    names = {"patient": notice.patient.display_name,
             "subject": notice.subject.name if notice.subject_id else ""}
    if notice.kind == Notice.Kind.TRAINING:
        if in_email:
            words = {JobState.SUCCEEDED: _("Lifebook has finished learning from the photos in %(patient)s’s book."),
                     JobState.FAILED: _("Learning from the photos in %(patient)s’s book did not finish."),
                     JobState.CANCELLED: _("Learning from the photos in %(patient)s’s book was stopped.")}
        else:
            words = {JobState.SUCCEEDED: _("Lifebook has learned what %(subject)s looks like (%(patient)s’s book)."),
                     JobState.FAILED: _("Learning what %(subject)s looks like did not finish (%(patient)s’s book)."),
                     JobState.CANCELLED: _("Learning what %(subject)s looks like was stopped (%(patient)s’s book).")}
    else:
        words = {JobState.SUCCEEDED: _("The pictures for a memory in %(patient)s’s book are ready."),
                 JobState.FAILED: _("The pictures for a memory in %(patient)s’s book could not be made."),
                 JobState.CANCELLED: _("Making pictures for a memory in %(patient)s’s book was stopped.")}
    return words[notice.outcome] % names


def notices_for(user) -> list[dict]:
    """The user's notices not yet dismissed, about books (and memories) they can still see, in words."""
    from django.db.models import Q

    from accounts.access import memories_for, patients_for

    rows = (Notice.objects.filter(user=user, dismissed_at__isnull=True, patient__in=patients_for(user))
            .filter(Q(memory__isnull=True) | Q(memory__in=memories_for(user)))
            .select_related("patient", "subject")[:20])
    return [{"pk": row.pk, "text": notice_text(row), "link": notice_link(row), "outcome": row.outcome} for row in rows]


def notice_link(notice: Notice) -> str:
    if notice.kind == Notice.Kind.TRAINING:
        return reverse("subject_page", args=[notice.patient_id, notice.subject_id])
    return reverse("memory_page", args=[notice.patient_id, notice.memory_id])


def send_notice_email(notice_id: int) -> None:
    notice = Notice.objects.select_related("user", "patient", "subject").filter(pk=notice_id).first()
    if notice is None or not notice.user.email_when_jobs_end or not notice.user.email:
        return
    subject = {JobState.SUCCEEDED: _("Lifebook: it is ready"), JobState.FAILED: _("Lifebook: it did not work"),
               JobState.CANCELLED: _("Lifebook: it was stopped")}[notice.outcome]
    link = settings.LIFEBOOK_SITE_URL.rstrip("/") + notice_link(notice)
    body = "\n\n".join([
        _("Hello,"), notice_text(notice, in_email=True), _("See it here: %(link)s") % {"link": link},
        _("You get these emails because you started this on Lifebook. You can turn them off on your account page."),
    ])
    try:
        send_mail(subject, body + "\n", None, [notice.user.email])
    except Exception:  # a mail server away must not fail the job: the dashboard notice is there anyway
        log.exception("Could not send the email for notice %s", notice_id)
