"""Fixing a part of a picture (paint over it, repaint) and turning a drawing into a picture, on the web."""

import base64
import io
import random
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from generation import jobs
from generation.models import GenerationJob, JobState
from lifebook.models import MemoryImage
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db

NOTHING_PAINTED = "Nothing is painted yet"


@pytest.fixture
def memory(patient):
    chapter = factories.ChapterFactory(patient=patient, title="Youth")
    return factories.MemoryFactory(chapter=chapter, title="The dance", scene="Juan and Ana dancing")


@pytest.fixture
def picture(memory):
    return factories.MemoryImageFactory(memory=memory)  # 64x64


def url(memory, name="memory_page", **extra):
    return reverse(name, kwargs={"patient_id": memory.chapter.patient_id, "memory_id": memory.pk, **extra})


def fix_url(picture):
    return url(picture.memory, "memory_fix_part", image_id=picture.pk)


def png(image, name="mask.png"):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def painted(size=(64, 64), box=(10, 20, 30, 40), mode="L"):
    """What the page's painting tool sends: black, with the painted part white."""
    mask = Image.new(mode, size, 0)
    mask.paste(255 if mode == "L" else (255, 255, 255, 255), box)
    if mode == "RGBA":  # a canvas export: opaque everywhere
        mask.putalpha(255)
    return mask


def stored_mask(job):
    with job.mask_file.open("rb") as handle, Image.open(handle) as mask:
        assert mask.format == "PNG"
        mask.load()
        return mask.copy()


# --- fix a part: the page -----------------------------------------------------------


def test_the_fix_page_paints_over_the_picture_at_its_own_size(client, owner, patient, memory):
    picture = factories.MemoryImageFactory(memory=memory, image__width=96, image__height=64)
    ana = factories.SubjectFactory(patient=patient, name="Ana")
    factories.SubjectFactory(name="Someone else's")  # another book's subject is never offered
    client.force_login(owner)
    page = client.get(fix_url(picture)).content.decode()
    # The painting canvas has the picture's own pixels, so the mask lines up with it exactly.
    assert re.search(r'<canvas id="mask-canvas" data-overlay width="96" height="64"', page)
    assert 'data-tool="paint" aria-pressed="true"' in page and 'data-tool="erase" aria-pressed="false"' in page
    assert '<label for="brush-size">Brush size</label>' in page and 'data-action="undo"' in page
    assert "Repaint what I painted" in page and "Repaint everything else" in page
    assert "Who or what to paint in there" in page and "Nobody in particular" in page
    assert f'<option value="{ana.pk}">Ana</option>' in page and "Someone else&#x27;s" not in page
    assert re.search(r'name="strength" min="0.3" max="1" step="0.05"\s+value="0.75"', page)
    assert "a little" in page and "completely" in page
    # Keyboard users and browsers without JavaScript still have a way: the whole picture.
    assert "If you use the keyboard" in page and 'name="whole" value="1">Repaint the whole picture' in page
    assert 'name="mask"' in page and "js/mask-editor.js" in page and "Generated picture" in page


def test_the_memory_page_offers_to_fix_each_candidate_and_the_chosen_picture(client, owner, memory):
    first = factories.MemoryImageFactory(memory=memory)
    second = factories.MemoryImageFactory(memory=memory)
    memory.chosen_image = first
    memory.save()
    client.force_login(owner)
    page = client.get(url(memory)).content.decode()
    assert page.count(f'href="{fix_url(first)}"') == 2  # the chosen picture and its candidate card
    assert page.count(f'href="{fix_url(second)}"') == 1


def test_a_fixed_candidate_says_which_candidate_it_was_fixed_from(client, owner, memory):
    original = factories.MemoryImageFactory(memory=memory)
    factories.MemoryImageFactory(memory=memory)
    fixed = factories.MemoryImageFactory(memory=memory, source=MemoryImage.Source.INPAINTED, parent=original)
    client.force_login(owner)
    page = client.get(url(memory)).content.decode()
    # Newest first: the fixed one is candidate 1, the one it was fixed from candidate 3.
    assert list(memory.images.all())[::2] == [fixed, original]
    assert page.count("Fixed from candidate") == 1 and "Fixed from candidate 3" in page


