"""The worker side of a job: claim the row, run the engine, store the files, finish the row.

Runs inside a Celery worker process. The engine and the trainer are created on first use in that
process (CUDA is never touched in a parent that forks) and kept for the next job, with the engine's
LRU of adapters. Every write to a job row is conditional on this worker's claim (`run_token`), so
after the sweeper has handed a job to another worker, this one can no longer change it.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import os
import shutil
import socket
import threading
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image

from lifebook.models import MemoryImage, patient_file_path

from . import calls, jobs, notices
from .engine import Cancelled, EngineInputError, EngineOptions
from .models import GenerationJob, JobState, TrainingCheckpoint, TrainingJob

log = logging.getLogger(__name__)


def engine_options() -> EngineOptions:
    return EngineOptions.from_env(base_model=settings.LIFEBOOK_BASE_MODEL,
                                  models_dir=Path(settings.LIFEBOOK_MODELS_DIR))


def torch_threads() -> int:
    """How many intra-op threads torch gets in this worker process: the setting, or an equal share of the
    cores this process may run on among the worker processes."""
    if settings.LIFEBOOK_TORCH_THREADS:
        return max(1, settings.LIFEBOOK_TORCH_THREADS)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, settings.LIFEBOOK_WORKER_PROCESSES))


@functools.cache
def use_torch_threads() -> int:
    """Once per process, before the first job (the worker's start calls it; so do the engine and trainer)."""
    import torch

    torch.set_num_threads(torch_threads())
    count = torch.get_num_threads()
    log.info("Torch uses %s thread(s) in this worker process.", count)
    return count


@functools.cache
def get_engine():
    """This process's one engine: loaded on its first job, warm (with its adapters) for the next."""
    from .engine import Engine
    from .engine.logs import quiet_library_logs

    use_torch_threads()
    quiet_library_logs()
    return Engine(engine_options())


@functools.cache
def get_trainer():
    """This process's one trainer (its own copy of the base model), kept for the next training."""
    from .engine.logs import quiet_library_logs
    from .engine.training import Trainer

    use_torch_threads()
    quiet_library_logs()
    return Trainer(engine_options())


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LostClaim(Exception):
    """The job was given to another worker (or finished) while this one ran it."""


class Heartbeat(threading.Thread):
    """Beside the work: every `interval` seconds, prove this worker is alive, write the latest progress,
    and read the cancel flag. So a cancel is seen within a second, and the GPU loop never waits on
    the database."""

    def __init__(self, job, interval: float | None = None):
        super().__init__(daemon=True, name=f"heartbeat-{job.pk}")
        self.model, self.pk, self.token = type(job), job.pk, job.run_token
        self.interval = interval or settings.LIFEBOOK_HEARTBEAT_SECONDS
        self.progress: dict = {}
        self.step = 0  # the latest step the work reported
        self.cancel_seen_at_step: int | None = None
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()

    def report(self, **fields) -> None:
        with self._lock:
            self.progress.update(fields)
            self.step = fields.get("step", self.step)

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set()

    def run(self) -> None:
        try:
            while not self._finished.wait(self.interval):
                self.beat()
        finally:
            connection.close()  # this thread's own connection

    def beat(self) -> None:
        with self._lock:
            fields, self.progress = self.progress, {}
        if isinstance(fields.get("preview"), Image.Image):
            fields["preview"] = _data_url(fields["preview"])
        try:
            updated = self.model.objects.filter(pk=self.pk, state=JobState.RUNNING, run_token=self.token).update(
                heartbeat_at=timezone.now(), **fields)
            if not updated:
                self.lost.set()
            elif self.model.objects.filter(pk=self.pk, cancel_requested=True).exists() and not self.cancelled.is_set():
                with self._lock:  # no step can be reported between reading it and the work seeing the flag
                    self.cancel_seen_at_step = self.step
                    self.cancelled.set()
                log.info("%s %s: cancel seen at step %s.", self.model.__name__, self.pk, self.cancel_seen_at_step)
        except Exception:  # the database away for a moment: try again next beat
            log.exception("Heartbeat for %s %s failed", self.model.__name__, self.pk)
            with self._lock:
                self.progress = {**fields, **self.progress}

    def stop(self) -> None:
        self._finished.set()
        self.join(timeout=10)
        self.beat()  # the last progress
        if self.cancelled.is_set():  # what the tests check: the work stops within one step of seeing a cancel
            log.info("%s %s: stopped at step %s after the cancel seen at step %s.", self.model.__name__, self.pk,
                     self.step, self.cancel_seen_at_step)


def claim(model, job_id):
    """queued -> running, only if still queued: a duplicate message, or a second worker, gets None."""
    token = uuid.uuid4()
    now = timezone.now()
    if not model.objects.filter(pk=job_id, state=JobState.QUEUED, cancel_requested=False).update(
            state=JobState.RUNNING, run_token=token, worker=worker_name(), started_at=now, heartbeat_at=now,
            attempts=F("attempts") + 1, error=""):
        return None
    return model.objects.get(pk=job_id)


def finish(job, state, **fields) -> bool:
    """running -> a final state, only while this worker's claim holds; the starter is told (generation.notices)."""
    ended = bool(type(job).objects.filter(pk=job.pk, state=JobState.RUNNING, run_token=job.run_token).update(
        state=state, finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields))
    if ended:
        notices.job_ended(job)
    return ended


def _fail(job, exc) -> bool:
    if isinstance(exc, EngineInputError):
        message = str(exc)
    else:
        log.exception("%s %s failed", type(job).__name__, job.pk)
        message = (f"The picture worker hit an unexpected problem ({type(exc).__name__}). "
                   "An administrator can see the details in the worker's log and retry it.")
    return finish(job, JobState.FAILED, error=message)


# --- training -------------------------------------------------------------------


def run_training_job(job_id: int) -> str:
    job = claim(TrainingJob, job_id)
    if job is None:
        return "not claimed"
    heartbeat = Heartbeat(job)
    heartbeat.start()
    folder = jobs.training_dir(job)
    try:
        from .engine.training import TrainingOptions

        trainer = get_trainer()
        subject = job.subject
        photos = []
        for photo in subject.photos.all():
            with photo.image.open("rb") as handle, Image.open(handle) as image:
                photos.append((f"photo-{photo.pk}.jpg", image.convert("RGB")))

        report_shown = []

        def progress(update):
            if not report_shown and (folder / "report.json").exists():  # the photo advice, before training ends
                heartbeat.report(photo_report=json.loads((folder / "report.json").read_text()))
                report_shown.append(True)
            if update.stage == "checkpoint":
                store_checkpoint(job, update.checkpoint, from_demo_model=trainer.is_demo_model)
            heartbeat.report(step=update.step, total_steps=update.total, stage=update.stage,
                             loss=update.loss, eta_seconds=update.eta_seconds)

        options = TrainingOptions(**{**settings.LIFEBOOK_TRAINING_OPTIONS, **job.parameters})
        result = trainer.train(photos, token=subject.token, class_word=subject.class_word,
                               is_person=subject.kind == subject.Kind.PERSON, out_dir=folder, options=options,
                               progress=progress, cancel=heartbeat.should_stop)
        final = store_checkpoint(job, result.checkpoints[-1], from_demo_model=trainer.is_demo_model)
        TrainingJob.objects.filter(pk=job.pk, run_token=job.run_token).update(
            photo_report=result.prepared.report.to_dict(), resumed_from_step=result.resumed_from)
    except Cancelled:
        heartbeat.stop()
        if heartbeat.lost.is_set():
            return "erased" if _forget_if_erased(job, folder) else "lost"
        if finish(job, JobState.CANCELLED):
            jobs.cleanup_cancelled(job)
        return "cancelled"
    except Exception as exc:
        heartbeat.stop()
        if _forget_if_erased(job, folder):  # e.g. storing a checkpoint of a job that no longer exists
            return "erased"
        _fail(job, exc)
        return "failed"
    heartbeat.stop()
    done = finish(job, JobState.SUCCEEDED, chosen_checkpoint=final, chosen_at=timezone.now(),
                  adapter=final.adapter.name, adapter_size=result.size_bytes, step=result.steps,
                  total_steps=result.steps, stage="done")
    if done:
        shutil.rmtree(folder, ignore_errors=True)  # the resumable states; weights and samples are stored
        return "succeeded"
    return "erased" if _forget_if_erased(job, folder) else "lost"


def _forget_if_erased(job, folder) -> bool:
    """True when the job's row is gone (its book was erased, lifebook.erase): its working folder, which the
    trainer may have written to after the erase removed it, goes too. A job merely given to another worker keeps
    its folder, since that worker resumes from it."""
    if TrainingJob.objects.filter(pk=job.pk).exists():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def store_checkpoint(job: TrainingJob, checkpoint, *, from_demo_model: bool) -> TrainingCheckpoint:
    """Copy a checkpoint's adapter and samples into storage (once: a resumed run finds it there)."""
    existing = TrainingCheckpoint.objects.filter(job=job, step=checkpoint.step).first()
    if existing:
        return existing
    folder = f"subjects/{job.subject_id}/adapters"
    saved = []
    try:
        for sample in checkpoint.samples:
            saved.append(default_storage.save(patient_file_path(job.subject.patient_id, folder, "png"),
                                              ContentFile(sample.read_bytes())))
        row = TrainingCheckpoint(job=job, step=checkpoint.step, loss=checkpoint.loss, samples=list(saved),
                                 from_demo_model=from_demo_model)
        row.adapter.save("lora.safetensors", ContentFile(checkpoint.lora_path.read_bytes()), save=False)
        saved.append(row.adapter.name)
        row.save()
    except Exception:
        for name in saved:
            default_storage.delete(name)
        raise
    return row


# --- generation -------------------------------------------------------------------


def run_generation_job(job_id: int) -> str:
    job = claim(GenerationJob, job_id)
    if job is None:
        return "not claimed"
    heartbeat = Heartbeat(job)
    heartbeat.start()
    try:
        engine = get_engine()

        def progress(update, *, picture=0, pictures=1):  # cheap: the heartbeat thread encodes only the preview
            heartbeat.report(step=update.step, total_steps=update.total, stage=update.stage, preview=update.preview,
                             picture=picture, pictures=pictures)

        result = generate(engine, job, progress=progress, cancel=heartbeat.should_stop)
    except Cancelled:
        heartbeat.stop()
        if heartbeat.lost.is_set():
            return "lost"
        with transaction.atomic():  # the final state and the removed inputs are seen together
            if finish(job, JobState.CANCELLED):
                jobs.cleanup_cancelled(job)  # its uploaded sketch or mask
        return "cancelled"
    except Exception as exc:
        heartbeat.stop()
        with transaction.atomic():  # no one sees a failed job that still names its inputs
            if _fail(job, exc):
                jobs.remove_inputs(job)  # a failed job keeps no uploaded sketch or mask (see jobs.retry)
        return "failed"
    heartbeat.stop()
    return "succeeded" if store_results(job, result) else "lost"


def generate(engine, job: GenerationJob, *, progress, cancel):
    """The memory, its subjects and the job's settings, as one engine call (the one submission checked)."""
    source = mask = None
    if job.kind == GenerationJob.Kind.IMG2IMG and (job.source_file or job.source_image):
        source = _open(job.source_file) if job.source_file else _open(job.source_image.image)
    elif job.kind == GenerationJob.Kind.INPAINT:
        source = _open(job.source_image.image) if job.source_image else None
        mask = _open(job.mask_file).convert("L") if job.mask_file else None
    call = calls.call_for(job, source=source, mask=mask, adapter_file=lambda checkpoint: _local(checkpoint.adapter))
    method = getattr(engine, call.operation)
    if call.repeat == 1:  # all its pictures in one batch, made together (picture 0: no "picture 2 of 4")
        together = functools.partial(progress, picture=0, pictures=call.kwargs.get("num_images", 1))
        return method(**call.kwargs, progress=together, cancel=cancel)
    seed = call.kwargs["seed"]
    return _merge([method(**{**call.kwargs, "seed": None if seed is None else (seed + i) % 2**32},
                          progress=functools.partial(progress, picture=i + 1, pictures=call.repeat), cancel=cancel)
                   for i in range(call.repeat)])


def store_results(job: GenerationJob, result) -> bool:
    """Files first, then rows and the state change in one transaction: exactly one set of results, or none."""
    source = {GenerationJob.Kind.IMG2IMG: MemoryImage.Source.FROM_SKETCH,
              GenerationJob.Kind.INPAINT: MemoryImage.Source.INPAINTED}.get(job.kind, MemoryImage.Source.GENERATED)
    rows = []
    for index, (picture, seed) in enumerate(zip(result.images, result.seeds)):
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        row = MemoryImage(memory_id=job.memory_id, source=source, seed=seed, from_demo_model=result.is_demo_model,
                          parameters={**result.parameters, "seed": seed, "job": job.pk, "stages": result.stages},
                          parent=job.source_image if job.kind == GenerationJob.Kind.INPAINT else None,
                          created_by_id=job.created_by_id, width=picture.width, height=picture.height)
        row.image.save(f"picture-{index}.png", ContentFile(buffer.getvalue()), save=False)
        rows.append(row)
    try:
        with transaction.atomic():
            if not finish(job, JobState.SUCCEEDED, stage="done", step=F("total_steps")):
                raise LostClaim()
            for row in rows:
                row.save()
            job.results.add(*rows)
    except BaseException as exc:
        for row in rows:
            default_storage.delete(row.image.name)
        if isinstance(exc, LostClaim):
            return False
        raise  # the job stays running; the sweeper gives it back to the queue
    return True


def _merge(results):
    first = results[0]
    first.images = [r.image for r in results]
    first.seeds = [r.seed for r in results]
    return first


def _local(field_file) -> Path:
    """The engine reads files from disk: on the filesystem storage that is the file itself; on remote
    storage a cached copy (adapter files never change under a name)."""
    try:
        return Path(field_file.path)
    except NotImplementedError:
        cache = Path(settings.VAR_DIR) / "cache" / field_file.name
        if not cache.exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            with field_file.open("rb") as handle:
                cache.write_bytes(handle.read())
        return cache


def _open(field_file) -> Image.Image:
    with field_file.open("rb") as handle, Image.open(handle) as image:
        image.load()
        return image.copy()


def _data_url(preview: Image.Image) -> str:
    buffer = io.BytesIO()
    preview.convert("RGB").save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
