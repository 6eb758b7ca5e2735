import pytest
from django.contrib import admin
from django.core.files.base import ContentFile
from django.urls import reverse

from generation.models import GenerationJob, TrainingCheckpoint, TrainingJob
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return factories.UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def full_book(patient):
    subject = factories.SubjectFactory(patient=patient)
    add_reference_photo(subject, image_upload())
    image = factories.MemoryImageFactory(memory=factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient)))
    image.memory.chosen_image = image
    image.memory.save()
    job = TrainingJob.objects.create(subject=subject, state="succeeded")
    checkpoint = TrainingCheckpoint(job=job, step=10, samples=[image.image.name])
    checkpoint.adapter.save("lora.safetensors", ContentFile(b"weights"), save=False)
    checkpoint.save()
    GenerationJob.objects.create(memory=image.memory, kind="txt2img", preview="data:image/jpeg;base64,AAAA")
    return patient


OUR_APPS = {"accounts", "lifebook", "generation"}


def _our_models():
    return [m for m in admin.site._registry if m._meta.app_label in OUR_APPS]


def _admin_urls(kind):
    for model in _our_models():
        opts = model._meta
        yield model, reverse(f"admin:{opts.app_label}_{opts.model_name}_{kind}")


def test_every_model_is_in_the_admin():
    from django.apps import apps

    ours = {m for app in OUR_APPS for m in apps.get_app_config(app).get_models()}
    assert ours <= set(admin.site._registry)


def test_every_changelist_renders_with_data_and_thumbnails(client, superuser, full_book):
    client.force_login(superuser)
    for model, url in _admin_urls("changelist"):
        response = client.get(url)
        assert response.status_code == 200, url
    photos = client.get(reverse("admin:lifebook_referencephoto_changelist")).content.decode()
    assert '<img src="/media/patients/' in photos


def test_every_changelist_search_and_filter_works(client, superuser, full_book):
    client.force_login(superuser)
    for model, url in _admin_urls("changelist"):
        assert client.get(url, {"q": "Juan"}).status_code == 200, url


def test_every_add_page_renders_or_is_deliberately_closed(client, superuser):
    client.force_login(superuser)
    # Files only come through the upload service or the generator; jobs through the book, API or commands.
    closed = {"referencephoto", "memoryimage", "trainingjob", "generationjob", "trainingcheckpoint",
              "auditevent", "notice"}  # the audit trail and notices are written by the app only
    for model, url in _admin_urls("add"):
        expected = 403 if model._meta.model_name in closed else 200
        assert client.get(url).status_code == expected, url


def test_every_change_page_renders(client, superuser, full_book):
    client.force_login(superuser)
    for model in _our_models():
        obj = model.objects.first()
        if obj is None:
            continue
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert client.get(url).status_code == 200, url


def test_the_patient_page_has_its_inlines(client, superuser, full_book):
    client.force_login(superuser)
    page = client.get(reverse("admin:lifebook_patient_change", args=[full_book.pk])).content.decode()
    for inline in ("care team", "subject", "chapter"):
        assert inline in page.lower()


def test_a_caregiver_never_reaches_the_admin(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:lifebook_patient_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_an_administrator_retries_a_failed_job_and_cancels_a_waiting_one(client, superuser, full_book):
    client.force_login(superuser)
    job = GenerationJob.objects.get()
    GenerationJob.objects.filter(pk=job.pk).update(state="failed", error="The worker stopped 3 times.")
    url = reverse("admin:generation_generationjob_changelist")
    client.post(url, {"action": "retry_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.state == "queued" and job.error == ""
    client.post(url, {"action": "cancel_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.state == "cancelled"
    page = client.get(reverse("admin:generation_trainingjob_change", args=[TrainingJob.objects.get().pk]))
    assert b'alt="sample"' in page.content  # the checkpoint's sample pictures, through the media view
