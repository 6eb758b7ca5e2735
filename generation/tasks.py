"""Celery tasks. They stay thin: the job row says what to do; `generation.runner` does it.

Queues: `train` (long), `generate` (seconds), `default` (small things), so a training never sits in
front of a picture. Every task takes only the job's id; a duplicate delivery finds the job already
claimed and does nothing.
"""

import os
import socket

from celery import shared_task


@shared_task(name="generation.ping", acks_late=False)
def ping(payload: str = "pong") -> dict:
    return {"payload": payload, "worker": f"{socket.gethostname()}:{os.getpid()}"}


@shared_task(name="generation.train", ignore_result=True)
def train(job_id: int) -> str:
    from .runner import run_training_job

    return run_training_job(job_id)


@shared_task(name="generation.generate", ignore_result=True)
def generate(job_id: int) -> str:
    from .runner import run_generation_job

    return run_generation_job(job_id)


@shared_task(name="generation.sweep", ignore_result=True)
def sweep() -> dict:
    from .jobs import sweep as sweep_jobs

    return sweep_jobs()
