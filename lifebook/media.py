"""Private media: every uploaded or generated file is served only after a care-team check.

Files are stored under `patients/<patient id>/...`; the id in the path is the
patient whose care team may see the file. A file of a memory lives in that
memory's folder (`memories/<memory id>/`, also inside a rendition's name), and
is served only to those who may see the memory: a therapist never gets a hidden
memory's pictures, photos, job files or their renditions. Anything else under
MEDIA_URL is a 404, the answer for a missing file.

The requester is the session's user or, for an integrator following a media URL
from an API answer, the owner of the API token sent with it (`Authorization:
Token <key>`, read by DRF's own TokenAuthentication).

With the filesystem storage the bytes go out through django-sendfile2
(X-Accel-Redirect/X-Sendfile in production, streamed by Django in `make run`);
with a remote storage such as S3, the user is sent to a short-lived signed URL.
"""

import re

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import Http404
from django.shortcuts import redirect
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe
from django_sendfile import sendfile
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.access import get_patient_for, memories_for

PATIENT_FILE = re.compile(r"^patients/(?P<patient_id>\d+)/(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+\.[A-Za-z0-9]{2,5}$")
# A memory's folder anywhere in the path: `memories/3/x.png`, `memories/3/mask/x.png` (a job's files),
# `renditions/480/memories/3/x-png.webp`.
MEMORY_FOLDER = re.compile(r"(?:^|/)memories/(?P<memory_id>\d+)/")


@require_safe
def serve_media(request, path):
    return send_patient_file(request, path)


def requester(request):
    """The session's user; else the owner of a valid API token (a bad token is no one: the same 404)."""
    if request.user.is_authenticated:
        return request.user
    if not hasattr(request, "_media_token_user"):
        try:
            found = TokenAuthentication().authenticate(request)
        except AuthenticationFailed:
            found = None
        request._media_token_user = found[0] if found else request.user
    return request._media_token_user


def patient_for_path(request, path):
    """The patient whose folder holds `path`, if this user may see it (and the memory it belongs to, if
    any); else Http404, as for a missing file."""
    match = PATIENT_FILE.match(path)
    user = requester(request)
    if match is None or not user.is_authenticated:
        raise Http404("No such file.")
    patient = get_patient_for(user, match["patient_id"])  # 404 unless on the care team (or staff)
    inside = path.split("/", 2)[2]
    memory_ids = {int(found["memory_id"]) for found in MEMORY_FOLDER.finditer(inside)}
    if memory_ids:
        seen = memories_for(user).filter(chapter__patient=patient, pk__in=memory_ids).count()
        if seen != len(memory_ids):  # a memory hidden from this user (a therapist), another book's, or gone
            raise Http404("No such file.")
    return patient


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
    patch_vary_headers(response, ["Authorization"])  # the answer depends on the token as on the session
    return response
