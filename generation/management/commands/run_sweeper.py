"""python manage.py run_sweeper [--once]: keeps jobs moving (make run starts it beside the worker)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from generation.jobs import cleanup, sweep


class Command(BaseCommand):
    help = ("Every LIFEBOOK_SWEEP_SECONDS: send jobs that never reached the broker, give jobs of dead workers "
            "back to the queue; hourly: remove unchosen checkpoints past retention and orphaned files.")

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, once, **options):
        last_cleanup = 0.0
        while True:
            close_old_connections()
            try:
                counts = sweep()
                if any(counts.values()):
                    self.stdout.write(f"sweep: {counts}")
                if time.monotonic() - last_cleanup > 3600 or once:
                    removed = cleanup()
                    last_cleanup = time.monotonic()
                    if any(removed.values()):
                        self.stdout.write(f"cleanup: {removed}")
            except Exception as exc:  # the database or broker away for a while: keep going
                self.stderr.write(f"sweep failed: {exc}")
            if once:
                return
            time.sleep(settings.LIFEBOOK_SWEEP_SECONDS)
