"""Chapters and memories on the web: writing a memory, making its pictures, choosing, a real photo instead."""

import re

import pytest
from django.urls import reverse

from generation.models import GenerationJob, JobState
from lifebook.models import Memory
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def memory(patient):
    chapter = factories.ChapterFactory(patient=patient, title="Youth")
    return factories.MemoryFactory(chapter=chapter, title="The dance", scene="Juan and Ana dancing")


def url(memory, name="memory_page", **extra):
    return reverse(name, kwargs={"patient_id": memory.chapter.patient_id, "memory_id": memory.pk, **extra})


def test_a_new_book_asks_for_a_chapter_before_a_memory(client, owner, patient):
    client.force_login(owner)
    response = client.get(reverse("memory_create", args=[patient.pk]))
    assert response["Location"] == reverse("chapter_create", args=[patient.pk])
    client.post(reverse("chapter_create", args=[patient.pk]), {"title": "Youth", "life_stage": "youth"})
    chapter = patient.chapters.get()
    ana = factories.SubjectFactory(patient=patient, name="Ana")
    other_book = factories.SubjectFactory(name="Someone else's")
    response = client.post(reverse("memory_create", args=[patient.pk]), {
        "chapter": chapter.pk, "title": "The dance", "description": "Juan and Ana at the fiesta.",
        "scene": "Juan and Ana dancing", "subjects": [ana.pk]})
    memory = Memory.objects.get(title="The dance")
    assert response["Location"] == url(memory) and list(memory.subjects.all()) == [ana]
    refused = client.post(reverse("memory_create", args=[patient.pk]), {
        "chapter": chapter.pk, "title": "Sneaky", "subjects": [other_book.pk]})
    assert refused.status_code == 200 and not Memory.objects.filter(title="Sneaky").exists()


def test_making_pictures_in_a_style_with_advanced_settings(client, owner, memory):
    client.force_login(owner)
    page = client.get(url(memory)).content.decode()
    assert "Soft painting" in page and "Advanced" in page and "No pictures yet." in page
    client.post(url(memory, "memory_generate"), {"style": "watercolour", "num_images": "2", "steps": "12", "seed": "7"})
    job = GenerationJob.objects.get(memory=memory)
    assert job.parameters["prompt"] == "a watercolour painting, soft colours"
    assert job.parameters["num_images"] == 2 and job.parameters["steps"] == 12 and job.parameters["seed"] == 7
    refused = client.post(url(memory, "memory_generate"), {"steps": "500"}, follow=True)
    assert "steps must be from 1 to 150" in refused.content.decode()


def test_progress_shows_the_preview_then_reloads_the_page_when_done(client, owner, memory):
    client.force_login(owner)
    job = GenerationJob.objects.create(memory=memory, kind="txt2img", state=JobState.RUNNING, step=5, total_steps=20,
                                       preview="data:image/jpeg;base64,AAAA")
    fragment = client.get(url(memory, "generation_status"), HTTP_HX_REQUEST="true")
    text = fragment.content.decode()
    assert "step 5 of 20" in text and 'src="data:image/jpeg;base64,AAAA"' in text and 'hx-trigger="every 1s"' in text
    assert "HX-Refresh" not in fragment
    GenerationJob.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED)
    assert client.get(url(memory, "generation_status"), HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    client.post(url(memory, "generation_cancel", job_id=job.pk))  # finished: nothing to stop, no error
    assert GenerationJob.objects.get(pk=job.pk).state == JobState.SUCCEEDED


def test_choosing_a_candidate_and_using_a_real_photo_instead(client, owner, memory):
    generated = factories.MemoryImageFactory(memory=memory, from_demo_model=True)
    client.force_login(owner)
    page = client.get(url(memory)).content.decode()  # the demo model in use: said once, above the pictures
    assert page.count("Lifebook is using its demo model") == 1 and "Generated (demo model)" not in page
    assert "Generated" in page
    client.post(url(memory, "memory_choose_image", image_id=generated.pk))
    memory.refresh_from_db()
    assert memory.chosen_image == generated
    client.post(url(memory, "memory_upload_photo"), {"photo": image_upload("real.jpg")})
    memory.refresh_from_db()
    assert memory.chosen_image.source == "uploaded"
    page = client.get(url(memory)).content.decode()
    assert "Real photo" in page and len(re.findall(r'<li class="candidate', page)) == 2
    bad = client.post(url(memory, "memory_upload_photo"), {"photo": image_upload("tiny.jpg", size=(50, 50))}, follow=True)
    assert "too small" in bad.content.decode()


def test_a_therapist_and_another_family_never_reach_a_memory_page(client, therapist, stranger, memory):
    for user in (therapist, stranger):
        client.force_login(user)
        assert client.get(url(memory)).status_code == 404
        assert client.post(url(memory, "memory_generate")).status_code == 404
    assert not GenerationJob.objects.exists()


def test_the_words_are_edited_on_the_memory_page_and_bad_input_keeps_them(client, owner, memory):
    client.force_login(owner)
    data = {"chapter": memory.chapter_id, "title": "The first dance", "description": "At the fiesta.",
            "scene": "Juan and Ana dancing in the square"}
    assert client.post(url(memory), data)["Location"] == url(memory)
    memory.refresh_from_db()
    assert memory.title == "The first dance" and memory.scene.endswith("square")
    response = client.post(url(memory), {**data, "title": ""})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    memory.refresh_from_db()
    assert memory.title == "The first dance"
    assert client.get(reverse("memory_create", args=[memory.chapter.patient_id]), {"chapter": "x"}).status_code == 200


def test_the_memory_form_offers_the_books_subjects_as_chips_and_picks_the_only_chapter(client, owner, patient):
    from django.utils import timezone

    from generation.models import TrainingCheckpoint, TrainingJob

    chapter = factories.ChapterFactory(patient=patient, title="Youth")
    ana = factories.SubjectFactory(patient=patient, name="Ana", relationship="his wife")
    factories.SubjectFactory(patient=patient, name="Toby", relationship="")
    job = TrainingJob.objects.create(subject=ana, state=JobState.SUCCEEDED, chosen_at=timezone.now())
    checkpoint = TrainingCheckpoint.objects.create(job=job, step=1, adapter="patients/x/lora.safetensors")
    TrainingJob.objects.filter(pk=job.pk).update(chosen_checkpoint=checkpoint)
    client.force_login(owner)
    text = client.get(reverse("memory_create", args=[patient.pk])).content.decode()
    assert '<fieldset class="field chips"' in text and "<legend>Who and where is in this memory</legend>" in text
    assert "Ana (his wife)</label>" in text and "Toby · not learned yet</label>" in text
    assert f'<option value="{chapter.pk}" selected>' in text  # the only chapter is already chosen
    factories.ChapterFactory(patient=patient, title="Old age")
    text = client.get(reverse("memory_create", args=[patient.pk])).content.decode()
    assert " selected>" not in text.split('name="chapter"')[1].split("</select>")[0].replace('value="" selected', "")


def test_moving_a_memory_to_another_chapter_from_its_page_puts_it_last_there(client, owner, memory):
    other = factories.ChapterFactory(patient=memory.chapter.patient, title="Old age")
    resident = factories.MemoryFactory(chapter=other, title="Already there")
    assert resident.position == memory.position == 0  # the same number in both chapters: no clash allowed
    client.force_login(owner)
    response = client.post(url(memory), {"chapter": other.pk, "title": memory.title, "description": "d",
                                         "scene": memory.scene})
    assert response.status_code == 302
    assert list(other.memories.values_list("title", flat=True)) == ["Already there", "The dance"]
