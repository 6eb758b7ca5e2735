"""Downloading a copy of a book (owners), and making a new book from such a copy (anyone signed in).

The work is lifebook.book_export and lifebook.book_import; the API's twins are in lifebook.api.book_copies.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from accounts.access import can_manage_team, get_patient_for

from . import audit
from .book_export import download_name, export_book
from .book_import import ImportRefused, import_book
from .models import AuditEvent


def may_export(user, patient) -> bool:
    """A whole copy of a book (every photo, hidden memories, notes) is the owners' to take (and staff's)."""
    return can_manage_team(user, patient)


def export_response(request, patient, via: str) -> FileResponse:
    """The ZIP as a download, recorded in the book's audit trail. Access is the caller's to check."""
    archive = export_book(patient)
    audit.record(request.user, patient, AuditEvent.Action.EXPORTED, via)
    response = FileResponse(archive, as_attachment=True, filename=download_name(patient),
                            content_type="application/zip")
    # Health data: no copy in shared caches or the browser's cache.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_GET  # not HEAD: it would build the copy and record a download that never happened
def book_export(request, patient_id):
    patient = get_patient_for(request.user, patient_id)  # 404 for another family
    if not may_export(request.user, patient):
        return render(request, "lifebook/book_export_refused.html", {"patient": patient}, status=403)
    return export_response(request, patient, "web")


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("The downloaded copy (a ZIP file)"),
        help_text=gettext_lazy("The ZIP file you saved with “Download a copy” on a book’s page."),
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
        error_messages={
            "required": gettext_lazy("Choose the ZIP file of the book."),
            "empty": gettext_lazy("That file is empty (0 bytes). Choose the ZIP file again."),
            "invalid": gettext_lazy("No file came through. Choose the ZIP file again."),
            "missing": gettext_lazy("No file came through. Choose the ZIP file again."),
        })


@login_required
def book_import(request):
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    if request.method == "POST" and form.is_valid():
        try:
            patient = import_book(form.cleaned_data["file"], request.user, via="web")
        except ImportRefused as exc:
            form.add_error("file", _("The book was not brought in. %(reason)s") % {"reason": exc.message})
        else:
            messages.success(request, _("%(name)s’s book is here, and you are its owner. Its people and places "
                                        "need training again before new pictures can show them.")
                             % {"name": patient.display_name})
            return redirect("patient_book", patient_id=patient.pk)
    return render(request, "lifebook/book_import.html", {"form": form})
