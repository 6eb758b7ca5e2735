from django.contrib import admin
from django.urls import include, path

from generation import views as training

from . import media, memory_views, subject_views, views

SUBJECT = "patients/<int:patient_id>/subjects/<int:subject_id>/"
MEMORY = "patients/<int:patient_id>/memories/<int:memory_id>/"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("patients/new/", views.patient_create, name="patient_create"),
    path("patients/<int:patient_id>/", views.patient_book, name="patient_book"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path("patients/<int:patient_id>/subjects/new/", subject_views.subject_create, name="subject_create"),
    path("patients/<int:patient_id>/chapters/new/", memory_views.chapter_create, name="chapter_create"),
    path("patients/<int:patient_id>/memories/new/", memory_views.memory_create, name="memory_create"),
    path(MEMORY, memory_views.memory_page, name="memory_page"),
    path(MEMORY + "photo/", memory_views.memory_upload_photo, name="memory_upload_photo"),
    path(MEMORY + "pictures/<int:image_id>/choose/", memory_views.memory_choose_image, name="memory_choose_image"),
    path(MEMORY + "generate/", training.memory_generate, name="memory_generate"),
    path(MEMORY + "generation/", training.generation_status, name="generation_status"),
    path(MEMORY + "generation/<int:job_id>/cancel/", training.generation_cancel, name="generation_cancel"),
    path(SUBJECT, subject_views.subject_page, name="subject_page"),
    path(SUBJECT + "photos/", subject_views.photo_upload, name="photo_upload"),
    path(SUBJECT + "photos/<int:photo_id>/delete/", subject_views.photo_delete, name="photo_delete"),
    path(SUBJECT + "training/", training.training_status, name="training_status"),
    path(SUBJECT + "training/start/", training.training_start, name="training_start"),
    path(SUBJECT + "training/<int:job_id>/cancel/", training.training_cancel, name="training_cancel"),
    path(SUBJECT + "checkpoints/<int:checkpoint_id>/choose/", training.checkpoint_choose, name="checkpoint_choose"),
    path("accounts/", include("accounts.urls")),
    path("api/", include("lifebook.api.urls")),
    path("admin/", admin.site.urls),
    path("media/<path:path>", media.serve_media, name="media"),
]

handler404 = "lifebook.views.not_found"
