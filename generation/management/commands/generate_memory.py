"""python manage.py generate_memory MEMORY_ID [--kind txt2img] [--num-images N] [--seed S] [--no-wait]"""

import sys

from django.core.management.base import BaseCommand, CommandError

from generation.jobs import JobRefused, submit_generation
from generation.models import GenerationJob
from lifebook.models import Memory

from ._progress import follow


class Command(BaseCommand):
    help = ("Queue candidate pictures for one memory, drawn from its description with its subjects' adapters, "
            "and follow the job until the pictures are stored (a worker must be running).")

    def add_arguments(self, parser):
        parser.add_argument("memory_id", type=int)
        parser.add_argument("--kind", choices=[GenerationJob.Kind.TXT2IMG, GenerationJob.Kind.COMPOSE],
                            default=GenerationJob.Kind.TXT2IMG,
                            help="txt2img becomes compose by itself when the memory has several learned subjects")
        parser.add_argument("--prompt", default="", help="extra words for the picture")
        for name in ("steps", "width", "height", "seed", "num_images"):
            parser.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)
        parser.add_argument("--guidance", type=float)
        parser.add_argument("--layout-fraction", type=float, dest="layout_fraction",
                            help="compose: the share of steps drawn with no likeness, so the composition forms first")
        parser.add_argument("--no-face-pass", action="store_false", dest="face_pass", default=None,
                            help="do not repaint learned people's faces at the end")
        parser.add_argument("--no-wait", action="store_true", help="queue it and return")

    def handle(self, memory_id, kind, prompt, no_wait, **options):
        try:
            memory = Memory.objects.select_related("chapter__patient").get(pk=memory_id)
        except Memory.DoesNotExist:
            raise CommandError(f"There is no memory {memory_id}.")
        numbers = {k: options[k] for k in ("steps", "width", "height", "seed", "num_images", "guidance",
                                           "layout_fraction", "face_pass")
                   if options.get(k) is not None}
        try:
            job = submit_generation(memory, kind=kind, prompt=prompt, **numbers)
        except JobRefused as exc:
            raise CommandError(exc.message)
        self.stdout.write(f"Picture job {job.pk} ({job.get_kind_display().lower()}) queued for “{memory}”.")
        if not no_wait:
            status = follow(self, job)
            if status:
                sys.exit(status)
            for image in job.results.all():
                self.stdout.write(f"Stored {image.image.name} (seed {image.seed})")
