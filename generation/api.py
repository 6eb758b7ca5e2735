"""Jobs in the API: submit (202 with the job's URL), follow progress, cancel, pick a training checkpoint.

Submissions go through `generation.jobs`, exactly as the web pages and the commands do.
"""

from django.core.files.storage import default_storage
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from lifebook.api.base import Scoped, SubmitsJobs, require_edit
from lifebook.api.serializers import NoBody, ScopedRelations, StrictInput, UploadField, media_url
from lifebook.models import MemoryImage

from . import jobs
from .calls import GENERATION_DEFAULTS
from .models import GenerationJob, JobState, TrainingCheckpoint, TrainingJob
from .planning import NEGATIVE_PROMPT

WRITE_ERRORS = {400: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}
LIST_ERRORS = {400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}  # a bad filter value; a page past the end
STATE = OpenApiParameter("state", str, enum=JobState.values, description="Only jobs in this state.")


class CheckpointSerializer(serializers.ModelSerializer):
    samples = serializers.SerializerMethodField(help_text="Sample pictures: pick the one that looks most like them.")
    chosen = serializers.SerializerMethodField()

    class Meta:
        model = TrainingCheckpoint
        fields = ["id", "step", "loss", "samples", "chosen", "created_at"]

    def get_samples(self, checkpoint) -> list[str]:
        request = self.context.get("request")
        urls = [default_storage.url(name) for name in checkpoint.samples]
        return [request.build_absolute_uri(url) for url in urls] if request else urls

    def get_chosen(self, checkpoint) -> bool:
        return checkpoint.job.chosen_checkpoint_id == checkpoint.pk


JOB_FIELDS = ["id", "url", "state", "stage", "step", "total_steps", "progress_percent", "error", "cancel_requested",
              "attempts", "created_at", "started_at", "finished_at"]


