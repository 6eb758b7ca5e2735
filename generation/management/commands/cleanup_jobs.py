"""python manage.py cleanup_jobs [--retention-days N]"""

from django.core.management.base import BaseCommand

from generation.jobs import cleanup


class Command(BaseCommand):
    help = ("Remove training checkpoints that were not chosen (after the retention period), working folders of "
            "finished trainings, and adapter files no row points to.")

    def add_arguments(self, parser):
        parser.add_argument("--retention-days", type=int, help="default: LIFEBOOK_CHECKPOINT_RETENTION_DAYS (30)")

    def handle(self, retention_days, **options):
        counts = cleanup(retention_days=retention_days)
        self.stdout.write(f"Removed {counts['checkpoints']} checkpoints, {counts['folders']} working folders and "
                          f"{counts['orphans']} orphaned files.")
