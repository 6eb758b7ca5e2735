"""Teaching Lifebook a subject, on the subject's page: start, follow (htmx polls a fragment), cancel, and
pick the checkpoint whose samples look most like them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from lifebook.subject_views import subject_for

from . import jobs, progress_words
from .models import GenerationJob, JobState, Notice, TrainingCheckpoint, TrainingJob
from .planning import adapter_for


def training_context(subject) -> dict:
    training = subject.training_jobs.order_by("-created_at", "-pk").first()
    checkpoints = list(training.checkpoints.all()) if training else []
    chosen = adapter_for(subject)
    active = bool(training and training.state in (JobState.QUEUED, JobState.RUNNING))
    chosen_place = None
    if chosen:  # "stage 3 of 6": where the checkpoint in use sits among its training's checkpoints
        steps = list(TrainingCheckpoint.objects.filter(job_id=chosen.job_id).values_list("step", flat=True))
        chosen_place = {"number": steps.index(chosen.step) + 1, "count": len(steps)}
    return {"training": training, "checkpoints": checkpoints, "chosen_checkpoint": chosen, "chosen_place": chosen_place,
            "training_active": active, "training_words": progress_words.training_words(training) if active else ""}


def _back(patient_id, subject_id):
    return redirect("subject_page", patient_id=patient_id, subject_id=subject_id)


@login_required
def training_status(request, patient_id, subject_id):
    subject = subject_for(request.user, patient_id, subject_id)
    return render(request, "generation/_training.html", {"subject": subject, **training_context(subject)})


@login_required
@require_POST
def training_start(request, patient_id, subject_id):
    subject = subject_for(request.user, patient_id, subject_id)
    try:
        jobs.submit_training(subject, user=request.user)
        messages.success(request, f"Lifebook is learning what {subject.name} looks like. This page shows the progress.")
    except jobs.JobRefused as exc:
        messages.error(request, exc.message)
    return _back(patient_id, subject_id)


@login_required
@require_POST
def training_cancel(request, patient_id, subject_id, job_id):
    subject = subject_for(request.user, patient_id, subject_id)
    job = get_object_or_404(TrainingJob, pk=job_id, subject=subject)
    if jobs.cancel(job) in (JobState.CANCELLED, JobState.RUNNING):
        messages.success(request, "Stopping. Nothing from this attempt is kept.")
    else:
        messages.info(request, "It had already finished.")
    return _back(patient_id, subject_id)


@login_required
@require_POST
def checkpoint_choose(request, patient_id, subject_id, checkpoint_id):
    subject = subject_for(request.user, patient_id, subject_id)
    checkpoint = get_object_or_404(TrainingCheckpoint, pk=checkpoint_id, job__subject=subject,
                                   job__state=JobState.SUCCEEDED)
    jobs.choose_checkpoint(checkpoint)
    messages.success(request, f"New pictures of {subject.name} will use the one you picked.")
    return _back(patient_id, subject_id)


# --- pictures for a memory ---------------------------------------------------------

# What the caregiver picks, and the words it adds to the picture's description.
STYLES = {
    "photo": ("Photo", "a realistic photo, natural light"),
    "painting": ("Soft painting", "a soft oil painting, warm colours"),
    "pencil": ("Pencil sketch", "a pencil sketch"),
    "watercolour": ("Watercolour", "a watercolour painting, soft colours"),
    "illustration": ("Illustration", "a gentle illustration"),
}


def generation_context(memory) -> dict:
    job = memory.generation_jobs.order_by("-created_at", "-pk").first()
    active = bool(job and job.state in (JobState.QUEUED, JobState.RUNNING))
    return {"job": job, "styles": [(key, label) for key, (label, _) in STYLES.items()],
            "job_active": active, "job_words": progress_words.pictures_words(job) if active else ""}


def _memory_back(patient_id, memory_id):
    return redirect("memory_page", patient_id=patient_id, memory_id=memory_id)


def _advanced(request) -> dict:
    """Only the Advanced settings someone filled in; generation.jobs checks their ranges."""
    values = {}
    for name in ("steps", "guidance", "seed"):
        raw = request.POST.get(name, "").strip()
        if raw:
            values[name] = raw
    if request.POST.get("faces_as_drawn"):
        values["face_pass"] = False
    return values


@login_required
@require_POST
def memory_generate(request, patient_id, memory_id):
    from lifebook.memory_views import memory_for

    memory = memory_for(request.user, patient_id, memory_id)
    style = STYLES.get(request.POST.get("style", "photo"), STYLES["photo"])[1]
    try:
        jobs.submit_generation(memory, user=request.user, prompt=style,
                               num_images=request.POST.get("num_images") or 4, **_advanced(request))
        messages.success(request, "Lifebook is making the pictures. You can watch them appear here.")
    except jobs.JobRefused as exc:
        messages.error(request, exc.message)
    return _memory_back(patient_id, memory_id)


@login_required
def generation_status(request, patient_id, memory_id):
    from lifebook.memory_views import memory_for

    memory = memory_for(request.user, patient_id, memory_id)
    context = {"memory": memory, **generation_context(memory)}
    response = render(request, "generation/_generation.html", context)
    if request.htmx and not context["job_active"]:
        response["HX-Refresh"] = "true"  # done: reload, so the new pictures appear among the candidates
    return response


@login_required
@require_POST
def generation_cancel(request, patient_id, memory_id, job_id):
    from lifebook.memory_views import memory_for

    memory = memory_for(request.user, patient_id, memory_id)
    if jobs.cancel(get_object_or_404(GenerationJob, pk=job_id, memory=memory)) in (JobState.CANCELLED, JobState.RUNNING):
        messages.success(request, "Stopping. No pictures are kept from it.")
    else:
        messages.info(request, "It had already finished.")
    return _memory_back(patient_id, memory_id)


# --- notices: a job someone started has ended ---------------------------------------


@login_required
@require_POST
def notice_dismiss(request, notice_id):
    from django.utils import timezone

    notice = get_object_or_404(Notice, pk=notice_id, user=request.user)  # someone else's notice: 404
    Notice.objects.filter(pk=notice.pk, dismissed_at__isnull=True).update(dismissed_at=timezone.now())
    return redirect("dashboard")
