"""Time and waiting in plain words: the wording, the time-left estimate from steady steps, and the pages
that show them (the training fragment, the memory's pictures fragment, the subject page)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from generation import jobs
from generation.engine.steps import StepTimer
from generation.models import GenerationJob, JobState, TrainingCheckpoint, TrainingJob
from generation.progress_words import queue_words, time_left_words
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload


# --- the words ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds, words", [
    (0, "less than a minute left"), (59, "less than a minute left"),
    (60, "about 1 minute left"), (89, "about 1 minute left"), (91, "about 2 minutes left"),
    (190, "about 3 minutes left"), (59 * 60, "about 59 minutes left"),
    (3580, "about 1 hour left"),  # 59.7 minutes rounds to 60: said in hours, not "60 minutes"
    (5400, "about 2 hours left"), (2 * 3600 + 600, "about 2 hours left"), (53333, "about 15 hours left"),
])
def test_time_left_is_said_in_minutes_or_hours_never_seconds(seconds, words):
    assert time_left_words(seconds) == words


def test_no_estimate_says_nothing():
    assert time_left_words(None) == "" and time_left_words(-5) == ""


def test_queue_place_words_use_plurals():
    assert queue_words(0) == "Next in line."
    assert queue_words(1) == "1 job is ahead of this one."
    assert queue_words(2) == "2 jobs are ahead of this one."


# --- the estimate ------------------------------------------------------------------------------


def test_the_estimate_ignores_a_slow_first_step():
    timer = StepTimer(warm_up=1)
    timer.start(0, at=0.0)
    timer.step_done(1, at=60.0)  # the first step: a minute of warming up
    assert timer.seconds_left(1, 100) is None  # nothing steady to go by yet
    at = 60.0
    for step in range(2, 11):
        at += 2.0
        timer.step_done(step, at)
    assert timer.seconds_left(10, 100) == pytest.approx(90 * 2.0)


def test_the_estimate_stays_steady_through_a_step_that_waited_for_samples():
    timer = StepTimer(warm_up=0)
    timer.start(0, at=0.0)
    at = 0.0
    for step in range(1, 21):
        at += 300.0 if step == 10 else 1.0  # step 10 ended after the sample pictures
        timer.step_done(step, at)
    assert timer.seconds_left(20, 120) == pytest.approx(100.0)


def test_the_estimate_follows_recent_steps_and_resumed_runs():
    timer = StepTimer(warm_up=0, recent=5)
    timer.start(400, at=0.0)  # resumed from step 400
    at = 0.0
    for step in range(401, 411):
        at += 1.0 if step <= 405 else 3.0  # the machine got busier
        timer.step_done(step, at)
    assert timer.seconds_left(410, 420) == pytest.approx(30.0)
    assert timer.seconds_left(420, 420) == 0


def test_the_issues_example_no_longer_grows():
    """Step 1 took long; later steps 25 s each: the estimate after step 23 is about the 2617 steps left at 25 s."""
    timer = StepTimer()
    timer.start(0, at=0.0)
    at = 100.0
    timer.step_done(1, at)
    for step in range(2, 24):
        at += 25.0
        timer.step_done(step, at)
    assert time_left_words(timer.seconds_left(23, 2640)) == "about 18 hours left"


# --- the pages ---------------------------------------------------------------------------------



def _subject_page(subject, name, **kwargs):
    return reverse(name, kwargs={"patient_id": subject.patient_id, "subject_id": subject.pk, **kwargs})


@pytest.mark.django_db
def test_the_training_fragment_says_the_time_left_and_when_samples_are_made(client, owner, patient):
    subject = factories.SubjectFactory(patient=patient)
    add_reference_photo(subject, image_upload())
    job = jobs.submit_training(subject, user=owner)
    client.force_login(owner)
    url = _subject_page(subject, "training_status")
    TrainingJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING, stage="training", step=23, total_steps=2640,
                                                 eta_seconds=2 * 3600)
    assert "Learning from the photos: step 23 of 2640, about 2 hours left." in client.get(url).content.decode()
    TrainingJob.objects.filter(pk=job.pk).update(stage="making samples", step=30, total_steps=30, eta_seconds=None)
    fragment = client.get(url).content.decode()
    assert "Making sample pictures to choose from…" in fragment and "step 30 of 30" not in fragment


@pytest.mark.django_db
def test_a_waiting_training_says_how_many_jobs_are_ahead(client, owner, patient):
    subjects = [factories.SubjectFactory(patient=patient) for _ in range(3)]
    for subject in subjects:
        add_reference_photo(subject, image_upload())
    first, second, third = (jobs.submit_training(subject, user=owner) for subject in subjects)
    client.force_login(owner)
    assert "Next in line." in client.get(_subject_page(subjects[0], "training_status")).content.decode()
    assert "2 jobs are ahead of this one." in client.get(_subject_page(subjects[2], "training_status")).content.decode()
    TrainingJob.objects.filter(pk=first.pk).update(state=JobState.RUNNING)  # the running one is still ahead
    assert "1 job is ahead of this one." in client.get(_subject_page(subjects[1], "training_status")).content.decode()
    TrainingJob.objects.filter(pk=first.pk).update(state=JobState.SUCCEEDED)
    assert "Next in line." in client.get(_subject_page(subjects[1], "training_status")).content.decode()


@pytest.mark.django_db
def test_the_pictures_fragment_says_which_picture_is_being_made(client, owner, patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="Juan at the beach")
    waiting = jobs.submit_generation(memory, user=owner)
    url = reverse("generation_status", kwargs={"patient_id": patient.pk, "memory_id": memory.pk})
    client.force_login(owner)
    other = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="Ana")
    GenerationJob.objects.filter(pk=jobs.submit_generation(other, user=owner).pk).update(
        created_at=waiting.created_at - timedelta(seconds=1))
    assert "1 job is ahead of this one." in client.get(url).content.decode()
    GenerationJob.objects.filter(pk=waiting.pk).update(state=JobState.RUNNING, step=5, total_steps=40, picture=2,
                                                       pictures=4)
    assert "Making picture 2 of 4: step 5 of 40." in client.get(url).content.decode()
    GenerationJob.objects.filter(pk=waiting.pk).update(picture=0, pictures=4, total_steps=20)
    assert "Making 4 pictures together: step 5 of 20." in client.get(url).content.decode()


@pytest.mark.django_db
def test_the_subject_page_says_when_it_learned_and_which_stage_is_in_use(client, owner, patient):
    from django.core.files.base import ContentFile

    subject = factories.SubjectFactory(patient=patient)
    finished = timezone.make_aware(timezone.datetime(2026, 5, 3, 12))
    job = TrainingJob.objects.create(subject=subject, state=JobState.SUCCEEDED, finished_at=finished)
    checkpoints = []
    for step in (400, 800, 1200):
        checkpoint = TrainingCheckpoint(job=job, step=step)
        checkpoint.adapter.save("lora.safetensors", ContentFile(b"weights"), save=False)
        checkpoint.save()
        checkpoints.append(checkpoint)
    jobs.choose_checkpoint(checkpoints[1])
    client.force_login(owner)
    page = client.get(_subject_page(subject, "subject_page")).content.decode()
    assert "Learned on 3 May." in page and "New pictures use stage 2 of 3 of that learning." in page
