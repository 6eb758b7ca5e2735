"""The large-print PDF download (the drawing itself is lifebook.pdf)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.views.decorators.http import require_safe

from accounts.access import get_patient_for

from . import audit


@login_required
@require_safe
def book_pdf(request, patient_id):
    # Anyone on the care team may print the book, therapists included; hidden
    # memories are left out for everyone, since this is the book as it is read.
    patient = get_patient_for(request.user, patient_id)
    audit.record_view(request.user, patient, audit.PDF)
    # Imported here: WeasyPrint takes most of a second to import, which every
    # process that loads the URLconf (workers, management commands) would pay.
    from .pdf import download_name, render_book_pdf

    response = HttpResponse(render_book_pdf(patient), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{download_name(patient)}"'
    # Health data: no copy in shared caches or the browser's cache.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
