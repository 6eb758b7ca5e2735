"""The API's side of downloaded copies: GET /api/patients/<id>/export/ and POST /api/patients/import/.

A mixin for PatientViewSet, so the patient endpoints keep one router entry; the work is lifebook.book_export
and lifebook.book_import, as on the web (lifebook.export_views).
"""

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from ..book_import import ImportRefused, import_book
from ..export_views import export_response, may_export
from . import serializers as s


class ZipRenderer(BaseRenderer):
    """Lets a client ask for `Accept: application/zip`. The ZIP itself is a FileResponse that no renderer
    touches; what this renders is an error (403, 404), which goes out as the JSON it is."""

    media_type = "application/zip"
    format = "zip"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data)


JSON = "application/json"
class BookImportSerializer(s.StrictInput, serializers.Serializer):
    file = s.UploadField(help_text="The ZIP file from GET /api/patients/{id}/export/.")


class BookCopyActions:
    @extend_schema(
        description="Download a copy of the whole book as a ZIP (owners only; caregivers and therapists get 403): "
                    "book.json (the patient, consent record, subjects, chapters and memories in order, and every "
                    "picture's recipe and lineage), README.html (the book as a page that opens from the unzipped "
                    "folder), the pictures and the reference photos. Trained adapters are not included. "
                    "POST /api/patients/import/ makes a new book from it. Recorded in the book's audit trail.",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, (403, JSON): OpenApiTypes.OBJECT,
                   (404, JSON): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, ZipRenderer])
    def export(self, request, pk=None):
        patient = self.get_object()  # scoped: 404 for another family
        if not may_export(request.user, patient):
            raise exceptions.PermissionDenied(_("Only the book’s owners can download a copy of it."))
        return export_response(request, patient, "API")

    @extend_schema(
        description="Make a new book from a copy downloaded with GET /api/patients/{id}/export/ (multipart, the "
                    "ZIP in `file`). You become its owner. Subjects come back untrained (train them again). "
                    "A copy that cannot be used is a 400 that says why, and leaves nothing behind.",
        request={"multipart/form-data": BookImportSerializer},
        responses={201: s.PatientSerializer, 400: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"], url_path="import", url_name="import",
            parser_classes=[MultiPartParser, FormParser])
    def import_copy(self, request):
        if "file" not in request.data:
            raise exceptions.ValidationError({"file": [_("Send the book's ZIP file in the field “file”.")]})
        serializer = BookImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            patient = import_book(serializer.validated_data["file"], request.user, via="API")
        except ImportRefused as exc:
            raise exceptions.ValidationError({"file": [exc.message]})
        patient = self.get_queryset().get(pk=patient.pk)  # with the annotations the serializer reads
        return Response(s.PatientSerializer(patient, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)