class TrainingJobSerializer(StrictInput, ScopedRelations, serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:training-job-detail")
    steps = serializers.IntegerField(write_only=True, required=False, min_value=1, max_value=100_000,
                                     help_text="Default: 240 per photo (2400 for 10).")
    checkpoints = CheckpointSerializer(many=True, read_only=True)

    class Meta:
        model = TrainingJob
        fields = JOB_FIELDS + ["subject", "steps", "loss", "eta_seconds", "photo_report", "checkpoints",
                               "chosen_checkpoint", "adapter_size"]
        read_only_fields = [f for f in fields if f not in ("subject", "steps")]


def limited(field, name, help_text):
    """A picture setting with the range `generation.jobs` enforces, so the schema says it too."""
    low, high = jobs.GENERATION_LIMITS[name]
    return field(write_only=True, required=False, min_value=low, max_value=high, help_text=help_text)


def choice(name, help_text):
    return serializers.ChoiceField(choices=jobs.GENERATION_CHOICES[name], write_only=True, required=False,
                                   help_text=help_text)


class OptionalFlag(serializers.BooleanField):
    default_empty_html = serializers.empty  # left out of a form means "not given", not DRF's False


def flag(help_text):
    return OptionalFlag(write_only=True, required=False, help_text=help_text)


INPAINT = GENERATION_DEFAULTS[GenerationJob.Kind.INPAINT]


def refused(exc: jobs.JobRefused):
    """A refusal of the job service as a 400 that names the field it is about."""
    return exceptions.ValidationError({exc.field or "detail": [exc.message]})


class GenerationJobSerializer(StrictInput, ScopedRelations, serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:generation-job-detail")
    kind = serializers.ChoiceField(choices=GenerationJob.Kind.choices, default=GenerationJob.Kind.TXT2IMG,
                                   help_text="txt2img (or img2img) becomes compose by itself when the memory has two "
                                             "or more learned subjects, at least one a person, pet or object: each is "
                                             "drawn in its own box of the memory's layout.")
    prompt = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=jobs.TEXT_LIMIT,
                                   help_text="Extra words for the picture; the memory's scene and subjects come first.")
    negative_prompt = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=jobs.TEXT_LIMIT,
        help_text=f"What the picture should not show, instead of Lifebook's own: “{NEGATIVE_PROMPT}”.")
    source_upload = UploadField(write_only=True, required=False,
                                help_text="A sketch to start from (img2img): JPEG, PNG, WebP or HEIC.")
    mask_upload = UploadField(write_only=True, required=False,
                              help_text="For inpaint: white (or opaque strokes) = the part to repaint; the size of "
                                        "source_image.")
    steps = limited(serializers.IntegerField, "steps", "Denoising steps (Advanced). With strength, at least one "
                                                       "step must run: steps × strength ≥ 1.")
    guidance = limited(serializers.FloatField, "guidance", "How closely to follow the words (Advanced).")
    width = limited(serializers.IntegerField, "width", "Pixels, a multiple of 8.")
    height = limited(serializers.IntegerField, "height", "Pixels, a multiple of 8.")
    seed = limited(serializers.IntegerField, "seed", "The same seed and words give the same picture.")
    num_images = limited(serializers.IntegerField, "num_images", "How many candidates.")
    strength = limited(serializers.FloatField, "strength", "How much to change (img2img and inpaint).")
    mask_mode = choice("mask_mode", f"For inpaint: repaint what is painted (masked) or everything else "
                                    f"(not_masked). Default: {INPAINT['mask_mode']}.")
    masked_content = choice("masked_content", f"For inpaint: what the painted part starts from: the picture "
                                              f"(original), its surroundings' colours (fill), noise (latent_noise) "
                                              f"or nothing (latent_nothing). Default: {INPAINT['masked_content']}.")
    mask_blur = limited(serializers.IntegerField, "mask_blur", f"For inpaint: how many pixels the mask's edge is "
                                                               f"blurred over. Default: {INPAINT['mask_blur']}.")
    only_masked = flag(f"For inpaint: repaint only the painted part (with padding around it), at the full size, "
                       f"and paste it back; false repaints the whole picture. Default: "
                       f"{str(INPAINT['only_masked']).lower()}.")
    padding = limited(serializers.IntegerField, "padding", f"For inpaint with only_masked: pixels of the picture "
                                                           f"around the painted part that are repainted with it. "
                                                           f"Default: {INPAINT['padding']}.")
    face_pass = flag("Repaint each learned person's face on its own at the end, with only their likeness "
                     "(txt2img, img2img and compose). Default: true.")
    layout_fraction = limited(serializers.FloatField, "layout_fraction",
                              "For compose: the share of the steps drawn with no likeness, so that the "
                              "composition forms first. Default: 0.25.")
    preview_url = serializers.CharField(source="preview", read_only=True,
                                        help_text="The latest step preview, as a data: URL, while it runs.")
    results = serializers.SerializerMethodField()

    class Meta:
        model = GenerationJob
        fields = JOB_FIELDS + ["memory", "kind", "prompt", "negative_prompt", "source_image", "source_upload",
                               "mask_upload", "inpaint_subject", "steps", "guidance", "width", "height", "seed",
                               "num_images", "strength", "mask_mode", "masked_content", "mask_blur", "only_masked",
                               "padding", "face_pass", "layout_fraction", "parameters", "preview_url", "results"]
        read_only_fields = [f for f in JOB_FIELDS if f != "url"] + ["parameters"]

    def get_results(self, job) -> list[dict]:
        return [{"id": image.pk, "url": media_url(self, image.image), "seed": image.seed}
                for image in job.results.all()]


