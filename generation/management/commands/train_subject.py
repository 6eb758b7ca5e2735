"""python manage.py train_subject SUBJECT_ID [--steps N] [--no-wait]"""

import sys

from django.core.management.base import BaseCommand, CommandError

from generation.jobs import JobRefused, submit_training
from lifebook.models import Subject

from ._progress import follow


class Command(BaseCommand):
    help = "Queue a training of one subject's adapter and follow it until it is done (a worker must be running)."

    def add_arguments(self, parser):
        parser.add_argument("subject_id", type=int)
        parser.add_argument("--steps", type=int, help="default: 240 per photo (2400 for 10)")
        parser.add_argument("--no-wait", action="store_true", help="queue it and return")

    def handle(self, subject_id, steps, no_wait, **options):
        try:
            subject = Subject.objects.select_related("patient").get(pk=subject_id)
        except Subject.DoesNotExist:
            raise CommandError(f"There is no subject {subject_id}.")
        try:
            job = submit_training(subject, steps=steps)
        except JobRefused as exc:
            raise CommandError(exc.message)
        self.stdout.write(f"Training job {job.pk} queued for {subject} ({subject.patient}).")
        if not no_wait:
            status = follow(self, job)
            if status:
                sys.exit(status)
            job.refresh_from_db()
            self.stdout.write(f"Done: adapter {job.adapter.name} ({job.adapter_size} bytes), "
                              f"{job.checkpoints.count()} checkpoints.")
