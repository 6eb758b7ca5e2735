import pytest
from django.urls import reverse

from accounts.models import CareTeamMember, User
from lifebook.models import Patient
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_login_page_renders_for_anyone(client):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b"Log in to Lifebook" in page.content


def test_pages_ask_visitors_to_log_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_caregiver_signs_up_and_lands_on_an_empty_dashboard(client):
    response = client.post(reverse("signup"), {
        "username": "marta", "first_name": "Marta", "email": "marta@example.com",
        "password1": "a-long-caregiver-password", "password2": "a-long-caregiver-password",
    }, follow=True)
    assert response.status_code == 200
    assert User.objects.filter(username="marta").exists()
    assert b"No books yet" in response.content


def test_a_real_login_works_and_repeated_failures_lock_the_account(client, owner, settings):
    settings.AXES_FAILURE_LIMIT = 3
    assert client.post(reverse("login"), {"username": "marta", "password": "a-long-test-password"}).status_code == 302
    client.post(reverse("logout"))
    for _ in range(3):
        client.post(reverse("login"), {"username": "marta", "password": "wrong"})
    locked = client.post(reverse("login"), {"username": "marta", "password": "a-long-test-password"})
    assert locked.status_code == 429 and b"Too many attempts" in locked.content


def test_the_dashboard_lists_only_my_patients(client, owner, patient, stranger):
    client.force_login(owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert patient.name in page and "Someone Else" not in page


def test_creating_a_patient_makes_me_its_owner_and_records_consent(client, owner):
    client.force_login(owner)
    response = client.post(reverse("patient_create"), {
        "name": "Carmen López", "preferred_name": "Carmen", "birth_year": "1950",
        "photo_consent": "on", "photo_consent_note": "Carmen herself",
    })
    patient = Patient.objects.get(name="Carmen López")
    assert response.status_code == 302 and response["Location"] == reverse("patient_book", args=[patient.pk])
    assert CareTeamMember.objects.get(patient=patient).role == "owner"
    assert patient.photo_consent_by == owner and patient.photo_consent_at is not None


def test_consent_needs_to_say_who_gave_it(client, owner):
    client.force_login(owner)
    response = client.post(reverse("patient_create"), {"name": "Carmen", "photo_consent": "on"})
    assert response.status_code == 200 and "Say who gave consent" in response.content.decode()
    assert not Patient.objects.exists()


def test_a_bad_birth_year_is_a_message_not_an_error(client, owner):
    client.force_login(owner)
    response = client.post(reverse("patient_create"), {"name": "Carmen", "birth_year": "99999"})
    assert response.status_code == 200 and not Patient.objects.exists()


def test_withdrawing_consent_clears_it(client, owner, patient):
    from django.utils import timezone

    Patient.objects.filter(pk=patient.pk).update(photo_consent_at=timezone.now(), photo_consent_note="Juan")
    client.force_login(owner)
    client.post(reverse("patient_edit", args=[patient.pk]), {"name": patient.name})
    patient.refresh_from_db()
    assert not patient.has_photo_consent and patient.photo_consent_note == ""


def test_the_book_shows_chapters_memories_and_the_generated_mark(client, owner, patient):
    chapter = factories.ChapterFactory(patient=patient, title="Youth")
    image = factories.MemoryImageFactory(memory=factories.MemoryFactory(chapter=chapter, title="At the basilica"),
                                         from_demo_model=True)
    image.memory.chosen_image = image
    image.memory.save()
    client.force_login(owner)
    page = client.get(reverse("patient_book", args=[patient.pk])).content.decode()
    assert "Youth" in page and "At the basilica" in page
    assert "Generated picture (demo model)" in page
    assert reverse("rendition", kwargs={"width": 480, "path": image.image.name}) in page  # srcset of WebP copies


def test_therapists_do_not_see_hidden_memories(client, owner, therapist, patient):
    chapter = factories.ChapterFactory(patient=patient)
    factories.MemoryFactory(chapter=chapter, title="A hard day", hidden=True)
    factories.MemoryFactory(chapter=chapter, title="A good day")
    client.force_login(therapist)
    page = client.get(reverse("patient_book", args=[patient.pk])).content.decode()
    assert "A good day" in page and "A hard day" not in page
    client.force_login(owner)
    assert "Hidden from the book" in client.get(reverse("patient_book", args=[patient.pk])).content.decode()


def test_the_book_page_does_not_grow_queries_with_memories(client, owner, patient, django_assert_max_num_queries):
    for c in range(3):
        chapter = factories.ChapterFactory(patient=patient)
        for m in range(4):
            memory = factories.MemoryFactory(chapter=chapter)
            memory.subjects.add(factories.SubjectFactory(patient=patient, name=f"S{c}{m}"))
    client.force_login(owner)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("patient_book", args=[patient.pk])).status_code == 200


def test_an_oversized_request_is_refused_with_a_clear_page(client, owner, settings):
    settings.LIFEBOOK_MAX_REQUEST_BYTES = 1000
    client.force_login(owner)
    response = client.post(reverse("patient_create"), {"name": "x" * 2000})
    assert response.status_code == 413 and b"Nothing was saved" in response.content
    assert not Patient.objects.exists()


def test_an_implausible_birth_year_is_a_form_error_not_a_500(client, owner):
    client.force_login(owner)
    response = client.post(reverse("patient_create"), {"name": "Carmen", "birth_year": "1066"})
    assert response.status_code == 200 and "patient_birth_year_plausible" not in response.content.decode()
    assert "1880" in response.context["form"].errors["birth_year"][0] and not Patient.objects.exists()


def test_a_forgotten_password_can_be_reset_by_email(client, owner, settings):
    import re

    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post(reverse("password_reset"), {"email": owner.email})
    assert response.status_code == 302 and len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body)[1]
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and "validlink" in form_page.context and form_page.context["validlink"]
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": "a-brand-new-password-9",
                                                         "new_password2": "a-brand-new-password-9"})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("a-brand-new-password-9")


def test_no_template_comment_spans_lines():
    """Django's {# #} comments end at the line's end: a multi-line one is printed on the page."""
    import re
    from pathlib import Path

    for path in Path(__file__).resolve().parents[1].joinpath("templates").rglob("*.html"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not re.search(r"\{#(?!.*#\})", line), f"{path}:{number} opens a {{# comment it does not close"
