"""Erasing a book: every row and every file of one patient, for good.

Used by the web page (lifebook.privacy_views), the API (`DELETE /api/patients/<id>/`) and the admin's delete, so
no path leaves rows or files behind. Only an event "erased" stays in the audit trail (`AuditEvent` keeps the
book's number; its patient link becomes empty).

Files: everything a patient has lives under `patients/<id>/` in the default storage (photos, pictures, their
renditions, adapters, checkpoint samples, sketches and masks), and trainings keep their working state in
`LIFEBOOK_TRAINING_DIR/job-N`. Both are removed after the rows' deletion commits.

Jobs: running and queued jobs lose their claim in the same transaction (state cancelled, `run_token` cleared),
so a worker in the middle of one can no longer store anything: its heartbeat finds the claim gone and stops it,
its results are written only with a valid claim, and files it wrote first are removed when that fails
(generation.runner). The rows a worker or a page could still attach to (patient, subjects, chapters, memories,
jobs) are locked first, so nothing new can join the book while it is being deleted.
"""

from __future__ import annotations

import logging
import shutil
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction
from django.utils import timezone

from . import audit
from .models import AuditEvent, Chapter, Memory, MemoryImage, Patient, ReferencePhoto, Subject

log = logging.getLogger(__name__)

# True while a book's rows are being deleted: per-row signal work (renditions, the book cache) is pointless
# then, since the whole folder goes after the commit and the book no longer exists.
_erasing: ContextVar[bool] = ContextVar("lifebook_erasing", default=False)


def erasing() -> bool:
    return _erasing.get()


@dataclass(frozen=True)
class BookContents:
    """What erasing a book removes, counted for the confirmation page and the audit trail."""

    chapters: int = 0
    memories: int = 0
    pictures: int = 0
    subjects: int = 0
    photos: int = 0
    trained_subjects: int = 0
    adapters: int = 0
    active_jobs: int = 0
    invitations: int = 0
    team: list = field(default_factory=list)  # CareTeamMember rows, with their users

    def summary(self) -> str:
        """For the audit trail: numbers only, never names or words from the book."""
        return (f"{self.chapters} chapters, {self.memories} memories, {self.pictures} pictures, "
                f"{self.subjects} subjects, {self.photos} photos, {self.adapters} adapters, "
                f"{len(self.team)} care-team members, {self.invitations} invitations, "
                f"{self.active_jobs} jobs stopped")


def contents_of(patient: Patient) -> BookContents:
    from generation.models import GenerationJob, JobState, TrainingCheckpoint, TrainingJob

    active = [JobState.QUEUED, JobState.RUNNING]
    return BookContents(
        chapters=Chapter.objects.filter(patient=patient).count(),
        memories=Memory.objects.filter(chapter__patient=patient).count(),
        pictures=MemoryImage.objects.filter(memory__chapter__patient=patient).count(),
        subjects=Subject.objects.filter(patient=patient).count(),
        photos=ReferencePhoto.objects.filter(subject__patient=patient).count(),
        trained_subjects=TrainingJob.objects.filter(subject__patient=patient, state=JobState.SUCCEEDED)
        .values("subject").distinct().count(),
        adapters=TrainingCheckpoint.objects.filter(job__subject__patient=patient).count(),
        active_jobs=TrainingJob.objects.filter(subject__patient=patient, state__in=active).count()
        + GenerationJob.objects.filter(memory__chapter__patient=patient, state__in=active).count(),
        invitations=patient.invitations.filter(accepted_at__isnull=True).count(),
        team=list(patient.care_team.select_related("user").order_by("role", "user__username")),
    )


def erase_book(patient: Patient, *, by) -> BookContents:
    """Deletes the book with every row and file; returns what went. The caller has checked that `by` may
    (an owner of the book, or staff). Files go once the deletion commits (at once outside a transaction)."""
    from generation.models import GenerationJob, TrainingJob

    number = patient.pk
    with transaction.atomic():
        # Locked in order, parents first: nothing new can be added to the book until the deletion commits
        # (a photo, a memory, a checkpoint a worker is storing), so the cascade below sees every row.
        if not Patient.objects.select_for_update().filter(pk=number).exists():
            raise Patient.DoesNotExist("This book was already erased.")
        for rows in (Subject.objects.filter(patient=number), Chapter.objects.filter(patient=number),
                     Memory.objects.filter(chapter__patient=number),
                     TrainingJob.objects.filter(subject__patient=number),
                     GenerationJob.objects.filter(memory__chapter__patient=number)):
            list(rows.select_for_update().values_list("pk", flat=True))
        contents = contents_of(patient)
        _stop_jobs(number)
        trainings = list(TrainingJob.objects.filter(subject__patient=number).values_list("pk", flat=True))
        audit.record(by, patient, AuditEvent.Action.ERASED, contents.summary())
        token = _erasing.set(True)
        try:
            patient.delete()  # the cascade; the audit trail keeps its events (patient set to NULL)
        finally:
            _erasing.reset(token)
        transaction.on_commit(lambda: remove_files(number, trainings))
    return contents


def _stop_jobs(patient_id) -> None:
    """Queued and running jobs end now, and their claims with them: a worker holding one can write nothing more
    (every write it makes is conditional on its `run_token`), and stops at its next heartbeat."""
    from generation.models import GenerationJob, JobState, TrainingJob

    now = timezone.now()
    for rows in (TrainingJob.objects.filter(subject__patient=patient_id),
                 GenerationJob.objects.filter(memory__chapter__patient=patient_id)):
        rows.filter(state__in=[JobState.QUEUED, JobState.RUNNING]).update(
            state=JobState.CANCELLED, cancel_requested=True, finished_at=now, run_token=None)


def remove_files(patient_id: int, training_ids) -> None:
    """The patient's storage folder, the working folders of its trainings, and this host's copies of its
    adapters (the worker's cache for remote storage)."""
    from generation.jobs import training_dir
    from generation.models import TrainingJob

    try:
        delete_folder(f"patients/{patient_id}")
    except Exception:  # the rows are gone already; say exactly what is left, for an administrator
        log.exception("Could not remove every file under patients/%s/ of an erased book", patient_id)
    for pk in training_ids:
        shutil.rmtree(training_dir(TrainingJob(pk=pk)), ignore_errors=True)
    shutil.rmtree(Path(settings.VAR_DIR) / "cache" / "patients" / str(patient_id), ignore_errors=True)


def delete_folder(folder: str, storage=None) -> None:
    """Every file under `folder`, through the storage API (so it works on S3 too: list, then delete)."""
    storage = storage or default_storage
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(f"{folder}/{name}")
    for name in folders:
        delete_folder(f"{folder}/{name}", storage)
    if isinstance(storage, FileSystemStorage):  # the empty folders too
        shutil.rmtree(storage.path(folder), ignore_errors=True)
