"""A subject's page: adding it, its photos (many at once, notes, delete), and teaching Lifebook its look."""

import re

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from generation.models import JobState, TrainingCheckpoint, TrainingJob
from generation.planning import adapter_for
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def consented(patient, owner):
    patient.photo_consent_by, patient.photo_consent_at, patient.photo_consent_note = owner, timezone.now(), "Juan"
    patient.save()
    return patient


@pytest.fixture
def subject(consented):
    return factories.SubjectFactory(patient=consented, name="Ana", class_word="woman")


def page(subject, name="subject_page", **extra):
    return reverse(name, kwargs={"patient_id": subject.patient_id, "subject_id": subject.pk, **extra})


def test_a_caregiver_adds_a_subject_and_lands_on_its_page(client, owner, consented):
    client.force_login(owner)
    response = client.post(reverse("subject_create", args=[consented.pk]),
                           {"kind": "pet", "name": "Toby", "relationship": "his dog"})
    subject = consented.subjects.get(name="Toby")
    assert response["Location"] == page(subject)
    assert subject.class_word == "dog"  # chosen for them: no one types a model word
    text = client.get(page(subject)).content.decode()
    assert "About 10 varied photos work best" in text and "10 more would help" in text
    visible = re.sub(r"<[^>]+>", " ", text)  # words a caregiver reads (tags and attributes aside)
    assert not re.search(r"\b(lora|token|cfg|sampler)\b", visible.lower()) and subject.token not in text


def test_many_photos_in_one_post_with_plain_words_for_the_bad_ones(client, owner, subject):
    client.force_login(owner)
    response = client.post(page(subject, "photo_upload"), {"photos": [
        image_upload("one.jpg", color=(200, 10, 10)), image_upload("two.jpg", color=(10, 200, 10)),
        image_upload("small.jpg", size=(100, 100))]}, follow=True)
    assert subject.photos.count() == 2
    text = response.content.decode()
    assert "2 photos added." in text and "too small (100×100 pixels)" in text
    assert text.count('class="photo"') == 2


def test_the_drag_and_drop_upload_gets_the_photos_card_or_the_reason(client, owner, subject):
    client.force_login(owner)
    url = page(subject, "photo_upload")
    card = client.post(url, {"photos": image_upload("one.jpg", size=(400, 300))}, HTTP_X_REQUESTED_WITH="fetch")
    assert card.status_code == 200 and card.content.decode().strip().startswith('<li class="photo"')
    assert "quite small" in card.content.decode()  # the photo's notes come with it
    refused = client.post(url, {"photos": image_upload("one.jpg", size=(400, 300))}, HTTP_X_REQUESTED_WITH="fetch")
    assert refused.status_code == 400 and "already" in refused.content.decode()
    empty = client.post(url, {}, HTTP_X_REQUESTED_WITH="fetch")
    assert empty.status_code == 400 and empty.content.decode() == "Choose a photo first."


def test_no_photos_before_consent_is_recorded(client, owner, patient):
    subject = factories.SubjectFactory(patient=patient)
    client.force_login(owner)
    assert "Record photo consent" in client.get(page(subject)).content.decode()
    client.post(page(subject, "photo_upload"), {"photos": image_upload()})
    assert not subject.photos.exists()


def test_deleting_a_photo_removes_its_file(client, owner, subject, settings):
    photo = add_reference_photo(subject, image_upload())
    path = photo.image.path
    client.force_login(owner)
    response = client.post(page(subject, "photo_delete", photo_id=photo.pk), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""
    assert not subject.photos.exists() and not __import__("os").path.exists(path)


def test_teaching_shows_progress_that_refreshes_itself_and_can_be_stopped(client, owner, subject):
    add_reference_photo(subject, image_upload())
    client.force_login(owner)
    client.post(page(subject, "training_start"))
    job = TrainingJob.objects.get(subject=subject)
    TrainingJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING, step=600, total_steps=2400, eta_seconds=190,
                                                 stage="training")
    fragment = client.get(page(subject, "training_status")).content.decode()
    assert "step 600 of 2400, about 3 minutes left" in fragment and "seconds" not in fragment
    assert 'hx-trigger="every 2s"' in fragment and 'value="25"' in fragment
    again = client.post(page(subject, "training_start"), follow=True)
    assert "already being trained" in again.content.decode()
    client.post(page(subject, "training_cancel", job_id=job.pk))
    job.refresh_from_db()
    assert job.cancel_requested
    TrainingJob.objects.filter(pk=job.pk).update(state=JobState.CANCELLED)
    assert "hx-trigger" not in client.get(page(subject, "training_status")).content.decode()


