"""A job is checked at submission exactly as the engine will check it, and a refused one leaves nothing.

These requests used to be accepted (202 in the API) and then failed in the worker, leaving the job's
sketch and mask on disk. Now `generation.jobs` builds the very engine call the worker will make
(`generation.calls`) and runs the engine's own checks on it (`generation.engine.checks`), with no model
loaded. Each refusal leaves no row and no file.
"""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from generation import calls, jobs
from generation.models import GenerationJob, TrainingJob
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload
from tests.test_jobs import succeeded_training

pytestmark = pytest.mark.django_db


@pytest.fixture
def memory(patient):
    return factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="Juan at the beach")


@pytest.fixture
def picture(memory):
    return factories.MemoryImageFactory(memory=memory)  # 64x64


def png(image, name="x.png"):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue())


def painted(box=(8, 8, 24, 24), size=(64, 64)):
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return png(mask, "mask.png")


def sketch():
    paper = Image.new("RGB", (128, 128), "white")
    paper.paste((20, 20, 20), (10, 60, 118, 64))
    return png(paper, "sketch.png")


def files_under(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def refused(memory, private_media_root, message, field=None, **request):
    before = files_under(private_media_root)
    with pytest.raises(jobs.JobRefused, match=message) as refusal:
        jobs.submit_generation(memory, **request)
    assert refusal.value.field == field
    assert not GenerationJob.objects.exists()
    assert files_under(private_media_root) == before  # no sketch or mask left behind
    return refusal.value


# --- what only the worker used to find ----------------------------------------------------------------


@pytest.mark.parametrize("kind, steps, strength", [("inpaint", 1, 0.75), ("img2img", 1, 0.5), ("inpaint", 3, 0.3)])
def test_too_few_steps_for_the_strength_are_refused_at_once(memory, picture, private_media_root, kind, steps, strength):
    request = dict(kind=kind, steps=steps, strength=strength)
    if kind == "inpaint":
        request.update(source_image=picture, mask_upload=painted())
    else:
        request.update(source_upload=sketch())
    refused(memory, private_media_root, f"strength {strength} with {steps} steps leaves no step to run", **request)


def test_the_same_request_with_enough_steps_is_accepted(memory, picture):
    job = jobs.submit_generation(memory, kind="inpaint", source_image=picture, mask_upload=painted(), steps=2,
                                 strength=0.75)
    assert job.parameters["steps"] == 2 and job.mask_file.name


def test_a_composed_picture_checks_its_layout_share(memory, patient, private_media_root):
    for name in ("Juan", "Ana"):
        person = factories.SubjectFactory(patient=patient, name=name)
        memory.subjects.add(person)
        succeeded_training(person)
    refused(memory, private_media_root, "layout_fraction must be from 0.0 to 0.9", "layout_fraction",
            layout_fraction=0.95)
    job = jobs.submit_generation(memory, steps=1, width=256, height=256)  # one step: no layout step, one for regions
    assert job.kind == "compose"


def test_extra_words_past_the_engines_300_tokens_are_refused(memory, private_media_root):
    refused(memory, private_media_root, r"The description is too long \(\d+ tokens\); keep it under 300 tokens",
            prompt="xq " * 320)


def test_a_memory_described_at_too_great_length_is_refused(patient, private_media_root):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="zzyzx " * 200)
    refused(memory, private_media_root, "The description is too long")


def test_a_negative_prompt_past_300_tokens_is_refused(memory, private_media_root):
    refused(memory, private_media_root, "The negative prompt is too long", negative_prompt="xq " * 320)


def test_everything_else_than_a_mask_that_covers_everything_is_nothing(memory, picture, private_media_root):
    refused(memory, private_media_root, "The mask covers the whole picture", kind="inpaint", source_image=picture,
            mask_upload=painted(box=(0, 0, 64, 64)), mask_mode="not_masked")


def test_a_speck_blurred_away_has_nothing_to_repaint(memory, picture, private_media_root):
    refused(memory, private_media_root, "too small for a mask blur of 64 pixels", kind="inpaint",
            source_image=picture, mask_upload=painted(box=(30, 30, 31, 31)), mask_blur=64)


def test_a_picture_that_is_no_multiple_of_8_is_fine_because_the_worker_cuts_it_down(memory):
    odd = factories.MemoryImageFactory(memory=memory, image__width=70, image__height=66)
    job = jobs.submit_generation(memory, kind="inpaint", source_image=odd, mask_upload=painted(size=(70, 66)))
    call = calls.call_for(job, source=Image.new("RGB", (70, 66)), mask=Image.new("L", (70, 66), 255))
    assert (call.kwargs["width"], call.kwargs["height"]) == (64, 64)


# --- settings that do not belong, or cannot be ---------------------------------------------------------


