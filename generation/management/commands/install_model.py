"""python manage.py install_model SOURCE [--name NAME]

SOURCE: a Stable Diffusion 1.5 checkpoint (.safetensors/.ckpt), a diffusers folder, or a Hub id.
The work (checks, conversion, record) is the engine's (generation/engine/install.py); this prints it.
"""

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from tqdm import tqdm

from generation.engine.errors import EngineConfigError
from generation.engine.install import install_model
from generation.engine.logs import quiet_library_logs

STAGES = {
    "downloading": gettext_lazy("Downloading"), "hashing": gettext_lazy("Checking the file's contents"),
    "converting": gettext_lazy("Converting"), "saving": gettext_lazy("Saving"),
}


class Command(BaseCommand):
    help = gettext_lazy("Install a Stable Diffusion 1.5 model (a .safetensors/.ckpt file, a diffusers folder or a "
             "Hugging Face Hub id) once, into LIFEBOOK_MODELS_DIR, so LIFEBOOK_BASE_MODEL can name it.")

    def add_arguments(self, parser):
        parser.add_argument("source")
        parser.add_argument("--name", help=gettext_lazy("the name to give it (default: from the file or folder name)"))

    def handle(self, source, name, **options):
        quiet_library_logs()  # our own progress bar, not the libraries' loading chatter
        bars: dict[str, tqdm] = {}

        def progress(stage, done, total):
            if stage not in bars:
                for bar in bars.values():
                    bar.close()
                scale = dict(unit="B", unit_scale=True, unit_divisor=1024) if stage == "hashing" else {}
                bars[stage] = tqdm(total=total, desc=str(STAGES.get(stage, stage)), file=sys.stderr, **scale)
            bar = bars[stage]
            bar.update(done - bar.n)

        try:
            installed = install_model(source, Path(settings.LIFEBOOK_MODELS_DIR), name=name, progress=progress)
        except EngineConfigError as exc:
            raise CommandError(str(exc))
        finally:
            for bar in bars.values():
                bar.close()
        if installed.already:
            self.stdout.write(_("%(name)s is already installed (same contents) in %(path)s.")
                              % {"name": installed.name, "path": installed.path})
        else:
            self.stdout.write(self.style.SUCCESS(_("Installed %(name)s in %(path)s.")
                                                 % {"name": installed.name, "path": installed.path}))
        self.stdout.write(_("To use it, set LIFEBOOK_BASE_MODEL=%(name)s and restart the workers.")
                          % {"name": installed.name})