def test_a_caregiver_picks_the_checkpoint_that_looks_most_like_them(client, owner, subject):
    job = TrainingJob.objects.create(subject=subject, state=JobState.SUCCEEDED, chosen_at=timezone.now())
    checkpoints = []
    for step in (400, 800):
        checkpoint = TrainingCheckpoint(job=job, step=step, samples=[f"patients/{subject.patient_id}/s{step}.png"])
        checkpoint.adapter.save("lora.safetensors", ContentFile(b"w"), save=False)
        checkpoint.save()
        checkpoints.append(checkpoint)
    TrainingJob.objects.filter(pk=job.pk).update(chosen_checkpoint=checkpoints[1])
    client.force_login(owner)
    text = client.get(page(subject)).content.decode()
    assert "Which of these looks most like Ana?" in text and f"/media/patients/{subject.patient_id}/s400.png" in text
    assert text.count("This one looks most like Ana") == 1 and "In use" in text
    client.post(page(subject, "checkpoint_choose", checkpoint_id=checkpoints[0].pk))
    assert adapter_for(subject) == checkpoints[0]


def test_a_therapist_never_reaches_a_subjects_page(client, therapist, subject):
    client.force_login(therapist)
    assert client.get(page(subject)).status_code == 404
    assert client.post(page(subject, "photo_upload"), {"photos": image_upload()}).status_code == 404
    assert not subject.photos.exists()


def test_demo_model_samples_say_they_are_noise(client, owner, subject, settings, tmp_path):
    job = TrainingJob.objects.create(subject=subject, state=JobState.SUCCEEDED)
    for step, demo in ((400, True), (800, False)):
        checkpoint = TrainingCheckpoint(job=job, step=step, from_demo_model=demo,
                                        samples=[f"patients/{subject.patient_id}/s{step}.png"])
        checkpoint.adapter.save("lora.safetensors", ContentFile(b"w"), save=False)
        checkpoint.save()
    client.force_login(owner)
    text = client.get(page(subject)).content.decode()  # the demo model in use: the page says so once, above
    assert text.count("Lifebook is using its demo model") == 1 and "Generated by the demo model" not in text
    settings.LIFEBOOK_BASE_MODEL = str(tmp_path)  # a real model now: the demo model's samples are marked
    text = client.get(page(subject)).content.decode()
    assert text.count("Generated by the demo model") == 1 and "Lifebook is using its demo model" not in text


def test_the_trainers_notes_appear_on_each_photos_card_in_plain_words(client, owner, subject):
    first = add_reference_photo(subject, image_upload(color=(10, 20, 30)))
    second = add_reference_photo(subject, image_upload(color=(200, 20, 30)))
    report = {"photos": [
        {"name": f"photo-{first.pk}.jpg", "used": True,
         "problems": [{"code": "blurry", "message": "This photo is blurry."}]},
        {"name": f"photo-{second.pk}.jpg", "used": False,
         "problems": [{"code": "near_duplicate", "message": f"This photo is almost the same as “photo-{first.pk}.jpg”, "
                                                           "so it is left out."}]},
    ], "problems": []}
    TrainingJob.objects.create(subject=subject, state=JobState.SUCCEEDED, photo_report=report)
    client.force_login(owner)
    text = client.get(page(subject)).content.decode()
    first_card = text[text.index(f'id="photo-{first.pk}"'):text.index(f'id="photo-{second.pk}"')]
    assert "This photo is blurry." in first_card
    assert "almost the same as photo 1, so it is left out" in text and "photo-" + str(first.pk) + ".jpg" not in text


def test_photo_cards_show_small_webp_copies_not_the_whole_photo(client, owner, subject):
    photo = add_reference_photo(subject, image_upload(size=(1200, 900)))
    client.force_login(owner)
    text = client.get(page(subject)).content.decode()
    thumbnail = reverse("rendition", kwargs={"width": 480, "path": photo.image.name})
    assert f"{thumbnail} 480w" in text and 'sizes="160px"' in text
    assert client.get(thumbnail)["Content-Type"] == "image/webp"
