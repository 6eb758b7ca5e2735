"""Pictures a caregiver shapes by hand: fix a part of a picture (paint over it, then repaint) and turn a
drawing into a picture. Both become ordinary picture jobs (`generation.jobs`), followed on the memory page.

The browser paints on a canvas and sends a PNG; without JavaScript the fix page can still repaint the
whole picture and the sketch form still takes an uploaded drawing. Every file is decoded and checked here
(and again by `generation.jobs`), so a broken, huge or empty one gets a sentence, never a 500.
"""

import base64
import io

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import SimpleUploadedFile
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from PIL import Image

from lifebook.models import Subject
from lifebook.uploads import UploadRejected, decode_upload

from . import jobs
from .models import GenerationJob
from .views import STYLES, generation_context

STRENGTH_RANGE = (0.3, 1.0)  # below 0.3 a repaint barely shows; the slider says "a little … completely"
FOLLOW_RANGE = (0.0, 0.7)  # how closely to follow a drawing; strength = 1 - follow (at least 0.3)
ASPECT_TOLERANCE = 0.02  # a mask this close to the picture's shape is scaled to fit, not refused


class FixPartForm(forms.Form):
    mask_mode = forms.ChoiceField(choices=[("masked", "Repaint what I painted"),
                                           ("not_masked", "Repaint everything else")],
                                  initial="masked", widget=forms.RadioSelect)
    subject = forms.ModelChoiceField(queryset=Subject.objects.none(), required=False,
                                     empty_label="Nobody in particular",
                                     error_messages={"invalid_choice": "That person or thing is not in this book."})
    prompt = forms.CharField(required=False, max_length=300, strip=True)
    strength = forms.FloatField(min_value=STRENGTH_RANGE[0], max_value=STRENGTH_RANGE[1], initial=0.75,
                                error_messages={"invalid": "Choose how much to change it on the slider.",
                                                "min_value": "Choose how much to change it on the slider.",
                                                "max_value": "Choose how much to change it on the slider."})

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this book's people, places, pets and things: another book's id is "not in this book".
        self.fields["subject"].queryset = patient.subjects.exclude(kind=Subject.Kind.STYLE)


class SketchForm(forms.Form):
    style = forms.ChoiceField(choices=[(key, label) for key, (label, _) in STYLES.items()], initial="photo")
    follow = forms.FloatField(min_value=FOLLOW_RANGE[0], max_value=FOLLOW_RANGE[1], initial=0.25,
                              error_messages={"invalid": "Choose how closely to follow the drawing on the slider.",
                                              "min_value": "Choose how closely to follow the drawing on the slider.",
                                              "max_value": "Choose how closely to follow the drawing on the slider."})


NOTHING_PAINTED = ("Nothing is painted yet: paint over the part of the picture to change, "
                   "or choose “Repaint the whole picture”.")


def read_mask(upload, size: tuple[int, int]) -> Image.Image:
    """The painted area as a black-and-white ("L", 0 or 255) mask of exactly `size`; white = painted.

    Refuses what is not a PNG (the page always sends one), a damaged or huge file, a mask of another
    shape than the picture, and an empty one."""
    if (upload.size or 0) > settings.LIFEBOOK_MAX_UPLOAD_BYTES:
        raise jobs.JobRefused("The painted area is too large a file to use. Reload the page and paint again.")
    try:
        image = decode_upload(upload)  # the size cap, the pixel cap, every byte decoded
    except UploadRejected:
        raise jobs.JobRefused("The painted area could not be read. Paint it again and press the button once more.")
    if image.format != "PNG":
        raise jobs.JobRefused("The painted area must come from the painting tool on this page (a PNG picture).")
    if "A" in image.getbands() and image.getchannel("A").getextrema()[0] < 255:
        mask = image.getchannel("A")  # strokes on a transparent canvas: the strokes are the painted part
    else:
        mask = image.convert("L")
    if mask.size != size:
        shape, wanted = mask.width / mask.height, size[0] / size[1]
        if abs(shape - wanted) > ASPECT_TOLERANCE * wanted:
            raise jobs.JobRefused(f"The painted area ({mask.width}×{mask.height}) does not fit this picture "
                          f"({size[0]}×{size[1]}). Reload the page and paint again.")
        mask = mask.resize(size, Image.NEAREST)
    mask = mask.point(lambda v: 255 if v >= 128 else 0)
    if mask.getbbox() is None:
        raise jobs.JobRefused(NOTHING_PAINTED)
    return mask


