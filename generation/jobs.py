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
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from lifebook.models import Memory, MemoryImage, Subject, patient_file_path

from . import calls, notices
from .calls import GENERATION_DEFAULTS  # noqa: F401  (the defaults are part of this module's API)
from .engine.checks import MASK_MODES, MASKED_CONTENT
from .engine.errors import EngineInputError
from .models import FINISHED, GenerationJob, JobState, TrainingCheckpoint, TrainingJob
from .planning import NEGATIVE_PROMPT, plan_for
from .recipes import generation_defaults, training_parameters

log = logging.getLogger(__name__)

Kind = GenerationJob.Kind
TRAINING_OPTIONS = {"steps": (1, 100_000)}
# What a caregiver or integrator may set for a picture, with the range each may take (the API's schema
# shows the same ranges). The engine's own checks then run on the whole request (generation.calls).
GENERATION_LIMITS = {
    "steps": (1, 150), "guidance": (0.0, 30.0), "width": (64, 2048), "height": (64, 2048),
    "seed": (0, 2**32 - 1), "num_images": (1, 8), "strength": (0.01, 1.0),
    "mask_blur": (0, 64), "padding": (0, 512), "layout_fraction": (0.0, 0.9),
}
WHOLE = {"steps", "width", "height", "seed", "num_images", "mask_blur", "padding"}
GENERATION_CHOICES = {"mask_mode": MASK_MODES, "masked_content": MASKED_CONTENT}
GENERATION_FLAGS = {"only_masked", "face_pass"}
TEXT_LIMIT = 1000  # characters, for the extra words and the negative prompt
INPAINT_ONLY = {"mask_mode", "masked_content", "mask_blur", "only_masked", "padding"}
# Which settings each kind of picture uses; any other is refused, never silently dropped.
KIND_SETTINGS = {
    Kind.TXT2IMG: {"steps", "guidance", "width", "height", "seed", "num_images", "face_pass"},
    Kind.COMPOSE: {"steps", "guidance", "width", "height", "seed", "num_images", "face_pass", "layout_fraction"},
    # layout_fraction: only when the sketch has several learned subjects (then it is composed)
    Kind.IMG2IMG: {"steps", "guidance", "width", "height", "seed", "num_images", "strength", "face_pass",
                   "layout_fraction"},
    Kind.INPAINT: {"steps", "guidance", "width", "height", "seed", "num_images", "strength"} | INPAINT_ONLY,
}


