from django.urls import include, path

from . import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    # login, logout, password change and reset, with our templates.
    path("", include("django.contrib.auth.urls")),
]
