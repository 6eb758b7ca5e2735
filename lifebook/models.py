"""The life book: a patient, the subjects of their life, chapters and memories.

Files live under `patients/<patient id>/...` in the default storage. The
prefix is what lets lifebook.media check care-team access for any file,
including ones that later issues add (job previews, checkpoints).
"""

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from . import positions

class LifeStage(models.TextChoices):
    CHILDHOOD = "childhood", "Childhood"
    YOUTH = "youth", "Youth"
    ADULTHOOD = "adulthood", "Adulthood"
    OLD_AGE = "old_age", "Old age"
    NOW = "now", "As I am now"


def patient_file_path(patient_id, folder: str, extension: str) -> str:
    """A fresh, meaningless file name: original names can carry personal details."""
    return f"patients/{patient_id}/{folder}/{uuid.uuid4().hex}.{extension.lstrip('.')}"


class Patient(models.Model):
    name = models.CharField(max_length=200, help_text="Full name, as it should appear in captions.")
    preferred_name = models.CharField(max_length=100, blank=True, help_text="What they like to be called.")
    birth_year = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1880), MaxValueValidator(2100)],
        help_text="For example 1944.",
    )
    notes = models.TextField(blank=True, help_text="Anything the care team should know. Never shown in the book.")
    # Consent to use their photos (health data): who recorded it and when.
    photo_consent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    photo_consent_at = models.DateTimeField(null=True, blank=True)
    photo_consent_note = models.CharField(
        max_length=300, blank=True, help_text="For example “Juan himself” or “his daughter, his legal guardian”."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Goes up with every change to what the book shows (chapters, memories, their pictures and people), so
    # a rendered book page can be kept and reused until then (lifebook.book_cache).
    book_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(birth_year__isnull=True) | models.Q(birth_year__gte=1880, birth_year__lte=2100),
                name="patient_birth_year_plausible",
                violation_error_message="The birth year must be between 1880 and 2100.",
            ),
        ]

    def save(self, *args, **kwargs):
        # Never write book_version back: a stale copy (an edit form loaded before a book change) would move it
        # backwards, and numbers already used could then name old cached pages (lifebook.book_cache).
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [field.name for field in self._meta.concrete_fields
                                       if not field.primary_key and field.name != "book_version"]
        super().save(*args, **kwargs)

    def __str__(self):
        return self.name

    @property
    def display_name(self):
        return self.preferred_name or self.name

    @property
    def has_photo_consent(self) -> bool:
        return self.photo_consent_at is not None


def _new_training_token() -> str:
    """A rare, meaningless word (the thesis used `sqgkhoju`): a real word washes out identity.

    Consonants with few vowels rarely make a word the text encoder knows.
    """
    consonants = "bcdfghjklmnpqrstvwxz"
    vowels = "aeiou"
    letters = [secrets.choice(consonants) for _ in range(6)]
    letters.insert(secrets.randbelow(4) + 1, secrets.choice(vowels))
    return "".join(letters)


