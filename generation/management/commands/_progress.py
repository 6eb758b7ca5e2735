"""Shared by train_subject and generate_memory: follow a job's row until it finishes."""

import time

from generation.models import JobState, TrainingJob
from generation.progress_words import pictures_words, training_words


def follow(command, job, *, poll: float = 0.5) -> int:
    """Print the job's progress until it finishes; the exit status a shell expects (0 = done)."""
    model, last = type(job), None
    while True:
        job = model.objects.get(pk=job.pk)
        line = f"{job.get_state_display():<9} {job.stage or '':<18} {job.step}/{job.total_steps or '?'}"
        if getattr(job, "loss", None) is not None:
            line += f"  loss {job.loss:.4f}"
        if job.state == JobState.RUNNING:  # the page's words: "about 3 minutes left", "Making sample pictures…"
            line += "  " + (training_words(job) if isinstance(job, TrainingJob) else pictures_words(job))
        if line != last:
            command.stdout.write(line)
            last = line
        if job.is_finished:
            break
        time.sleep(poll)
    if job.state == JobState.SUCCEEDED:
        return 0
    if job.error:
        command.stderr.write(job.error)
    return 1
