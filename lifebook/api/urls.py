"""/api/: one router for the book and the jobs; the schema and its docs page (served from local files).

The schema and the docs need a login (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]): a session or a token.
"""

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import exceptions
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import DefaultRouter

from accounts.api import CareTeamViewSet, InvitationViewSet, MeDeleteView, MeView
from generation.api import CheckpointViewSet, GenerationJobViewSet, TrainingJobViewSet

from .views import (ChapterViewSet, MemoryImageViewSet, MemoryViewSet, PatientViewSet, ReferencePhotoViewSet,
                    SubjectViewSet)



class Router(DefaultRouter):
    include_format_suffixes = False  # JSON only: fewer URLs to keep private


router = Router()


@extend_schema(description="Trade a username and password for an API token (send it as `Authorization: Token <key>`).",
               responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
class TokenView(ObtainAuthToken):
    pass


class SchemaView(SpectacularAPIView):
    def handle_exception(self, exc):
        # A refusal (not logged in...) is JSON like the rest of the API, whatever schema format was asked for.
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return super().handle_exception(exc)


class DocsView(SpectacularSwaggerSplitView):
    """The Swagger UI page: a visitor who is not logged in is sent to the login page, as on the web."""

    def handle_exception(self, exc):
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)

    def options(self, request, *args, **kwargs):
        # DRF's OPTIONS answer is data for a renderer; this view's only renderer needs a template (it was a 500).
        return HttpResponse(headers={"Allow": ", ".join(self.allowed_methods)})


router.register("patients", PatientViewSet, basename="patient")
router.register("care-team", CareTeamViewSet, basename="care-team")
router.register("care-team-invitations", InvitationViewSet, basename="care-team-invitation")
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
    path("me/", MeView.as_view(), name="me"),
    path("me/delete/", MeDeleteView.as_view(), name="me-delete"),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="api:schema"), name="docs"),
]
