"""Job rules without a worker: what a submission checks, the life-book rules, states, the sweeper, cleanup."""

import io
import os
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from generation import jobs
from generation.models import GenerationJob, JobState, TrainingCheckpoint, TrainingJob
from generation.recipes import DEMO_PICTURES
from generation.planning import adapter_for, plan_for
from generation.runner import claim, finish
from lifebook.models import LifeStage
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


def succeeded_training(subject, *, chosen=True, finished_days_ago=0):
    """A finished training with one checkpoint file, as the worker leaves it."""
    finished = timezone.now() - timedelta(days=finished_days_ago)
    job = TrainingJob.objects.create(subject=subject, state=JobState.SUCCEEDED, finished_at=finished)
    checkpoint = TrainingCheckpoint(job=job, step=10)
    checkpoint.adapter.save("lora.safetensors", ContentFile(b"weights"), save=False)
    sample = default_storage.save(f"patients/{subject.patient_id}/subjects/{subject.pk}/adapters/s.png",
                                  ContentFile(b"png"))
    checkpoint.samples = [sample]
    checkpoint.save()
    if chosen:
        job.chosen_checkpoint, job.chosen_at, job.adapter = checkpoint, finished, checkpoint.adapter.name
        job.save()
    return job, checkpoint


@pytest.fixture
def memory(patient):
    chapter = factories.ChapterFactory(patient=patient, life_stage=LifeStage.ADULTHOOD)
    return factories.MemoryFactory(chapter=chapter, scene="Juan walking in the mountains with his dog")


def png(image, name="x.png"):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue())


# --- submitting -------------------------------------------------------------------


def test_training_needs_photos(patient):
    subject = factories.SubjectFactory(patient=patient)
    with pytest.raises(jobs.JobRefused, match="Add photos of Ana first"):
        jobs.submit_training(subject)
    assert not TrainingJob.objects.exists()


def test_a_subject_trains_once_at_a_time(patient):
    subject = factories.SubjectFactory(patient=patient)
    add_reference_photo(subject, image_upload())
    first = jobs.submit_training(subject, steps=100)
    assert first.state == JobState.QUEUED and first.parameters["steps"] == 100  # + the demo recipe (tiny)
    with pytest.raises(jobs.JobRefused, match="already being trained"):
        jobs.submit_training(subject)
    jobs.cancel(first)
    assert jobs.submit_training(subject).state == JobState.QUEUED  # once it is cancelled, again


@pytest.mark.parametrize("numbers, message", [
    ({"steps": 0}, "steps must be from 1 to 150"),
    ({"steps": "many"}, "steps must be a whole number"),
    ({"steps": 2.5}, "whole number"),
    ({"width": 500}, "multiple of 8"),
    ({"num_images": 9}, "num_images must be from 1 to 8"),
    ({"guidance": 31}, "guidance must be from 0.0 to 30.0"),
    ({"sampler": "euler"}, "Unknown setting"),
])
def test_bad_picture_settings_are_refused_in_plain_words(memory, numbers, message):
    with pytest.raises(jobs.JobRefused, match=message):
        jobs.submit_generation(memory, **numbers)
    assert not GenerationJob.objects.exists()


def test_a_memory_without_a_description_cannot_be_drawn(patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), title=" ", scene="")
    with pytest.raises(jobs.JobRefused, match="Describe the memory first"):
        jobs.submit_generation(memory)


def test_inpainting_needs_a_picture_and_a_painted_mask_of_its_size(memory):
    picture = factories.MemoryImageFactory(memory=memory)  # 64x64
    with pytest.raises(jobs.JobRefused, match="paint over the part"):
        jobs.submit_generation(memory, kind="inpaint", source_image=picture)
    with pytest.raises(jobs.JobRefused, match="mask is 32×32 but the picture is 64×64"):
        jobs.submit_generation(memory, kind="inpaint", source_image=picture, mask_upload=png(Image.new("L", (32, 32), 255)))
    with pytest.raises(jobs.JobRefused, match="The mask is empty"):
        jobs.submit_generation(memory, kind="inpaint", source_image=picture, mask_upload=png(Image.new("L", (64, 64), 0)))
    with pytest.raises(jobs.JobRefused, match="not a picture"):
        jobs.submit_generation(memory, kind="inpaint", source_image=picture,
                               mask_upload=SimpleUploadedFile("mask.png", b"<svg></svg>"))
    assert not GenerationJob.objects.exists()
    assert not default_storage.exists(f"patients/{memory.chapter.patient_id}/memories/{memory.pk}/mask")