def png_upload(image: Image.Image, name: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def _picture_size(picture) -> tuple[int, int]:
    if picture.width and picture.height:
        return picture.width, picture.height
    return picture.image.width, picture.image.height


@login_required
def memory_fix_part(request, patient_id, memory_id, image_id):
    """A page to paint over the part of a picture to change; sending it queues the repaint and goes back
    to the memory page, where the progress shows."""
    from lifebook.memory_views import memory_for

    memory = memory_for(request.user, patient_id, memory_id)  # editors only: therapists and others get 404
    patient = memory.chapter.patient
    picture = get_object_or_404(memory.images, pk=image_id)
    size = _picture_size(picture)
    form = FixPartForm(request.POST or None, patient=patient, initial={"mask_mode": "masked", "strength": 0.75})
    error, kept_mask = None, None
    if request.method == "POST":
        whole = bool(request.POST.get("whole"))
        mask = None
        try:
            if whole:
                mask = Image.new("L", size, 255)  # the keyboard path: no painting needed
            elif request.FILES.get("mask") is None:
                raise jobs.JobRefused(NOTHING_PAINTED)
            else:
                mask = read_mask(request.FILES["mask"], size)
            if form.is_valid():
                data = form.cleaned_data
                jobs.submit_generation(
                    memory, kind=GenerationJob.Kind.INPAINT, user=request.user, prompt=data["prompt"],
                    source_image=picture, mask_upload=png_upload(mask, "mask.png"),
                    inpaint_subject=data["subject"], strength=data["strength"],
                    mask_mode="masked" if whole else data["mask_mode"])
                messages.success(request, "Lifebook is repainting the picture. The new pictures appear here "
                                          "among the candidates.")
                return redirect("memory_page", patient_id=patient.pk, memory_id=memory.pk)
        except jobs.JobRefused as exc:  # a mask or a request the job would refuse: said on the page
            error = exc.message
        if mask is not None and not whole:
            # A refusal about the words must not lose the painting: the page paints it back.
            kept_mask = "data:image/png;base64," + base64.b64encode(png_upload(mask, "mask.png").read()).decode()
    images = list(memory.images.all())
    number = next((i for i, image in enumerate(images, 1) if image.pk == picture.pk), None)
    return render(request, "generation/fix_part.html", {
        "memory": memory, "patient": patient, "picture": picture, "picture_number": number,
        "picture_width": size[0], "picture_height": size[1], "form": form, "error": error,
        "kept_mask": kept_mask, **generation_context(memory)})


def _is_blank(image: Image.Image) -> bool:
    """Nothing drawn: every pixel (near) white, or fully transparent."""
    if "A" in image.getbands() and image.getchannel("A").getextrema()[1] == 0:
        return True
    flat = Image.new("RGB", image.size, "white")
    rgba = image.convert("RGBA")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat.convert("L").getextrema()[0] >= 245


@login_required
@require_POST
def memory_from_sketch(request, patient_id, memory_id):
    """A drawing (from the page's canvas, or an uploaded file) becomes candidate pictures in a style."""
    from lifebook.memory_views import memory_for

    memory = memory_for(request.user, patient_id, memory_id)
    back = redirect("memory_page", patient_id=patient_id, memory_id=memory_id)
    form = SketchForm(request.POST)
    if not form.is_valid():
        messages.error(request, next(iter(form.errors.values()))[0])
        return back
    # A file someone chose on purpose wins over the canvas (which may hold an old doodle).
    upload = request.FILES.get("sketch") or request.FILES.get("drawing")
    if upload is None:
        messages.error(request, "Draw something in the box, or choose a drawing to upload, first.")
        return back
    try:
        drawing = decode_upload(upload)
    except UploadRejected as exc:
        messages.error(request, exc.message)
        return back
    if _is_blank(drawing):
        messages.error(request, "The drawing is empty. Draw something in the box, or choose a drawing to upload.")
        return back
    style = STYLES[form.cleaned_data["style"]][1]
    strength = round(max(STRENGTH_RANGE[0], 1.0 - form.cleaned_data["follow"]), 2)
    try:
        jobs.submit_generation(memory, kind=GenerationJob.Kind.IMG2IMG, user=request.user, prompt=style,
                               source_upload=upload, strength=strength)
    except jobs.JobRefused as exc:
        messages.error(request, exc.message)
        return back
    messages.success(request, "Lifebook is turning the drawing into pictures. You can watch them appear here.")
    return back
