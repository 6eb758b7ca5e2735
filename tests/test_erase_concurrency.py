"""Something added to a book while it is being erased (a photo from a page, a checkpoint from a worker) waits for
the erase, then is refused: the erase never fails on it, and no row or file of it stays. PostgreSQL only: SQLite
writes one transaction at a time anyway."""

import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models.signals import pre_delete

from generation import runner
from generation.models import JobState, TrainingCheckpoint, TrainingJob
from lifebook import uploads
from lifebook.erase import erase_book
from lifebook.models import Patient, ReferencePhoto, Subject
from tests import factories
from tests.conftest import image_upload
from tests.test_erase import files_under


def add_photo(subject_id):
    uploads.add_reference_photo(Subject.objects.get(pk=subject_id), image_upload())


def store_checkpoint(job_id, tmp_path):
    """What a training worker does at a checkpoint (it holds its job, with the subject, from its claim)."""
    job = TrainingJob.objects.select_related("subject").get(pk=job_id)
    sample, lora = tmp_path / "sample.png", tmp_path / "lora.safetensors"
    sample.write_bytes(b"png")
    lora.write_bytes(b"weights")
    runner.store_checkpoint(job, SimpleNamespace(step=20, loss=0.1, samples=[sample], lora_path=lora),
                            from_demo_model=True)


@pytest.mark.parametrize("what", ["photo", "checkpoint"])
@pytest.mark.django_db(transaction=True)
def test_something_added_during_the_erase_waits_and_is_then_refused(owner, patient, monkeypatch, tmp_path, what):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's in-memory test database is not shared between threads; PostgreSQL runs this in CI")
    subject = factories.SubjectFactory(patient=patient)
    job = TrainingJob.objects.create(subject=subject, state=JobState.RUNNING, run_token=uuid.uuid4())
    clean = uploads.normalise_image(image_upload())  # decoded now, so the upload below reaches its insert at once
    monkeypatch.setattr(uploads, "normalise_image", lambda upload: clean)
    outcome, tried = {}, threading.Event()

    def add():
        try:
            add_photo(subject.pk) if what == "photo" else store_checkpoint(job.pk, tmp_path)
            outcome[what] = "stored"
        except Exception as exc:
            outcome[what] = type(exc).__name__
        finally:
            tried.set()
            connections.close_all()

    adder = threading.Thread(target=add)

    def in_the_cascade(sender, instance, **kwargs):
        """Every row of the book is collected, none deleted yet: the worst moment for something new to arrive."""
        adder.start()
        tried.wait(timeout=5)  # with the rows locked the addition waits for the erase's commit, so this runs out

    pre_delete.connect(in_the_cascade, sender=Patient, weak=False, dispatch_uid="erase-concurrency-test")
    try:
        erase_book(patient, by=owner)  # without the locks: an IntegrityError at its commit, the book left whole
    finally:
        pre_delete.disconnect(sender=Patient, dispatch_uid="erase-concurrency-test")
    adder.join(timeout=60)
    assert outcome == {what: "IntegrityError"}
    assert not Patient.objects.filter(pk=patient.pk).exists()
    assert not ReferencePhoto.objects.exists() and not TrainingCheckpoint.objects.exists()
    assert files_under(Path(settings.MEDIA_ROOT)) == []