def test_a_mask_drawn_on_a_transparent_canvas_uses_its_strokes(memory):
    picture = factories.MemoryImageFactory(memory=memory)
    strokes = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    strokes.paste((255, 0, 0, 255), (10, 10, 30, 30))
    job = jobs.submit_generation(memory, kind="inpaint", source_image=picture, mask_upload=png(strokes))
    with job.mask_file.open("rb") as handle, Image.open(handle) as mask:
        assert mask.mode == "L" and mask.getbbox() == (10, 10, 30, 30)
    assert job.mask_file.name.startswith(f"patients/{memory.chapter.patient_id}/memories/{memory.pk}/mask/")


def test_a_picture_from_another_memory_is_refused(memory, patient):
    other = factories.MemoryImageFactory(memory=factories.MemoryFactory(chapter=memory.chapter))
    with pytest.raises(jobs.JobRefused, match="another memory"):
        jobs.submit_generation(memory, kind="img2img", source_image=other)


# --- the life-book rules -------------------------------------------------------------


def test_subjects_bring_their_tokens_and_adapters_and_untrained_ones_their_words(memory, patient):
    juan = factories.SubjectFactory(patient=patient, name="Juan", class_word="man")
    toby = factories.SubjectFactory(patient=patient, name="Toby", kind="pet", class_word="dog")
    memory.subjects.add(juan, toby)
    _, checkpoint = succeeded_training(juan)
    plan = plan_for(memory)
    assert plan.regions[0].checkpoint == checkpoint and plan.untrained == [toby]
    prompt = plan.prompt()
    assert prompt.startswith("a photo of Juan walking in the mountains with his dog")
    assert f"{juan.token} man" in prompt and "a dog" in prompt and toby.token not in prompt
    assert not plan.uses_compose


def test_the_most_recently_chosen_checkpoint_is_the_subjects_adapter(patient):
    juan = factories.SubjectFactory(patient=patient)
    _, first = succeeded_training(juan)
    _, second = succeeded_training(juan)
    assert adapter_for(juan) == second
    jobs.choose_checkpoint(first)
    assert adapter_for(juan) == first
    failed = TrainingJob.objects.create(subject=juan, state=JobState.FAILED)
    assert adapter_for(juan) == first and failed


def test_the_life_stage_variant_matching_the_chapter_is_used(memory, patient):
    old = factories.SubjectFactory(patient=patient, name="Juan", life_stage=LifeStage.OLD_AGE)
    adult = factories.SubjectFactory(patient=patient, name="juan", life_stage=LifeStage.ADULTHOOD)
    memory.subjects.add(old)
    succeeded_training(old)
    assert plan_for(memory).regions[0].subject == old  # the adult variant is not trained yet
    succeeded_training(adult)
    assert plan_for(memory).regions[0].subject == adult  # the chapter is about adulthood


def test_two_trained_people_make_a_composed_picture(memory, patient):
    juan = factories.SubjectFactory(patient=patient, name="Juan")
    ana = factories.SubjectFactory(patient=patient, name="Ana")
    memory.subjects.add(juan, ana)
    succeeded_training(juan)
    assert jobs.submit_generation(memory).kind == GenerationJob.Kind.TXT2IMG
    with pytest.raises(jobs.JobRefused, match="needs two of them whom Lifebook has learned"):
        jobs.submit_generation(memory, kind="compose")
    succeeded_training(ana)
    job = jobs.submit_generation(memory)
    # compose's own guidance and layout phase; its steps are the demo recipe's (the tests' model is the demo model)
    assert job.kind == GenerationJob.Kind.COMPOSE and job.parameters["guidance"] == 7.5
    assert job.parameters["layout_fraction"] == 0.25 and job.parameters["face_pass"] is True
    assert job.parameters["steps"] == DEMO_PICTURES[GenerationJob.Kind.COMPOSE]["steps"]


def regions_of(memory, **parameters):
    from generation import calls

    job = GenerationJob(memory=memory, kind=GenerationJob.Kind.COMPOSE,
                        parameters={**calls.GENERATION_DEFAULTS[GenerationJob.Kind.COMPOSE], **parameters})
    return calls.call_for(job)


