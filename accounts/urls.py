from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import team_views, views
from .forms import LoginForm, ResetForm

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("me/", views.account, name="account"),
    path("me/delete/", views.account_delete, name="account_delete"),
    path("address/<str:token>/", views.address_confirm, name="address_confirm"),
    path("invitations/<str:token>/", team_views.invitation, name="invitation"),
    # Before Django's own: the same views with our plain-words forms.
    path("login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("password_reset/", auth_views.PasswordResetView.as_view(form_class=ResetForm), name="password_reset"),
    # logout, password change and the rest of reset, with our templates.
    path("", include("django.contrib.auth.urls")),
]
