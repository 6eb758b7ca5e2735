"""Book resources: patients, subjects, photos, chapters, memories, memory pictures (care teams: accounts.api)."""

from django.db.models import Count, OuterRef, Subquery
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts import access
from generation.planning import trained_annotation
from accounts.models import CareTeamMember

from .. import audit, positions
from ..book_cache import book_changed
from ..erase import erase_book
from ..models import Chapter, Memory, MemoryImage, Patient, ReferencePhoto, Subject
from ..services import save_patient
from ..uploads import NO_PHOTO_CONSENT, UploadRejected, add_reference_photo, add_uploaded_memory_image
from . import serializers as s
from .base import ScopedViewSet, require_edit
from .book_copies import BookCopyActions

NOT_FOUND = {404: OpenApiTypes.OBJECT}
LIST_ERRORS = {400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}  # a bad filter value; a page past the end
WRITE_ERRORS = {400: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}


def by(name, description):
    return OpenApiParameter(name, int, description=description)


class ChapterOrderSerializer(s.StrictInput, serializers.Serializer):
    order = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                  help_text="Every chapter id of the book, each once, in the new order.")


class MoveSerializer(s.StrictInput, serializers.Serializer):
    position = serializers.IntegerField(min_value=0, help_text="The new place: 0 is first.")


class MemoryMoveSerializer(MoveSerializer):
    chapter = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
                                       help_text="Another chapter of the book.")


MOVE = MoveSerializer
ORDERING_CONFLICT = {409: OpenApiTypes.OBJECT}


def conflict(exc):
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


