"""A real worker leaves no uploaded sketch or mask behind when a picture job fails or is cancelled.

Real PostgreSQL, Redis and Celery worker, the tiny model (see test_worker_jobs.py for the fixtures). A job
that fails in the worker is one the submission could not have refused: here, a job queued with settings
written straight into its row (as a job queued before these checks existed would be).
"""

from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image

from generation import jobs
from generation.models import GenerationJob, JobState
from lifebook.models import MemoryImage
from tests import factories
from tests.integration.test_worker_jobs import job_settings, wait_for, workers  # noqa: F401  (fixtures)
from tests.test_job_inputs import png

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def repaint(patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="Juan at the beach")
    picture = factories.MemoryImageFactory(memory=memory, image__color="blue")  # 64x64
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 40, 40))

    def submit(**settings_given):
        return jobs.submit_generation(memory, kind="inpaint", source_image=picture,
                                      mask_upload=png(mask, "mask.png"), num_images=1, **settings_given)

    return submit


def stored(name) -> bool:
    return Path(settings.MEDIA_ROOT, name).is_file()


def test_a_repaint_that_fails_in_the_worker_leaves_no_mask_and_is_not_retried(workers, repaint):
    job = repaint(steps=4)
    mask = job.mask_file.name
    assert stored(mask)
    GenerationJob.objects.filter(pk=job.pk).update(parameters={**job.parameters, "steps": 1})  # past the checks
    workers.start(queues="generate,default")
    wait_for(job, lambda j: j.is_finished, what="the failure")
    assert job.state == JobState.FAILED
    assert "leaves no step to run" in job.error and "cannot be retried" in job.error
    assert not job.mask_file and not stored(mask)
    assert jobs.retry(job) is False
    assert not MemoryImage.objects.filter(source=MemoryImage.Source.INPAINTED).exists()


def test_a_repaint_cancelled_while_it_runs_leaves_no_mask(workers, repaint):
    workers.start(queues="generate,default")
    job = repaint(steps=150, strength=1.0)
    mask = job.mask_file.name
    wait_for(job, lambda j: j.step >= 1, what="a first step")
    assert jobs.cancel(job) == JobState.RUNNING
    wait_for(job, lambda j: j.is_finished, what="the cancel")
    assert job.state == JobState.CANCELLED and job.step < 150
    assert not job.mask_file and not stored(mask)
    assert not MemoryImage.objects.filter(source=MemoryImage.Source.INPAINTED).exists()


def test_a_repaint_with_every_inpaint_setting_runs_as_asked(workers, repaint):
    """What the API takes reaches the engine: the stored picture's recipe says so."""
    workers.start(queues="generate,default")
    job = repaint(steps=2, strength=1.0, mask_mode="not_masked", masked_content="latent_nothing", mask_blur=0,
                  only_masked=False, padding=0)
    wait_for(job, lambda j: j.is_finished, what="the repaint")
    assert job.state == JobState.SUCCEEDED, job.error
    (result,) = job.results.all()
    recipe = {k: result.parameters[k] for k in ("mask_mode", "masked_content", "mask_blur", "only_masked",
                                                "padding", "negative_prompt")}
    assert recipe == dict(mask_mode="not_masked", masked_content="latent_nothing", mask_blur=0, only_masked=False,
                          padding=0, negative_prompt=job.parameters["negative_prompt"])
    assert result.parameters["crop_box"] == [0, 0, 64, 64]  # the whole picture, not only the painted part
    with result.image.open("rb") as handle, Image.open(handle) as after:
        assert after.convert("RGB").getpixel((20, 20)) == (0, 0, 255)  # the painted part is kept: not_masked
    assert stored(job.mask_file.name)  # a finished job keeps its inputs with its results