# --- fix a part: sending it -----------------------------------------------------------


def test_painting_a_part_queues_a_repaint_with_the_mask_as_painted(client, owner, patient, memory, picture):
    ana = factories.SubjectFactory(patient=patient, name="Ana")
    mask = painted()
    client.force_login(owner)
    response = client.post(fix_url(picture), {
        "mask": png(mask), "mask_mode": "not_masked", "subject": ana.pk, "prompt": "a blue dress", "strength": "0.5"})
    assert response.status_code == 302 and response["Location"] == url(memory)
    job = GenerationJob.objects.get(memory=memory)
    assert job.kind == "inpaint" and job.source_image == picture and job.inpaint_subject == ana
    assert job.parameters["strength"] == 0.5 and job.parameters["mask_mode"] == "not_masked"
    assert job.parameters["prompt"] == "a blue dress"
    stored = stored_mask(job)
    assert stored.mode in ("L", "1") and stored.tobytes() == mask.tobytes()
    assert job.mask_file.name.startswith(f"patients/{patient.pk}/memories/{memory.pk}/mask/")
    # Back on the memory page, the usual progress block follows the job.
    page = client.get(url(memory)).content.decode()
    assert "Waiting for the picture computer" in page and "Lifebook is repainting the picture" in page


def test_an_opaque_canvas_export_counts_its_white_not_its_alpha(client, owner, memory, picture):
    """A browser's canvas PNG is RGBA with full alpha: reading the alpha would repaint everything."""
    client.force_login(owner)
    client.post(fix_url(picture), {"mask": png(painted(mode="RGBA")), "mask_mode": "masked", "strength": "0.75"})
    job = GenerationJob.objects.get()
    assert stored_mask(job).tobytes() == painted().tobytes()
    assert job.parameters["mask_mode"] == "masked" and job.inpaint_subject is None


def test_a_mask_of_the_same_shape_but_another_size_is_scaled_to_the_picture(client, owner, memory, picture):
    client.force_login(owner)
    client.post(fix_url(picture), {"mask": png(painted(size=(128, 128), box=(20, 40, 60, 80))),
                                   "mask_mode": "masked", "strength": "0.75"})
    assert stored_mask(GenerationJob.objects.get()).tobytes() == painted().tobytes()


def test_repaint_the_whole_picture_needs_no_painting(client, owner, memory, picture):
    client.force_login(owner)
    response = client.post(fix_url(picture), {"whole": "1", "mask_mode": "not_masked", "strength": "1"})
    assert response["Location"] == url(memory)
    job = GenerationJob.objects.get()
    mask = stored_mask(job)
    assert mask.size == (64, 64) and mask.getextrema() == (255, 255)
    assert job.parameters["mask_mode"] == "masked" and job.parameters["strength"] == 1.0


@pytest.mark.parametrize("mask, message", [
    (None, NOTHING_PAINTED),
    (png(Image.new("L", (64, 64), 0)), NOTHING_PAINTED),
    (png(Image.new("L", (64, 64), 100)), NOTHING_PAINTED),  # grey below half is not painted
    (image_upload("mask.jpg", size=(64, 64), color=(255, 255, 255)), "must come from the painting tool"),
    (SimpleUploadedFile("mask.png", b"\x89PNG\r\n\x1a\n not really"), "could not be read"),
    (SimpleUploadedFile("mask.png", b"<svg><rect/></svg>"), "could not be read"),
    (png(painted(size=(64, 32), box=(0, 0, 10, 10))), "does not fit this picture"),
])
def test_a_mask_that_is_empty_or_not_a_painting_is_refused_plainly(client, owner, memory, picture, mask, message):
    client.force_login(owner)
    data = {"mask_mode": "masked", "strength": "0.75", "prompt": "a hat"}
    if mask is not None:
        mask.seek(0)
        data["mask"] = mask
    response = client.post(fix_url(picture), data)
    page = response.content.decode()
    assert response.status_code == 200 and message in page
    assert 'value="a hat"' in page  # the words are kept
    assert not GenerationJob.objects.exists()


