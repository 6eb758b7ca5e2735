"""Demo-flow benchmark: a newcomer's first run of `make run`, through the API and real workers, on the demo model.

    python bench/demo_flow.py --json        # one JSON object on stdout, logs on stderr

Like `make run`: the embedded configuration (a temporary SQLite file and the filesystem broker, in a scratch
folder) and the Procfile's two Celery worker processes (`default,generate` and `train`), each with its share
of torch's threads (LIFEBOOK_TORCH_THREADS, `--torch-threads` to override). The workers are started and
ready before the clock starts; then, as a caregiver would through the web API (Django's test client, logged in):

* book: a patient (with photo consent), a person to learn and a chapter;
* photos: 10 distinct photos uploaded;
* training: "teach Lifebook" started, until it succeeded (the demo recipe: generation.recipes);
* choose: one of its checkpoints (at least 2 are required) chosen;
* memory: a memory naming the person;
* pictures: 4 pictures of it asked for, until stored.

`seconds` is the sum of the stages. Target: <= 180 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
LIMIT = 1200  # seconds: past this a stage has failed, not merely been slow


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def photo(index: int) -> bytes:
    """A distinct, sharp photo-like picture: a noisy coloured background and a face-like figure."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(index)
    base = np.array([(37 * index) % 255, 90 + 15 * index % 120, 200 - 11 * index], dtype=np.float32)
    pixels = np.clip(base + rng.normal(0, 45, (384, 384, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    x, y = 100 + 17 * index % 90, 60 + 13 * index % 80
    draw.ellipse((x, y, x + 150, y + 190), fill=(220, 180, 150), outline=(60, 40, 30), width=4)
    draw.ellipse((x + 35, y + 60, x + 60, y + 80), fill=(40, 40, 40))
    draw.ellipse((x + 90, y + 60, x + 115, y + 80), fill=(40, 40, 40))
    draw.arc((x + 40, y + 110, x + 110, y + 160), 0, 180, fill=(120, 30, 30), width=5)
    if index % 2:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def start_worker(name, queues, env, scratch):
    from tests.processes import die_with_parent

    log_path = scratch / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "lifebook", "worker", f"--queues={queues}", f"--hostname={name}@%h",
         "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=die_with_parent())  # gone with this script, even if it is killed
    process.log_path = log_path
    return process


def wait_ready(process, limit=LIMIT):
    started = time.monotonic()
    while "ready." not in process.log_path.read_text():
        if process.poll() is not None or time.monotonic() - started > limit:
            raise SystemExit(f"a worker did not start:\n{process.log_path.read_text()}")
        time.sleep(0.1)


def torch_threads_said(process) -> int | None:
    for line in process.log_path.read_text().splitlines():
        if "thread(s) in this worker process" in line:
            return int(line.split("Torch uses ")[1].split()[0])
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--pictures", type=int, default=4)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the demo recipe's)")
    parser.add_argument("--training-options", default=None,
                        help="LIFEBOOK_TRAINING_OPTIONS (JSON) for the server, e.g. a quick run's checkpoint_every")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="LIFEBOOK_TORCH_THREADS for both workers (default: their share of the cores)")
    args = parser.parse_args(argv)
    load_before = list(os.getloadavg())

    scratch = Path(tempfile.mkdtemp(prefix="lifebook-demo-flow-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_", "LIFEBOOK_"))}
    env.update(LIFEBOOK_VAR_DIR=str(scratch / "var"), MEDIA_ROOT=str(scratch / "media"),
               LIFEBOOK_MODELS_DIR=str(ROOT / "var" / "models"), LIFEBOOK_BASE_MODEL="tiny",
               DJANGO_SETTINGS_MODULE="lifebook.settings")
    if args.training_options:
        env["LIFEBOOK_TRAINING_OPTIONS"] = args.training_options
    if args.torch_threads:
        env["LIFEBOOK_TORCH_THREADS"] = str(args.torch_threads)
    for name in [k for k in os.environ if k.startswith(("DATABASE_URL", "CELERY_", "LIFEBOOK_"))]:
        del os.environ[name]  # the embedded configuration, whatever this shell has set
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)

    import django

    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment

    from generation.models import TrainingJob
    from tests import factories

    setup_test_environment()  # the test client's hosts; the database stays the scratch one
    user = factories.UserFactory()
    client = Client()
    client.force_login(user)

    def api(method, path, expect, **kwargs):
        response = getattr(client, method)(f"/api/{path}", **kwargs)
        if response.status_code != expect:
            raise SystemExit(f"{method.upper()} /api/{path}: {response.status_code} {response.content[:500]!r}")
        return response.json()

    def post(path, data, expect=201):
        return api("post", path, expect, data=json.dumps(data), content_type="application/json")

    def wait_job(path, what):
        started = time.monotonic()
        while True:
            job = api("get", path, 200)
            if job["state"] == "succeeded":
                return job
            if job["state"] in ("failed", "cancelled") or time.monotonic() - started > LIMIT:
                raise SystemExit(f"{what} ended {job['state']}: {job.get('error')}")
            time.sleep(0.2)

    started_workers = time.monotonic()
    workers = [start_worker("generate", "default,generate", env, scratch), start_worker("train", "train", env, scratch)]
    figures = {}
    try:
        for worker in workers:
            wait_ready(worker)
        figures["workers_start_s"] = time.monotonic() - started_workers
        log(f"workers ready in {figures['workers_start_s']:.1f} s; the flow starts")
        stages = {}
        clock = time.monotonic()

        def stage(name):
            nonlocal clock
            now = time.monotonic()
            stages[name] = now - clock
            clock = now
            log(f"{name}: {stages[name]:.1f} s")

        patient = post("patients/", {"name": "Juan Pacheco", "photo_consent": True,
                                     "photo_consent_note": "His daughter Ana agreed."})
        subject = post("subjects/", {"patient": patient["id"], "kind": "person", "name": "Ana",
                                     "relationship": "his daughter", "class_word": "woman"})
        chapter = post("chapters/", {"patient": patient["id"], "title": "Family"})
        stage("book")

        for index in range(args.photos):
            upload = io.BytesIO(photo(index))
            upload.name = f"ana-{index}.jpg"
            api("post", "photos/", 201, data={"subject": subject["id"], "image": upload})
        stage("photos")

        training = post("training-jobs/", {"subject": subject["id"], **({"steps": args.steps} if args.steps else {})},
                        expect=202)
        wait_job(f"training-jobs/{training['id']}/", "the training")
        stage("training")

        checkpoints = api("get", f"checkpoints/?job={training['id']}", 200)
        checkpoints = checkpoints["results"] if isinstance(checkpoints, dict) else checkpoints
        if len(checkpoints) < 2:
            raise SystemExit(f"the training left {len(checkpoints)} checkpoint(s); the demo needs at least 2")
        api("post", f"checkpoints/{checkpoints[0]['id']}/choose/", 200)  # the earliest, not the default last
        stage("choose")

        memory = post("memories/", {"chapter": chapter["id"], "title": "Ana's first bicycle",
                                    "scene": "a woman riding a bicycle in the park", "subjects": [subject["id"]]})
        stage("memory")

        job = post("generation-jobs/", {"memory": memory["id"], "num_images": args.pictures}, expect=202)
        done = wait_job(f"generation-jobs/{job['id']}/", "the pictures")
        stage("pictures")

        figures.update(
            seconds=sum(stages.values()), stages_s=stages, checkpoints=len(checkpoints),
            pictures=len(done.get("results") or []),
            training_parameters=TrainingJob.objects.get(pk=training["id"]).parameters,
            picture_parameters=done.get("parameters"), torch_threads=[torch_threads_said(w) for w in workers],
            cpu_count=os.cpu_count(), load_average_before=load_before,
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
    figures["load_average_after"] = list(os.getloadavg())
    log(f"the flow took {figures['seconds']:.1f} s (target <= 180)")
    print(json.dumps(figures, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
