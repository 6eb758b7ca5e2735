"""How book rows look in the API. Media fields are URLs of the access-checked media view."""

from rest_framework import serializers

from accounts.access import patients_for, role_for
from accounts.models import CareTeamMember

from ..models import Chapter, Memory, MemoryImage, Patient, ReferencePhoto, Subject


# How each model reaches its patient: the key to scoping ids a client sends.
PATIENT_PATHS = {Patient: "pk", Subject: "patient", Chapter: "patient", Memory: "chapter__patient",
                 MemoryImage: "memory__chapter__patient", ReferencePhoto: "subject__patient"}


class ScopedRelations:
    """Ids a client sends (a subject, a memory...) resolve only within the patients they may see, so an
    id from another book gets exactly the answer of an id that does not exist: nothing to learn from."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is None:
            return
        visible = patients_for(request.user)
        for field in self.fields.values():
            relation = getattr(field, "child_relation", field)  # many=True wraps the field
            if isinstance(relation, serializers.PrimaryKeyRelatedField) and relation.queryset is not None:
                path = PATIENT_PATHS.get(relation.queryset.model)
                if path:
                    lookup = "pk__in" if path == "pk" else f"{path}__in"
                    relation.queryset = relation.queryset.filter(**{lookup: visible})


def media_url(serializer, field_file):
    if not field_file:
        return None
    request = serializer.context.get("request")
    return request.build_absolute_uri(field_file.url) if request else field_file.url


class PatientSerializer(serializers.ModelSerializer):
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


class CareTeamMemberSerializer(ScopedRelations, serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    user_identifier = serializers.CharField(write_only=True, required=False,
                                            help_text="When adding someone: their username or email.")

    class Meta:
        model = CareTeamMember
        fields = ["id", "patient", "user", "user_identifier", "role", "added_at"]
        read_only_fields = ["added_at"]


class SubjectSerializer(ScopedRelations, serializers.ModelSerializer):
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


class ReferencePhotoSerializer(ScopedRelations, serializers.ModelSerializer):
    image = serializers.ImageField(write_only=True, help_text="JPEG, PNG, WebP or HEIC; at least 256 pixels a side.")
    url = serializers.SerializerMethodField()

    class Meta:
        model = ReferencePhoto
        fields = ["id", "subject", "image", "url", "original_name", "width", "height", "size_bytes",
                  "quality_notes", "created_at"]
        read_only_fields = ["original_name", "width", "height", "size_bytes", "quality_notes", "created_at"]

    def get_url(self, photo) -> str | None:
        return media_url(self, photo.image)


class ChapterSerializer(ScopedRelations, serializers.ModelSerializer):
    class Meta:
        model = Chapter
        fields = ["id", "patient", "title", "life_stage", "position"]
        read_only_fields = ["position"]

    def validate_patient(self, patient):
        if self.instance and patient != self.instance.patient:
            raise serializers.ValidationError("A chapter stays in its book.")
        return patient


class MemorySerializer(ScopedRelations, serializers.ModelSerializer):
    chosen_image_url = serializers.SerializerMethodField()

    class Meta:
        model = Memory
        fields = ["id", "chapter", "position", "title", "description", "scene", "subjects", "hidden",
                  "chosen_image", "chosen_image_url", "created_at", "updated_at"]
        read_only_fields = ["position", "chosen_image", "created_at", "updated_at"]
        extra_kwargs = {"subjects": {"required": False}}

    def get_chosen_image_url(self, memory) -> str | None:
        return media_url(self, memory.chosen_image.image) if memory.chosen_image else None

    def validate(self, attrs):
        chapter = attrs.get("chapter") or (self.instance.chapter if self.instance else None)
        if self.instance and chapter.patient_id != self.instance.chapter.patient_id:
            raise serializers.ValidationError({"chapter": "A memory can move to another chapter of its own book only."})
        for subject in attrs.get("subjects", []):
            if chapter and subject.patient_id != chapter.patient_id:
                raise serializers.ValidationError({"subjects": f"“{subject}” is not in this book."})
        return attrs


class MemoryImageSerializer(ScopedRelations, serializers.ModelSerializer):
    image = serializers.ImageField(write_only=True, help_text="A real photo instead of a generated picture.")
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
