"""Jobs: a caregiver's click becomes a row here; a GPU worker runs it and records what happened.

States move queued -> running -> succeeded / failed / cancelled, and every move is a conditional
update (`generation.jobs` and `generation.runner`): it happens only if the row is still in the state
the mover expects, so a duplicate message or a second worker can never run a job twice.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from lifebook.models import Memory, MemoryImage, Subject, patient_file_path


class JobState(models.TextChoices):
    QUEUED = "queued", "Waiting"
    RUNNING = "running", "Working"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class Job(models.Model):
    """What both kinds of job share: state, progress, who runs it, and what went wrong."""

    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED, db_index=True)
    parameters = models.JSONField(default=dict, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    stage = models.CharField(max_length=60, blank=True)
    error = models.TextField(blank=True, help_text="What went wrong, in words a caregiver can read.")
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="How many times a worker started it.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker running it.")
    # A fresh value per claim: a worker that lost its claim (the sweeper gave the job to another
    # worker) can no longer write progress or results.
    run_token = models.UUIDField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True,
                                         help_text="When it was last put on the queue; empty if the broker was down.")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED

    @property
    def progress_percent(self) -> int:
        if self.state == JobState.SUCCEEDED:
            return 100
        return int(100 * self.step / self.total_steps) if self.total_steps else 0


class TrainingJob(Job):
    """Teaching the model one subject from its reference photos."""

    QUEUE = "train"

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="training_jobs")
    loss = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    photo_report = models.JSONField(default=dict, blank=True, help_text="The photo checks, in plain words.")
    resumed_from_step = models.PositiveIntegerField(null=True, blank=True)
    chosen_checkpoint = models.ForeignKey("TrainingCheckpoint", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    # When the chosen checkpoint was chosen: a subject uses the most recently chosen one.
    chosen_at = models.DateTimeField(null=True, blank=True)
    adapter = models.FileField(max_length=300, blank=True, help_text="The final adapter (a LoRA file).")
    adapter_size = models.PositiveIntegerField(null=True, blank=True)

    class Meta(Job.Meta):
        constraints = [
            models.UniqueConstraint(fields=["subject"], condition=models.Q(state__in=["queued", "running"]),
                                    name="one_active_training_per_subject"),
        ]

    def __str__(self):
        return f"Training {self.subject} ({self.get_state_display().lower()})"

    @property
    def patient(self):
        return self.subject.patient


def checkpoint_file_path(checkpoint, filename):
    return patient_file_path(checkpoint.job.subject.patient_id, f"subjects/{checkpoint.job.subject_id}/adapters",
                             filename.rsplit(".", 1)[-1])


class TrainingCheckpoint(models.Model):
    """A stage of a training, with sample pictures: a caregiver picks the one that looks most like them."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    loss = models.FloatField(null=True, blank=True)
    adapter = models.FileField(upload_to=checkpoint_file_path, max_length=300)
    samples = models.JSONField(default=list, blank=True, help_text="Storage names of the sample pictures.")
    # The random-weight demo model learns nothing useful: its samples are noise, and the page says so.
    from_demo_model = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job_id", "step"]
        constraints = [models.UniqueConstraint(fields=["job", "step"], name="checkpoint_once_per_step")]

    def __str__(self):
        return f"{self.job.subject} at step {self.step}"

    @property
    def sample_urls(self) -> list[str]:
        from django.core.files.storage import default_storage

        return [default_storage.url(name) for name in self.samples]  # the access-checked media view

    @property
    def engine_adapter_id(self) -> str:
        # Names the file, not only the subject: choosing another checkpoint loads the new weights.
        return f"subject{self.job.subject_id}_checkpoint{self.pk}"


class GenerationJob(Job):
    """Candidate pictures for one memory."""

    QUEUE = "generate"

    class Kind(models.TextChoices):
        TXT2IMG = "txt2img", "From the description"
        IMG2IMG = "img2img", "From a sketch or picture"
        INPAINT = "inpaint", "Repaint a part"
        COMPOSE = "compose", "Several people"

    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="generation_jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    source_image = models.ForeignKey(MemoryImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     help_text="The picture to repaint or start from.")
    # A sketch or mask the caregiver drew: stored under the patient like every other file.
    source_file = models.FileField(max_length=300, blank=True)
    mask_file = models.FileField(max_length=300, blank=True)
    inpaint_subject = models.ForeignKey(Subject, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                        help_text="Who appears in the repainted part.")
    preview = models.TextField(blank=True, help_text="The latest preview, as a small data: URL.")
    # How many pictures, and which one is being made when they are made one after another (0: all together).
    pictures = models.PositiveSmallIntegerField(default=0)
    picture = models.PositiveSmallIntegerField(default=0)
    results = models.ManyToManyField(MemoryImage, blank=True, related_name="generation_jobs")

    def __str__(self):
        return f"{self.get_kind_display()} for “{self.memory}” ({self.get_state_display().lower()})"

    @property
    def patient(self):
        return self.memory.chapter.patient


class Notice(models.Model):
    """"Your pictures are ready": left on the dashboard of the person who started a job, once per job end.
    Goes with the book (patient CASCADE), so erasing a book leaves no trace of its jobs here."""

    class Kind(models.TextChoices):
        TRAINING = "training", "Learning a face"
        PICTURES = "pictures", "Pictures for a memory"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices")
    patient = models.ForeignKey("lifebook.Patient", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    job_id = models.PositiveIntegerField()
    # What the link opens; a deleted subject or memory takes its notices with it.
    subject = models.ForeignKey(Subject, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    memory = models.ForeignKey(Memory, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=10, choices=JobState.choices)
    # The job's finished_at: a job run again after failing ends again and gets a new notice, while a
    # second attempt to record the same end finds this one (the constraint below).
    job_finished_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["kind", "job_id", "job_finished_at"],
                                               name="one_notice_per_job_end")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.job_id} {self.outcome} for {self.user}"

