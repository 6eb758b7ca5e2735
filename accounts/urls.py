from django.urls import include, path

from . import team_views, views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("invitations/<str:token>/", team_views.invitation, name="invitation"),
    # login, logout, password change and reset, with our templates.
    path("", include("django.contrib.auth.urls")),
]
