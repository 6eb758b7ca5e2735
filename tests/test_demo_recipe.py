"""The demo recipe (generation.recipes) goes with the demo model only, and says so in the job's parameters;
each worker process takes its share of torch's threads (generation.runner.torch_threads)."""

import shutil
from pathlib import Path

import pytest

from generation import jobs, recipes
from generation.engine.errors import EngineInputError
from generation.engine.models import MARKER
from generation.engine.options import TrainingOptions
from generation.models import GenerationJob
from generation.runner import torch_threads
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "var" / "models" / "tiny"


@pytest.fixture
def demo_model(settings):
    settings.LIFEBOOK_BASE_MODEL = "tiny"
    settings.LIFEBOOK_MODELS_DIR = ROOT / "var" / "models"
    settings.LIFEBOOK_TRAINING_OPTIONS = {}


@pytest.fixture
def real_model(settings, tmp_path):
    """A diffusers folder that is not marked as a demo model (the tiny one's files, without its marker)."""
    if not (TINY / MARKER).exists():
        from generation.engine.models import resolve_source

        resolve_source("tiny", TINY.parent)
    folder = tmp_path / "sd15"
    shutil.copytree(TINY, folder)
    (folder / MARKER).unlink()
    settings.LIFEBOOK_BASE_MODEL = str(folder)
    settings.LIFEBOOK_TRAINING_OPTIONS = {}


def subject_with_photo():
    subject = factories.SubjectFactory(token="sqgkhoju")
    add_reference_photo(subject, image_upload())
    return subject


def test_training_with_the_demo_model_records_the_demo_recipe(db, demo_model):
    job = jobs.submit_training(subject_with_photo())
    assert job.parameters == recipes.DEMO_TRAINING
    options = TrainingOptions(**job.parameters)  # what the worker builds
    assert (options.resolution, options.sample_resolution, options.checkpoint_every) == (64, 64, 50)
    assert options.steps // options.checkpoint_every >= 2  # checkpoints to choose from


def test_a_real_model_never_gets_the_demo_recipe(db, real_model):
    job = jobs.submit_training(subject_with_photo())
    assert job.parameters == {}
    memory = factories.MemoryFactory(scene="a man in a garden")
    picture = jobs.submit_generation(memory)
    assert (picture.parameters["width"], picture.parameters["steps"]) == (512, 20)


def test_the_request_and_the_servers_setting_win_over_the_recipe(db, demo_model, settings):
    settings.LIFEBOOK_TRAINING_OPTIONS = {"resolution": 128}
    job = jobs.submit_training(subject_with_photo(), steps=120)
    assert job.parameters["steps"] == 120
    assert "resolution" not in job.parameters  # the worker applies the setting's 128
    assert job.parameters["checkpoint_every"] == recipes.DEMO_TRAINING["checkpoint_every"]


def test_pictures_with_the_demo_model_are_small_and_quick(db, demo_model):
    memory = factories.MemoryFactory(scene="a man in a garden")
    job = jobs.submit_generation(memory)
    assert job.kind == GenerationJob.Kind.TXT2IMG
    assert {k: job.parameters[k] for k in ("steps", "width", "height")} == recipes.DEMO_PICTURES[job.kind]
    assert job.parameters["num_images"] == 4
    asked = jobs.submit_generation(memory, width=256, height=256)
    assert (asked.parameters["width"], asked.parameters["steps"]) == (256, 12)


def test_the_sample_size_is_checked_like_the_training_size():
    with pytest.raises(EngineInputError, match="sample_resolution must be a multiple of 8"):
        TrainingOptions(sample_resolution=100).check()
    with pytest.raises(EngineInputError, match="sample_resolution"):
        TrainingOptions(sample_resolution=32).check()
    TrainingOptions(sample_resolution=64).check()


def test_each_worker_process_gets_a_share_of_the_cores(settings, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    settings.LIFEBOOK_TORCH_THREADS = None
    settings.LIFEBOOK_WORKER_PROCESSES = 2
    assert torch_threads() == 4
    settings.LIFEBOOK_WORKER_PROCESSES = 16
    assert torch_threads() == 1  # never none
    settings.LIFEBOOK_TORCH_THREADS = 3
    assert torch_threads() == 3  # the setting overrides


DEMO_NOTICE = "Lifebook is using its demo model."


def test_the_pages_say_once_that_this_is_the_demo_model(db, demo_model, client, owner, patient):
    from django.urls import reverse

    subject = subject_with_photo()
    subject.patient = patient
    subject.save()
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="a man in a garden")
    client.force_login(owner)
    for page in (reverse("subject_page", args=[patient.pk, subject.pk]),
                 reverse("memory_page", args=[patient.pk, memory.pk])):
        assert client.get(page).content.decode().count(DEMO_NOTICE) == 1, page


def test_with_a_real_model_the_pages_have_no_demo_notice(db, real_model, client, owner, patient):
    from django.urls import reverse

    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="a man in a garden")
    client.force_login(owner)
    assert DEMO_NOTICE not in client.get(reverse("memory_page", args=[patient.pk, memory.pk])).content.decode()


def test_checkpoint_samples_are_drawn_at_their_own_size(tmp_path):
    import numpy as np
    from PIL import Image

    from generation.engine.options import EngineOptions
    from generation.engine.training import Trainer

    photos = [(f"p{i}.png", Image.fromarray(np.random.default_rng(i).integers(0, 255, (128, 128, 3), dtype=np.uint8)))
              for i in range(2)]
    trainer = Trainer(EngineOptions(models_dir=TINY.parent))
    result = trainer.train(photos, token="sqgkhoju", class_word="woman", is_person=True, out_dir=tmp_path / "t",
                           options=TrainingOptions(steps=2, resolution=128, rank=2, alpha=2, checkpoint_every=1,
                                                   sample_steps=1, sample_resolution=64))
    assert [c.step for c in result.checkpoints] == [1, 2]
    for checkpoint in result.checkpoints:
        assert len(checkpoint.samples) == 4
        for sample in checkpoint.samples:
            with Image.open(sample) as picture:
                assert picture.size == (64, 64)  # not the training's 128