def test_a_huge_mask_file_is_refused(client, owner, memory, picture, settings):
    settings.LIFEBOOK_MAX_UPLOAD_BYTES = 1000
    noise = Image.frombytes("L", (64, 64), random.Random(1).randbytes(64 * 64))  # does not compress
    client.force_login(owner)
    response = client.post(fix_url(picture), {"mask": png(noise), "mask_mode": "masked", "strength": "0.75"})
    assert "too large a file" in response.content.decode() and not GenerationJob.objects.exists()


def test_another_books_subject_is_refused_and_the_painting_is_kept(client, owner, memory, picture):
    elsewhere = factories.SubjectFactory(name="Someone else's")
    client.force_login(owner)
    mask = painted()
    response = client.post(fix_url(picture), {"mask": png(mask), "mask_mode": "masked", "subject": elsewhere.pk,
                                               "strength": "0.75"})
    page = response.content.decode()
    assert response.status_code == 200 and "not in this book" in page
    assert not GenerationJob.objects.exists()
    kept = re.search(r'data-kept-mask="data:image/png;base64,([^"]+)"', page)
    with Image.open(io.BytesIO(base64.b64decode(kept.group(1)))) as image:
        assert image.tobytes() == mask.tobytes()  # the page paints it back in


def test_strength_outside_the_slider_is_refused(client, owner, memory, picture):
    client.force_login(owner)
    response = client.post(fix_url(picture), {"mask": png(painted()), "mask_mode": "masked", "strength": "0.1"})
    assert "how much to change it on the slider" in response.content.decode()
    response = client.post(fix_url(picture), {"mask": png(painted()), "mask_mode": "sideways", "strength": "0.5"})
    assert "Select a valid choice" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_a_picture_of_another_memory_is_not_found(client, owner, memory, picture):
    other_memory = factories.MemoryFactory(chapter=memory.chapter)
    elsewhere = factories.MemoryImageFactory(memory=other_memory)
    client.force_login(owner)
    wrong = url(memory, "memory_fix_part", image_id=elsewhere.pk)
    assert client.get(wrong).status_code == 404
    assert client.post(wrong, {"mask": png(painted()), "mask_mode": "masked", "strength": "0.75"}).status_code == 404
    assert not GenerationJob.objects.exists()


def test_a_memory_without_words_is_refused_with_the_reason(client, owner, patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), title=" ", scene="")
    picture = factories.MemoryImageFactory(memory=memory)
    client.force_login(owner)
    response = client.post(fix_url(picture), {"mask": png(painted()), "mask_mode": "masked", "strength": "0.75"})
    assert "Describe the memory first" in response.content.decode() and not GenerationJob.objects.exists()


def test_the_page_refuses_what_the_engine_would_and_keeps_the_painting(client, owner, memory, picture,
                                                                     private_media_root):
    """The page gets the job service's checks, which are the engine's: everything but a mask that covers
    everything is nothing to repaint. It used to be queued and then fail in the worker."""
    client.force_login(owner)
    everything = painted(box=(0, 0, 64, 64))
    response = client.post(fix_url(picture), {"mask": png(everything), "mask_mode": "not_masked",
                                              "strength": "0.75"})
    page = response.content.decode()
    assert response.status_code == 200 and "The mask covers the whole picture" in page
    assert re.search(r'data-kept-mask="data:image/png;base64,[^"]+"', page)
    assert not GenerationJob.objects.exists()
    assert not list(private_media_root.rglob("mask/*"))


def test_the_job_service_checks_the_mask_mode(memory, picture):
    with pytest.raises(jobs.JobRefused, match="what you painted or everything else"):
        jobs.submit_generation(memory, kind="inpaint", source_image=picture, mask_upload=png(painted()),
                               mask_mode="sideways")
    with pytest.raises(jobs.JobRefused, match="Only repainting a part"):
        jobs.submit_generation(memory, mask_mode="masked")
    job = jobs.submit_generation(memory, kind="inpaint", source_image=picture, mask_upload=png(painted()),
                                 mask_mode="not_masked")
    assert job.parameters["mask_mode"] == "not_masked"
    # Not given: the default is stored with the job, so its recipe is complete.
    assert jobs.submit_generation(memory, kind="inpaint", source_image=picture,
                                  mask_upload=png(painted())).parameters["mask_mode"] == "masked"


