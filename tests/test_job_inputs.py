"""A picture job's uploaded sketch and painted mask last only as long as the job may still use them.

They are inputs, and a caregiver's drawing of a person's picture must not outlive the job: when a job
fails or is cancelled (in the worker, before it started, or by the sweeper), the row forgets them and
the files are removed. Such a job then cannot be retried (the admin's retry says so by queuing nothing,
and the job's error says why); it is made again from the memory's page. A finished job keeps them with
its results. The worker runs in-process here (with a stand-in engine); tests/integration has the real one.
The files go when the job's final state is committed, so these tests commit (transaction=True).
"""

import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from generation import jobs, runner
from generation.engine.errors import Cancelled, EngineInputError
from generation.models import GenerationJob, JobState
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def png(image, name):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue())


@pytest.fixture
def memory(patient):
    return factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="Juan at the beach")


@pytest.fixture
def repaint(memory):
    """A queued inpaint job with its painted mask stored."""
    picture = factories.MemoryImageFactory(memory=memory)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 24, 24))
    job = jobs.submit_generation(memory, kind="inpaint", source_image=picture, mask_upload=png(mask, "mask.png"))
    assert default_storage.exists(job.mask_file.name)
    return job


@pytest.fixture
def from_sketch(memory):
    paper = Image.new("RGB", (128, 128), "white")
    paper.paste((0, 0, 0), (10, 60, 118, 64))
    job = jobs.submit_generation(memory, kind="img2img", source_upload=png(paper, "sketch.png"))
    assert default_storage.exists(job.source_file.name)
    return job


class StandInHeartbeat:
    """The runner's heartbeat without its thread: these tests are about what happens at the end."""

    def __init__(self, job, interval=None):
        self.lost = type("Flag", (), {"is_set": staticmethod(lambda: False)})()

    def start(self):
        pass

    def stop(self):
        pass

    def report(self, **fields):
        pass

    def should_stop(self):
        return False


class EngineThatRaises:
    def __init__(self, error):
        self.error = error
        self.calls = []

    def __getattr__(self, operation):
        def run(**kwargs):
            self.calls.append(operation)
            raise self.error
        return run


@pytest.fixture
def worker(monkeypatch):
    """Run a job as the worker would, with an engine that raises `error`."""
    monkeypatch.setattr(runner, "Heartbeat", StandInHeartbeat)

    def run(job, error):
        engine = EngineThatRaises(error)
        monkeypatch.setattr(runner, "get_engine", lambda: engine)
        outcome = runner.run_generation_job(job.pk)
        job.refresh_from_db()
        return outcome, engine

    return run


@pytest.mark.parametrize("job_fixture, field, operation", [("repaint", "mask_file", "inpaint"),
                                                             ("from_sketch", "source_file", "img2img")])
def test_a_job_that_fails_in_the_worker_leaves_no_upload_and_says_it_cannot_be_retried(
        request, worker, job_fixture, field, operation):
    job = request.getfixturevalue(job_fixture)
    name = getattr(job, field).name
    outcome, engine = worker(job, EngineInputError("Something about the request."))
    assert outcome == "failed" and engine.calls == [operation]
    assert job.state == JobState.FAILED and not getattr(job, field)
    assert not default_storage.exists(name)
    assert job.error.startswith("Something about the request.") and "cannot be retried" in job.error
    assert jobs.retry(job) is False
    job.refresh_from_db()
    assert job.state == JobState.FAILED


def test_an_unexpected_failure_removes_the_mask_too(worker, repaint):
    name = repaint.mask_file.name
    outcome, _ = worker(repaint, RuntimeError("CUDA is unwell"))
    assert outcome == "failed" and "unexpected problem (RuntimeError)" in repaint.error
    assert not default_storage.exists(name)


def test_a_job_cancelled_in_the_worker_leaves_no_mask(worker, repaint):
    name = repaint.mask_file.name
    outcome, _ = worker(repaint, Cancelled("Cancelled after step 3 of 30."))
    assert outcome == "cancelled" and repaint.state == JobState.CANCELLED
    assert not repaint.mask_file and not default_storage.exists(name)
    assert jobs.retry(repaint) is False


def test_a_job_cancelled_before_a_worker_took_it_leaves_no_sketch(from_sketch):
    name = from_sketch.source_file.name
    assert jobs.cancel(from_sketch) == JobState.CANCELLED
    from_sketch.refresh_from_db()
    assert not from_sketch.source_file and not default_storage.exists(name)


def test_a_job_the_sweeper_gives_up_on_leaves_no_mask(repaint, settings):
    settings.LIFEBOOK_JOB_MAX_ATTEMPTS = 1
    job = runner.claim(GenerationJob, repaint.pk)  # a worker took it, then died
    name = job.mask_file.name
    later = timezone.now() + timedelta(seconds=settings.LIFEBOOK_JOB_STALE_SECONDS + 1)
    assert jobs.sweep(now=later)["failed"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED and not job.mask_file and not default_storage.exists(name)
    assert "stopped 1 times" in job.error and "cannot be retried" in job.error


def test_a_failed_job_that_needs_no_upload_is_still_retried(worker, memory):
    job = jobs.submit_generation(memory)
    worker(job, RuntimeError("the GPU fell off"))
    assert job.state == JobState.FAILED and "cannot be retried" not in job.error
    assert jobs.retry(job) is True


def test_a_finished_job_keeps_its_mask_with_its_results(repaint):
    job = runner.claim(GenerationJob, repaint.pk)
    assert runner.finish(job, JobState.SUCCEEDED)
    assert jobs.remove_inputs(job) == 0  # only failed and cancelled jobs give them up
    assert default_storage.exists(job.mask_file.name)