class JobRefused(Exception):
    """The request cannot become a job; `message` says why in plain words, and `field` names the setting
    or upload it is about (None: the request as a whole)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


# --- submitting -----------------------------------------------------------------


def submit_training(subject: Subject, *, user=None, steps: int | None = None) -> TrainingJob:
    """Checks what the trainer would refuse (its options, the subject's token), so a caregiver hears
    about it now, not after the job has waited for a worker."""
    from .engine.checks import check_token
    from .engine.options import TrainingOptions

    photo_count = subject.photos.count()
    if photo_count == 0:
        raise JobRefused(_("Add photos of %(name)s first: about 10 varied photos work best.") % {"name": subject.name})
    given = {}
    if steps is not None:
        given["steps"] = _number("steps", steps, *TRAINING_OPTIONS["steps"], whole=True)
    parameters = training_parameters(given)  # the demo recipe, with the demo model only
    try:
        TrainingOptions(**{**settings.LIFEBOOK_TRAINING_OPTIONS, **parameters}).check()
        check_token(calls.tokenizer(), subject.token, subject.class_word)
    except TypeError as exc:  # LIFEBOOK_TRAINING_OPTIONS names an option the trainer does not have
        log.error("LIFEBOOK_TRAINING_OPTIONS is wrong: %s", exc)
        raise JobRefused(_("Training is not set up correctly on this server (LIFEBOOK_TRAINING_OPTIONS: "
                           "%(problem)s). An administrator needs to correct it.") % {"problem": exc})
    except EngineInputError as exc:
        raise JobRefused(str(exc))
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(subject=subject, created_by=user, parameters=parameters)
            transaction.on_commit(lambda: dispatch(job))
    except IntegrityError:
        raise JobRefused(_("%(name)s is already being trained; wait for it to finish or cancel it.")
                         % {"name": subject.name})
    return job


def submit_generation(memory: Memory, *, kind: str = Kind.TXT2IMG, user=None, prompt: str = "",
                      negative_prompt: str | None = None, source_image: MemoryImage | None = None,
                      source_upload=None, mask_upload=None, inpaint_subject: Subject | None = None,
                      **settings_given) -> GenerationJob:
    """Checks everything a worker would refuse, with the engine's own checks on the very call the
    worker will make, so a caregiver hears about it now, not later. A refused request stores nothing.

    `settings_given`: the GENERATION_LIMITS numbers, mask_mode, masked_content and only_masked; None
    means "not given"."""
    if kind not in Kind.values:
        raise JobRefused(_("Unknown kind of picture %(kind)r; choose one of %(kinds)s.")
                         % {"kind": kind, "kinds": ", ".join(Kind.values)}, "kind")
    plan = plan_for(memory)
    if not plan.scene:
        raise JobRefused(_("Describe the memory first: the picture is drawn from its description."))
    if kind == Kind.TXT2IMG and plan.uses_compose:
        kind = Kind.COMPOSE  # several learned subjects: each drawn in its own region, so they stay themselves
    if kind == Kind.COMPOSE and not plan.uses_compose:
        raise JobRefused(_("A picture of several loved ones together needs two of them whom Lifebook has learned; "
                           "make the picture from the description instead."), "kind")
    given = {name: value for name, value in settings_given.items() if value is not None}
    known = set(GENERATION_LIMITS) | set(GENERATION_CHOICES) | GENERATION_FLAGS
    unknown = sorted(set(given) - known)
    if unknown:
        raise JobRefused(_("Unknown setting(s): %(names)s.") % {"names": ", ".join(unknown)}, unknown[0])
    for name in sorted(given):
        if name not in KIND_SETTINGS[kind] or (name == "layout_fraction" and not plan.uses_compose):
            raise JobRefused(_not_for_kind(name, kind), name)
    parameters = generation_defaults(kind)  # the demo recipe's, with the demo model
    for name, value in given.items():
        parameters[name] = _setting(name, value)
    for side in ("width", "height"):
        if side in given and parameters[side] % 8:
            raise JobRefused(_("The %(side)s must be a multiple of 8 pixels, not %(value)s.")
                             % {"side": side, "value": parameters[side]}, side)
    parameters["prompt"] = _text("prompt", prompt, _("The extra description"))
    parameters["negative_prompt"] = (NEGATIVE_PROMPT if negative_prompt is None
                                     else _text("negative_prompt", negative_prompt, _("The negative prompt")))
    source, mask = _inputs(memory, kind, source_image, source_upload, mask_upload, inpaint_subject)

    job = GenerationJob(memory=memory, kind=kind, created_by=user, parameters=parameters,
                        source_image=source_image, inpaint_subject=inpaint_subject)
    try:
        calls.check(calls.call_for(job, plan=plan, source=source, mask=mask), calls.tokenizer())
    except EngineInputError as exc:
        raise JobRefused(str(exc))

    patient_id = memory.chapter.patient_id
    saved = []
    try:  # the files only now, once nothing can refuse the job: a refusal leaves no file
        with transaction.atomic():
            if source_upload is not None:
                job.source_file.name = _store_png(source, patient_id, memory.pk, "source", saved)
            if mask_upload is not None:
                job.mask_file.name = _store_png(mask, patient_id, memory.pk, "mask", saved)
            job.save()
            transaction.on_commit(lambda: dispatch(job))
    except BaseException:
        for name in saved:
            default_storage.delete(name)
        raise
    return job


def _not_for_kind(name, kind) -> str:
    if name == "layout_fraction":
        return _("Only a picture of several learned loved ones together uses layout_fraction.")
    if name == "face_pass":
        return _("Repainting a part keeps the faces as they are, so face_pass cannot be set for it.")
    if name in INPAINT_ONLY:
        return _("Only repainting a part of a picture (inpaint) uses %(name)s.") % {"name": name}
    if name == "strength":
        return _("Only a picture made from a sketch or another picture (img2img), or a repaint (inpaint), "
                 "uses strength: a picture from the description starts from nothing.")
    return _("%(name)s cannot be set for this kind of picture (%(kind)s).") % {"name": name, "kind": kind}


def _setting(name, value):
    if name in GENERATION_CHOICES:
        if value not in GENERATION_CHOICES[name]:
            if name == "mask_mode":
                raise JobRefused(_("Choose whether to repaint what you painted or everything else."), name)
            raise JobRefused(_("%(name)s must be one of %(choices)s, not %(value)r.")
                             % {"name": name, "choices": ", ".join(GENERATION_CHOICES[name]), "value": value}, name)
        return value
    if name in GENERATION_FLAGS:
        if not isinstance(value, bool):
            raise JobRefused(_("%(name)s must be true or false, not %(value)r.") % {"name": name, "value": value}, name)
        return value
    low, high = GENERATION_LIMITS[name]
    return _number(name, value, low, high, whole=name in WHOLE)


def _text(name, value, what) -> str:
    if not isinstance(value, str):
        raise JobRefused(_("%(what)s must be words, not %(value)r.") % {"what": what, "value": value}, name)
    if len(value) > TEXT_LIMIT:
        raise JobRefused(_("%(what)s is too long: keep it under %(limit)s characters.")
                         % {"what": what, "limit": TEXT_LIMIT}, name)
    return value.strip()


def _inputs(memory, kind, source_image, source_upload, mask_upload, inpaint_subject):
    """The picture (or sketch) to start from and the painted mask, decoded and checked, in memory: the
    engine's checks need them, and nothing is stored until the whole request passes."""
    starts_from_picture = kind in (Kind.IMG2IMG, Kind.INPAINT)
    for name, value in (("source_image", source_image), ("source_upload", source_upload),
                        ("mask_upload", mask_upload), ("inpaint_subject", inpaint_subject)):
        if value is None:
            continue
        if name == "source_upload" and kind != Kind.IMG2IMG:
            raise JobRefused(_("Only a picture made from a sketch (img2img) starts from an uploaded drawing."), name)
        if name in ("mask_upload", "inpaint_subject") and kind != Kind.INPAINT:
            raise JobRefused(_("Only repainting a part of a picture (inpaint) uses %(name)s.") % {"name": name}, name)
        if name == "source_image" and not starts_from_picture:
            raise JobRefused(_("A picture made from the description starts from nothing: choose img2img or "
                               "inpaint to start from a picture."), name)
    if source_image is not None and source_image.memory_id != memory.pk:
        raise JobRefused(_("That picture belongs to another memory."), "source_image")
    if kind == Kind.IMG2IMG:
        if source_image is None and source_upload is None:
            raise JobRefused(_("Choose a picture or upload a sketch to start from."))
        if source_image is not None and source_upload is not None:
            raise JobRefused(_("Start from a picture or from an uploaded sketch, not both."), "source_upload")
        if source_upload is not None:
            return _read_sketch(source_upload), None
        return _open_picture(source_image), None
    if kind == Kind.INPAINT:
        if source_image is None or mask_upload is None:
            raise JobRefused(_("Choose the picture to repaint and paint over the part to change."))
        if inpaint_subject is not None and inpaint_subject.patient_id != memory.chapter.patient_id:
            raise JobRefused(_("That person or thing is not in this book."), "inpaint_subject")
        picture = _open_picture(source_image)
        return picture, _read_mask(mask_upload, picture.size)
    return None, None


def _open_picture(picture: MemoryImage):
    from PIL import Image

    try:
        with picture.image.open("rb") as handle, Image.open(handle) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError, SyntaxError):
        log.exception("Memory picture %s could not be read", picture.pk)
        raise JobRefused(_("That picture could not be read; choose another one."), "source_image")