@pytest.mark.parametrize("request_, message, field", [
    (dict(strength=0.5), "Only a picture made from a sketch or another picture", "strength"),
    (dict(mask_blur=4), "Only repainting a part of a picture .inpaint. uses mask_blur", "mask_blur"),
    (dict(only_masked=False), "Only repainting a part .* uses only_masked", "only_masked"),
    (dict(kind="img2img", padding=8, source_upload=sketch()), "uses padding", "padding"),
    (dict(kind="img2img", masked_content="fill", source_upload=sketch()), "uses masked_content", "masked_content"),
    (dict(source_upload=sketch()), "starts from an uploaded drawing", "source_upload"),
    (dict(mask_upload=painted()), "uses mask_upload", "mask_upload"),
    (dict(sampler="euler"), "Unknown setting", "sampler"),
])
def test_a_setting_that_a_picture_would_not_use_is_refused_by_name(memory, private_media_root, request_, message,
                                                                     field):
    refused(memory, private_media_root, message, field, **request_)


def test_a_picture_to_start_from_or_to_paint_in_belongs_to_its_kind(memory, picture, patient, private_media_root):
    refused(memory, private_media_root, "starts from nothing", "source_image", source_image=picture)
    refused(memory, private_media_root, "uses inpaint_subject", "inpaint_subject", kind="img2img",
            source_image=picture, inpaint_subject=factories.SubjectFactory(patient=patient))
    refused(memory, private_media_root, "not both", "source_upload", kind="img2img", source_image=picture,
            source_upload=sketch())
    refused(memory, private_media_root, "starts from an uploaded drawing", "source_upload", kind="inpaint",
            source_image=picture, mask_upload=painted(), source_upload=sketch())


@pytest.mark.parametrize("setting, value, message", [
    ("masked_content", "sand", "masked_content must be one of original, fill, latent_noise, latent_nothing"),
    ("mask_blur", 65, "mask_blur must be from 0 to 64"),
    ("mask_blur", 2.5, "mask_blur must be a whole number"),
    ("padding", -1, "padding must be from 0 to 512"),
    ("only_masked", "yes", "only_masked must be true or false"),
    ("steps", True, "steps must be a number"),
    ("strength", float("nan"), "strength must be from"),
])
def test_inpaint_settings_out_of_range_are_refused_by_name(memory, picture, private_media_root, setting, value,
                                                           message):
    refused(memory, private_media_root, message, setting, kind="inpaint", source_image=picture,
            mask_upload=painted(), **{setting: value})


def test_every_inpaint_setting_is_stored_and_reaches_the_engine_as_given(memory, picture):
    job = jobs.submit_generation(memory, kind="inpaint", source_image=picture, mask_upload=painted(),
                                 mask_mode="not_masked", masked_content="latent_noise", mask_blur=0,
                                 only_masked=False, padding=0, negative_prompt="rain", prompt="a red hat")
    assert {k: job.parameters[k] for k in ("mask_mode", "masked_content", "mask_blur", "only_masked", "padding",
                                           "negative_prompt", "prompt")} == dict(
        mask_mode="not_masked", masked_content="latent_noise", mask_blur=0, only_masked=False, padding=0,
        negative_prompt="rain", prompt="a red hat")
    call = calls.call_for(job, source=Image.new("RGB", (64, 64)), mask=Image.new("L", (64, 64), 0))
    assert call.operation == "inpaint"
    assert {k: call.kwargs[k] for k in ("mask_mode", "masked_content", "mask_blur", "only_masked", "padding",
                                        "negative_prompt")} == dict(
        mask_mode="not_masked", masked_content="latent_noise", mask_blur=0, only_masked=False, padding=0,
        negative_prompt="rain")
    assert call.kwargs["prompt"].endswith(", a red hat")


def test_without_a_negative_prompt_the_books_own_is_used_and_recorded(memory):
    from generation.planning import NEGATIVE_PROMPT

    job = jobs.submit_generation(memory)
    assert job.parameters["negative_prompt"] == NEGATIVE_PROMPT
    assert calls.call_for(job).kwargs["negative_prompt"] == NEGATIVE_PROMPT
    assert jobs.submit_generation(memory, negative_prompt="").parameters["negative_prompt"] == ""


# --- training ------------------------------------------------------------------------------------------


@pytest.fixture
def subject(patient):
    subject = factories.SubjectFactory(patient=patient, name="Ana", class_word="woman")
    add_reference_photo(subject, image_upload())
    return subject


@pytest.mark.parametrize("options, message", [
    ({"rank": 0}, "rank must be a whole number from 1 to 256"),
    ({"resolution": 100}, "resolution must be a multiple of 8"),
    ({"learning_rate": -1}, "learning_rate must be a number above 0"),
    ({"ranks": 4}, "Training is not set up correctly on this server"),
])
def test_training_settings_the_trainer_would_refuse_are_refused_at_once(subject, settings, options, message):
    settings.LIFEBOOK_TRAINING_OPTIONS = options
    with pytest.raises(jobs.JobRefused, match=message):
        jobs.submit_training(subject)
    assert not TrainingJob.objects.exists()


def test_a_subject_whose_token_the_model_knows_cannot_be_trained(subject):
    type(subject).objects.filter(pk=subject.pk).update(token="picture")  # one whole word to the tokenizer
    subject.refresh_from_db()
    with pytest.raises(jobs.JobRefused, match="a word the model already knows"):
        jobs.submit_training(subject)
    assert not TrainingJob.objects.exists()


def test_steps_out_of_range_name_the_setting(subject):
    with pytest.raises(jobs.JobRefused) as refusal:
        jobs.submit_training(subject, steps=0)
    assert refusal.value.field == "steps"
