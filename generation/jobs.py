"""Job actions for the web side, the API, the admin and the commands: submit, cancel, retry, and the
sweeper that keeps jobs moving when a broker or a worker fails.

A job is a row first. It goes onto the queue only after the transaction commits (the worker must find
the row), and if the broker is unreachable then, the row stays queued without `dispatched_at`
and the sweeper sends it later. Nothing a caregiver asked for is lost.
"""

from __future__ import annotations

import io
import logging
import shutil
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from lifebook.models import Memory, MemoryImage, Subject, patient_file_path

from .models import FINISHED, GenerationJob, JobState, TrainingCheckpoint, TrainingJob
from .planning import plan_for

log = logging.getLogger(__name__)

TRAINING_OPTIONS = {"steps": (1, 100_000)}
# What a caregiver or integrator may set for a picture, with the range each may take.
GENERATION_LIMITS = {
    "steps": (1, 150), "guidance": (0.0, 30.0), "width": (64, 2048), "height": (64, 2048),
    "seed": (0, 2**32 - 1), "num_images": (1, 8), "strength": (0.01, 1.0),
}
# For inpaint: repaint what was painted, or everything but it (the engine's mask_mode).
MASK_MODES = ("masked", "not_masked")
GENERATION_DEFAULTS = {
    GenerationJob.Kind.TXT2IMG: dict(steps=20, guidance=8.0, width=512, height=512, num_images=4),
    GenerationJob.Kind.IMG2IMG: dict(steps=30, guidance=8.5, strength=0.75, num_images=4),
    GenerationJob.Kind.INPAINT: dict(steps=30, guidance=7.5, strength=0.75, num_images=4),
    GenerationJob.Kind.COMPOSE: dict(steps=40, guidance=14.5, width=512, height=512, num_images=1),
}


