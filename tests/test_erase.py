"""Erasing a book removes every row and every file of it, stops its jobs, and leaves only an "erased" event."""

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.admin.utils import NestedObjects
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, default_storage
from django.db import IntegrityError
from PIL import Image

from accounts.models import CareTeamMember, Invitation
from generation import jobs, runner
from generation.models import GenerationJob, JobState, TrainingCheckpoint, TrainingJob
from lifebook import audit
from lifebook.erase import contents_of, delete_folder, erase_book
from lifebook.models import AuditEvent, Memory, MemoryImage, Patient, patient_file_path
from lifebook.renditions import ensure_rendition
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def training_root(settings, tmp_path):
    settings.LIFEBOOK_TRAINING_DIR = tmp_path / "training"
    settings.VAR_DIR = tmp_path / "var"
    return settings.LIFEBOOK_TRAINING_DIR


def make_full_book(patient, owner=None):
    """One of every row and file a book can have: photos and their renditions, pictures, a finished training
    with its adapter and samples, a running training and a queued picture job with a sketch and a mask,
    working folders, a care team, an invitation and an audit event."""
    ana = factories.SubjectFactory(patient=patient, name="Ana")
    toby = factories.SubjectFactory(patient=patient, name="Toby", kind="pet")
    photos = [add_reference_photo(ana, image_upload(color=(10 * i, 90, 200))) for i in range(3)]
    add_reference_photo(toby, image_upload(color=(200, 200, 10)))
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="Ana at the beach")
    memory.subjects.add(ana, toby)
    images = [factories.MemoryImageFactory(memory=memory, seed=i) for i in range(2)]
    Memory.objects.filter(pk=memory.pk).update(chosen_image=images[0])
    factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient))
    ensure_rendition(photos[0].image.name, 480)
    ensure_rendition(images[0].image.name, 480)

    finished = TrainingJob.objects.create(subject=ana, state=JobState.SUCCEEDED)
    checkpoint = TrainingCheckpoint(job=finished, step=10, samples=[
        default_storage.save(f"patients/{patient.pk}/subjects/{ana.pk}/adapters/{uuid.uuid4().hex}.png",
                             ContentFile(b"sample"))])
    checkpoint.adapter.save("lora.safetensors", ContentFile(b"weights"), save=False)
    checkpoint.save()
    TrainingJob.objects.filter(pk=finished.pk).update(chosen_checkpoint=checkpoint, adapter=checkpoint.adapter.name)
    running = TrainingJob.objects.create(subject=toby, state=JobState.RUNNING, run_token=uuid.uuid4())
    for job in (finished, running):
        folder = jobs.training_dir(job) / "checkpoints" / "step-10"
        folder.mkdir(parents=True)
        (folder / "state.pt").write_bytes(b"state")
    queued = GenerationJob.objects.create(memory=memory, kind=GenerationJob.Kind.INPAINT, source_image=images[0])
    for field, what in ((queued.source_file, "source"), (queued.mask_file, "mask")):
        field.name = default_storage.save(patient_file_path(patient.pk, f"memories/{memory.pk}/{what}", "png"),
                                          ContentFile(what.encode()))
    queued.save()
    queued.results.add(images[1])

    factories.MembershipFactory(patient=patient, user=factories.UserFactory(username="carmen"), role="caregiver")
    factories.MembershipFactory(patient=patient, user=factories.UserFactory(username="laura"), role="therapist")
    Invitation.objects.create(patient=patient, email="new@example.com")
    audit.record_view(owner or patient.care_team.first().user, patient, audit.BOOK_PAGE)
    return SimpleNamespace(patient=patient, memory=memory, images=images, running=running, queued=queued,
                           finished=finished)


def files_under(folder: Path) -> list[Path]:
    return [path for path in Path(folder).rglob("*") if path.is_file()] if Path(folder).exists() else []


@pytest.fixture
def book(patient, owner):
    return make_full_book(patient, owner)


def test_the_contents_name_what_will_go(book):
    contents = contents_of(book.patient)
    assert (contents.chapters, contents.memories, contents.pictures) == (2, 2, 2)
    assert (contents.subjects, contents.photos, contents.adapters, contents.trained_subjects) == (2, 4, 1, 1)
    assert contents.active_jobs == 2 and contents.invitations == 1
    assert sorted(member.user.username for member in contents.team) == ["carmen", "laura", "marta"]


