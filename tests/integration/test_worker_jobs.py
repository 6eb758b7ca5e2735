"""Jobs end to end: real PostgreSQL, real Redis, real Celery worker processes, the tiny model.

Run alone with `pytest -m integration`. Each test starts its own worker(s) against the pytest test
database, with the media and training folders of that test.

The tests hold on a busy machine: they assert what happened (states, the steps a cancel was seen and obeyed
at, checkpoints in order, messages in the worker's log), never how long it took. Waits end at a generous
safety limit that says how far the job got, and workers die with the test run (tests/processes.py).
"""

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import kombu.utils.functional
import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from PIL import Image

from generation import jobs
from generation.models import GenerationJob, JobState, TrainingCheckpoint
from lifebook.models import LifeStage, MemoryImage
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.processes import SAFETY_LIMIT, die_with_parent, wait_until

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "var" / "models"
TRAINING = {"resolution": 64, "rank": 4, "alpha": 8, "checkpoint_every": 10, "sample_steps": 1,
            "learning_rate": 1e-3}

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _require_services():
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("integration tests need PostgreSQL and Redis: set DATABASE_URL and CELERY_BROKER_URL "
                    "(make test and .ci/run do)")


@pytest.fixture
def job_settings(settings, tmp_path):
    _require_services()
    settings.LIFEBOOK_TRAINING_DIR = tmp_path / "training"
    settings.LIFEBOOK_MODELS_DIR = MODELS_DIR
    # The web side and the workers share their settings, as in production: submission puts the demo
    # recipe under the server's training options (generation.recipes), so it must see the workers' options.
    settings.LIFEBOOK_TRAINING_OPTIONS = TRAINING
    return settings