@pytest.mark.parametrize("other_kind, class_word", [("pet", "dog"), ("place", "house"), ("object", "guitar")])
def test_a_person_with_a_learned_pet_place_or_object_is_composed(memory, patient, other_kind, class_word):
    juan = factories.SubjectFactory(patient=patient, name="Juan", class_word="man")
    other = factories.SubjectFactory(patient=patient, name="Other", kind=other_kind, class_word=class_word)
    memory.subjects.add(juan, other)
    _, juan_checkpoint = succeeded_training(juan)
    _, other_checkpoint = succeeded_training(other)
    assert jobs.submit_generation(memory).kind == GenerationJob.Kind.COMPOSE
    call = regions_of(memory)
    regions = {r.adapter.id: r for r in call.kwargs["regions"]}
    scene_ids = [a.id for a in call.kwargs["scene_adapters"]]
    if other_kind == "place":  # a place is the background, drawn by the background's branch
        assert list(regions) == [juan_checkpoint.engine_adapter_id]
        assert scene_ids == [other_checkpoint.engine_adapter_id]
        assert other.token in call.kwargs["scene_prompt"]
    else:  # a pet or an object has a region of its own, with only its own adapter
        assert set(regions) == {juan_checkpoint.engine_adapter_id, other_checkpoint.engine_adapter_id}
        assert scene_ids == []
        assert other.token not in call.kwargs["scene_prompt"]
        pet_region = regions[other_checkpoint.engine_adapter_id]
        assert other.token in pet_region.prompt and juan.token not in pet_region.prompt
        assert not pet_region.face  # only people's faces are repainted
    person_region = regions[juan_checkpoint.engine_adapter_id]
    assert person_region.face and juan.token in person_region.prompt and other.token not in person_region.prompt
    assert juan.token not in person_region.layout_prompt and "a man" in person_region.layout_prompt


def test_a_style_with_one_person_is_not_a_composition(memory, patient):
    juan = factories.SubjectFactory(patient=patient, name="Juan", class_word="man")
    style = factories.SubjectFactory(patient=patient, name="Grandma's watercolours", kind="style", class_word="style")
    memory.subjects.add(juan, style)
    succeeded_training(juan)
    succeeded_training(style)
    job = jobs.submit_generation(memory)
    assert job.kind == GenerationJob.Kind.TXT2IMG and job.parameters["face_pass"] is True


def test_one_learned_person_gets_the_face_pass_over_the_whole_picture_unless_asked_not_to(memory, patient):
    from generation import calls

    juan = factories.SubjectFactory(patient=patient, name="Juan", class_word="man")
    memory.subjects.add(juan)
    _, checkpoint = succeeded_training(juan)
    job = jobs.submit_generation(memory, width=128, height=96)
    (face,) = calls.call_for(job).kwargs["faces"]
    assert face.adapter.id == checkpoint.engine_adapter_id and face.box == (0, 0, 128, 96) and face.face
    job = jobs.submit_generation(memory, face_pass=False)
    assert job.parameters["face_pass"] is False and calls.call_for(job).kwargs["faces"] == []


def test_a_composed_picture_uses_the_memorys_layout_in_pixels(memory, patient):
    juan = factories.SubjectFactory(patient=patient, name="Juan", class_word="man")
    ana = factories.SubjectFactory(patient=patient, name="Ana", class_word="woman")
    memory.subjects.add(juan, ana)
    _, juan_checkpoint = succeeded_training(juan)
    _, ana_checkpoint = succeeded_training(ana)
    memory.layout = [{"subject": juan.pk, "box": [0.5, 0.25, 1.0, 1.0]},
                     {"subject": ana.pk, "box": [0.0, 0.0, 0.5, 1.0]}]
    memory.save()
    call = regions_of(memory, width=512, height=256)
    boxes = {r.adapter.id: r.box for r in call.kwargs["regions"]}
    assert boxes == {juan_checkpoint.engine_adapter_id: (256, 64, 512, 256),
                     ana_checkpoint.engine_adapter_id: (0, 0, 256, 256)}


def test_layout_fraction_is_only_for_several_learned_subjects(memory, patient):
    with pytest.raises(jobs.JobRefused, match="several learned loved ones") as refusal:
        jobs.submit_generation(memory, layout_fraction=0.3)
    assert refusal.value.field == "layout_fraction"


# --- states ------------------------------------------------------------------------------


def test_a_job_is_claimed_once(memory):
    job = jobs.submit_generation(memory)
    first = claim(GenerationJob, job.pk)
    assert first.state == JobState.RUNNING and first.attempts == 1 and first.run_token
    assert claim(GenerationJob, job.pk) is None  # a duplicate message, or a second worker