class Subject(models.Model):
    """Someone or something that appears in the patient's memories, learned from photos."""

    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        PLACE = "place", "Place"
        PET = "pet", "Pet"
        OBJECT = "object", "Object"
        STYLE = "style", "Style"

    DEFAULT_CLASS_WORDS = {
        Kind.PERSON: "person",
        Kind.PLACE: "building",
        Kind.PET: "dog",
        Kind.OBJECT: "object",
        Kind.STYLE: "painting",
    }

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="subjects")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=120, help_text="e.g. 'Ana', 'The basilica', 'Toby'.")
    relationship = models.CharField(max_length=120, blank=True, help_text="e.g. 'his mother', 'his dog'.")
    life_stage = models.CharField(
        max_length=10, choices=LifeStage.choices, blank=True,
        help_text="For the patient at one age: the photos are from that life stage.",
    )
    # Bound to this subject in prompts; generated, never typed or shown to caregivers.
    token = models.CharField(max_length=16, unique=True, editable=False)
    class_word = models.CharField(
        max_length=40, blank=True, help_text="What kind of thing it is in plain English: man, woman, dog, church."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient_id", "kind", "name", "pk"]

    def __str__(self):
        stage = f" ({self.get_life_stage_display().lower()})" if self.life_stage else ""
        return f"{self.name}{stage}"

    def save(self, *args, **kwargs):
        if not self.token:
            self.token = self._unused_token()
        if not self.class_word:
            self.class_word = self.DEFAULT_CLASS_WORDS.get(self.kind, "thing")
        super().save(*args, **kwargs)

    @classmethod
    def _unused_token(cls) -> str:
        while True:
            token = _new_training_token()
            if not cls.objects.filter(token=token).exists():
                return token


def reference_photo_path(photo, filename):
    return patient_file_path(photo.subject.patient_id, f"subjects/{photo.subject_id}", "jpg")


class ReferencePhoto(models.Model):
    """A normalised photo of a subject (see lifebook.uploads): RGB JPEG, no EXIF."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="photos")
    image = models.ImageField(upload_to=reference_photo_path, width_field="width", height_field="height")
    original_name = models.CharField(max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField(help_text="Size of the stored, normalised file.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the decoded pixels.")
    # Plain-words notes for the caregiver, e.g. "smaller than 512 pixels".
    quality_notes = models.JSONField(default=list, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject_id", "created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "content_hash"], name="photo_once_per_subject"),
        ]

    def __str__(self):
        return self.original_name


class Chapter(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="chapters")
    title = models.CharField(max_length=120)
    life_stage = models.CharField(max_length=10, choices=LifeStage.choices, blank=True)
    position = models.PositiveIntegerField(blank=True, help_text="Left empty, the chapter goes last.")

    class Meta:
        ordering = ["patient_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "position"], name="chapter_position_unique"),
        ]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        if self.position is None:
            return positions.save_with_next_position(self, self.patient, self.patient.chapters.all())
        return super().save(*args, **kwargs)

    @property
    def move_form_id(self) -> str:
        """The id of the book page's hidden form that this chapter's "Move up/down" buttons submit."""
        return f"chapter-{self.pk}-moves"


class Memory(models.Model):
    """One page of the book: a picture, a title and a short caption."""

    chapter = models.ForeignKey(Chapter, on_delete=models.CASCADE, related_name="memories")
    position = models.PositiveIntegerField(blank=True, help_text="Left empty, the memory goes last.")
    title = models.CharField(max_length=140)
    description = models.TextField(
        blank=True, help_text="The caption: short and factual, naming people in full ('Juan with his mother Ana')."
    )
    scene = models.TextField(blank=True, help_text="What happens in the picture, in the caregiver's words.")
    subjects = models.ManyToManyField(Subject, blank=True, related_name="memories")
    # Who is where in its pictures: boxes as fractions of the picture (lifebook.layout); empty = automatic.
    layout = models.JSONField(default=list, blank=True)
    # Distressing material is hidden from the carousel and the PDF, never deleted.
    hidden = models.BooleanField(default=False)
    chosen_image = models.ForeignKey(
        "MemoryImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["chapter_id", "position"]
        verbose_name_plural = "memories"
        constraints = [
            models.UniqueConstraint(fields=["chapter", "position"], name="memory_position_unique"),
        ]

    def __str__(self):
        return self.title

    @property
    def patient(self):
        return self.chapter.patient

    def save(self, *args, **kwargs):
        if self.position is None:
            return positions.save_with_next_position(self, self.chapter, self.chapter.memories.all())
        if self.pk and not kwargs.get("update_fields"):
            stored_chapter_id = type(self).objects.filter(pk=self.pk).values_list("chapter_id", flat=True).first()
            if stored_chapter_id not in (None, self.chapter_id):
                return self._save_into_another_chapter(stored_chapter_id, *args, **kwargs)
        return super().save(*args, **kwargs)

    def _save_into_another_chapter(self, stored_chapter_id, *args, **kwargs):
        """A memory given another chapter (the memory page's form, the API) goes last there: its number in the
        old chapter could belong to another memory in the new one."""
        from django.db import transaction

        new_chapter = self.chapter
        with transaction.atomic():
            self.chapter_id = stored_chapter_id
            super().save(*args, **kwargs)
            self.chapter = new_chapter
            positions.move_to(self, new_chapter, new_chapter.memories.all(), index=2**31)

    def clean(self):
        if self.chosen_image_id and self.chosen_image.memory_id != self.pk:
            raise ValidationError({"chosen_image": "The chosen picture must be one of this memory's pictures."})


def memory_image_path(image, filename):
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "png"
    return patient_file_path(image.memory.chapter.patient_id, f"memories/{image.memory_id}", extension)


class MemoryImage(models.Model):
    """A candidate picture for a memory: uploaded, generated, inpainted or drawn from a sketch."""

    class Source(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded photo"
        GENERATED = "generated", "Generated"
        INPAINTED = "inpainted", "Generated (a part repainted)"
        FROM_SKETCH = "from_sketch", "Generated from a sketch"

    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(upload_to=memory_image_path, width_field="width", height_field="height")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    # The exact engine parameters and seed, so any picture can be made again.
    parameters = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    # True when made by the random-weight demo model: the UI says so.
    from_demo_model = models.BooleanField(default=False)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
        help_text="The picture this one was repainted from.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["memory_id", "-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source="uploaded") | models.Q(seed__isnull=False),
                name="generated_image_keeps_its_seed",
            ),
        ]

    def __str__(self):
        return f"{self.get_source_display()} picture for “{self.memory}”"

    @property
    def is_generated(self) -> bool:
        return self.source != self.Source.UPLOADED

    def clean(self):
        if self.parent_id and self.parent.memory_id != self.memory_id:
            raise ValidationError({"parent": "A repainted picture must come from the same memory."})


class AuditEvent(models.Model):
    """Who looked at, exported, erased or changed consent for a book, and when (health data: lifebook.audit).

    The patient is kept as a plain number too, so the trail of an erased book survives without its name."""

    class Action(models.TextChoices):
        VIEWED = "viewed", "Looked at the book"
        EXPORTED = "exported", "Downloaded a copy of the book"
        IMPORTED = "imported", "Made the book from a downloaded copy"
        ERASED = "erased", "Erased the book"
        CONSENT_GIVEN = "consent_given", "Recorded consent to use photos"
        CONSENT_WITHDRAWN = "consent_withdrawn", "Withdrew consent to use photos"

    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    patient_number = models.PositiveBigIntegerField(help_text="The book's id, kept after the book is erased.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    username = models.CharField(max_length=150, blank=True, help_text="Kept if the account is deleted later.")
    action = models.CharField(max_length=20, choices=Action.choices)
    # What exactly: "the reader", "the PDF", "API"... never health data itself.
    detail = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["patient_number", "-at"], name="audit_by_book")]

    def __str__(self):
        return f"{self.username or 'someone'}: {self.get_action_display().lower()} (book {self.patient_number})"