# --- from a sketch --------------------------------------------------------------------


def drawing(size=(512, 512), line=True):
    paper = Image.new("RGB", size, "white")
    if line:
        paper.paste((30, 30, 30), (100, 200, 400, 210))
    return png(paper, "drawing.png")


def test_the_memory_page_has_a_drawing_pad_and_an_upload(client, owner, memory):
    client.force_login(owner)
    page = client.get(url(memory)).content.decode()
    assert "Turn a drawing into a picture" in page and "js/sketch.js" in page
    assert '<canvas class="sketch-pad" width="512" height="512"' in page
    assert 'data-tool="pen" aria-pressed="true"' in page and '<label for="pen-size">Pen size</label>' in page
    # Without JavaScript the pad stays hidden and the upload still works.
    assert re.search(r'<div data-needs-js hidden>\s*<div class="mask-tools"', page)
    assert 'name="sketch"' in page and "How closely to follow the drawing" in page
    GenerationJob.objects.create(memory=memory, kind="txt2img", state=JobState.RUNNING)
    # While pictures are being made the page reloads itself when they are done: no drawing to lose then.
    assert "sketch-pad" not in client.get(url(memory)).content.decode()


def test_a_drawing_from_the_pad_becomes_a_picture_job_in_the_chosen_style(client, owner, patient, memory):
    client.force_login(owner)
    response = client.post(url(memory, "memory_from_sketch"), {"drawing": drawing(), "style": "watercolour",
                                                                 "follow": "0.5"})
    assert response["Location"] == url(memory)
    job = GenerationJob.objects.get()
    assert job.kind == "img2img" and job.source_image is None
    assert job.parameters["strength"] == 0.5 and job.parameters["prompt"] == "a watercolour painting, soft colours"
    assert job.source_file.name.startswith(f"patients/{patient.pk}/memories/{memory.pk}/source/")
    with job.source_file.open("rb") as handle, Image.open(handle) as stored:
        assert stored.size == (512, 512) and stored.getpixel((200, 205)) == (30, 30, 30)


def test_an_uploaded_drawing_works_without_the_pad_and_wins_over_it(client, owner, memory):
    client.force_login(owner)
    upload = image_upload("scan.jpg", size=(300, 200), color=(90, 60, 30))
    client.post(url(memory, "memory_from_sketch"), {"sketch": upload, "drawing": drawing(), "style": "photo",
                                                    "follow": "0.25"})
    job = GenerationJob.objects.get()
    assert job.parameters["strength"] == 0.75 and job.parameters["prompt"] == "a realistic photo, natural light"
    with job.source_file.open("rb") as handle, Image.open(handle) as stored:
        assert stored.size == (300, 200)


@pytest.mark.parametrize("files, message", [
    ({}, "Draw something in the box, or choose a drawing to upload, first."),
    ({"drawing": drawing(line=False)}, "The drawing is empty."),
    ({"sketch": SimpleUploadedFile("x.jpg", b"not a picture at all")}, "not a picture in a format we accept"),
    ({"sketch": image_upload("tiny.png", size=(40, 40), fmt="PNG")}, "The sketch is too small"),
])
def test_no_drawing_or_a_bad_one_is_refused_plainly(client, owner, memory, files, message):
    client.force_login(owner)
    for upload in files.values():
        upload.seek(0)
    response = client.post(url(memory, "memory_from_sketch"), {"style": "photo", "follow": "0.25", **files},
                           follow=True)
    assert message in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_an_unknown_style_or_closeness_is_refused(client, owner, memory):
    client.force_login(owner)
    response = client.post(url(memory, "memory_from_sketch"), {"drawing": drawing(), "style": "cubist",
                                                                 "follow": "0.25"}, follow=True)
    assert "Select a valid choice" in response.content.decode()
    response = client.post(url(memory, "memory_from_sketch"), {"drawing": drawing(), "style": "photo",
                                                                 "follow": "0.9"}, follow=True)
    assert "how closely to follow the drawing" in response.content.decode()
    assert not GenerationJob.objects.exists()


