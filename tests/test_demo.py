import pytest
from django.core.management import CommandError, call_command

from accounts.access import patients_for
from accounts.models import User
from lifebook.models import Chapter, Memory, Patient, Subject

pytestmark = pytest.mark.django_db


def _counts():
    return [m.objects.count() for m in (User, Patient, Subject, Chapter, Memory)]


def test_load_demo_creates_juans_book(settings):
    settings.DEBUG = True
    call_command("load_demo")
    juan = Patient.objects.get(name="Juan Pacheco")
    assert juan.birth_year == 1944 and juan.has_photo_consent
    assert list(juan.chapters.values_list("title", flat=True)) == ["Youth", "Adulthood", "Old age"]
    assert juan.subjects.filter(name="Juan").count() == 3
    assert {"Ana", "The basilica", "Torres KIO", "His dog", "The living room"} <= set(
        juan.subjects.values_list("name", flat=True))
    assert Memory.objects.filter(chapter__patient=juan).count() >= 10
    dog = Memory.objects.get(title="A dog of his own")
    assert {s.name for s in dog.subjects.all()} == {"Juan", "His dog"}


def test_load_demo_twice_changes_nothing(settings):
    settings.DEBUG = True
    call_command("load_demo")
    before = _counts()
    call_command("load_demo")
    assert _counts() == before


def test_the_demo_caregiver_and_therapist_can_log_in_and_see_juan(settings, client):
    settings.DEBUG = True
    call_command("load_demo")
    for username in ("demo-caregiver", "demo-therapist"):
        user = User.objects.get(username=username)
        assert user.check_password(settings.LIFEBOOK_DEMO_PASSWORD)
        assert [p.name for p in patients_for(user)] == ["Juan Pacheco"]
    therapist = User.objects.get(username="demo-therapist")
    assert not patients_for(therapist, edit=True).exists()


def test_if_empty_leaves_a_database_with_patients_alone(settings):
    settings.DEBUG = True
    Patient.objects.create(name="Someone")
    call_command("load_demo", "--if-empty")
    assert not Patient.objects.filter(name="Juan Pacheco").exists()


def test_it_refuses_demo_accounts_on_a_server_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="known password"):
        call_command("load_demo")
    assert not User.objects.exists()
