from django.contrib import admin
from django.urls import include, path

from . import media, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("patients/new/", views.patient_create, name="patient_create"),
    path("patients/<int:patient_id>/", views.patient_book, name="patient_book"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path("accounts/", include("accounts.urls")),
    path("api/", include("lifebook.api.urls")),
    path("admin/", admin.site.urls),
    path("media/<path:path>", media.serve_media, name="media"),
]

handler404 = "lifebook.views.not_found"
