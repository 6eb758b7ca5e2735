"""Reading the book: one memory per screen, large picture and large type, for the person and whoever sits with them."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template.loader import render_to_string

from accounts.access import get_patient_for

from . import audit
from .book_cache import cached_fragment
from .models import Memory


@login_required
def book_carousel(request, patient_id):
    patient = get_patient_for(request.user, patient_id)  # the whole care team may read, therapists included
    audit.record_view(request.user, patient, audit.READER)
    # The same page for everyone who may read it, so it is kept until the book changes (lifebook.book_cache).
    return HttpResponse(cached_fragment(request, patient, "reader", lambda csrf_token: render_reader(patient)))


def render_reader(patient) -> str:
    # Hidden memories are left out for everyone here: this is the view the person with dementia sees.
    # One query for every slide, chapters and chosen pictures joined in, whatever the book's length.
    memories = list(
        Memory.objects.filter(chapter__patient=patient, hidden=False)
        .select_related("chapter", "chosen_image")
        .order_by("chapter__position", "position", "pk")
    )
    chapters = []  # (chapter, index of its first slide) for the chapter menu
    for index, memory in enumerate(memories):
        if not chapters or chapters[-1][0].pk != memory.chapter_id:
            chapters.append((memory.chapter, index))
        memory.chapter_start = chapters[-1][1]
    return render_to_string("lifebook/carousel.html",
                            {"patient": patient, "memories": memories, "chapters": chapters})
