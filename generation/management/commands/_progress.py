"""Shared by train_subject and generate_memory: follow a job's row until it finishes."""

import time

from generation.models import JobState


def follow(command, job, *, poll: float = 0.5) -> int:
    """Print the job's progress until it finishes; the exit status a shell expects (0 = done)."""
    model, last = type(job), None
    while True:
        job = model.objects.get(pk=job.pk)
        line = f"{job.get_state_display():<9} {job.stage or '':<18} {job.step}/{job.total_steps or '?'}"
        if getattr(job, "loss", None) is not None:
            line += f"  loss {job.loss:.4f}"
        if getattr(job, "eta_seconds", None):
            line += f"  ~{job.eta_seconds:.0f}s left"
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
