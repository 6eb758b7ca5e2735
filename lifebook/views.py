from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_safe

from accounts.access import get_patient_for, patients_for, role_for
from accounts.models import CareTeamMember

from . import audit, book_views
from .book_cache import cached_fragment
from .forms import PatientForm
from .models import Memory


@login_required
def dashboard(request):
    patients = patients_for(request.user).annotate(
        memory_count=Count("chapters__memories", filter=Q(chapters__memories__hidden=False), distinct=True),
        chapter_count=Count("chapters", distinct=True),
    )
    editable = set(patients_for(request.user, edit=True).values_list("pk", flat=True))
    from generation.notices import notices_for

    return render(request, "lifebook/dashboard.html", {"patients": patients, "editable": editable,
                                                       "notices": notices_for(request.user)})


@login_required
def patient_create(request):
    form = PatientForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        patient = form.save()  # this user becomes its owner (lifebook.services.save_patient)
        messages.success(request, f"{patient.display_name}’s book is ready for its first chapter.")
        return redirect("patient_book", patient_id=patient.pk)
    return render(request, "lifebook/patient_form.html", {"form": form})


@login_required
def patient_edit(request, patient_id):
    patient = get_patient_for(request.user, patient_id, edit=True)
    form = PatientForm(request.POST or None, instance=patient, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved.")
        return redirect("patient_book", patient_id=patient.pk)
    return render(request, "lifebook/patient_form.html", {"form": form, "patient": patient})


@login_required
def patient_book(request, patient_id):
    patient = get_patient_for(request.user, patient_id)
    audit.record_view(request.user, patient, audit.BOOK_PAGE)
    role = role_for(request.user, patient)
    may_edit = role in CareTeamMember.EDIT_ROLES or request.user.is_staff

    def render_body(csrf_token):
        memories = Memory.objects.select_related("chosen_image").prefetch_related("subjects")
        if not may_edit:
            memories = memories.filter(hidden=False)  # therapists never see hidden material
        # A list: the page walks it more than once (counting, then each chapter's controls).
        chapters = list(patient.chapters.prefetch_related(Prefetch("memories", queryset=memories)))
        context = {"patient": patient, "chapters": chapters, "may_edit": may_edit, "csrf_token": csrf_token}
        if may_edit:
            context["subjects"] = patient.subjects.annotate(photo_count=Count("photos"))
            context.update(book_views.editing_context(request, chapters))
        return render_to_string("lifebook/_book_body.html", context)

    if may_edit and book_views.focus_from(request):
        # After a move made without JavaScript the page focuses the moved control: rendered for this request only.
        book_html = render_body(get_token(request))
    else:
        book_html = cached_fragment(request, patient, "edit" if may_edit else "view", render_body)
    return render(request, "lifebook/patient_book.html",
                  {"patient": patient, "book_html": book_html, "may_edit": may_edit, "role": role})


@require_safe
def healthz(request):
    """Answers "ok" without touching the database or the session: a load balancer's liveness check,
    and the trivial page bench/web.py measures the book page against (the server's own cost per request)."""
    return HttpResponse("ok", content_type="text/plain")


def not_found(request, exception=None):
    """Django's 404 page; on /api/, the JSON an API client expects (same words as DRF's own 404)."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