class JobRefused(Exception):
    """The request cannot become a job; `message` says why in plain words."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- submitting -----------------------------------------------------------------


def submit_training(subject: Subject, *, user=None, steps: int | None = None) -> TrainingJob:
    photo_count = subject.photos.count()
    if photo_count == 0:
        raise JobRefused(f"Add photos of {subject.name} first: about 10 varied photos work best.")
    parameters = {}
    if steps is not None:
        parameters["steps"] = _number("steps", steps, *TRAINING_OPTIONS["steps"], whole=True)
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(subject=subject, created_by=user, parameters=parameters)
            transaction.on_commit(lambda: dispatch(job))
    except IntegrityError:
        raise JobRefused(f"{subject.name} is already being trained; wait for it to finish or cancel it.")
    return job


def submit_generation(memory: Memory, *, kind: str = GenerationJob.Kind.TXT2IMG, user=None, prompt: str = "",
                      source_image: MemoryImage | None = None, source_upload=None, mask_upload=None,
                      inpaint_subject: Subject | None = None, mask_mode: str | None = None,
                      **numbers) -> GenerationJob:
    """Checks everything a worker would refuse, so a caregiver hears about it now, not later."""
    if kind not in GenerationJob.Kind.values:
        raise JobRefused(f"Unknown kind of picture {kind!r}; choose one of {', '.join(GenerationJob.Kind.values)}.")
    plan = plan_for(memory)
    if not plan.scene:
        raise JobRefused("Describe the memory first: the picture is drawn from its description.")
    if kind == GenerationJob.Kind.TXT2IMG and plan.uses_compose:
        kind = GenerationJob.Kind.COMPOSE  # two trained people: painted one at a time, so they stay themselves
    if kind == GenerationJob.Kind.COMPOSE and not plan.uses_compose:
        raise JobRefused("Painting people one at a time needs two people whom Lifebook has learned; "
                         "make the picture from the description instead.")
    unknown = set(numbers) - set(GENERATION_LIMITS)
    if unknown:
        raise JobRefused(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
    parameters = dict(GENERATION_DEFAULTS[kind])
    for name, value in numbers.items():
        if value is not None:
            low, high = GENERATION_LIMITS[name]
            parameters[name] = _number(name, value, low, high, whole=name not in ("guidance", "strength"))
    for side in ("width", "height"):
        if side in parameters and parameters[side] % 8:
            raise JobRefused(f"The {side} must be a multiple of 8 pixels, not {parameters[side]}.")
    if len(prompt) > 1000:
        raise JobRefused("The extra description is too long: keep it under 1000 characters.")
    parameters["prompt"] = prompt.strip()
    if source_image is not None and source_image.memory_id != memory.pk:
        raise JobRefused("That picture belongs to another memory.")
    if kind == GenerationJob.Kind.IMG2IMG and not (source_image or source_upload):
        raise JobRefused("Choose a picture or upload a sketch to start from.")
    if kind == GenerationJob.Kind.INPAINT:
        if source_image is None or mask_upload is None:
            raise JobRefused("Choose the picture to repaint and paint over the part to change.")
        if inpaint_subject is not None and inpaint_subject.patient_id != memory.chapter.patient_id:
            raise JobRefused("That person or thing is not in this book.")
        if mask_mode is not None:
            if mask_mode not in MASK_MODES:
                raise JobRefused("Choose whether to repaint what you painted or everything else.")
            parameters["mask_mode"] = mask_mode  # the runner passes parameters on to the engine's inpaint
    elif mask_mode is not None:
        raise JobRefused("Only repainting a part of a picture uses a painted area.")
    with transaction.atomic():
        job = GenerationJob(memory=memory, kind=kind, created_by=user, parameters=parameters,
                            source_image=source_image, inpaint_subject=inpaint_subject)
        patient_id = memory.chapter.patient_id
        saved = []
        try:
            if source_upload is not None:
                job.source_file.name = _store_png(source_upload, patient_id, memory.pk, "source", saved)
            if mask_upload is not None:
                job.mask_file.name = _store_png(mask_upload, patient_id, memory.pk, "mask", saved,
                                                size=(source_image.width, source_image.height))
            job.save()
        except Exception:
            for name in saved:
                default_storage.delete(name)
            raise
        transaction.on_commit(lambda: dispatch(job))
    return job


def _store_png(upload, patient_id, memory_id, what, saved, size=None) -> str:
    """A sketch or mask from the browser, checked like every upload, kept as PNG under the patient."""
    from PIL import Image

    from lifebook.uploads import UploadRejected, decode_upload

    try:
        image = decode_upload(upload)
    except UploadRejected as exc:
        raise JobRefused(exc.message)
    if what == "mask":
        # Strokes on a transparent canvas: the alpha is the mask; otherwise white means "repaint".
        image = image.getchannel("A") if "A" in image.getbands() else image.convert("L")
        if size and image.size != tuple(size):
            raise JobRefused(f"The painted mask is {image.width}×{image.height} but the picture is "
                             f"{size[0]}×{size[1]}; paint it on the picture itself.")
        if image.point(lambda v: 255 if v >= 128 else 0).getbbox() is None:
            raise JobRefused("The mask is empty: paint over the part of the picture to change.")
    else:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            canvas = Image.new("RGB", image.size, "white")  # a sketch on a transparent canvas is on paper
            canvas.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
            image = canvas
        image = image.convert("RGB")
        if min(image.size) < 64:
            raise JobRefused(f"The sketch is too small ({image.width}×{image.height}); draw it at least 64 pixels.")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    name = default_storage.save(patient_file_path(patient_id, f"memories/{memory_id}/{what}", "png"),
                                ContentFile(buffer.getvalue()))
    saved.append(name)
    return name


def _number(name, value, low, high, *, whole):
    try:
        number = int(value) if whole else float(value)
    except (TypeError, ValueError):
        raise JobRefused(f"{name} must be a {'whole ' if whole else ''}number, not {value!r}.")
    if whole and isinstance(value, float) and not value.is_integer():
        raise JobRefused(f"{name} must be a whole number, not {value!r}.")
    if not low <= number <= high:
        raise JobRefused(f"{name} must be from {low} to {high}, not {value!r}.")
    return number


# --- the queue ------------------------------------------------------------------


def dispatch(job) -> bool:
    """Put a queued job on its queue. False (and `dispatched_at` left empty) when the broker is down."""
    from . import tasks

    task = tasks.train if isinstance(job, TrainingJob) else tasks.generate
    try:
        # A short retry: a web request must not hang while the broker is away; the sweeper retries.
        task.apply_async(args=[job.pk], queue=job.QUEUE, retry=True,
                         retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5})
    except Exception as exc:  # kombu raises several kinds for "broker unreachable"
        log.warning("Could not queue %s %s (%s); the sweeper will send it later.", type(job).__name__, job.pk, exc)
        return False
    type(job).objects.filter(pk=job.pk, state=JobState.QUEUED).update(dispatched_at=timezone.now())
    return True


def cancel(job) -> str:
    """A queued job is cancelled at once; a running one is asked to stop (the worker stops within a step).
    Returns the state the caller should show."""
    model = type(job)
    now = timezone.now()
    if model.objects.filter(pk=job.pk, state=JobState.QUEUED).update(state=JobState.CANCELLED, finished_at=now,
                                                                       cancel_requested=True):
        return JobState.CANCELLED
    if model.objects.filter(pk=job.pk, state=JobState.RUNNING).update(cancel_requested=True):
        return JobState.RUNNING
    return model.objects.values_list("state", flat=True).get(pk=job.pk)


def retry(job) -> bool:
    """Run a failed or cancelled job again (a training resumes from its last checkpoint)."""
    model = type(job)
    try:
        with transaction.atomic():
            changed = model.objects.filter(pk=job.pk, state__in=[JobState.FAILED, JobState.CANCELLED]).update(
                state=JobState.QUEUED, error="", cancel_requested=False, dispatched_at=None, finished_at=None,
                run_token=None, worker="")
    except IntegrityError:  # another training of this subject is already active
        return False
    if changed:
        transaction.on_commit(lambda: dispatch(job))
    return bool(changed)


def choose_checkpoint(checkpoint: TrainingCheckpoint) -> None:
    """Use this checkpoint's adapter for the subject from now on."""
    TrainingJob.objects.filter(pk=checkpoint.job_id, state=JobState.SUCCEEDED).update(
        chosen_checkpoint=checkpoint, chosen_at=timezone.now())