@extend_schema_view(
    list=extend_schema(description="The patients whose care team you are on.",
                       responses={200: s.PatientSerializer(many=True), **LIST_ERRORS}),
    create=extend_schema(description="Start a book. You become its owner.",
                         responses={201: s.PatientSerializer, 400: OpenApiTypes.OBJECT}),
    retrieve=extend_schema(description="One patient.", responses={200: s.PatientSerializer, **NOT_FOUND}),
    update=extend_schema(description="Change a patient (owners and caregivers).",
                         responses={200: s.PatientSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(description="Change some fields of a patient.",
                                 responses={200: s.PatientSerializer, **WRITE_ERRORS}),
    destroy=extend_schema(description="Erase a patient's whole book for good (owners only): every chapter, memory, "
                                      "picture, subject, photo and trained adapter, with their files; running and "
                                      "waiting jobs are stopped and the care team loses access. Only an 'erased' "
                                      "event stays in the audit trail. Caregivers and therapists get 403.",
                          responses={204: None, **WRITE_ERRORS}),
)
class PatientViewSet(BookCopyActions, ScopedViewSet):  # + export/ and import/ (downloaded copies)
    queryset = Patient.objects.all()
    serializer_class = s.PatientSerializer
    patient_path = "pk"

    def scoped(self, model):
        my_role = CareTeamMember.objects.filter(patient=OuterRef("pk"), user=self.request.user).values("role")[:1]
        return access.patients_for(self.request.user).annotate(my_role=Subquery(my_role))

    def patient_of(self, obj):
        return obj

    def retrieve(self, request, *args, **kwargs):
        patient = self.get_object()
        audit.record_view(request.user, patient, audit.API)
        return Response(self.get_serializer(patient).data)

    def perform_create(self, serializer):
        consent = serializer.validated_data.pop("photo_consent", False)
        serializer.instance = save_patient(Patient(**serializer.validated_data), consent=consent,
                                           user=self.request.user, where=audit.API)

    def perform_update(self, serializer):
        patient = serializer.instance
        require_edit(self.request.user, patient)
        consent = serializer.validated_data.pop("photo_consent", patient.has_photo_consent)
        for name, value in serializer.validated_data.items():
            setattr(patient, name, value)
        save_patient(patient, consent=consent, user=self.request.user, where=audit.API)

    def perform_destroy(self, instance):
        if not access.can_manage_team(self.request.user, instance):
            raise exceptions.PermissionDenied(gettext("Only the book’s owner can erase it."))
        try:
            erase_book(instance, by=self.request.user)
        except Patient.DoesNotExist:  # erased by another request a moment ago
            raise exceptions.NotFound()

    @extend_schema(description="Who has looked at this book, downloaded it or changed its consent, and when, newest "
                               "first (owners only; caregivers and therapists get 403). A look is recorded once per "
                               "person and place every 15 minutes.",
                   responses={200: s.AuditEventSerializer(many=True), **NOT_FOUND, 403: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], url_path="audit", url_name="audit")
    def audit_trail(self, request, pk=None):
        patient = self.get_object()
        if not access.can_manage_team(request.user, patient):
            raise exceptions.PermissionDenied(gettext("Only the book’s owner can see who has looked at it."))
        page = self.paginate_queryset(patient.audit_events.select_related("user"))
        for event, who, what in audit.trail(patient, page):
            event.who, event.what = who, what
        return self.get_paginated_response(s.AuditEventSerializer(page, many=True).data)

    @extend_schema(description="Put the chapters in this order (every chapter id, each once).",
                   request=ChapterOrderSerializer,
                   responses={204: None, **WRITE_ERRORS, **ORDERING_CONFLICT})
    @action(detail=True, methods=["post"], url_path="chapter-order")
    def chapter_order(self, request, pk=None):
        patient = self.get_object()
        require_edit(request.user, patient)
        body = ChapterOrderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            positions.reorder(patient, patient.chapters.all(), body.validated_data["order"])
        except (positions.OrderingConflict, ValueError, TypeError) as exc:
            return conflict(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(description="People, places, pets and objects of the books you see.",
                       responses={200: s.SubjectSerializer(many=True), **LIST_ERRORS},
                       parameters=[by("patient", "Only this patient's subjects.")]),
    create=extend_schema(description="Add a subject to a book.", responses={201: s.SubjectSerializer, **WRITE_ERRORS}),
    retrieve=extend_schema(description="One subject.", responses={200: s.SubjectSerializer, **NOT_FOUND}),
    update=extend_schema(description="Change a subject.", responses={200: s.SubjectSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(description="Change some fields of a subject.",
                                 responses={200: s.SubjectSerializer, **WRITE_ERRORS}),
    destroy=extend_schema(description="Delete a subject with its photos and trainings.",
                          responses={204: None, **WRITE_ERRORS}),
)
class SubjectViewSet(ScopedViewSet):
    queryset = Subject.objects.all()
    serializer_class = s.SubjectSerializer
    filters = (("patient", "patient_id"),)

    def get_queryset(self):
        return (super().get_queryset().annotate(photo_count=Count("photos"), is_trained=trained_annotation())
                .order_by("patient_id", "kind", "name", "pk"))

    def perform_create(self, serializer):
        require_edit(self.request.user, serializer.validated_data["patient"])
        serializer.save()

    def perform_update(self, serializer):
        if serializer.validated_data.get("patient", serializer.instance.patient) != serializer.instance.patient:
            raise exceptions.ValidationError({"patient": ["A subject stays in its book."]})
        super().perform_update(serializer)


@extend_schema_view(
    list=extend_schema(description="Reference photos of the subjects you see.",
                       responses={200: s.ReferencePhotoSerializer(many=True), **LIST_ERRORS},
                       parameters=[by("subject", "Only this subject's photos."), by("patient", "Only this patient's.")]),
    create=extend_schema(description="Upload one photo of a subject (multipart). It is checked and cleaned like "
                                     "a photo added on the web: its notes say what could be better.",
                         responses={201: s.ReferencePhotoSerializer, **WRITE_ERRORS}),
    retrieve=extend_schema(description="One photo.", responses={200: s.ReferencePhotoSerializer, **NOT_FOUND}),
    destroy=extend_schema(description="Delete a photo.", responses={204: None, **WRITE_ERRORS}),
)
class ReferencePhotoViewSet(ScopedViewSet):
    queryset = ReferencePhoto.objects.all()
    serializer_class = s.ReferencePhotoSerializer
    patient_path = "subject__patient"
    related = ("subject__patient",)
    filters = (("subject", "subject_id"), ("patient", "subject__patient_id"))
    parser_classes = [MultiPartParser, FormParser]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def perform_create(self, serializer):
        subject = serializer.validated_data["subject"]
        require_edit(self.request.user, subject.patient)
        if not subject.patient.has_photo_consent:
            raise exceptions.ValidationError({"image": [NO_PHOTO_CONSENT]})
        try:
            serializer.instance = add_reference_photo(subject, serializer.validated_data["image"], user=self.request.user)
        except UploadRejected as exc:
            raise exceptions.ValidationError({"image": [exc.message]})

    def perform_destroy(self, instance):
        require_edit(self.request.user, instance.subject.patient)
        instance.image.delete(save=False)
        instance.delete()


@extend_schema_view(
    list=extend_schema(description="Chapters of the books you see, in order.",
                       responses={200: s.ChapterSerializer(many=True), **LIST_ERRORS},
                       parameters=[by("patient", "Only this patient's chapters.")]),
    create=extend_schema(description="Add a chapter at the end of a book.",
                         responses={201: s.ChapterSerializer, **WRITE_ERRORS}),
    retrieve=extend_schema(description="One chapter.", responses={200: s.ChapterSerializer, **NOT_FOUND}),
    update=extend_schema(description="Rename a chapter.", responses={200: s.ChapterSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(description="Rename a chapter.", responses={200: s.ChapterSerializer, **WRITE_ERRORS}),
    destroy=extend_schema(description="Delete a chapter with its memories.", responses={204: None, **WRITE_ERRORS}),
)
class ChapterViewSet(ScopedViewSet):
    queryset = Chapter.objects.all()
    serializer_class = s.ChapterSerializer
    filters = (("patient", "patient_id"),)

    def perform_create(self, serializer):
        require_edit(self.request.user, serializer.validated_data["patient"])
        serializer.save()

    @extend_schema(description="Move a chapter to another place in its book.", request=MOVE,
                   responses={200: s.ChapterSerializer, **WRITE_ERRORS, **ORDERING_CONFLICT})
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        chapter = self.get_object()
        self.check_edit(chapter)
        position = _position(request)
        try:
            positions.move_to(chapter, chapter.patient, chapter.patient.chapters.all(), position)
        except positions.OrderingConflict as exc:
            return conflict(exc)
        chapter.refresh_from_db()
        return Response(self.get_serializer(chapter).data)


def _position(request):
    serializer = MOVE(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["position"]


@extend_schema_view(
    list=extend_schema(description="Memories of the books you see, in book order. Therapists do not see hidden ones.",
                       responses={200: s.MemorySerializer(many=True), **LIST_ERRORS},
                       parameters=[by("chapter", "Only this chapter's."), by("patient", "Only this patient's.")]),
    create=extend_schema(description="Add a memory at the end of a chapter.",
                         responses={201: s.MemorySerializer, **WRITE_ERRORS}),
    retrieve=extend_schema(description="One memory.", responses={200: s.MemorySerializer, **NOT_FOUND}),
    update=extend_schema(description="Change a memory: words, subjects, hidden.",
                         responses={200: s.MemorySerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(description="Change some fields of a memory.",
                                 responses={200: s.MemorySerializer, **WRITE_ERRORS}),
    destroy=extend_schema(description="Delete a memory and its pictures (hiding keeps it instead).",
                          responses={204: None, **WRITE_ERRORS}),
)
class MemoryViewSet(ScopedViewSet):
    queryset = Memory.objects.all()
    serializer_class = s.MemorySerializer
    patient_path = "chapter__patient"
    memory_path = "pk"  # therapists never see hidden material (the web book and the carousel agree)
    related = ("chapter", "chosen_image")
    filters = (("chapter", "chapter_id"), ("patient", "chapter__patient_id"))

    def get_queryset(self):
        return (super().get_queryset().prefetch_related("subjects")
                .order_by("chapter__patient_id", "chapter__position", "position"))

    # Reading memories is reading the book: recorded in its audit trail (once per person and book in a while).
    def retrieve(self, request, *args, **kwargs):
        memory = self.get_object()
        audit.record_views(request.user, [memory.chapter.patient_id], audit.API)
        return Response(self.get_serializer(memory).data)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page is not None:
            audit.record_views(self.request.user, [memory.chapter.patient_id for memory in page], audit.API)
        return page

    def perform_create(self, serializer):
        require_edit(self.request.user, serializer.validated_data["chapter"].patient)
        serializer.save()

    @extend_schema(description="Move a memory to a place in its chapter, or into another chapter of its book.",
                   request=MemoryMoveSerializer,
                   responses={200: s.MemorySerializer, **WRITE_ERRORS, **ORDERING_CONFLICT})
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        memory = self.get_object()
        self.check_edit(memory)
        body = MemoryMoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        position = body.validated_data["position"]
        chapter = memory.chapter
        if body.validated_data.get("chapter") is not None:
            try:
                chapter = memory.chapter.patient.chapters.get(pk=body.validated_data["chapter"])
            except Chapter.DoesNotExist:
                raise exceptions.ValidationError({"chapter": ["Not a chapter of this book."]})
        memory.chapter = chapter
        try:
            positions.move_to(memory, chapter, chapter.memories.all(), position)
        except positions.OrderingConflict as exc:
            return conflict(exc)
        memory.refresh_from_db()
        return Response(self.get_serializer(memory).data)


@extend_schema_view(
    list=extend_schema(description="Candidate pictures of the memories you see, newest first.",
                       responses={200: s.MemoryImageSerializer(many=True), **LIST_ERRORS},
                       parameters=[by("memory", "Only this memory's pictures.")]),
    create=extend_schema(description="Upload a real photo for a memory (multipart), checked like every upload.",
                         responses={201: s.MemoryImageSerializer, **WRITE_ERRORS}),
    retrieve=extend_schema(description="One picture, with the exact recipe (parameters, seed) it was made with.",
                           responses={200: s.MemoryImageSerializer, **NOT_FOUND}),
    destroy=extend_schema(description="Delete a candidate picture.", responses={204: None, **WRITE_ERRORS}),
)
class MemoryImageViewSet(ScopedViewSet):
    queryset = MemoryImage.objects.all()
    serializer_class = s.MemoryImageSerializer
    patient_path = "memory__chapter__patient"
    memory_path = "memory"
    related = ("memory__chapter",)
    filters = (("memory", "memory_id"),)
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def perform_create(self, serializer):
        memory = serializer.validated_data["memory"]
        require_edit(self.request.user, memory.chapter.patient)
        try:
            serializer.instance = add_uploaded_memory_image(memory, serializer.validated_data["image"],
                                                            user=self.request.user,
                                                            choose=serializer.validated_data.get("choose", False))
        except UploadRejected as exc:
            raise exceptions.ValidationError({"image": [exc.message]})

    def perform_destroy(self, instance):
        require_edit(self.request.user, instance.memory.chapter.patient)
        instance.image.delete(save=False)
        instance.delete()

    @extend_schema(description="Use this picture for its memory.", request=None,
                   responses={200: s.MemoryImageSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def choose(self, request, pk=None):
        image = self.get_object()
        self.check_edit(image)
        s.NoBody(data=request.data).is_valid(raise_exception=True)
        Memory.objects.filter(pk=image.memory_id).update(chosen_image=image)
        book_changed(image.memory.chapter.patient_id)  # update() sends no signal
        image.memory.chosen_image_id = image.pk
        return Response(self.get_serializer(image).data)
