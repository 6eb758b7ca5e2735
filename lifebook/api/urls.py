"""/api/: one router for the book and the jobs; the schema and its docs page (served from local files)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.routers import DefaultRouter

from generation.api import CheckpointViewSet, GenerationJobViewSet, TrainingJobViewSet

from .views import (CareTeamViewSet, ChapterViewSet, MemoryImageViewSet, MemoryViewSet, PatientViewSet,
                    ReferencePhotoViewSet, SubjectViewSet)



class Router(DefaultRouter):
    include_format_suffixes = False  # JSON only: fewer URLs to keep private


router = Router()


@extend_schema(description="Trade a username and password for an API token (send it as `Authorization: Token <key>`).",
               responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
class TokenView(ObtainAuthToken):
    pass

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
    path("token/", TokenView.as_view(), name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