def _decode(upload, field):
    from lifebook.uploads import UploadRejected, decode_upload

    try:
        return decode_upload(upload)
    except UploadRejected as exc:  # the same words as every other upload, on the web and in the API
        raise JobRefused(exc.message, field)


def _read_sketch(upload):
    """A sketch from the browser or a file, checked like every upload; a transparent canvas is paper."""
    from PIL import Image

    image = _decode(upload, "source_upload")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        canvas = Image.new("RGB", image.size, "white")
        canvas.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = canvas
    image = image.convert("RGB")
    if min(image.size) < 64:
        raise JobRefused(_("The sketch is too small (%(width)s×%(height)s); draw it at least 64 pixels.")
                         % {"width": image.width, "height": image.height}, "source_upload")
    return image


def _read_mask(upload, size):
    """A painted mask, checked like every upload: strokes on a transparent canvas (the alpha is the
    mask), or white on black."""
    image = _decode(upload, "mask_upload")
    image = image.getchannel("A") if "A" in image.getbands() else image.convert("L")
    if image.size != tuple(size):
        raise JobRefused(_("The painted mask is %(width)s×%(height)s but the picture is %(picture_width)s×"
                           "%(picture_height)s; paint it on the picture itself.")
                         % {"width": image.width, "height": image.height, "picture_width": size[0],
                            "picture_height": size[1]}, "mask_upload")
    if image.point(lambda v: 255 if v >= 128 else 0).getbbox() is None:
        raise JobRefused(_("The mask is empty: paint over the part of the picture to change."), "mask_upload")
    return image


