"""A subject's page: its photos (upload many, see their notes, delete) and teaching Lifebook its look.

Only people who may edit the book reach these pages (therapists get 404, as on the edit page).
"""

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import get_patient_for

from .forms import SubjectForm
from .uploads import NO_PHOTO_CONSENT, UploadRejected, add_reference_photo

GOOD_PHOTO_COUNT = 10


def subject_for(user, patient_id, subject_id):
    patient = get_patient_for(user, patient_id, edit=True)
    return get_object_or_404(patient.subjects.select_related("patient"), pk=subject_id)


@login_required
def subject_create(request, patient_id):
    patient = get_patient_for(request.user, patient_id, edit=True)
    form = SubjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        subject = form.save(commit=False)
        subject.patient = patient
        subject.save()
        messages.success(request, f"{subject.name} was added. Now add about {GOOD_PHOTO_COUNT} varied photos.")
        return redirect("subject_page", patient_id=patient.pk, subject_id=subject.pk)
    return render(request, "lifebook/simple_form.html", {
        "form": form, "patient": patient, "heading": f"Who or what appears in {patient.display_name}’s memories?",
        "intro": "A person, a place, a pet or an object. Lifebook learns what it looks like from about 10 photos.",
        "button": "Add"})


@login_required
def subject_page(request, patient_id, subject_id):
    from generation.views import training_context

    subject = subject_for(request.user, patient_id, subject_id)
    photos = list(subject.photos.all())
    training = training_context(subject)
    advice = photo_advice(training["training"], numbers={photo.pk: n for n, photo in enumerate(photos, 1)})
    for photo in photos:
        photo.training_notes = [note for note in advice.get(photo.pk, []) if note not in photo.quality_notes]
    return render(request, "lifebook/subject.html", {
        "subject": subject, "patient": subject.patient, "photos": photos, "good_count": GOOD_PHOTO_COUNT,
        "missing": max(0, GOOD_PHOTO_COUNT - len(photos)), **training,
    })


PHOTO_NAME = re.compile(r"“?photo-(\d+)\.jpg”?")


def photo_advice(training, numbers: dict[int, int]) -> dict[int, list[str]]:
    """The trainer's notes on each photo (blurry, no face, a near-copy...), by photo id. The worker names
    each photo `photo-<id>.jpg` in its report (generation.runner), so the notes find their card again;
    a name inside a note becomes "photo 3", as the page numbers them."""

    def plain(match):
        number = numbers.get(int(match.group(1)))
        return f"photo {number}" if number else "a photo since deleted"

    advice = {}
    for entry in (training.photo_report.get("photos", []) if training else []):
        match = PHOTO_NAME.fullmatch(entry.get("name", ""))
        if match:
            advice[int(match.group(1))] = [PHOTO_NAME.sub(plain, problem["message"])
                                           for problem in entry.get("problems", [])]
    return advice


@login_required
@require_POST
def photo_upload(request, patient_id, subject_id):
    """Many files in one form post, or (from the drag-and-drop script) one file per request, answered
    with that photo's card so the page shows it at once."""
    subject = subject_for(request.user, patient_id, subject_id)
    if not subject.patient.has_photo_consent:
        message = str(NO_PHOTO_CONSENT)
        if request.htmx or request.headers.get("X-Requested-With") == "fetch":
            return HttpResponse(message, status=400)
        messages.error(request, message)
        return redirect("subject_page", patient_id=patient_id, subject_id=subject_id)
    added, refused = [], []
    for upload in request.FILES.getlist("photos"):
        try:
            added.append(add_reference_photo(subject, upload, user=request.user))
        except UploadRejected as exc:
            refused.append(exc.message)
    if request.headers.get("X-Requested-With") == "fetch":  # one file from the drag-and-drop script
        if refused or not added:
            reason = refused[0] if refused else "Choose a photo first."
            return HttpResponse(reason, status=400, content_type="text/plain; charset=utf-8")
        return render(request, "lifebook/_photo.html", {"photo": added[0], "subject": subject})
    if not added and not refused:
        messages.error(request, "Choose one or more photos first.")
    if added:
        messages.success(request, f"{len(added)} photo{'s' if len(added) != 1 else ''} added.")
    for message in refused:
        messages.error(request, message)
    return redirect("subject_page", patient_id=patient_id, subject_id=subject_id)


@login_required
@require_POST
def photo_delete(request, patient_id, subject_id, photo_id):
    subject = subject_for(request.user, patient_id, subject_id)
    photo = get_object_or_404(subject.photos, pk=photo_id)
    photo.image.delete(save=False)
    photo.delete()
    if request.htmx:
        return HttpResponse("")  # the card is swapped out
    messages.success(request, "The photo was deleted.")
    return redirect("subject_page", patient_id=patient_id, subject_id=subject_id)
