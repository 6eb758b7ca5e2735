"""Jobs in the admin: what is waiting, running, done or failed, on which worker, with retry and cancel."""

from pathlib import Path

from django.conf import settings
from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.utils.html import format_html, format_html_join

from lifebook.admin import thumbnail

from . import jobs
from .engine.models import describe_base_model
from .models import GenerationJob, Notice, TrainingCheckpoint, TrainingJob

JOB_FIELDS = ("state", "stage", "step", "total_steps", "error", "cancel_requested", "attempts", "worker",
              "created_by", "created_at", "dispatched_at", "started_at", "heartbeat_at", "finished_at")


class JobAdmin(admin.ModelAdmin):
    list_filter = ("state",)
    readonly_fields = JOB_FIELDS
    actions = ["retry_jobs", "cancel_jobs"]
    date_hierarchy = "created_at"

    def changelist_view(self, request, extra_context=None):
        # Which model the workers use (they read the same settings), shown above every job list.
        base_model = describe_base_model(settings.LIFEBOOK_BASE_MODEL, Path(settings.LIFEBOOK_MODELS_DIR))
        return super().changelist_view(request, {**(extra_context or {}), "base_model": base_model})

    def has_add_permission(self, request):
        return False  # jobs come from the book pages, the API or the commands, which check their input

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj.progress_percent}%"

    @admin.action(description="Retry the selected failed or cancelled jobs")
    def retry_jobs(self, request, queryset):
        retried = sum(jobs.retry(job) for job in queryset)
        self.message_user(request, f"{retried} job(s) queued again.", messages.SUCCESS if retried else messages.WARNING)

    @admin.action(description="Cancel the selected jobs")
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            jobs.cancel(job)
        self.message_user(request, "Cancel requested; running jobs stop within a step.")


class CheckpointInline(admin.TabularInline):
    model = TrainingCheckpoint
    extra = 0
    fields = ("step", "loss", "samples_preview", "adapter")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="samples")
    def samples_preview(self, obj):
        return format_html_join("", '<img src="{}" alt="sample" width="60" height="60">',
                                ((default_storage.url(name),) for name in obj.samples))


@admin.register(TrainingJob)
class TrainingJobAdmin(JobAdmin):
    list_display = ("subject", "patient_name", "state", "progress", "loss", "attempts", "worker", "created_at")
    search_fields = ("subject__name", "subject__patient__name")
    list_select_related = ("subject__patient",)
    readonly_fields = JOB_FIELDS + ("subject", "parameters", "loss", "eta_seconds", "photo_report",
                                    "resumed_from_step", "chosen_checkpoint", "chosen_at", "adapter", "adapter_size")
    inlines = [CheckpointInline]

    @admin.display(description="patient")
    def patient_name(self, obj):
        return obj.subject.patient


@admin.register(GenerationJob)
class GenerationJobAdmin(JobAdmin):
    list_display = ("memory", "kind", "state", "progress", "attempts", "worker", "created_at")
    list_filter = ("state", "kind")
    search_fields = ("memory__title", "memory__chapter__patient__name")
    list_select_related = ("memory",)
    readonly_fields = JOB_FIELDS + ("memory", "kind", "parameters", "source_image", "source_file", "mask_file",
                                    "inpaint_subject", "preview_image", "result_pictures")
    exclude = ("preview", "results")

    @admin.display(description="preview")
    def preview_image(self, obj):
        return format_html('<img src="{}" alt="preview" width="128">', obj.preview) if obj.preview else "-"

    @admin.display(description="results")
    def result_pictures(self, obj):
        return format_html_join("", "{}", ((thumbnail(image.image),) for image in obj.results.all())) or "-"


@admin.register(TrainingCheckpoint)
class TrainingCheckpointAdmin(admin.ModelAdmin):
    list_display = ("job", "step", "loss", "chosen", "created_at")
    search_fields = ("job__subject__name", "job__subject__patient__name")
    list_select_related = ("job__subject",)
    readonly_fields = ("job", "step", "loss", "adapter", "samples_preview", "created_at")
    exclude = ("samples",)
    actions = ["choose"]
    samples_preview = CheckpointInline.samples_preview

    def has_add_permission(self, request):
        return False  # checkpoints come from a training

    @admin.display(boolean=True)
    def chosen(self, obj):
        return obj.job.chosen_checkpoint_id == obj.pk

    @admin.action(description="Use the selected checkpoint for its subject")
    def choose(self, request, queryset):
        for checkpoint in queryset:
            jobs.choose_checkpoint(checkpoint)
        self.message_user(request, "The subject's pictures will use the chosen checkpoint from now on.")


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    """Read only: notices are left by job ends (generation.notices); an admin can see who was told what."""

    list_display = ("user", "kind", "job_id", "outcome", "patient", "created_at", "dismissed_at")
    list_filter = ("kind", "outcome")
    search_fields = ("user__username", "patient__name")
    readonly_fields = ("user", "patient", "kind", "job_id", "subject", "memory", "outcome", "job_finished_at",
                       "created_at", "dismissed_at")

    def has_add_permission(self, request):
        return False