# --- the sweeper ----------------------------------------------------------------


def sweep(*, stale_seconds: float | None = None, now=None) -> dict:
    """One pass: give stale running jobs back to the queue (or fail them after too many attempts), and
    send queued jobs that never reached the broker. Safe to run from several places at once."""
    now = now or timezone.now()
    stale_seconds = settings.LIFEBOOK_JOB_STALE_SECONDS if stale_seconds is None else stale_seconds
    counts = {"requeued": 0, "failed": 0, "dispatched": 0}
    stale_before = now - timedelta(seconds=stale_seconds)
    for model in (TrainingJob, GenerationJob):
        stale = model.objects.filter(state=JobState.RUNNING).filter(
            Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, started_at__lt=stale_before))
        for job in stale:
            if job.cancel_requested:
                if model.objects.filter(pk=job.pk, state=JobState.RUNNING, run_token=job.run_token).update(
                        state=JobState.CANCELLED, finished_at=now, run_token=None):
                    cleanup_cancelled(job)
                continue
            if job.attempts >= settings.LIFEBOOK_JOB_MAX_ATTEMPTS:
                counts["failed"] += model.objects.filter(pk=job.pk, state=JobState.RUNNING, run_token=job.run_token).update(
                    state=JobState.FAILED, finished_at=now, run_token=None,
                    error=f"The picture worker stopped {job.attempts} times while working on this. "
                          "An administrator can look at the workers and retry it.")
                continue
            counts["requeued"] += model.objects.filter(pk=job.pk, state=JobState.RUNNING, run_token=job.run_token).update(
                state=JobState.QUEUED, run_token=None, worker="", dispatched_at=None)
        grace = now - timedelta(seconds=settings.LIFEBOOK_DISPATCH_GRACE_SECONDS)
        lost = now - timedelta(seconds=settings.CELERY_VISIBILITY_TIMEOUT)
        # Never sent (broker down at submit, or given back above), or sent so long ago that the
        # message must be lost (a redelivered duplicate is harmless: claiming is conditional).
        waiting = model.objects.filter(state=JobState.QUEUED).filter(
            Q(dispatched_at__isnull=True, created_at__lt=grace) | Q(dispatched_at__isnull=True, attempts__gt=0)
            | Q(dispatched_at__lt=lost))
        for job in waiting:
            counts["dispatched"] += dispatch(job)
    return counts


