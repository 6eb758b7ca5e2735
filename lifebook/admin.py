from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from accounts.models import CareTeamMember

from .erase import erase_book
from .models import AuditEvent, Chapter, Memory, MemoryImage, Patient, ReferencePhoto, Subject


def thumbnail(file_field, small=False):
    """An <img> through the access-checked media view (admins are staff, so they pass). Sized by
    static/css/admin.css: the Content-Security-Policy allows no style attribute."""
    if not file_field:
        return "—"
    return format_html('<img src="{}" alt="" class="{}" loading="lazy">',
                       file_field.url, "lifebook-thumb is-small" if small else "lifebook-thumb")


class CareTeamInline(admin.TabularInline):
    model = CareTeamMember
    extra = 0
    autocomplete_fields = ["user"]


class SubjectInline(admin.TabularInline):
    model = Subject
    extra = 0
    fields = ["kind", "name", "relationship", "life_stage", "class_word", "token"]
    readonly_fields = ["token"]
    show_change_link = True


class ChapterInline(admin.TabularInline):
    model = Chapter
    extra = 0
    fields = ["position", "title", "life_stage"]
    show_change_link = True


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["name", "preferred_name", "birth_year", "has_consent", "subject_count", "created_at"]
    list_filter = [("photo_consent_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "preferred_name", "care_team__user__username", "care_team__user__email"]
    readonly_fields = ["photo_consent_by", "photo_consent_at", "created_at", "updated_at"]
    inlines = [CareTeamInline, SubjectInline, ChapterInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(subject_count=Count("subjects"))

    @admin.display(boolean=True, description="Photo consent", ordering="photo_consent_at")
    def has_consent(self, obj):
        return obj.has_photo_consent

    @admin.display(description="Subjects", ordering="subject_count")
    def subject_count(self, obj):
        return obj.subject_count

    # Deleting a patient here erases the book as its owner would (lifebook.erase): files, trainings and jobs too,
    # with an "erased" event in the audit trail. The plain cascade would leave every file behind.
    def delete_model(self, request, obj):
        erase_book(obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for patient in queryset:
            erase_book(patient, by=request.user)


class ReferencePhotoInline(admin.TabularInline):
    model = ReferencePhoto
    extra = 0
    fields = ["preview", "original_name", "width", "height", "quality_notes"]
    readonly_fields = fields
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False  # photos come in through the upload service, never raw

    @admin.display(description="Photo")
    def preview(self, obj):
        return thumbnail(obj.image)


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "relationship", "life_stage", "patient", "photo_count", "token"]
    list_filter = ["kind", "life_stage"]
    search_fields = ["name", "relationship", "token", "patient__name"]
    list_select_related = ["patient"]
    readonly_fields = ["token", "created_at"]
    autocomplete_fields = ["patient"]
    inlines = [ReferencePhotoInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(photo_count=Count("photos"))

    @admin.display(description="Photos", ordering="photo_count")
    def photo_count(self, obj):
        return obj.photo_count


@admin.register(ReferencePhoto)
class ReferencePhotoAdmin(admin.ModelAdmin):
    list_display = ["preview", "original_name", "subject", "width", "height", "size_bytes", "created_at"]
    list_filter = ["subject__kind", "created_at"]
    search_fields = ["original_name", "subject__name", "subject__patient__name", "content_hash"]
    list_select_related = ["subject"]
    readonly_fields = ["preview", "image", "width", "height", "size_bytes", "content_hash", "uploaded_by", "created_at"]
    fields = ["subject", "preview", "original_name", "quality_notes"] + readonly_fields[1:]

    def has_add_permission(self, request):
        return False  # photos come in through the upload service, never raw

    @admin.display(description="Photo")
    def preview(self, obj):
        return thumbnail(obj.image)


class MemoryInline(admin.TabularInline):
    model = Memory
    extra = 0
    fields = ["position", "title", "hidden"]
    show_change_link = True


@admin.register(Chapter)
class ChapterAdmin(admin.ModelAdmin):
    list_display = ["title", "patient", "life_stage", "position"]
    list_filter = ["life_stage"]
    search_fields = ["title", "patient__name"]
    list_select_related = ["patient"]
    autocomplete_fields = ["patient"]
    inlines = [MemoryInline]


class MemoryImageInline(admin.TabularInline):
    model = MemoryImage
    fk_name = "memory"
    extra = 0
    fields = ["preview", "source", "seed", "from_demo_model", "parent", "created_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Picture")
    def preview(self, obj):
        return thumbnail(obj.image)


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ["preview", "title", "chapter", "position", "hidden", "updated_at"]
    list_filter = ["hidden", "chapter__life_stage"]
    search_fields = ["title", "description", "chapter__patient__name"]
    list_select_related = ["chapter", "chosen_image"]
    autocomplete_fields = ["chapter", "subjects"]
    readonly_fields = ["layout"]  # edited on the memory's page or through the API, which check it
    inlines = [MemoryImageInline]

    @admin.display(description="Picture")
    def preview(self, obj):
        return thumbnail(obj.chosen_image.image if obj.chosen_image else None, small=True)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "chosen_image":
            # Only this memory's own pictures can be chosen.
            memory_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = MemoryImage.objects.filter(memory_id=memory_id or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(MemoryImage)
class MemoryImageAdmin(admin.ModelAdmin):
    list_display = ["preview", "memory", "source", "seed", "from_demo_model", "created_at"]
    list_filter = ["source", "from_demo_model", "created_at"]
    search_fields = ["memory__title", "memory__chapter__patient__name"]
    list_select_related = ["memory"]
    readonly_fields = ["preview", "image", "width", "height", "source", "parameters", "seed", "from_demo_model",
                       "parent", "created_by", "created_at"]

    def has_add_permission(self, request):
        return False  # pictures come from uploads or the generator, with their parameters

    @admin.display(description="Picture")
    def preview(self, obj):
        return thumbnail(obj.image)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail, read only: nobody (admins included) adds, changes or deletes an event here."""

    list_display = ["at", "username", "action", "patient_number", "patient", "detail"]
    list_filter = ["action"]
    search_fields = ["username", "detail", "=patient_number"]  # a book's number finds its events after erasing too
    list_select_related = ["patient"]
    date_hierarchy = "at"
    fields = ["at", "action", "detail", "patient", "patient_number", "user", "username"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
