from django.contrib import admin
from django.urls import include, path

from accounts import team_views
from generation import editor_views
from generation import views as training

from . import book_views, layout_views, media, memory_views, subject_views, views
from . import carousel_views, export_views, privacy_views, renditions
from .pdf_views import book_pdf

SUBJECT = "patients/<int:patient_id>/subjects/<int:subject_id>/"
MEMORY = "patients/<int:patient_id>/memories/<int:memory_id>/"
CHAPTER = "patients/<int:patient_id>/chapters/<int:chapter_id>/"
TEAM = "patients/<int:patient_id>/team/"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("notices/<int:notice_id>/dismiss/", training.notice_dismiss, name="notice_dismiss"),
    path("patients/new/", views.patient_create, name="patient_create"),
    path("patients/import/", export_views.book_import, name="book_import"),
    path("patients/<int:patient_id>/", views.patient_book, name="patient_book"),
    path("patients/<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path("patients/<int:patient_id>/read/", carousel_views.book_carousel, name="book_carousel"),
    path("patients/<int:patient_id>/who-looked/", privacy_views.book_audit, name="book_audit"),
    path("patients/<int:patient_id>/erase/", privacy_views.book_erase, name="book_erase"),
    path(TEAM, team_views.team_page, name="care_team"),
    path(TEAM + "<int:member_id>/role/", team_views.member_role, name="care_team_role"),
    path(TEAM + "<int:member_id>/remove/", team_views.member_remove, name="care_team_remove"),
    path(TEAM + "invitations/<int:invitation_id>/withdraw/", team_views.invitation_withdraw,
         name="care_team_withdraw"),
    path("patients/<int:patient_id>/book.pdf", book_pdf, name="book_pdf"),
    path("patients/<int:patient_id>/export.zip", export_views.book_export, name="book_export"),
    path("patients/<int:patient_id>/subjects/new/", subject_views.subject_create, name="subject_create"),
    path("patients/<int:patient_id>/chapters/new/", memory_views.chapter_create, name="chapter_create"),
    path("patients/<int:patient_id>/chapters/order/", book_views.chapter_order, name="chapter_order"),
    path(CHAPTER + "edit/", book_views.chapter_edit, name="chapter_edit"),
    path(CHAPTER + "heading/", book_views.chapter_heading, name="chapter_heading"),
    path(CHAPTER + "delete/", book_views.chapter_delete, name="chapter_delete"),
    path(CHAPTER + "move/", book_views.chapter_move, name="chapter_move"),
    path(CHAPTER + "memories/order/", book_views.memory_order, name="memory_order"),
    path("patients/<int:patient_id>/memories/new/", memory_views.memory_create, name="memory_create"),
    path(MEMORY, memory_views.memory_page, name="memory_page"),
    path(MEMORY + "photo/", memory_views.memory_upload_photo, name="memory_upload_photo"),
    path(MEMORY + "layout/", layout_views.memory_layout, name="memory_layout"),
    path(MEMORY + "move/", book_views.memory_move, name="memory_move"),
    path(MEMORY + "visibility/", book_views.memory_visibility, name="memory_visibility"),
    path(MEMORY + "pictures/<int:image_id>/choose/", memory_views.memory_choose_image, name="memory_choose_image"),
    path(MEMORY + "pictures/<int:image_id>/fix/", editor_views.memory_fix_part, name="memory_fix_part"),
    path(MEMORY + "sketch/", editor_views.memory_from_sketch, name="memory_from_sketch"),
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
    path("renditions/<int:width>/<path:path>", renditions.serve_rendition, name="rendition"),
]

handler404 = "lifebook.views.not_found"
