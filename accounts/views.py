from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render

from .forms import CaregiverSignUpForm


def signup(request):
    """Caregivers sign themselves up; therapists join through a care-team invitation."""
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = CaregiverSignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to Lifebook. Start by adding the person whose book you are making.")
        return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form})