# --- files ------------------------------------------------------------------------


def training_dir(job: TrainingJob) -> Path:
    """The trainer's working folder (checkpoint states for resuming). GPU hosts that should resume each
    other's trainings share it (LIFEBOOK_TRAINING_DIR on a shared disk)."""
    return Path(settings.LIFEBOOK_TRAINING_DIR) / f"job-{job.pk}"


def cleanup_cancelled(job) -> None:
    """A cancelled job leaves nothing behind: no checkpoints, no working folder, no uploaded mask."""
    if isinstance(job, TrainingJob):
        for checkpoint in TrainingCheckpoint.objects.filter(job=job):
            delete_checkpoint(checkpoint)
        shutil.rmtree(training_dir(job), ignore_errors=True)


def delete_checkpoint(checkpoint: TrainingCheckpoint) -> None:
    names = [checkpoint.adapter.name, *checkpoint.samples]
    checkpoint.delete()
    for name in names:
        if name:
            default_storage.delete(name)


def cleanup(*, retention_days: int | None = None, now=None) -> dict:
    """Remove what nobody will use: checkpoints not chosen (after the retention period), working folders
    of finished trainings, and stored adapter files no row points to."""
    now = now or timezone.now()
    days = settings.LIFEBOOK_CHECKPOINT_RETENTION_DAYS if retention_days is None else retention_days
    before = now - timedelta(days=days)
    counts = {"checkpoints": 0, "folders": 0, "orphans": 0}
    old = (TrainingCheckpoint.objects.filter(job__state__in=FINISHED, job__finished_at__lt=before)
           .exclude(pk__in=TrainingJob.objects.filter(chosen_checkpoint__isnull=False).values("chosen_checkpoint"))
           .select_related("job"))
    for checkpoint in old:
        if checkpoint.adapter.name == checkpoint.job.adapter.name:
            continue  # the job's final adapter: kept as long as the job
        delete_checkpoint(checkpoint)
        counts["checkpoints"] += 1
    root = Path(settings.LIFEBOOK_TRAINING_DIR)
    if root.is_dir():
        active = set(TrainingJob.objects.exclude(state__in=FINISHED).values_list("pk", flat=True))
        failed = set(TrainingJob.objects.filter(state=JobState.FAILED, finished_at__gte=before).values_list("pk", flat=True))
        for folder in root.glob("job-*"):
            try:
                pk = int(folder.name.removeprefix("job-"))
            except ValueError:
                continue
            if pk not in active and pk not in failed:  # a recent failure may be retried: keep its states
                shutil.rmtree(folder, ignore_errors=True)
                counts["folders"] += 1
    counts["orphans"] = _delete_orphaned_adapter_files(before)
    return counts


def _delete_orphaned_adapter_files(before) -> int:
    """Adapter and sample files under patients/*/subjects/*/adapters/ that no checkpoint names (left by a
    worker that died between writing a file and its row), once they are older than the retention."""
    known = set()
    for adapter, samples in TrainingCheckpoint.objects.values_list("adapter", "samples"):
        known.add(adapter)
        known.update(samples)
    known.update(TrainingJob.objects.exclude(adapter="").values_list("adapter", flat=True))
    deleted = 0
    try:
        patients = default_storage.listdir("patients")[0]
    except (FileNotFoundError, NotImplementedError):
        return 0
    for patient in patients:
        try:
            subjects = default_storage.listdir(f"patients/{patient}/subjects")[0]
        except FileNotFoundError:
            continue
        for subject in subjects:
            folder = f"patients/{patient}/subjects/{subject}/adapters"
            try:
                files = default_storage.listdir(folder)[1]
            except FileNotFoundError:
                continue
            for name in files:
                path = f"{folder}/{name}"
                if path not in known and default_storage.get_modified_time(path) < before:
                    default_storage.delete(path)
                    deleted += 1
    return deleted
