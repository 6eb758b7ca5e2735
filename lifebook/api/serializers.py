"""How book rows look in the API. Media fields are URLs of the access-checked media view.

Every serializer that takes input is `StrictInput`: a field the client sends is either used or refused
with a 400 that names it, never silently dropped. Uploads are `UploadField`s: the file goes untouched to
the same service as on the web (`lifebook.uploads`, `generation.jobs`), so a refusal reads the same.
"""

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from accounts.access import memories_for, patients_for, role_for

from ..layout import validate_layout
from ..models import AuditEvent, Chapter, Memory, MemoryImage, Patient, ReferencePhoto, Subject


# How each model reaches its patient: the key to scoping ids a client sends.
PATIENT_PATHS = {Patient: "pk", Subject: "patient", Chapter: "patient", Memory: "chapter__patient",
                 MemoryImage: "memory__chapter__patient", ReferencePhoto: "subject__patient"}
# ... and its memory, for the rows that belong to one (hidden from therapists with it).
MEMORY_PATHS = {Memory: "pk", MemoryImage: "memory"}


class ScopedRelations:
    """Ids a client sends (a subject, a memory...) resolve only within what they may see, so an id from
    another book (or of a memory hidden from them) gets exactly the answer of an id that does not exist:
    nothing to learn from. These querysets are also the choices of the browsable API's HTML forms."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is None:
            return
        visible = patients_for(request.user)
        for field in self.fields.values():
            relation = getattr(field, "child_relation", field)  # many=True wraps the field
            if isinstance(relation, serializers.PrimaryKeyRelatedField) and relation.queryset is not None:
                model = relation.queryset.model
                if model in PATIENT_PATHS:
                    path = PATIENT_PATHS[model]
                    lookup = "pk__in" if path == "pk" else f"{path}__in"
                    relation.queryset = relation.queryset.filter(**{lookup: visible})
                if model in MEMORY_PATHS:
                    relation.queryset = relation.queryset.filter(**{f"{MEMORY_PATHS[model]}__in":
                                                                    memories_for(request.user)})


class StrictInput:
    """Refuses, by name, every field sent that the serializer would not use: unknown names (a typo, a
    setting that does not exist) and read-only ones. DRF's own rule is to drop both without a word, so a
    client would believe, say, a misspelt setting had been applied."""

    IGNORED = frozenset({"csrfmiddlewaretoken"})  # the browsable API's forms send it with every post
    # A name that a client may well send, with what to send instead (a subclass fills it in).
    explained: dict = {}

    def to_internal_value(self, data):
        refused = {}
        if isinstance(data, Mapping):
            for name in data:
                if name in self.IGNORED:
                    continue
                field = self.fields.get(name)
                if field is None:
                    refused[name] = [self.explained.get(name) or _(
                        "There is no field of this name here, so nothing would be done with it. "
                        "The fields are listed in the API schema (/api/schema/).")]
                elif field.read_only:
                    refused[name] = [_("Lifebook sets this field itself; leave it out.")]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:  # one answer with every problem, the refused names included
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused})
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


class StrictInputSchema(OpenApiSerializerExtension):
    """The schema says what StrictInput does: a request body holds no other field
    (`additionalProperties: false`), so clients and schemathesis know it too."""

    target_class = StrictInput
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


class NoBody(StrictInput, serializers.Serializer):
    """For actions that take no fields: anything sent is refused by name."""


class UploadField(serializers.FileField):
    """An uploaded file, passed as it is to the upload service (`lifebook.uploads`, through
    `generation.jobs` for sketches and masks), which decodes it and explains a refusal in the same words
    as the web pages. DRF's ImageField would first run Pillow's own verify and answer with Django's
    generic "Upload a valid image" before the service ever saw the file."""

    default_error_messages = {
        "invalid": _("Send a file here, as part of a multipart/form-data request."),
    }

    def to_internal_value(self, data):
        if not (hasattr(data, "read") and hasattr(data, "name")):
            self.fail("invalid")
        return data


def media_url(serializer, field_file):
    if not field_file:
        return None
    request = serializer.context.get("request")
    return request.build_absolute_uri(field_file.url) if request else field_file.url


class PatientSerializer(StrictInput, serializers.ModelSerializer):
    photo_consent = serializers.BooleanField(
        required=False, help_text="We have consent to use photos of this person; say who gave it in photo_consent_note.")
    role = serializers.SerializerMethodField(help_text="Your role on this patient's care team.")

    class Meta:
        model = Patient
        fields = ["id", "name", "preferred_name", "birth_year", "notes", "photo_consent", "photo_consent_note",
                  "photo_consent_at", "role", "created_at", "updated_at"]
        read_only_fields = ["photo_consent_at", "created_at", "updated_at"]

    def get_role(self, patient) -> str | None:
        if hasattr(patient, "my_role"):  # annotated in the viewset's queryset: no query per patient
            return patient.my_role
        return role_for(self.context["request"].user, patient)

    def to_representation(self, patient):
        data = super().to_representation(patient)
        data["photo_consent"] = patient.has_photo_consent
        return data

    def validate(self, attrs):
        consent = attrs.get("photo_consent", self.instance.has_photo_consent if self.instance else False)
        note = attrs.get("photo_consent_note", self.instance.photo_consent_note if self.instance else "")
        if consent and not (note or "").strip():
            raise serializers.ValidationError({"photo_consent_note": "Say who gave consent, for example “Juan himself”."})
        return attrs


class SubjectSerializer(StrictInput, ScopedRelations, serializers.ModelSerializer):
    photo_count = serializers.SerializerMethodField(help_text="How many reference photos it has.")
    trained = serializers.SerializerMethodField(help_text="Whether Lifebook has learned what this subject looks like.")

    class Meta:
        model = Subject
        fields = ["id", "patient", "kind", "name", "relationship", "life_stage", "class_word", "photo_count",
                  "trained", "created_at"]
        read_only_fields = ["created_at"]

    def get_photo_count(self, subject) -> int:
        count = getattr(subject, "photo_count", None)  # annotated in lists; a new subject has none
        return subject.photos.count() if count is None else count

    def get_trained(self, subject) -> bool:
        if hasattr(subject, "is_trained"):  # annotated in the viewset's queryset: no query per subject
            return subject.is_trained
        from generation.planning import adapter_for

        return adapter_for(subject) is not None


class ReferencePhotoSerializer(StrictInput, ScopedRelations, serializers.ModelSerializer):
    image = UploadField(write_only=True, help_text="JPEG, PNG, WebP or HEIC; at least 256 pixels a side.")
    url = serializers.SerializerMethodField()

    class Meta:
        model = ReferencePhoto
        fields = ["id", "subject", "image", "url", "original_name", "width", "height", "size_bytes",
                  "quality_notes", "created_at"]
        read_only_fields = ["original_name", "width", "height", "size_bytes", "quality_notes", "created_at"]

    def get_url(self, photo) -> str | None:
        return media_url(self, photo.image)


class ChapterSerializer(StrictInput, ScopedRelations, serializers.ModelSerializer):
    class Meta:
        model = Chapter
        fields = ["id", "patient", "title", "life_stage", "position"]
        read_only_fields = ["position"]

    def validate_patient(self, patient):
        if self.instance and patient != self.instance.patient:
            raise serializers.ValidationError("A chapter stays in its book.")
        return patient


class MemorySerializer(StrictInput, ScopedRelations, serializers.ModelSerializer):
    chosen_image_url = serializers.SerializerMethodField()

    class Meta:
        model = Memory
        fields = ["id", "chapter", "position", "title", "description", "scene", "subjects", "layout", "hidden",
                  "chosen_image", "chosen_image_url", "created_at", "updated_at"]
        read_only_fields = ["position", "chosen_image", "created_at", "updated_at"]
        extra_kwargs = {
            "subjects": {"required": False},
            "layout": {"required": False, "help_text": (
                'Who is where in composed pictures: one box per person, pet or object of the memory, '
                '[{"subject": <id>, "box": [left, top, right, bottom]}], as fractions of the picture (0 to 1), '
                "each side at least 0.1. An empty list: the automatic layout (people side by side, a pet low "
                "beside its person). Places and styles have no box: they are the background.")},
        }

    def get_chosen_image_url(self, memory) -> str | None:
        return media_url(self, memory.chosen_image.image) if memory.chosen_image else None

    def validate(self, attrs):
        chapter = attrs.get("chapter") or (self.instance.chapter if self.instance else None)
        if self.instance and chapter.patient_id != self.instance.chapter.patient_id:
            raise serializers.ValidationError({"chapter": "A memory can move to another chapter of its own book only."})
        for subject in attrs.get("subjects", []):
            if chapter and subject.patient_id != chapter.patient_id:
                raise serializers.ValidationError({"subjects": f"“{subject}” is not in this book."})
        if "layout" in attrs:
            if "subjects" in attrs:
                subjects = attrs["subjects"]
            else:
                subjects = list(self.instance.subjects.all()) if self.instance else []
            try:
                attrs["layout"] = validate_layout(subjects, attrs["layout"])
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"layout": exc.messages})
        return attrs


class MemoryImageSerializer(StrictInput, ScopedRelations, serializers.ModelSerializer):
    image = UploadField(write_only=True, help_text="A real photo instead of a generated picture: JPEG, PNG, WebP "
                                                   "or HEIC, at least 256 pixels a side.")
    url = serializers.SerializerMethodField()
    generated = serializers.BooleanField(source="is_generated", read_only=True,
                                         help_text="Made by Lifebook, not a real photo: the book marks it.")
    chosen = serializers.SerializerMethodField()
    choose = serializers.BooleanField(write_only=True, required=False, default=False,
                                      help_text="Use the uploaded photo as the memory's picture.")

    class Meta:
        model = MemoryImage
        fields = ["id", "memory", "image", "url", "source", "generated", "from_demo_model", "chosen", "choose",
                  "width", "height", "seed", "parameters", "parent", "created_at"]
        read_only_fields = ["source", "from_demo_model", "width", "height", "seed", "parameters", "parent",
                            "created_at"]

    def get_url(self, image) -> str | None:
        return media_url(self, image.image)

    def get_chosen(self, image) -> bool:
        return image.memory.chosen_image_id == image.pk


class AuditEventSerializer(serializers.ModelSerializer):
    """One event of a book's audit trail (lifebook.audit), with plain words to show as they are."""

    user = serializers.CharField(source="username", read_only=True,
                                 help_text="The account's username (kept if the account is deleted later).")
    who = serializers.CharField(read_only=True, help_text="Their name and role now, e.g. “Laura (therapist)”.")
    what = serializers.CharField(read_only=True, help_text="What they did, e.g. “read the book in the reader”.")

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "action", "detail", "user", "who", "what"]
        read_only_fields = fields