def test_erasing_a_book_leaves_no_file_in_storage_or_in_the_training_folders(book, owner, training_root,
                                                                              django_capture_on_commit_callbacks):
    other = factories.PatientFactory(name="Someone Else")
    other_photo = add_reference_photo(factories.SubjectFactory(patient=other), image_upload())
    folder = Path(settings.MEDIA_ROOT, "patients", str(book.patient.pk))
    kinds = {path.relative_to(folder).parts[0] for path in files_under(folder)}
    assert kinds == {"subjects", "memories", "renditions"} and len(files_under(folder)) == 12
    assert len(files_under(training_root)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        erase_book(book.patient, by=owner)

    assert files_under(folder) == [] and not folder.exists()
    assert files_under(training_root) == []
    assert files_under(Path(settings.MEDIA_ROOT)) == [Path(settings.MEDIA_ROOT, other_photo.image.name)]


def test_erasing_a_book_deletes_the_rows_of_every_related_model(book, owner, django_capture_on_commit_callbacks):
    collector = NestedObjects(using="default")  # every row that hangs on the patient, found by Django itself
    collector.collect([book.patient])
    rows = {(model, obj.pk) for model, objects in collector.data.items() for obj in objects}
    models = {model for model, _ in rows}
    assert {Patient, CareTeamMember, Invitation, Memory, MemoryImage, TrainingJob, TrainingCheckpoint,
            GenerationJob, Memory.subjects.through, GenerationJob.results.through} <= models

    with django_capture_on_commit_callbacks(execute=True):
        erase_book(book.patient, by=owner)

    left = [(model.__name__, pk) for model, pk in rows
            if model is not AuditEvent and model._base_manager.filter(pk=pk).exists()]
    assert left == []


def test_the_erased_event_survives_with_the_books_number_and_earlier_events_too(book, owner):
    number = book.patient.pk
    erase_book(book.patient, by=owner)
    events = AuditEvent.objects.filter(patient_number=number)
    assert [e.action for e in events] == [AuditEvent.Action.ERASED, AuditEvent.Action.VIEWED]
    erased = events[0]
    assert erased.patient is None and erased.user == owner and erased.username == "marta"
    assert "2 memories" in erased.detail and "Ana" not in erased.detail  # numbers, never the book's words


def test_erasing_twice_says_the_book_is_gone(book, owner):
    stale = Patient.objects.get(pk=book.patient.pk)
    erase_book(book.patient, by=owner)
    with pytest.raises(Patient.DoesNotExist):
        erase_book(stale, by=owner)


def test_erasing_costs_the_same_queries_for_a_small_or_a_large_book(patient, owner, django_assert_max_num_queries):
    """Per-row signal work (renditions, the book cache) is skipped while a book is erased."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost(size):
        book = factories.PatientFactory()
        memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=book))
        for seed in range(size):
            factories.MemoryImageFactory(memory=memory, seed=seed)
            factories.MemoryFactory(chapter=memory.chapter)
        with CaptureQueriesContext(connection) as queries:
            erase_book(book, by=owner)
        return len(queries)

    assert cost(2) == cost(12)


def test_files_go_through_the_storage_api_so_remote_storages_are_emptied_too():
    storage = InMemoryStorage()
    for name in ("patients/7/subjects/1/a.jpg", "patients/7/renditions/480/memories/2/b-png.webp",
                 "patients/7/memories/2/mask/c.png", "patients/70/subjects/3/d.jpg"):
        storage.save(name, ContentFile(b"x"))
    delete_folder("patients/7", storage)
    for name in ("patients/7/subjects/1/a.jpg", "patients/7/renditions/480/memories/2/b-png.webp",
                 "patients/7/memories/2/mask/c.png"):
        assert not storage.exists(name)
    assert storage.exists("patients/70/subjects/3/d.jpg")
    delete_folder("patients/8", storage)  # nothing there: nothing to do


# --- a worker in the middle of a job of an erased book -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_running_and_queued_jobs_lose_their_claim_before_the_rows_go(patient, owner, monkeypatch):
    book = make_full_book(patient, owner)
    seen = {}
    real_delete = Patient.delete

    def delete(self, *args, **kwargs):  # just before the cascade: the jobs as a worker would see them
        seen.update({(type(job), job.pk): (job.state, job.run_token) for job in
                     [*TrainingJob.objects.filter(subject__patient=self), *GenerationJob.objects.filter(
                         memory__chapter__patient=self)]})
        return real_delete(self, *args, **kwargs)

    monkeypatch.setattr(Patient, "delete", delete)
    erase_book(book.patient, by=owner)
    assert seen[TrainingJob, book.running.pk] == (JobState.CANCELLED, None)
    assert seen[GenerationJob, book.queued.pk] == (JobState.CANCELLED, None)
    assert seen[TrainingJob, book.finished.pk][0] == JobState.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_picture_job_finishing_after_the_erase_stores_nothing(patient, owner):
    book = make_full_book(patient, owner)
    job = GenerationJob.objects.create(memory=book.memory, kind="txt2img", state=JobState.RUNNING,
                                       run_token=uuid.uuid4())
    job = GenerationJob.objects.select_related("memory__chapter").get(pk=job.pk)  # what the worker holds
    erase_book(book.patient, by=owner)
    result = SimpleNamespace(images=[Image.new("RGB", (64, 64))], seeds=[1], is_demo_model=True, parameters={},
                             stages=[])
    try:
        stored = runner.store_results(job, result)
    except Memory.DoesNotExist:  # the picture's file name needs its memory: the worker's task fails, storing nothing
        stored = False
    assert stored is False and files_under(Path(settings.MEDIA_ROOT)) == []
    assert not MemoryImage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_training_storing_a_checkpoint_after_the_erase_leaves_no_file_and_no_folder(patient, owner, tmp_path):
    book = make_full_book(patient, owner)
    job = TrainingJob.objects.select_related("subject").get(pk=book.running.pk)  # what the worker holds
    folder = jobs.training_dir(job)
    erase_book(book.patient, by=owner)
    (folder / "checkpoints" / "step-20").mkdir(parents=True)  # the trainer wrote on after the erase
    sample, lora = tmp_path / "sample.png", tmp_path / "lora.safetensors"
    sample.write_bytes(b"png")
    lora.write_bytes(b"weights")
    checkpoint = SimpleNamespace(step=20, loss=0.1, samples=[sample], lora_path=lora)
    with pytest.raises(IntegrityError):  # its job is gone: the files written first are removed again
        runner.store_checkpoint(job, checkpoint, from_demo_model=True)
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    assert runner._forget_if_erased(job, folder) is True and not folder.exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_given_to_another_worker_keeps_its_working_folder(patient, owner):
    job = TrainingJob.objects.create(subject=factories.SubjectFactory(patient=patient), state=JobState.QUEUED)
    folder = jobs.training_dir(job)
    folder.mkdir(parents=True)
    assert runner._forget_if_erased(job, folder) is False and folder.exists()
