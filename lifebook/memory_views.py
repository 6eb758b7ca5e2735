"""Chapters and memories on the web: add a chapter, write a memory, and its page, where pictures are made,
chosen, or replaced by a real photo."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import get_patient_for

from . import audit
from .book_cache import book_changed
from .forms import ChapterForm, MemoryForm
from .models import Memory
from .uploads import UploadRejected, add_uploaded_memory_image


def memory_for(user, patient_id, memory_id):
    patient = get_patient_for(user, patient_id, edit=True)
    return get_object_or_404(Memory.objects.select_related("chapter__patient", "chosen_image"),
                             pk=memory_id, chapter__patient=patient)


@login_required
def chapter_create(request, patient_id):
    patient = get_patient_for(request.user, patient_id, edit=True)
    form = ChapterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        chapter = form.save(commit=False)
        chapter.patient = patient
        chapter.save()
        messages.success(request, f"The chapter “{chapter.title}” was added.")
        return redirect("patient_book", patient_id=patient.pk)
    return render(request, "lifebook/simple_form.html", {
        "form": form, "patient": patient, "heading": "Add a chapter", "button": "Add the chapter"})


@login_required
def memory_create(request, patient_id):
    patient = get_patient_for(request.user, patient_id, edit=True)
    if not patient.chapters.exists():
        messages.error(request, "Add a chapter first: every memory belongs to one.")
        return redirect("chapter_create", patient_id=patient.pk)
    initial = {"chapter": request.GET.get("chapter")}
    form = MemoryForm(request.POST or None, patient=patient, initial=initial)
    if request.method == "POST" and form.is_valid():
        memory = form.save()
        return redirect("memory_page", patient_id=patient.pk, memory_id=memory.pk)
    return render(request, "lifebook/simple_form.html", {
        "form": form, "patient": patient, "heading": "Write a memory", "button": "Save the memory"})


@login_required
def memory_page(request, patient_id, memory_id):
    from generation.views import generation_context

    from .layout_views import placed

    memory = memory_for(request.user, patient_id, memory_id)
    audit.record_view(request.user, memory.chapter.patient, audit.memory_page(memory.pk))
    form = MemoryForm(request.POST or None, instance=memory, patient=memory.chapter.patient)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved.")
        return redirect("memory_page", patient_id=patient_id, memory_id=memory_id)
    return render(request, "lifebook/memory.html", {
        "memory": memory, "patient": memory.chapter.patient, "form": form,
        "images": memory.images.all(), "placed": placed(memory), **generation_context(memory)})


@login_required
@require_POST
def memory_upload_photo(request, patient_id, memory_id):
    memory = memory_for(request.user, patient_id, memory_id)
    upload = request.FILES.get("photo")
    if upload is None:
        messages.error(request, "Choose a photo first.")
    else:
        try:
            add_uploaded_memory_image(memory, upload, user=request.user, choose=True)
            messages.success(request, "The real photo is now this memory's picture.")
        except UploadRejected as exc:
            messages.error(request, exc.message)
    return redirect("memory_page", patient_id=patient_id, memory_id=memory_id)


@login_required
@require_POST
def memory_choose_image(request, patient_id, memory_id, image_id):
    memory = memory_for(request.user, patient_id, memory_id)
    image = get_object_or_404(memory.images, pk=image_id)
    Memory.objects.filter(pk=memory.pk).update(chosen_image=image)
    book_changed(memory.chapter.patient_id)  # update() sends no signal
    messages.success(request, "This picture is now the memory's picture.")
    return redirect("memory_page", patient_id=patient_id, memory_id=memory_id)
