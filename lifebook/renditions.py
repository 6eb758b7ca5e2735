"""Resized WebP copies of stored pictures, for `srcset`: a phone need not fetch a 1600-pixel PNG.

A rendition is made on first request and kept in the default storage under the
same patient's folder (`patients/<id>/renditions/<width>/<path inside the patient
folder>`), so lifebook.media's path check covers it with no new rule (the
memory's folder stays in the name, so a hidden memory's copies stay hidden with
it), and it is served through that same check. Widths come from a fixed list (anything else is
a 404), so a client cannot make us store copies at every width. A picture is never
enlarged: asking for 1600 of a 1024-pixel picture gives 1024 pixels.

Files are written to a temporary name in the same folder and renamed, so two
requests racing to make the same rendition both leave a complete file and
neither ever serves half of one.
"""

import io
import os
import secrets

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_safe
from PIL import Image, UnidentifiedImageError

from .media import PATIENT_FILE, patient_for_path, send_patient_file

WIDTHS = (480, 960, 1600)
FALLBACK_WIDTH = 960  # the `src` for browsers that ignore srcset
SOURCE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
WEBP_QUALITY = 80
# A rendition of a file never changes (stored names are random and never reused), so browsers may keep it a day.
MAX_AGE = 24 * 3600


def rendition_name(original_name: str, width: int) -> str:
    """Where the rendition lives: `patients/7/memories/3/ab12.png` at 480 is
    `patients/7/renditions/480/memories/3/ab12-png.webp`.

    The original's extension stays in the name (as `-png`) so that two originals differing only by
    extension never share a rendition, and the name still matches the media view's pattern.
    """
    patients, patient_id, rest = original_name.split("/", 2)
    stem, extension = rest.rsplit(".", 1)
    return f"{patients}/{patient_id}/renditions/{width}/{stem}-{extension.lower()}.webp"


def rendition_url(original_name: str, width: int) -> str:
    return reverse("rendition", kwargs={"width": width, "path": original_name})


def srcset_candidates(original_name: str, original_width: int | None) -> list[tuple[str, int]]:
    """(url, width) for each rendition worth offering: the listed widths below the original's, then (unless the
    original is wider than them all) the next listed width, which comes out at the original's own width.

    Without a known width every listed width is offered (the server still never enlarges).
    """
    if not original_width:
        return [(rendition_url(original_name, width), width) for width in WIDTHS]
    candidates = [(rendition_url(original_name, width), width) for width in WIDTHS if width < original_width]
    if original_width <= WIDTHS[-1]:
        covering = next(width for width in WIDTHS if width >= original_width)
        candidates.append((rendition_url(original_name, covering), original_width))
    return candidates


def is_source_name(name: str) -> bool:
    """A stored picture we may make renditions of (not a rendition itself, nor a model file)."""
    match = PATIENT_FILE.match(name)
    return (
        match is not None
        and name.rsplit(".", 1)[-1].lower() in SOURCE_EXTENSIONS
        and not name.startswith(f"patients/{match['patient_id']}/renditions/")
    )


def ensure_rendition(original_name: str, width: int) -> str:
    """The storage name of the rendition, made now if it does not exist yet. Http404 if there is no such picture."""
    if width not in WIDTHS or not is_source_name(original_name):
        raise Http404("No such picture.")
    # Checked even when the rendition exists: once a picture is deleted, its copies are not served here either.
    if not default_storage.exists(original_name):
        raise Http404("No such picture.")
    name = rendition_name(original_name, width)
    if default_storage.exists(name):
        return name
    with default_storage.open(original_name, "rb") as original:
        content = _encode_webp(original.read(), width)
    _store_atomically(name, content)
    return name


def delete_renditions(original_name: str) -> None:
    """Removes every copy of a picture that is being deleted (a deleted photo leaves nothing behind)."""
    if original_name and is_source_name(original_name):
        for width in WIDTHS:
            default_storage.delete(rendition_name(original_name, width))  # a no-op when it was never made


def _delete_renditions_of(sender, instance, **kwargs):
    from .erase import erasing

    if not erasing():  # a whole book being erased: its folder goes at once after the commit
        delete_renditions(instance.image.name)


def _encode_webp(data: bytes, width: int) -> bytes:
    """The picture at `width` pixels wide (or its own width if smaller), as WebP."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > settings.LIFEBOOK_MAX_IMAGE_PIXELS:
            raise Http404("No such picture.")
        # thumbnail() keeps the aspect ratio, never enlarges, and lets JPEG decode at a reduced scale.
        image.thumbnail((width, image.height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise Http404("No such picture.")  # not a picture we can read: the same answer as a missing one
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4)
    return buffer.getvalue()


def _store_atomically(name: str, content: bytes) -> None:
    if isinstance(default_storage, FileSystemStorage):
        path = default_storage.path(name)
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=default_storage.directory_permissions_mode or 0o777, exist_ok=True)
        # A dot-name never matches the media pattern, so a half-written file cannot be served.
        temporary = os.path.join(folder, f".{secrets.token_hex(8)}.partial")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies, as for uploads
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(content)
            if default_storage.file_permissions_mode is not None:
                os.chmod(temporary, default_storage.file_permissions_mode)
            os.replace(temporary, path)  # atomic: readers see the old state or the whole new file
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise
    else:
        # Remote storages (S3) write an object whole. If another request won the race, ours came out
        # under another name: remove it, the first one is just as good.
        saved = default_storage.save(name, ContentFile(content))
        if saved != name:
            default_storage.delete(saved)


@require_safe
def serve_rendition(request, width, path):
    patient_for_path(request, path)  # a stranger gets the media view's 404 before any work is done
    name = ensure_rendition(path, width)
    response = send_patient_file(request, name, max_age=MAX_AGE)
    if response.status_code == 200:  # not the redirect to a remote storage's signed URL
        response["Content-Type"] = "image/webp"
    return response
