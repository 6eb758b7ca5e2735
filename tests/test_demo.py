import pytest
from django.core.management import CommandError, call_command

from accounts.access import patients_for
from accounts.models import User
from lifebook.models import Chapter, Memory, MemoryImage, Patient, Subject

pytestmark = pytest.mark.django_db


def _counts():
    return [m.objects.count() for m in (User, Patient, Subject, Chapter, Memory)]


def test_load_demo_creates_juans_book(settings):
    settings.DEBUG = True
    call_command("load_demo", "--no-pictures")
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
    call_command("load_demo", "--no-pictures")
    before = _counts()
    call_command("load_demo", "--no-pictures")
    assert _counts() == before


def test_the_demo_caregiver_and_therapist_can_log_in_and_see_juan(settings, client):
    settings.DEBUG = True
    call_command("load_demo", "--no-pictures")
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


@pytest.mark.django_db(transaction=True)  # each picture is a job run by the worker's code, heartbeat thread included
def test_the_demo_book_gets_a_chosen_picture_for_every_memory_so_the_first_reader_is_not_blank(settings, client):
    settings.DEBUG = True
    call_command("load_demo")
    memories = Memory.objects.filter(chapter__patient__name="Juan Pacheco").select_related("chosen_image")
    assert memories.count() >= 10
    for memory in memories:
        picture = memory.chosen_image
        assert picture is not None and picture.memory_id == memory.pk, memory.title
        assert picture.from_demo_model and picture.source == MemoryImage.Source.GENERATED
        assert picture.image.storage.exists(picture.image.name) and picture.width == 128
    call_command("load_demo")  # again: nothing new
    assert MemoryImage.objects.count() == memories.count()
    client.force_login(User.objects.get(username="demo-caregiver"))
    reader = client.get(f"/patients/{memories[0].chapter.patient_id}/read/")
    assert reader.status_code == 200
    for memory in memories:
        assert memory.chosen_image.image.name.rsplit("/", 1)[-1] in reader.content.decode()


def test_a_real_model_makes_no_pictures_at_load_time(settings, tmp_path):
    settings.DEBUG = True
    settings.LIFEBOOK_BASE_MODEL = str(tmp_path)  # a folder without the demo marker: not the demo model
    call_command("load_demo")
    assert Memory.objects.exists() and not MemoryImage.objects.exists()