def accepted(serializer, job, request, name):
    data = serializer.__class__(job, context={"request": request}).data
    location = reverse(name, args=[job.pk], request=request)
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class JobViewSet(SubmitsJobs, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, Scoped):
    filters = (("state", "state"),)
    filter_choices = {"state": JobState.values}

    @extend_schema(description="Stop the job: a waiting job is cancelled at once, a running one within a step; "
                               "its partial files are removed.", request=None,
                   responses={202: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        self.check_edit(job)
        NoBody(data=request.data).is_valid(raise_exception=True)
        return Response({"state": jobs.cancel(job)}, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(description="Trainings of the subjects you see, newest first.",
                       responses={200: TrainingJobSerializer(many=True), **LIST_ERRORS},
                       parameters=[OpenApiParameter("subject", int), OpenApiParameter("patient", int), STATE]),
    create=extend_schema(description="Teach Lifebook what a subject looks like from its photos. Returns 202 "
                                     "with the job's URL; follow its progress there.",
                         responses={202: TrainingJobSerializer, **WRITE_ERRORS, 429: OpenApiTypes.OBJECT}),
    retrieve=extend_schema(description="A training's progress, loss, time left, photo report and checkpoints.",
                           responses={200: TrainingJobSerializer, 404: OpenApiTypes.OBJECT}),
)
class TrainingJobViewSet(JobViewSet):
    queryset = TrainingJob.objects.all()
    serializer_class = TrainingJobSerializer
    patient_path = "subject__patient"
    related = ("subject__patient", "chosen_checkpoint")
    filters = JobViewSet.filters + (("subject", "subject_id"), ("patient", "subject__patient_id"))

    def get_queryset(self):
        return super().get_queryset().prefetch_related("checkpoints__job")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subject = serializer.validated_data["subject"]
        require_edit(request.user, subject.patient)
        try:
            job = jobs.submit_training(subject, user=request.user, steps=serializer.validated_data.get("steps"))
        except jobs.JobRefused as exc:
            raise refused(exc)
        return accepted(serializer, job, request, "api:training-job-detail")


@extend_schema_view(
    list=extend_schema(description="Picture jobs of the memories you see, newest first.",
                       responses={200: GenerationJobSerializer(many=True), **LIST_ERRORS},
                       parameters=[OpenApiParameter("memory", int), OpenApiParameter("patient", int), STATE]),
    create=extend_schema(description="Make candidate pictures for a memory: from its description (txt2img, or "
                                     "compose with several learned subjects), from a sketch or picture (img2img), or "
                                     "repaint a part (inpaint, with a mask). Returns 202 with the job's URL.",
                         request={"multipart/form-data": GenerationJobSerializer,
                                  "application/json": GenerationJobSerializer},
                         responses={202: GenerationJobSerializer, **WRITE_ERRORS, 429: OpenApiTypes.OBJECT}),
    retrieve=extend_schema(description="A picture job's progress, preview and results.",
                           responses={200: GenerationJobSerializer, 404: OpenApiTypes.OBJECT}),
)
class GenerationJobViewSet(JobViewSet):
    queryset = GenerationJob.objects.all()
    serializer_class = GenerationJobSerializer
    patient_path = "memory__chapter__patient"
    memory_path = "memory"  # a hidden memory's jobs (prompt, results) are hidden with it
    related = ("memory__chapter",)
    filters = JobViewSet.filters + (("memory", "memory_id"), ("patient", "memory__chapter__patient_id"))
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return super().get_queryset().prefetch_related("results")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        memory = data.pop("memory")
        require_edit(request.user, memory.chapter.patient)
        for key in ("source_image", "inpaint_subject"):
            if data.get(key) is not None and self.patient_of_related(data[key]) != memory.chapter.patient_id:
                raise exceptions.ValidationError({key: ["Not in this book."]})
        try:
            job = jobs.submit_generation(memory, user=request.user, **data)
        except jobs.JobRefused as exc:
            raise refused(exc)
        return accepted(serializer, job, request, "api:generation-job-detail")

    @staticmethod
    def patient_of_related(obj):
        return obj.memory.chapter.patient_id if isinstance(obj, MemoryImage) else obj.patient_id


@extend_schema_view(
    list=extend_schema(description="Checkpoints of the trainings you see, with their sample pictures.",
                       responses={200: CheckpointSerializer(many=True), **LIST_ERRORS},
                       parameters=[OpenApiParameter("job", int), OpenApiParameter("subject", int)]),
    retrieve=extend_schema(description="One checkpoint.", responses={200: CheckpointSerializer, 404: OpenApiTypes.OBJECT}),
)
class CheckpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Scoped):
    queryset = TrainingCheckpoint.objects.all()
    serializer_class = CheckpointSerializer
    patient_path = "job__subject__patient"
    related = ("job",)
    filters = (("job", "job_id"), ("subject", "job__subject_id"))

    @extend_schema(description="Use this checkpoint for its subject's pictures from now on.", request=None,
                   responses={200: CheckpointSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def choose(self, request, pk=None):
        checkpoint = self.get_object()
        self.check_edit(checkpoint)
        NoBody(data=request.data).is_valid(raise_exception=True)
        if checkpoint.job.state != JobState.SUCCEEDED:
            raise exceptions.ValidationError({"detail": ["Wait until the training is done to choose a checkpoint."]})
        jobs.choose_checkpoint(checkpoint)
        checkpoint.job.refresh_from_db()
        return Response(self.get_serializer(checkpoint).data)
