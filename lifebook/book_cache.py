"""Rendered book pages kept until the book changes.

A book of 200 memories takes ~100 ms of template work to render, while reading it again is the common case
(a therapist's session, a family looking through it). `Patient.book_version` goes up with every change to
what the book shows; rendered chapters are cached under (patient, version, audience), so a change is
visible on the next request and nothing needs deleting. Forms inside the cached HTML carry a placeholder
instead of the CSRF token, filled in per request.

Changes reach the version through model signals (connected in `LifebookConfig.ready`) and, for the few
writes that bypass signals (`QuerySet.update`, `bulk_update`), through an explicit `book_changed` call.
"""

from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import F
from django.middleware.csrf import get_token

CSRF_PLACEHOLDER = "lifebook-csrf-token-placeholder"
TIMEOUT = 24 * 3600


def book_changed(patient_id) -> None:
    from .models import Patient

    Patient.objects.filter(pk=patient_id).update(book_version=F("book_version") + 1)


def cached_fragment(request, patient, audience: str, render) -> str:
    """`render(csrf_token)` -> HTML, run only when this version of the book was not rendered for this audience."""
    key = f"lifebook:book:{patient.pk}:{patient.book_version}:{audience}"
    html = cache.get(key)
    if html is None:
        html = render(CSRF_PLACEHOLDER)
        cache.set(key, html, TIMEOUT)
    # Only inside value="...": words a caregiver typed are escaped, so they can never match this.
    return html.replace(f'value="{CSRF_PLACEHOLDER}"', f'value="{get_token(request)}"')


# --- signals --------------------------------------------------------------------------


def _patient_id_of(instance):
    from .models import Chapter, Memory, MemoryImage, Patient, ReferencePhoto, Subject

    if isinstance(instance, Patient):  # the name the book and the reader show
        return instance.pk
    if isinstance(instance, (Chapter, Subject)):
        return instance.patient_id
    if isinstance(instance, Memory):
        return instance.chapter.patient_id
    if isinstance(instance, MemoryImage):  # one query, not two (a worker stores several at once)
        return Memory.objects.filter(pk=instance.memory_id).values_list("chapter__patient_id", flat=True).first()
    if isinstance(instance, ReferencePhoto):
        return instance.subject.patient_id
    return None


def on_change(sender, instance, **kwargs):
    from .erase import erasing

    if erasing():  # the whole book is being deleted: no version to raise, and no query per row
        return
    try:
        patient_id = _patient_id_of(instance)
    except ObjectDoesNotExist:  # a parent already gone in a cascade (the whole book deleted): nothing to show
        return
    if patient_id is not None:
        book_changed(patient_id)


def on_subjects_change(sender, instance, action, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        from .models import Memory

        if isinstance(instance, Memory):
            book_changed(instance.chapter.patient_id)
        else:  # changed from the subject's side
            book_changed(instance.patient_id)


def connect():
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from .models import Chapter, Memory, MemoryImage, Patient, ReferencePhoto, Subject

    post_save.connect(on_change, sender=Patient, dispatch_uid="book-cache-save-Patient")
    for model in (Chapter, Memory, MemoryImage, ReferencePhoto, Subject):
        post_save.connect(on_change, sender=model, dispatch_uid=f"book-cache-save-{model.__name__}")
        post_delete.connect(on_change, sender=model, dispatch_uid=f"book-cache-delete-{model.__name__}")
    m2m_changed.connect(on_subjects_change, sender=Memory.subjects.through, dispatch_uid="book-cache-subjects")