def _store_png(image, patient_id, memory_id, what, saved) -> str:
    """A checked sketch or mask, kept as PNG under the patient (lossless: the worker reads these pixels)."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    name = default_storage.save(patient_file_path(patient_id, f"memories/{memory_id}/{what}", "png"),
                                ContentFile(buffer.getvalue()))
    saved.append(name)
    return name


def _number(name, value, low, high, *, whole):
    if isinstance(value, bool):  # True is 1 to Python, not to a caregiver
        raise JobRefused(_("%(name)s must be a number, not %(value)r.") % {"name": name, "value": value}, name)
    try:
        number = int(value) if whole else float(value)
    except (TypeError, ValueError, OverflowError):
        kind = _("a whole number") if whole else _("a number")
        raise JobRefused(_("%(name)s must be %(kind)s, not %(value)r.") % {"name": name, "kind": kind, "value": value},
                         name)
    if whole and isinstance(value, float) and not value.is_integer():
        raise JobRefused(_("%(name)s must be a whole number, not %(value)r.") % {"name": name, "value": value}, name)
    if not low <= number <= high:
        raise JobRefused(_("%(name)s must be from %(low)s to %(high)s, not %(value)r.")
                         % {"name": name, "low": low, "high": high, "value": value}, name)
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
        cleanup_cancelled(job)
        notices.job_ended(job)
        return JobState.CANCELLED
    if model.objects.filter(pk=job.pk, state=JobState.RUNNING).update(cancel_requested=True):
        return JobState.RUNNING
    return model.objects.values_list("state", flat=True).get(pk=job.pk)


def retry(job) -> bool:
    """Run a failed or cancelled job again (a training resumes from its last checkpoint). False when it
    cannot run: not failed or cancelled, another training of the subject is active, or a picture job whose
    uploaded sketch or painted mask was removed when it stopped (see remove_inputs): that one is made
    again from the memory's page."""
    model = type(job)
    if isinstance(job, GenerationJob) and not has_its_inputs(job):
        return False
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
                    notices.job_ended(job)
                continue
            if job.attempts >= settings.LIFEBOOK_JOB_MAX_ATTEMPTS:
                with transaction.atomic():
                    failed = model.objects.filter(pk=job.pk, state=JobState.RUNNING, run_token=job.run_token).update(
                        state=JobState.FAILED, finished_at=now, run_token=None,
                        error=f"The picture worker stopped {job.attempts} times while working on this. "
                              "An administrator can look at the workers and retry it.")
                    if failed:
                        remove_inputs(job)
                        notices.job_ended(job)
                counts["failed"] += failed
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
    """A cancelled job leaves nothing behind: no checkpoints, no working folder, no uploaded sketch or mask."""
    if isinstance(job, TrainingJob):
        for checkpoint in TrainingCheckpoint.objects.filter(job=job):
            delete_checkpoint(checkpoint)
        shutil.rmtree(training_dir(job), ignore_errors=True)
    else:
        remove_inputs(job)


CANNOT_RETRY = gettext_noop(" Its uploaded drawing or painted area has been removed with it, so it cannot be "
                            "retried: make it again from the memory's page.")


def remove_inputs(job) -> int:
    """A picture job that failed or was cancelled keeps no uploaded sketch or mask: they are only inputs,
    and a caregiver's drawing must not outlive the job that needed it. The row forgets them first (so it
    never names a missing file), then the files go once that is committed; a failed job's error says it
    cannot be retried. Callers that set the final state do both in one transaction, so no reader sees a
    failed job that still names its inputs.
    Only for a job in a final state other than success. Returns how many files were removed."""
    row = (GenerationJob.objects.filter(pk=job.pk, state__in=[JobState.FAILED, JobState.CANCELLED])
           .values("source_file", "mask_file", "state").first())
    if row is None:
        return 0
    names = [name for name in (row["source_file"], row["mask_file"]) if name]
    if not names:
        return 0
    GenerationJob.objects.filter(pk=job.pk, state=row["state"]).update(source_file="", mask_file="")
    if row["state"] == JobState.FAILED:
        GenerationJob.objects.filter(pk=job.pk, state=JobState.FAILED).update(
            error=Concat(F("error"), Value(_(CANNOT_RETRY))))
    transaction.on_commit(lambda: [default_storage.delete(name) for name in names])
    return len(names)


def has_its_inputs(job: GenerationJob) -> bool:
    """Whether the job still has what it starts from: a repaint needs its picture and mask, a picture
    from a sketch its sketch or picture."""
    row = GenerationJob.objects.filter(pk=job.pk).values("kind", "source_image", "source_file", "mask_file").first()
    if row is None:
        return False
    if row["kind"] == Kind.INPAINT:
        return bool(row["source_image"] and row["mask_file"])
    if row["kind"] == Kind.IMG2IMG:
        return bool(row["source_image"] or row["source_file"])
    return True


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
