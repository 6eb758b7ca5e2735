"""When a job ends (done, failed, stopped) its starter finds one notice on the dashboard and gets one email,
unless they turned emails off; nobody else hears of it. Run in-process, like tests/test_jobs.py."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from generation import jobs
from generation.models import GenerationJob, JobState, Notice, TrainingJob
from generation.runner import claim, finish
from lifebook.erase import erase_book
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def memory(patient):
    return factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="Juan at the beach")


@pytest.fixture
def caregiver(patient):
    """Another member of the care team: they did not start the job."""
    user = factories.UserFactory(username="pablo")
    factories.MembershipFactory(patient=patient, user=user, role="caregiver")
    return user


def _end(job, state, how):
    if how == "worker":
        running = claim(type(job), job.pk)
        assert finish(running, state, **({"error": "It broke."} if state == JobState.FAILED else {}))
    elif how == "cancel":
        assert jobs.cancel(job) == JobState.CANCELLED


@pytest.mark.parametrize("state, how", [(JobState.SUCCEEDED, "worker"), (JobState.FAILED, "worker"),
                                        (JobState.CANCELLED, "worker"), (JobState.CANCELLED, "cancel")])
def test_each_job_end_leaves_one_notice_and_one_email_for_its_starter(owner, caregiver, patient, memory, state, how,
                                                                      django_capture_on_commit_callbacks):
    job = jobs.submit_generation(memory, user=owner)
    with django_capture_on_commit_callbacks(execute=True):
        _end(job, state, how)
    notice = Notice.objects.get()
    assert (notice.user, notice.patient, notice.memory, notice.outcome) == (owner, patient, memory, state)
    assert not Notice.objects.filter(user=caregiver).exists()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [owner.email]
    body = mail.outbox[0].body
    assert f"{patient.display_name}’s book" in body and reverse("memory_page", args=[patient.pk, memory.pk]) in body
    assert memory.scene not in body and memory.title not in body  # no more than needed
    assert "seconds" not in body


def test_a_second_attempt_to_end_the_same_job_tells_nobody_twice(owner, memory, django_capture_on_commit_callbacks):
    job = claim(GenerationJob, jobs.submit_generation(memory, user=owner).pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert finish(job, JobState.SUCCEEDED)
        assert not finish(job, JobState.SUCCEEDED)  # a duplicate delivery: the job is no longer running
        from generation.notices import job_ended
        assert job_ended(job) is None  # told again by hand: the constraint keeps it to one
    assert Notice.objects.count() == 1 and len(mail.outbox) == 1


def test_a_job_run_again_after_failing_tells_again_when_it_ends_again(owner, memory):
    job = claim(GenerationJob, jobs.submit_generation(memory, user=owner).pk)
    finish(job, JobState.FAILED, error="It broke.")
    assert jobs.retry(job)
    job = claim(GenerationJob, job.pk)
    finish(job, JobState.SUCCEEDED)
    assert list(Notice.objects.order_by("pk").values_list("outcome", flat=True)) == ["failed", "succeeded"]


def test_no_email_when_turned_off_but_the_notice_stays(owner, memory, django_capture_on_commit_callbacks, client):
    client.force_login(owner)
    client.post(reverse("account"), {"form": "emails"})  # the checkbox left unticked
    owner.refresh_from_db()
    assert not owner.email_when_jobs_end
    with django_capture_on_commit_callbacks(execute=True):
        finish(claim(GenerationJob, jobs.submit_generation(memory, user=owner).pk), JobState.SUCCEEDED)
    assert Notice.objects.filter(user=owner).count() == 1 and mail.outbox == []
    client.post(reverse("account"), {"form": "emails", "email_when_jobs_end": "on"})
    owner.refresh_from_db()
    assert owner.email_when_jobs_end
    assert "Email me when pictures or learning I started" in client.get(reverse("account")).content.decode()


def test_the_sweeper_tells_of_the_jobs_it_ends(owner, patient, memory, settings, django_capture_on_commit_callbacks):
    settings.LIFEBOOK_JOB_MAX_ATTEMPTS = 1
    subject = factories.SubjectFactory(patient=patient)
    add_reference_photo(subject, image_upload())
    training = claim(TrainingJob, jobs.submit_training(subject, user=owner).pk)
    pictures = claim(GenerationJob, jobs.submit_generation(memory, user=owner).pk)
    GenerationJob.objects.filter(pk=pictures.pk).update(cancel_requested=True)
    later = timezone.now() + timedelta(seconds=settings.LIFEBOOK_JOB_STALE_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.sweep(now=later)
    told = {(n.kind, n.job_id, n.outcome) for n in Notice.objects.all()}
    assert told == {("training", training.pk, "failed"), ("pictures", pictures.pk, "cancelled")}
    assert len(mail.outbox) == 2


def test_nobody_is_told_when_the_starter_left_the_care_team_or_is_unknown(owner, caregiver, patient, memory):
    job = jobs.submit_generation(memory, user=caregiver)
    patient.care_team.filter(user=caregiver).delete()
    finish(claim(GenerationJob, job.pk), JobState.SUCCEEDED)
    finish(claim(GenerationJob, jobs.submit_generation(memory).pk), JobState.SUCCEEDED)  # started by no one
    assert not Notice.objects.exists() and mail.outbox == []


def test_the_dashboard_shows_ones_own_notices_with_a_link_and_dismisses_them(client, owner, caregiver, patient,
                                                                            stranger):
    subject = factories.SubjectFactory(patient=patient, name="Juan")
    add_reference_photo(subject, image_upload())
    finish(claim(TrainingJob, jobs.submit_training(subject, user=owner).pk), JobState.SUCCEEDED)
    notice = Notice.objects.get()
    client.force_login(owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Lifebook has learned what Juan looks like" in page
    assert reverse("subject_page", args=[patient.pk, subject.pk]) in page
    for other in (caregiver, stranger):
        client.force_login(other)
        assert "learned what Juan looks like" not in client.get(reverse("dashboard")).content.decode()
        assert client.post(reverse("notice_dismiss", args=[notice.pk])).status_code == 404
    client.force_login(owner)
    assert client.post(reverse("notice_dismiss", args=[notice.pk])).status_code == 302
    assert "learned what Juan looks like" not in client.get(reverse("dashboard")).content.decode()
    notice.refresh_from_db()
    assert notice.dismissed_at is not None


def test_a_picture_job_of_a_hidden_memory_tells_its_starter_only_while_they_may_see_it(caregiver, patient, memory):
    from lifebook.models import Memory

    Memory.objects.filter(pk=memory.pk).update(hidden=True)
    finish(claim(GenerationJob, jobs.submit_generation(memory, user=caregiver).pk), JobState.SUCCEEDED)
    assert Notice.objects.filter(user=caregiver).count() == 1  # an editor: they see hidden memories
    patient.care_team.filter(user=caregiver).update(role="therapist")  # now they may only read the book
    finish(claim(GenerationJob, jobs.submit_generation(memory, user=caregiver).pk), JobState.SUCCEEDED)
    assert Notice.objects.filter(user=caregiver).count() == 1


def test_erasing_the_book_takes_its_notices(owner, patient, memory):
    finish(claim(GenerationJob, jobs.submit_generation(memory, user=owner).pk), JobState.SUCCEEDED)
    assert Notice.objects.filter(user=owner).count() == 1
    erase_book(patient, by=owner)
    assert not Notice.objects.exists()