# --- who may ----------------------------------------------------------------------------


def test_a_therapist_and_another_family_never_reach_the_editors(client, therapist, stranger, memory, picture):
    for user in (therapist, stranger):
        client.force_login(user)
        assert client.get(fix_url(picture)).status_code == 404
        assert client.post(fix_url(picture), {"whole": "1", "mask_mode": "masked", "strength": "0.75"}).status_code == 404
        assert client.post(url(memory, "memory_from_sketch"), {"drawing": drawing(), "style": "photo",
                                                               "follow": "0.25"}).status_code == 404
    assert not GenerationJob.objects.exists()


# --- for real: a worker repaints what was painted on the page -------------------------------

from tests.integration.test_worker_jobs import job_settings, wait_for, workers  # noqa: E402, F401  (fixtures)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_part_painted_on_the_page_is_repainted_by_a_worker_and_keeps_its_lineage(client, owner, workers, memory,
                                                                                   monkeypatch):
    """The tiny model in a real Celery worker: the page's job finishes, its pictures are candidates whose
    parent is the fixed picture, and outside the painted part they are the old picture, pixel for pixel."""
    # Fewer steps and pictures than a caregiver gets, so the test stays quick; the page sets neither.
    monkeypatch.setitem(jobs.GENERATION_DEFAULTS, GenerationJob.Kind.INPAINT,
                        {**jobs.GENERATION_DEFAULTS[GenerationJob.Kind.INPAINT], "steps": 6, "num_images": 2})
    workers.start(queues="generate,default")
    picture = factories.MemoryImageFactory(memory=memory, image__color="blue")  # 64x64
    client.force_login(owner)
    response = client.post(fix_url(picture), {"mask": png(painted(box=(8, 8, 24, 24))), "mask_mode": "masked",
                                              "prompt": "a red hat", "strength": "0.9"})
    assert response["Location"] == url(memory)
    job = wait_for(GenerationJob.objects.get(), lambda j: j.is_finished, what="the repaint")
    assert job.state == JobState.SUCCEEDED, job.error
    results = list(job.results.all())
    assert len(results) == 2
    with picture.image.open("rb") as handle, Image.open(handle) as before:
        before = before.convert("RGB")
    for result in results:
        assert result.parent == picture and result.source == MemoryImage.Source.INPAINTED
        assert result.parameters["mask_mode"] == "masked" and result.parameters["strength"] == 0.9
        with result.image.open("rb") as handle, Image.open(handle) as after:
            after = after.convert("RGB")
        assert after.size == (64, 64) and after.getpixel((60, 60)) == before.getpixel((60, 60))
        assert after.crop((12, 12, 20, 20)).tobytes() != before.crop((12, 12, 20, 20)).tobytes()  # repainted
    page = client.get(url(memory)).content.decode()
    assert page.count("Fixed from candidate 3") == 2  # the old picture is now the third, after the two new