class Workers:
    """Celery worker processes for one test, on the test database and the test's folders."""

    def __init__(self, tmp_path, settings):
        db = connection.settings_dict
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        self.env.update(
            DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL, MEDIA_ROOT=str(settings.MEDIA_ROOT),
            LIFEBOOK_VAR_DIR=str(tmp_path / "var"), LIFEBOOK_TRAINING_DIR=str(settings.LIFEBOOK_TRAINING_DIR),
            LIFEBOOK_MODELS_DIR=str(MODELS_DIR), LIFEBOOK_TRAINING_OPTIONS=json.dumps(TRAINING),
            LIFEBOOK_HEARTBEAT_SECONDS="0.2",
        )
        self.logs = tmp_path
        self.processes = []

    def start(self, queues="default,generate,train"):
        name = f"test{len(self.processes)}-{os.getpid()}@%h"
        log = open(self.logs / f"worker{len(self.processes)}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "lifebook", "worker", f"--queues={queues}", f"--hostname={name}",
             "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent())
        process.log_path = log.name
        self.processes.append(process)

        def ready():
            assert process.poll() is None, Path(log.name).read_text()
            return "ready." in Path(log.name).read_text()

        wait_until(ready, "the worker's start")
        return process

    def kill(self, process):
        os.killpg(process.pid, signal.SIGKILL)  # a crash: nothing runs on the way out
        process.wait(timeout=30)

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.kill(process)


@pytest.fixture
def workers(job_settings, tmp_path):
    from lifebook.celery import app

    with app.connection_for_write() as conn:  # no messages left over from an earlier run
        for queue in ("default", "generate", "train"):
            conn.default_channel.queue_purge(queue)
    pool = Workers(tmp_path, job_settings)
    yield pool
    pool.stop_all()


def wait_for(job, condition, what="the job's end"):
    """Wait until the job's row meets `condition`; past the safety limit, fail saying how far it got."""

    def met():
        job.refresh_from_db()
        return condition(job)

    wait_until(met, what, describe=lambda: (f": {type(job).__name__} {job.pk} is {job.state} at step {job.step} "
                                            f"of {job.total_steps} ({job.stage or 'no stage'}), error {job.error!r}"))
    return job


def cancel_steps(worker, job):
    """The steps at which the worker saw the job's cancel and stopped its work, as its log says."""
    log = Path(worker.log_path).read_text()
    name = f"{type(job).__name__} {job.pk}"
    seen = re.search(rf"{name}: cancel seen at step (\d+)\.", log)
    stopped = re.search(rf"{name}: stopped at step (\d+) after the cancel", log)
    assert seen and stopped, log[-4000:]
    return int(seen[1]), int(stopped[1])


def task_ended(worker, result, count=1):
    """Wait until the worker's log says its task returned `result` (`count` times). A task's clean-up after its
    job's last state change (the training folder, a cancelled job's files) is done by then."""
    log = Path(worker.log_path)
    wait_until(lambda: len(re.findall(rf"succeeded in [0-9.e-]+s: '{result}'", log.read_text())) >= count,
               f"{count} task(s) returning {result!r}", describe=lambda: f":\n{log.read_text()[-4000:]}")


def sweep_once_the_heartbeat_is_stale():
    """The sweeper's pass as it runs once a dead worker's heartbeat is old (no waiting for that here)."""
    return jobs.sweep(now=timezone.now() + timedelta(seconds=settings.LIFEBOOK_JOB_STALE_SECONDS + 1))


def photos_for(subject, count=3):
    """Distinct, sharp photos through the real upload service."""
    for index in range(count):
        rng = np.random.default_rng(index)
        pixels = np.clip(np.array([40 * index, 120, 200], dtype=np.float32) + rng.normal(0, 60, (256, 256, 3)), 0, 255)
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG")
        add_reference_photo(subject, SimpleUploadedFile(f"photo{index}.png", buffer.getvalue()))


def trained(subject, steps=10):
    """A subject with an adapter, trained by the real worker."""
    photos_for(subject)
    job = jobs.submit_training(subject, steps=steps)
    return wait_for(job, lambda j: j.is_finished, what="training")


@pytest.fixture
def book(patient):
    chapter = factories.ChapterFactory(patient=patient, title="Adulthood", life_stage=LifeStage.ADULTHOOD)
    memory = factories.MemoryFactory(chapter=chapter, title="At the beach", scene="Juan and Ana on the beach")
    juan = factories.SubjectFactory(patient=patient, name="Juan", class_word="man", kind="person")
    ana = factories.SubjectFactory(patient=patient, name="Ana", class_word="woman", kind="person")
    memory.subjects.add(juan, ana)
    return memory, juan, ana


def test_a_training_job_stores_its_adapter_and_checkpoints_and_the_subject_uses_it(workers, book):
    worker = workers.start()
    memory, juan, _ = book
    job = trained(juan, steps=20)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.attempts == 1 and job.step == 20 and job.loss is not None
    assert [c.step for c in job.checkpoints.all()] == [10, 20]
    assert job.chosen_checkpoint.step == 20 and job.adapter.name == job.chosen_checkpoint.adapter.name
    assert Path(job.adapter.path).stat().st_size == job.adapter_size
    for checkpoint in job.checkpoints.all():
        assert len(checkpoint.samples) == 4 and all(name.endswith(".png") for name in checkpoint.samples)
        assert all(Path(settings.MEDIA_ROOT, name).is_file() for name in checkpoint.samples)
    assert job.photo_report["used_count"] == 3 and job.photo_report["problems"]  # fewer than 10: advice
    task_ended(worker, "succeeded")  # the folder goes just after the job's last state change
    assert not jobs.training_dir(job).exists()  # the resumable states are gone once done
    from generation.planning import adapter_for

    assert adapter_for(juan) == job.chosen_checkpoint


def test_a_generation_job_with_the_adapter_stores_candidate_pictures(workers, book):
    workers.start()
    memory, juan, ana = book
    memory.subjects.remove(ana)
    trained(juan)
    job = jobs.submit_generation(memory, steps=3, width=64, height=64, num_images=2, seed=7)
    wait_for(job, lambda j: j.is_finished)
    assert job.state == JobState.SUCCEEDED, job.error
    images = list(job.results.order_by("seed"))
    assert [i.seed for i in images] == [7, 8]
    for image in images:
        assert image.memory == memory and image.source == MemoryImage.Source.GENERATED and image.from_demo_model
        assert juan.token in image.parameters["prompt"]
        assert list(image.parameters["adapters"]) == [job_adapter_id(juan)]
        assert image.parameters["face_pass"] is True  # one learned person: the face pass looked for Juan's face
        assert Image.open(image.image.path).size == (64, 64)
    assert job.preview.startswith("data:image/jpeg;base64,")


def job_adapter_id(subject):
    from generation.planning import adapter_for

    return adapter_for(subject).engine_adapter_id


def test_a_memory_with_two_trained_people_is_composed_each_in_their_own_region(workers, book):
    workers.start()
    memory, juan, ana = book
    trained(juan)
    trained(ana)
    memory.layout = [{"subject": ana.pk, "box": [0.0, 0.0, 0.5, 1.0]}, {"subject": juan.pk, "box": [0.5, 0.25, 1.0, 1.0]}]
    memory.save()
    job = jobs.submit_generation(memory, steps=4, width=64, height=64, seed=3, num_images=2)
    assert job.kind == GenerationJob.Kind.COMPOSE
    wait_for(job, lambda j: j.is_finished)
    assert job.state == JobState.SUCCEEDED, job.error
    images = sorted(job.results.all(), key=lambda image: image.seed)
    assert [image.seed for image in images] == [3, 4]
    parameters = images[0].parameters
    assert parameters["operation"] == "compose" and parameters["layout_steps"] == 1
    regions = {region["adapter"]: region["box"] for region in parameters["regions"]}
    assert regions == {job_adapter_id(ana): [0, 0, 32, 64], job_adapter_id(juan): [32, 16, 64, 64]}
    # What the LoRA layers really applied to each branch: no likeness while the layout forms, then each
    # person's branch with only their own, and the background with none.
    layout, drawn = parameters["stages"][:2]
    assert all(branch["active_adapters"] == [] for branch in layout["branches"])
    assert {b["name"]: b["active_adapters"] for b in drawn["branches"]} == {
        "background": [], job_adapter_id(ana): [job_adapter_id(ana)], job_adapter_id(juan): [job_adapter_id(juan)]}
    # The face pass looked in each person's box (the demo model paints noise, so it says it found no face).
    assert parameters["faces"] == [{"adapter": job_adapter_id(ana), "face": None},
                                   {"adapter": job_adapter_id(juan), "face": None}]


def test_a_person_with_their_dog_or_in_their_house_is_composed_by_regions(workers, book, patient):
    """Not only two people: any two learned likenesses are composed. A pet gets a region of its own; a place is
    the background's. The stages say which adapters the LoRA layers really applied in each branch."""
    workers.start()
    memory, juan, _ = book
    dog = factories.SubjectFactory(patient=patient, name="Tobi", kind="pet", class_word="dog")
    house = factories.SubjectFactory(patient=patient, name="The house", kind="place", class_word="house")
    with_dog = factories.MemoryFactory(chapter=memory.chapter, title="Tobi", scene="Juan and his dog in the park")
    at_home = factories.MemoryFactory(chapter=memory.chapter, title="Home", scene="Juan at home")
    with_dog.subjects.add(juan, dog)
    at_home.subjects.add(juan, house)
    for subject in (juan, dog, house):
        trained(subject)
    jobs_made = [jobs.submit_generation(m, steps=4, width=64, height=64, seed=1, num_images=1)
                 for m in (with_dog, at_home)]
    for job in jobs_made:
        assert job.kind == GenerationJob.Kind.COMPOSE
        wait_for(job, lambda j: j.is_finished)
        assert job.state == JobState.SUCCEEDED, job.error

    def branches(job):
        (image,) = job.results.all()
        drawn = image.parameters["stages"][1]
        assert drawn["stage"] == "regions"
        return {branch["name"]: branch["active_adapters"] for branch in drawn["branches"]}

    juan_id, dog_id, house_id = (job_adapter_id(s) for s in (juan, dog, house))
    assert branches(jobs_made[0]) == {"background": [], juan_id: [juan_id], dog_id: [dog_id]}
    assert branches(jobs_made[1]) == {"background": [house_id], juan_id: [juan_id]}


def test_cancel_mid_composition_is_obeyed_within_a_step_and_stores_nothing(workers, book):
    worker = workers.start()
    memory, juan, ana = book
    trained(juan)
    trained(ana)
    job = jobs.submit_generation(memory, steps=150, width=64, height=64, num_images=1)
    assert job.kind == GenerationJob.Kind.COMPOSE
    cancel_mid_job_and_check(worker, job)


def test_a_worker_killed_mid_training_is_replaced_and_the_training_resumes(workers, book, job_settings):
    first = workers.start()
    _, juan, _ = book
    photos_for(juan)
    job = jobs.submit_training(juan, steps=80)
    wait_for(job, lambda j: j.photo_report.get("used_count") == 3, what="the photo report while training")
    wait_for(job, lambda j: TrainingCheckpoint.objects.filter(job=j).exists(), what="a first checkpoint")
    workers.kill(first)  # at once: the worker is then at most a few steps past its first checkpoint (step 10)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.step < 80, (job.state, job.step)  # what a dead worker leaves
    assert sweep_once_the_heartbeat_is_stale()["requeued"] == 1
    workers.start()
    wait_for(job, lambda j: j.is_finished)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.attempts == 2 and job.resumed_from_step >= 10 and job.step == 80
    steps = list(job.checkpoints.values_list("step", flat=True))
    assert steps == sorted(set(steps)) and steps[-1] == 80 and set(steps) <= set(range(10, 81, 10))


def test_a_worker_killed_mid_generation_is_retried_and_stores_one_set_of_results(workers, book):
    first = workers.start(queues="generate")
    memory, _, _ = book
    job = jobs.submit_generation(memory, steps=150, width=64, height=64, num_images=2, seed=1)
    wait_for(job, lambda j: j.step >= 2, what="a few steps")
    workers.kill(first)
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.step < 150, (job.state, job.step)
    assert sweep_once_the_heartbeat_is_stale()["requeued"] == 1
    workers.start(queues="generate")
    wait_for(job, lambda j: j.is_finished)
    assert job.state == JobState.SUCCEEDED and job.attempts == 2
    assert job.results.count() == 2 and MemoryImage.objects.filter(memory=memory).count() == 2


@contextmanager
def broker_attempts(port):
    """Counts the connections made to a broker on `port` and the waits between them (they still happen)."""
    attempts = {"connections": 0, "waits": []}
    connect, sleep = socket.socket.connect, time.sleep

    def counted_connect(sock, address):
        if isinstance(address, tuple) and address[1] == port:
            attempts["connections"] += 1
        return connect(sock, address)

    def counted_sleep(seconds):
        attempts["waits"].append(seconds)
        sleep(seconds)

    patches = [(socket.socket, "connect", counted_connect), (time, "sleep", counted_sleep),
               (kombu.utils.functional, "sleep", counted_sleep)]  # kombu's retry loop sleeps through its own name
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, patched in patches:
            setattr(owner, name, patched)
        yield attempts
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def test_a_job_submitted_while_the_broker_is_down_runs_when_it_is_back(workers, book, job_settings):
    from lifebook.celery import app

    def use_broker(url):
        app.conf.broker_url = app.conf.broker_write_url = url
        app._pool = None  # connections to the new address (what Celery itself does after a fork)
        app.amqp._producer_pool = None

    memory, _, _ = book
    real = app.conf.broker_url
    use_broker("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        with broker_attempts(port=1) as attempts:
            job = jobs.submit_generation(memory, steps=2, width=64, height=64, num_images=1)
    finally:
        use_broker(real)
    # The caregiver's request does not hang: it tried the broker twice, waited for it no more than half a
    # second in all, and answered with the job recorded, not lost.
    assert 0 < attempts["connections"] <= 2 and sum(attempts["waits"]) <= 0.5, attempts
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.dispatched_at is None
    with app.connection_for_write() as conn:
        assert conn.default_channel.queue_purge("generate") == 0  # no message reached the queue
    workers.start()
    job_settings.LIFEBOOK_DISPATCH_GRACE_SECONDS = 0
    assert jobs.sweep()["dispatched"] == 1
    wait_for(job, lambda j: j.is_finished)
    assert job.state == JobState.SUCCEEDED and job.results.count() == 1


def test_cancel_mid_training_is_obeyed_within_a_step_of_being_seen_and_leaves_no_files(workers, book, job_settings):
    worker = workers.start()
    _, juan, _ = book
    photos_for(juan)
    job = jobs.submit_training(juan, steps=5000)
    wait_for(job, lambda j: TrainingCheckpoint.objects.filter(job=j).exists(), what="a first checkpoint")
    asked_at = job.step
    assert jobs.cancel(job) == JobState.RUNNING
    wait_for(job, lambda j: j.is_finished, what="the cancel")
    assert job.state == JobState.CANCELLED
    seen_at, stopped_at = cancel_steps(worker, job)
    assert asked_at <= seen_at <= stopped_at <= seen_at + 1, (asked_at, seen_at, stopped_at)
    assert job.step == stopped_at < 5000
    task_ended(worker, "cancelled")  # its files go just after the job's last state change
    assert not TrainingCheckpoint.objects.filter(job=job).exists()
    assert not jobs.training_dir(job).exists()
    adapters = Path(settings.MEDIA_ROOT, f"patients/{juan.patient_id}/subjects/{juan.pk}/adapters")
    assert not adapters.exists() or not any(adapters.iterdir())


def test_cancel_mid_generation_is_obeyed_within_a_step_of_being_seen_and_stores_nothing(workers, book):
    worker = workers.start()
    memory, _, _ = book
    job = jobs.submit_generation(memory, steps=150, width=64, height=64, num_images=1)
    cancel_mid_job_and_check(worker, job)


def cancel_mid_job_and_check(worker, job):
    """Cancel a picture job after its first step: the worker stops within a step of seeing it, and nothing
    is stored."""
    wait_for(job, lambda j: j.step >= 1, what="a first step")
    asked_at = job.step
    jobs.cancel(job)
    wait_for(job, lambda j: j.is_finished, what="the cancel")
    assert job.state == JobState.CANCELLED
    seen_at, stopped_at = cancel_steps(worker, job)
    assert asked_at <= seen_at <= stopped_at <= seen_at + 1, (asked_at, seen_at, stopped_at)
    assert job.step == stopped_at < job.total_steps
    assert not MemoryImage.objects.filter(memory=job.memory_id).exists()


def test_the_same_message_delivered_twice_runs_once(workers, book):
    from generation import tasks

    workers.start()
    memory, _, _ = book
    job = jobs.submit_generation(memory, steps=2, width=64, height=64, num_images=1)
    tasks.generate.apply_async(args=[job.pk], queue="generate")  # a duplicate delivery
    tasks.generate.apply_async(args=[job.pk], queue="generate")
    wait_for(job, lambda j: j.is_finished)
    task_ended(workers.processes[0], "not claimed", count=2)  # both duplicates refused
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.attempts == 1
    assert MemoryImage.objects.filter(memory=memory).count() == 1


def test_the_commands_submit_jobs_and_follow_them_to_the_end(workers, book):
    workers.start()
    memory, juan, ana = book
    memory.subjects.remove(ana)
    photos_for(juan)

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=workers.env, capture_output=True,
                              text=True, timeout=SAFETY_LIMIT, preexec_fn=die_with_parent())

    trained = manage("train_subject", str(juan.pk), "--steps", "10")
    assert trained.returncode == 0, trained.stderr
    assert "queued for Juan" in trained.stdout and "Done: adapter patients/" in trained.stdout
    assert "Working" in trained.stdout and "10/10" in trained.stdout  # progress while it ran
    drawn = manage("generate_memory", str(memory.pk), "--steps", "2", "--width", "64", "--height", "64",
                   "--num-images", "1", "--seed", "5")
    assert drawn.returncode == 0, drawn.stderr
    assert "Stored patients/" in drawn.stdout and "(seed 5)" in drawn.stdout
    refused = manage("generate_memory", str(memory.pk), "--steps", "0")
    assert refused.returncode == 1 and "steps must be from 1 to 150" in refused.stderr


def test_the_whole_book_through_the_api(workers, owner):
    """An integrator's path: a patient, 10 photos, training, a memory, pictures, a choice, the book."""
    from rest_framework.test import APIClient

    workers.start()
    api = APIClient()
    api.force_authenticate(owner)

    def ok(response, status=200):
        assert response.status_code == status, response.content
        return response.json()

    def follow(url):
        seen = {}

        def finished():
            seen.update(ok(api.get(url)))
            return seen["state"] in ("succeeded", "failed", "cancelled")

        wait_until(finished, f"the end of {url}", poll=0.2,
                   describe=lambda: f": {seen.get('state')} at step {seen.get('step')} of {seen.get('total_steps')}")
        assert seen["state"] == "succeeded", seen["error"]
        return seen

    patient = ok(api.post("/api/patients/", {"name": "Juan Pacheco", "photo_consent": True,
                                             "photo_consent_note": "Juan himself"}, format="json"), 201)
    juan = ok(api.post("/api/subjects/", {"patient": patient["id"], "kind": "person", "name": "Juan",
                                          "class_word": "man"}, format="json"), 201)
    for index in range(10):
        rng = np.random.default_rng(index)
        pixels = np.clip(np.array([25 * index, 120, 200], dtype=np.float32) + rng.normal(0, 60, (256, 256, 3)), 0, 255)
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG")
        ok(api.post("/api/photos/", {"subject": juan["id"], "image": SimpleUploadedFile(f"juan{index}.jpg",
                                                                                          buffer.getvalue())},
                    format="multipart"), 201)
    submitted = api.post("/api/training-jobs/", {"subject": juan["id"], "steps": 20}, format="json")
    assert submitted.status_code == 202
    training = follow(submitted["Location"])
    assert [c["step"] for c in training["checkpoints"]] == [10, 20] and training["photo_report"]["used_count"] == 10
    first = training["checkpoints"][0]
    ok(api.post(f"/api/checkpoints/{first['id']}/choose/"))
    assert ok(api.get(f"/api/subjects/{juan['id']}/"))["trained"] is True

    chapter = ok(api.post("/api/chapters/", {"patient": patient["id"], "title": "Old age"}, format="json"), 201)
    memory = ok(api.post("/api/memories/", {"chapter": chapter["id"], "title": "In the mountains",
                                            "scene": "Juan walking in the mountains", "subjects": [juan["id"]]},
                         format="json"), 201)
    submitted = api.post("/api/generation-jobs/", {"memory": memory["id"], "steps": 2, "width": 64, "height": 64,
                                                   "num_images": 2, "seed": 11}, format="json")
    assert submitted.status_code == 202
    pictures = follow(submitted["Location"])["results"]
    assert [p["seed"] for p in sorted(pictures, key=lambda p: p["seed"])] == [11, 12]
    picture = ok(api.get(f"/api/memory-images/{pictures[0]['id']}/"))
    assert picture["generated"] and picture["from_demo_model"]
    assert f"subject{juan['id']}_checkpoint{first['id']}" in picture["parameters"]["adapters"]  # the chosen one
    ok(api.post(f"/api/memory-images/{picture['id']}/choose/"))

    book = ok(api.get("/api/memories/", {"patient": patient["id"]}))
    assert book["count"] == 1 and book["results"][0]["chosen_image"] == picture["id"]
    assert book["results"][0]["chosen_image_url"].startswith("http://testserver/media/patients/")


def test_a_real_job_leaves_its_starter_a_notice_and_an_email(workers, book, owner):
    from generation.models import Notice

    worker = workers.start()
    memory, _, ana = book
    memory.subjects.remove(ana)
    job = jobs.submit_generation(memory, user=owner, steps=2, width=64, height=64, num_images=2, seed=3)
    wait_for(job, lambda j: j.is_finished)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.pictures == 2 and job.picture == 0  # made together, in one batch
    notice = Notice.objects.get()
    assert (notice.user, notice.memory, notice.outcome) == (owner, memory, JobState.SUCCEEDED)
    task_ended(worker, "succeeded")
    log = Path(worker.log_path).read_text()  # the worker's email backend is the console: its log
    assert log.count("Subject: Lifebook: it is ready") == 1 and f"To: {owner.email}" in log
