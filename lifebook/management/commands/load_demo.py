from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lifebook import demo


class Command(BaseCommand):
    help = "Create the demo caregiver, therapist and Juan Pacheco's life book (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when the database already has any patient."
        )
        parser.add_argument(
            "--force", action="store_true",
            help="Load even with DEBUG off. The demo accounts have a known password: never on a real server.",
        )
        parser.add_argument(
            "--no-pictures", action="store_true",
            help="Leave the memories without pictures (by default the demo model makes one for each).",
        )

    def handle(self, *args, if_empty=False, force=False, no_pictures=False, **options):
        from lifebook.models import Patient

        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to create demo accounts with a known password while DEBUG is off. "
                "Use --force on a machine that is not a real server."
            )
        if if_empty and Patient.objects.exists():
            self.stdout.write("The database already has patients; demo book not loaded.")
        else:
            patient = demo.load_demo()
            if not no_pictures:
                self.stdout.write("Making a picture for each memory with the demo model...")
                made = demo.make_demo_pictures(patient)
                self.stdout.write(f"{made} pictures made.")
            self.stdout.write(self.style.SUCCESS(f"Demo book ready: {patient.name}."))
        from accounts.models import User

        if not User.objects.filter(username=demo.DEMO_CAREGIVER).exists():
            return
        self.stdout.write(
            "Demo logins (password for both: %s)\n  caregiver: %s\n  therapist: %s"
            % (demo.demo_password(), demo.DEMO_CAREGIVER, demo.DEMO_THERAPIST)
        )
