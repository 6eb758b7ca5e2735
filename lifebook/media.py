"""Private media: every uploaded or generated file is served only after a care-team check.

Files are stored under `patients/<patient id>/...`; the id in the path is the
patient whose care team may see the file. Anything else under MEDIA_URL is a
404. With the filesystem storage the bytes go out through django-sendfile2
(X-Accel-Redirect/X-Sendfile in production, streamed by Django in `make run`);
with a remote storage such as S3, the user is sent to a short-lived signed URL.
"""

import re

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_safe
from django_sendfile import sendfile

from accounts.access import get_patient_for

PATIENT_FILE = re.compile(r"^patients/(?P<patient_id>\d+)/(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.[A-Za-z0-9]{2,5}$")


@require_safe
def serve_media(request, path):
    return send_patient_file(request, path)


def patient_for_path(request, path):
    """The patient whose folder holds `path`, if this user may see it; else Http404 (as for a missing file)."""
    match = PATIENT_FILE.match(path)
    if match is None or not request.user.is_authenticated:
        raise Http404("No such file.")
    return get_patient_for(request.user, match["patient_id"])  # 404 unless on the care team (or staff)


def send_patient_file(request, path, *, max_age=3600):
    """The file at `path`, for its patient's care team only. lifebook.renditions serves its copies through here too."""
    patient_for_path(request, path)

    if isinstance(default_storage, FileSystemStorage):
        try:
            full_path = default_storage.path(path)
        except SuspiciousFileOperation:
            raise Http404("No such file.")
        if not default_storage.exists(path):
            raise Http404("No such file.")
        response = sendfile(request, full_path)
    else:
        if not default_storage.exists(path):
            raise Http404("No such file.")
        response = redirect(default_storage.url(path))
    # Health data: browsers may keep it, shared caches may not.
    response["Cache-Control"] = f"private, max-age={max_age}"
    response["X-Content-Type-Options"] = "nosniff"
    return response
