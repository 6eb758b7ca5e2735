"""The Celery app. Configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lifebook.settings")

app = Celery("lifebook")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def share_the_cores(**_):
    """Each worker process takes its share of torch's threads before its first job (generation.runner)."""
    from generation.runner import use_torch_threads

    use_torch_threads()
