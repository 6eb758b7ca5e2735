"""Jobs benchmark: what the job path (database row, Redis queue, worker, storage) adds to an engine call.

    python bench/jobs.py --json        # one JSON object on stdout, logs on stderr

Needs the machine's PostgreSQL and Redis (DATABASE_URL / CELERY_BROKER_URL, defaults as in .ci/run).
It creates its own database (`lifebook_bench`, dropped and made again), media folder and queues, starts
one warm Celery worker process on the `generate` queue, and measures in one run, on the tiny model:

* raw_engine_s: median seconds of a direct `Engine.txt2img` call in this process (warm).
* job_e2e_s: median seconds from `submit_generation` to the `MemoryImage` row stored, same parameters
  (prompt from the memory, steps, size, seed, one image), with the worker warm.
* job_overhead_ratio: job_e2e_s / raw_engine_s. Target <= 1.10. The two are measured alternately,
  never at the same time, since they share the CPU.
* jobs_per_min: 50 small jobs (64 px, 2 steps) submitted at once, one worker: how many finish per minute.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATABASE = os.environ.get("LIFEBOOK_BENCH_DATABASE", "lifebook_bench")  # another name beside a running bench


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fresh_database(server_url: str) -> str:
    import psycopg

    with psycopg.connect(server_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return server_url.rsplit("/", 1)[0] + f"/{DATABASE}"


def wait_done(job, poll=0.02):
    from generation.models import JobState

    model = type(job)
    while True:
        state = model.objects.filter(pk=job.pk).values_list("state", flat=True).get()
        if state == JobState.SUCCEEDED:
            return
        if state in (JobState.FAILED, JobState.CANCELLED):
            raise SystemExit(f"job {job.pk} ended {state}: {model.objects.get(pk=job.pk).error}")
        time.sleep(poll)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--burst", type=int, default=50, help="jobs for jobs_per_min")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch threads for the worker and the direct calls alike (default: a worker's share, "
                             "LIFEBOOK_TORCH_THREADS or the cores / LIFEBOOK_WORKER_PROCESSES)")
    args = parser.parse_args(argv)
    load_before = list(os.getloadavg())

    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lifebook")
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    if not server.startswith("postgres") or not broker.startswith("redis"):
        raise SystemExit("bench/jobs.py measures the production configuration: PostgreSQL and Redis.")
    scratch = Path(tempfile.mkdtemp(prefix="lifebook-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DATABASE_URL=fresh_database(server), CELERY_BROKER_URL=broker, LIFEBOOK_VAR_DIR=str(scratch / "var"),
               MEDIA_ROOT=str(scratch / "media"), LIFEBOOK_MODELS_DIR=str(ROOT / "var" / "models"),
               DJANGO_SETTINGS_MODULE="lifebook.settings")
    if args.torch_threads:
        env["LIFEBOOK_TORCH_THREADS"] = str(args.torch_threads)
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)

    import django

    django.setup()
    from generation.engine import Engine
    from generation.engine.logs import quiet_library_logs
    from generation.jobs import submit_generation
    from generation.planning import NEGATIVE_PROMPT, plan_for
    from generation.runner import engine_options
    from lifebook.celery import app
    from lifebook.models import MemoryImage
    from tests import factories
    from tests.processes import die_with_parent

    import torch

    from generation.runner import torch_threads

    quiet_library_logs()
    torch.set_num_threads(torch_threads())  # the direct calls get what the worker gets: the same work compared
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("generate")
    memory = factories.MemoryFactory(scene="an old man walking his dog in the park")
    worker_log = open(scratch / "worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "lifebook", "worker", "--queues=generate", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING", "-n", "bench@%h"],
        cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=die_with_parent())  # gone with this script, even if it is killed
    try:
        params = dict(steps=args.steps, width=args.size, height=args.size, num_images=1, seed=1)
        log("warming the worker (loads the engine)")
        wait_done(submit_generation(memory, **params))
        engine = Engine(engine_options())
        prompt = plan_for(memory).prompt()
        call = dict(negative_prompt=NEGATIVE_PROMPT, steps=args.steps, width=args.size, height=args.size, seed=1)
        engine.txt2img(prompt, **call)  # warm
        raw, e2e = [], []
        for _ in range(args.repeats):  # alternately, so drift hits both alike
            started = time.perf_counter()
            engine.txt2img(prompt, **call)
            raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            wait_done(submit_generation(memory, **params))
            e2e.append(time.perf_counter() - started)
        figures = {
            "size": args.size, "steps": args.steps, "repeats": args.repeats, "torch_threads": torch.get_num_threads(),
            "load_average_before": load_before,
            "raw_engine_s": statistics.median(raw), "job_e2e_s": statistics.median(e2e),
            "raw_engine_samples_s": raw, "job_e2e_samples_s": e2e,
        }
        figures["job_overhead_ratio"] = figures["job_e2e_s"] / figures["raw_engine_s"]
        log(f"raw {figures['raw_engine_s']:.3f} s, job {figures['job_e2e_s']:.3f} s, "
            f"ratio {figures['job_overhead_ratio']:.3f}")

        small = dict(steps=2, width=64, height=64, num_images=1)
        started = time.perf_counter()
        burst = [submit_generation(memory, seed=i, **small) for i in range(args.burst)]
        for job in burst:
            wait_done(job, poll=0.01)
        elapsed = time.perf_counter() - started
        figures["jobs_per_min"] = args.burst / elapsed * 60
        figures["burst_jobs"] = args.burst
        stored = MemoryImage.objects.filter(memory=memory).count()
        figures["images_stored"] = stored
        assert stored == 1 + args.repeats + args.burst, stored  # one per job, never twice
        log(f"{args.burst} small jobs in {elapsed:.1f} s: {figures['jobs_per_min']:.0f} jobs/min")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    figures["load_average_after"] = list(os.getloadavg())
    print(json.dumps(figures, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