# --- in a real browser: painting with the mouse ----------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_painting_with_the_mouse_and_drawing_a_sketch_in_chromium(client, owner, memory, live_server, chromium):
    """Headless Chromium: a stroke painted with the mouse arrives as a black-and-white mask of the picture's
    own size, white where it was painted; undo, the empty-mask refusal, and the sketch pad."""
    picture = factories.MemoryImageFactory(memory=memory, image__width=320, image__height=240,
                                           image__color="teal", from_demo_model=True)
    client.force_login(owner)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    context = chromium.new_context(viewport={"width": 1100, "height": 1000})
    context.add_cookies([cookie])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + fix_url(picture))
    canvas = page.locator("#mask-canvas")
    assert canvas.is_visible() and not page.get_by_text("Painting needs JavaScript").is_visible()

    # Nothing painted: refused on the page, nothing sent.
    page.get_by_role("button", name="Make the new pictures").click()
    assert "Nothing is painted yet" in page.locator("[data-problem]").text_content()
    assert not GenerationJob.objects.exists()

    box = canvas.bounding_box()  # shown at another size than its 320x240 pixels: positions are scaled

    def stroke(y):
        page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * y)
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(box["x"] + box["width"] * (0.25 + 0.05 * step), box["y"] + box["height"] * y)
        page.mouse.up()

    stroke(0.3)
    page.keyboard.press("Control+z")  # undone
    assert page.evaluate("document.querySelector('#mask-canvas').getContext('2d')"
                         ".getImageData(0, 0, 320, 240).data.some(v => v > 0)") is False
    stroke(0.5)
    page.get_by_label("Brush size").fill("80")
    page.get_by_role("button", name="Eraser").click()
    assert page.get_by_role("button", name="Eraser").get_attribute("aria-pressed") == "true"
    page.get_by_role("button", name="Brush").click()
    page.get_by_label("Repaint everything else").check()
    page.get_by_label("What should be there").fill("a red boat")
    page.screenshot(path=str(SCREENSHOTS / "fix-part.png"), full_page=True)

    # A refusal about the rest of the form (here another book's subject, slipped into the menu) keeps
    # the painting: the page comes back with it painted in, and the choices made.
    elsewhere = factories.SubjectFactory(name="Someone else's")
    page.evaluate(f"""() => {{ const menu = document.querySelector('select[name=subject]');
                              menu.add(new Option('Sneaky', '{elsewhere.pk}')); menu.value = '{elsewhere.pk}'; }}""")
    with page.expect_navigation():
        page.get_by_role("button", name="Make the new pictures").click()
    assert "not in this book" in page.locator("[role=alert]").first.text_content()
    page.wait_for_function("() => document.querySelector('#mask-canvas').getContext('2d')"
                           ".getImageData(0, 0, 320, 240).data.some(v => v > 0)")
    assert page.get_by_label("Repaint everything else").is_checked()
    assert page.get_by_label("What should be there").input_value() == "a red boat"
    assert not GenerationJob.objects.exists()
    page.get_by_label("Who or what to paint in there").select_option(label="Nobody in particular")
    page.get_by_role("button", name="Make the new pictures").click()
    page.wait_for_url(live_server.url + url(memory))
    assert "Lifebook is repainting the picture" in page.content()

    job = GenerationJob.objects.get()
    assert job.kind == "inpaint" and job.parameters["mask_mode"] == "not_masked"
    assert job.parameters["prompt"] == "a red boat"
    mask = stored_mask(job)
    assert mask.mode == "L" and mask.size == (320, 240) and mask.getextrema() == (0, 255)
    assert not mask.point(lambda v: 0 if v in (0, 255) else 255).getbbox()  # only black or white
    assert mask.getpixel((160, 120)) == 255  # on the stroke, in the picture's own pixels
    assert mask.getpixel((160, 40)) == 0 and mask.getpixel((20, 120)) == 0  # the undone stroke is gone
    left, top, right, bottom = mask.getbbox()
    assert 60 <= left <= 80 and 230 <= right <= 260 and 100 <= top < 120 < bottom <= 140

    # The sketch pad on the memory page (hidden while a job runs, so that one is finished first).
    GenerationJob.objects.filter(pk=job.pk).update(state=JobState.CANCELLED)
    page.goto(live_server.url + url(memory))
    page.screenshot(path=str(SCREENSHOTS / "memory-with-sketch.png"), full_page=True)
    pad = page.locator("canvas.sketch-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 40, box["y"] + box["height"] - 40, steps=12)
    page.mouse.up()
    page.get_by_label("Watercolour").last.check()
    pad.screenshot(path=str(SCREENSHOTS / "sketch-pad.png"))
    with page.expect_navigation():  # back to the same page, with the job
        page.get_by_role("button", name="Turn it into pictures").click()
    assert "Lifebook is turning the drawing into pictures" in page.content(), page.content()[:3000]
    sketch = GenerationJob.objects.get(kind="img2img")
    assert sketch.parameters["prompt"] == "a watercolour painting, soft colours"
    with sketch.source_file.open("rb") as handle, Image.open(handle) as drawn:
        assert drawn.size == (512, 512) and drawn.convert("L").getextrema()[0] < 100  # a dark line on white
        assert drawn.getpixel((5, 500)) == (255, 255, 255)
    assert errors == []
    context.close()
