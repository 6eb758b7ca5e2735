"""A book's owner looks after its privacy: who has looked at it (the audit trail), and erasing it for good.

Both pages are for the book's owners and staff only; anyone else on the care team gets a 404, as on the
care team's change pages (accounts.team_views), and another family a 404 as everywhere.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts.access import get_owned_patient_for

from . import audit
from .erase import contents_of, erase_book
from .forms import EraseForm
from .models import Patient

EVENTS_PER_PAGE = 50


@login_required
def book_audit(request, patient_id):
    patient = get_owned_patient_for(request.user, patient_id)
    page = Paginator(patient.audit_events.select_related("user"), EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "lifebook/audit.html", {
        "patient": patient, "page": page, "rows": audit.trail(patient, page.object_list)})


@login_required
def book_erase(request, patient_id):
    patient = get_owned_patient_for(request.user, patient_id)
    form = EraseForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        name = patient.name
        try:
            erase_book(patient, by=request.user)
        except Patient.DoesNotExist:  # erased by another request a moment ago (a second click): the same outcome
            pass
        messages.success(request, _("%(name)s’s book was erased, with every photo and picture in it.") % {"name": name})
        return redirect("dashboard")
    return render(request, "lifebook/erase.html", {"patient": patient, "form": form, "contents": contents_of(patient)})