def test_only_the_current_claim_may_finish_a_job(memory):
    job = jobs.submit_generation(memory)
    stale = claim(GenerationJob, job.pk)
    GenerationJob.objects.filter(pk=job.pk).update(state=JobState.QUEUED, run_token=None)  # the sweeper gave it back
    current = claim(GenerationJob, job.pk)
    assert not finish(stale, JobState.SUCCEEDED)
    assert finish(current, JobState.SUCCEEDED)
    assert GenerationJob.objects.get(pk=job.pk).attempts == 2


def test_cancel_a_waiting_job_at_once_and_ask_a_running_one(memory):
    waiting = jobs.submit_generation(memory)
    assert jobs.cancel(waiting) == JobState.CANCELLED
    assert claim(GenerationJob, waiting.pk) is None
    running = claim(GenerationJob, jobs.submit_generation(memory).pk)
    assert jobs.cancel(running) == JobState.RUNNING
    running.refresh_from_db()
    assert running.cancel_requested and running.state == JobState.RUNNING


def test_retry_gives_a_failed_job_back_to_the_queue(memory):
    job = claim(GenerationJob, jobs.submit_generation(memory).pk)
    finish(job, JobState.FAILED, error="The mask is empty.")
    assert jobs.retry(job)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.error == "" and not jobs.retry(job)


def test_the_sweeper_gives_back_jobs_of_dead_workers_and_fails_them_after_too_many_tries(memory, settings):
    settings.LIFEBOOK_JOB_MAX_ATTEMPTS = 2
    job = claim(GenerationJob, jobs.submit_generation(memory).pk)
    later = timezone.now() + timedelta(seconds=settings.LIFEBOOK_JOB_STALE_SECONDS + 1)
    assert jobs.sweep(now=timezone.now())["requeued"] == 0  # its heartbeat is fresh
    assert jobs.sweep(now=later)["requeued"] == 1
    job = claim(GenerationJob, job.pk)
    assert job.attempts == 2
    assert jobs.sweep(now=later + timedelta(seconds=settings.LIFEBOOK_JOB_STALE_SECONDS + 1))["failed"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "stopped 2 times" in job.error


def test_the_sweeper_finishes_a_cancel_that_a_dead_worker_never_saw(memory, patient, settings):
    subject = factories.SubjectFactory(patient=patient)
    job = TrainingJob.objects.create(subject=subject)
    job = claim(TrainingJob, job.pk)
    TrainingJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    folder = jobs.training_dir(job)
    folder.mkdir(parents=True)
    jobs.sweep(now=timezone.now() + timedelta(seconds=settings.LIFEBOOK_JOB_STALE_SECONDS + 1))
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED and not folder.exists()


# --- retention -------------------------------------------------------------------------------


def test_cleanup_removes_unchosen_old_checkpoints_and_orphans_but_keeps_what_is_used(patient, settings, tmp_path):
    settings.LIFEBOOK_TRAINING_DIR = tmp_path / "training"
    subject = factories.SubjectFactory(patient=patient)
    job, chosen = succeeded_training(subject, finished_days_ago=40)
    unchosen = TrainingCheckpoint(job=job, step=5)
    unchosen.adapter.save("lora.safetensors", ContentFile(b"old"), save=False)
    unchosen.save()
    recent_job, recent = succeeded_training(subject, chosen=False, finished_days_ago=1)
    orphan = default_storage.save(f"patients/{patient.pk}/subjects/{subject.pk}/adapters/orphan.safetensors",
                                  ContentFile(b"left by a dead worker"))
    old = time.time() - 40 * 86400
    os.utime(default_storage.path(orphan), (old, old))
    (settings.LIFEBOOK_TRAINING_DIR / f"job-{job.pk}").mkdir(parents=True)

    call_command("cleanup_jobs", stdout=io.StringIO())

    assert not TrainingCheckpoint.objects.filter(pk=unchosen.pk).exists()
    assert not default_storage.exists(unchosen.adapter.name) and not default_storage.exists(orphan)
    assert default_storage.exists(chosen.adapter.name) and all(default_storage.exists(n) for n in chosen.samples)
    assert TrainingCheckpoint.objects.filter(pk=recent.pk).exists()  # within the retention period
    assert not (settings.LIFEBOOK_TRAINING_DIR / f"job-{job.pk}").exists()
