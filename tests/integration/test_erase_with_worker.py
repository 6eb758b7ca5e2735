"""Erasing a book while a real worker is in the middle of one of its jobs leaves nothing behind.

Real PostgreSQL, Redis and Celery worker processes, as in test_worker_jobs.py (run with `pytest -m integration`).
The worker learns at its next heartbeat that its claim is gone, stops, and removes what it wrote after the erase.
"""

import re
import time
from pathlib import Path

import pytest
from django.conf import settings

from generation import jobs
from generation.models import TrainingCheckpoint
from lifebook.erase import erase_book
from lifebook.models import Patient
from tests.integration.test_worker_jobs import book, job_settings, photos_for, wait_for, workers  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def task_result(worker, task, timeout=120):
    """What the worker's task returned, from its log ("Task generation.train[...] succeeded in 0.5s: 'erased'")."""
    pattern = re.compile(rf"Task generation\.{task}\[[^\]]+\] succeeded in [0-9.]+s: '(\w+)'")
    deadline = time.monotonic() + timeout  # a safety limit only: the worker stops at its next heartbeat
    while time.monotonic() < deadline:
        found = pattern.findall(Path(worker.log_path).read_text())
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"the worker never finished its {task} task:\n{Path(worker.log_path).read_text()[-3000:]}")


def files_under(folder):
    return [path for path in Path(folder).rglob("*") if path.is_file()] if Path(folder).exists() else []


def test_erasing_a_book_mid_training_stops_the_worker_and_leaves_no_file(workers, book, owner):  # noqa: F811
    worker = workers.start(queues="train")
    _, juan, _ = book
    patient = juan.patient
    photos_for(juan)
    job = jobs.submit_training(juan, steps=5000)
    wait_for(job, lambda j: TrainingCheckpoint.objects.filter(job=j).exists(), what="a first checkpoint")
    folder = jobs.training_dir(job)
    assert folder.is_dir() and files_under(Path(settings.MEDIA_ROOT, f"patients/{patient.pk}"))

    erase_book(patient, by=owner)

    assert task_result(worker, "train") == "erased"
    assert not Patient.objects.filter(pk=patient.pk).exists()
    assert files_under(Path(settings.MEDIA_ROOT, f"patients/{patient.pk}")) == []
    assert not folder.exists() and files_under(settings.LIFEBOOK_TRAINING_DIR) == []


def test_erasing_a_book_mid_picture_stops_the_worker_and_stores_nothing(workers, book, owner):  # noqa: F811
    worker = workers.start(queues="generate")
    memory, _, _ = book
    patient = memory.chapter.patient
    job = jobs.submit_generation(memory, steps=150, width=64, height=64, num_images=2, seed=1)
    wait_for(job, lambda j: j.step >= 1, what="a first step")

    erase_book(patient, by=owner)

    assert task_result(worker, "generate") == "lost"  # its claim went with the erase: nothing more is written
    assert files_under(Path(settings.MEDIA_ROOT)) == []
