from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme

from .forms import CaregiverSignUpForm


def _safe_next(request):
    """The `next=` page to come back to (an invitation link), if it is one of ours; else ''."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                              require_https=request.is_secure())
    return target if allowed else ""


def signup(request):
    """Caregivers sign themselves up; therapists join through a care-team invitation (which sends them here
    with next= pointing back at the invitation, so that they join the team once signed up)."""
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url or "dashboard")
    form = CaregiverSignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if next_url:
            return redirect(next_url)
        messages.success(request, "Welcome to Lifebook. Start by adding the person whose book you are making.")
        return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form, "next": next_url,
                                                        "invited": _is_invitation(next_url)})


def _is_invitation(url):
    try:
        return bool(url) and resolve(url.split("?")[0]).url_name == "invitation"
    except Resolver404:
        return False
