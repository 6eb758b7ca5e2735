"""/api/: one router for the book and the jobs; the schema and its docs page (served from local files)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from generation.api import CheckpointViewSet, GenerationJobViewSet, TrainingJobViewSet

from .views import (CareTeamViewSet, ChapterViewSet, MemoryImageViewSet, MemoryViewSet, PatientViewSet,
                    ReferencePhotoViewSet, SubjectViewSet)



class Router(DefaultRouter):
    include_format_suffixes = False  # JSON only: fewer URLs to keep private


router = Router()
router.register("patients", PatientViewSet, basename="patient")
router.register("care-team", CareTeamViewSet, basename="care-team")
router.register("subjects", SubjectViewSet, basename="subject")
router.register("photos", ReferencePhotoViewSet, basename="photo")
router.register("chapters", ChapterViewSet, basename="chapter")
router.register("memories", MemoryViewSet, basename="memory")
router.register("memory-images", MemoryImageViewSet, basename="memory-image")
router.register("training-jobs", TrainingJobViewSet, basename="training-job")
router.register("checkpoints", CheckpointViewSet, basename="checkpoint")
router.register("generation-jobs", GenerationJobViewSet, basename="generation-job")

app_name = "api"
urlpatterns = [
    path("", include(router.urls)),
    path("token/", obtain_auth_token, name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
