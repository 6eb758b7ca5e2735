"""The whole product in a real browser, as a caregiver and then a therapist would use it.

Each step leaves a screenshot in var/screenshots/ (ignored by git): look at them after a change to the pages.
"""

import re

import numpy as np
import pytest
from django.core import mail
from PIL import Image
from pypdf import PdfReader

from generation import jobs
from generation.models import GenerationJob

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long enough passphrase 42"


def photo_files(tmp_path, count=10):
    """Distinct, sharp pictures (noise around a colour), as files a caregiver would pick."""
    paths = []
    for index in range(count):
        rng = np.random.default_rng(index)
        base = np.array([25 * index, 120, 220 - 15 * index], dtype=np.float32)
        pixels = np.clip(base + rng.normal(0, 60, (320, 320, 3)), 0, 255).astype(np.uint8)
        path = tmp_path / f"ana-{index + 1}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def sign_up(page, url, username, first_name, email=None):
    """email=None: signing up through an invitation link, which gives the account the invitation's address."""
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Your first name").fill(first_name)
    if email is None:
        assert page.get_by_label("Email").count() == 0
    else:
        page.get_by_label("Email").fill(email)
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Create account").click()


@pytest.fixture
def page(chromium, screenshot, request):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        screenshot(page, "failure")  # what the browser showed when the test stopped
    context.close()


def test_a_caregiver_makes_a_book_and_a_therapist_reads_it(chromium, page, live_server, worker, screenshot, tmp_path,
                                                            monkeypatch):
    # The live server runs in this process: fewer steps and pictures keep the tiny model quick.
    monkeypatch.setitem(jobs.GENERATION_DEFAULTS, GenerationJob.Kind.INPAINT,
                        {**jobs.GENERATION_DEFAULTS[GenerationJob.Kind.INPAINT], "steps": 3, "num_images": 1})
    page.set_default_timeout(30_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # 1. Sign up.
    sign_up(page, f"{live_server.url}/accounts/signup/", "marta", "Marta", "marta@example.org")
    assert page.get_by_role("heading", name="Life books").is_visible()
    screenshot(page, "01-dashboard-empty")

    # 2. A patient, with photo consent.
    page.get_by_role("link", name="Start a book for someone").click()
    page.get_by_label("Name:", exact=True).fill("Juan Pacheco")
    page.get_by_label("Preferred name").fill("Juan")
    page.get_by_label("We have consent to use photos").check()
    page.get_by_label("Who gave consent").fill("Juan himself, in writing")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert page.get_by_role("heading", name="Juan Pacheco’s life book").is_visible()
    book_url = page.url

    # 3. A person with 10 photos, dropped in at once: each gets its own progress bar and then its card.
    page.get_by_role("link", name="Add someone or something").click()
    page.get_by_label("Who or what is it?").select_option(label="Person")
    page.get_by_label("Name:", exact=True).fill("Ana")
    page.get_by_label("Relationship to the patient").fill("his wife")
    with page.expect_navigation():
        page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_label("Choose photos").set_input_files([str(p) for p in photo_files(tmp_path)])
    page.wait_for_function("() => document.querySelectorAll('#photos .photo').length === 10")
    assert page.locator(".uploads li.error").count() == 0
    screenshot(page, "02-subject-photos")

    # 4. Teach Lifebook what Ana looks like, follow the progress, pick a stage.
    page.reload()
    page.get_by_role("button", name="Teach Lifebook what Ana looks like").click()
    choose = page.get_by_role("button", name=re.compile("This one looks most like Ana"))
    choose.first.wait_for(timeout=180_000)
    page.get_by_role("button", name="Learn again from the photos").wait_for(timeout=180_000)  # training done
    samples = page.locator(".samples img")
    assert samples.count() >= 8  # at least two stages to choose from, four samples each
    for index in range(samples.count()):  # every stage's samples are there and decode (they load lazily)
        sample = samples.nth(index)
        sample.scroll_into_view_if_needed()
        sample.evaluate("img => img.decode()")
        assert sample.evaluate("img => img.naturalWidth") > 0
    screenshot(page, "03-checkpoints")
    with page.expect_navigation():
        choose.first.click()
    assert page.get_by_text("In use").is_visible()

    # 5. A chapter and a memory with Ana in it.
    page.goto(book_url)
    page.get_by_role("link", name="Add a chapter").click()
    page.get_by_label("Title").fill("Married life")
    with page.expect_navigation():
        page.get_by_role("button", name="Add the chapter").click()
    page.get_by_role("link", name="Write a memory").click()
    page.get_by_label("Title").fill("Dancing at the fiesta")
    page.get_by_label("Caption").fill("Juan and Ana danced all night at the village fiesta in 1968.")
    page.get_by_label("Ana").check()
    page.get_by_label("What happens in the picture").fill("a couple dancing in a village square at night, lanterns")
    with page.expect_navigation():
        page.get_by_role("button", name="Save the memory").click()
    memory_url = page.url
    assert page.get_by_role("heading", name="Dancing at the fiesta").is_visible()

    # 6. Make two pictures, watch them arrive, choose one.
    page.get_by_label("How many to choose from").fill("2")
    page.locator("summary", has_text="Advanced").click()
    page.get_by_label("Steps").fill("3")
    page.get_by_role("button", name="Make pictures").click()
    page.locator(".candidate").nth(1).wait_for(timeout=180_000)  # the page reloads itself when they are done
    screenshot(page, "04-candidates")
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("Choose this one")).first.click()
    assert page.locator(".candidate.is-chosen").count() == 1

    # 7. Fix a part: paint over a region with the mask editor, repaint it with Ana; the result is a new
    # candidate that says where it came from.
    page.get_by_role("link", name="Fix a part of this picture (the chosen one)").click()
    canvas = page.locator("#mask-canvas")
    canvas.wait_for(state="visible")
    page.get_by_role("button", name="Brush").wait_for()  # the tools appear once the editor's script is ready
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5, steps=12)
    page.mouse.up()
    page.get_by_label("Who or what to paint in there").select_option(label="Ana")
    page.get_by_label("What should be there").fill("a smiling face")
    screenshot(page, "05-fix-a-part")
    with page.expect_navigation():
        page.get_by_role("button", name="Make the new pictures").click()
    assert page.url == memory_url
    page.get_by_text("Fixed from candidate").first.wait_for(timeout=180_000)

    # A second chapter and memory, so the therapist has pages to turn (this one has no picture yet).
    page.goto(book_url)
    page.get_by_role("link", name="Add a chapter").click()
    page.get_by_label("Title").fill("Old age")
    with page.expect_navigation():
        page.get_by_role("button", name="Add the chapter").click()
    page.goto(book_url)
    page.get_by_role("link", name="Write a memory").click()
    page.get_by_label("Chapter").select_option(label="Old age")
    page.get_by_label("Title").fill("Grandchildren")
    page.get_by_label("Caption").fill("Juan with his grandchildren in the garden.")
    with page.expect_navigation():
        page.get_by_role("button", name="Save the memory").click()
    page.goto(book_url)
    screenshot(page, "06-book")
    # Chapters move with the keyboard's buttons (the page says so, and the order is saved) and back again.
    status = page.locator("#book-status")
    page.get_by_role("button", name=re.compile("Move down.*Married life")).click()
    status.get_by_text("moved to position 2 of 2").wait_for()
    page.reload()
    assert page.locator(".chapter h3").all_inner_texts()[:2] == ["Old age", "Married life"]
    page.get_by_role("button", name=re.compile("Move up.*Married life")).click()
    status.get_by_text("moved to position 1 of 2").wait_for()

    # 8. Invite a therapist by email; she signs up through the link and reads the book with the keyboard.
    page.get_by_role("link", name="Care team").click()
    page.get_by_label("Their email address").fill("laura@example.org")
    page.get_by_role("radio", name=re.compile("Therapist")).check()
    mail.outbox.clear()
    with page.expect_navigation():
        page.get_by_role("button", name="Invite").click()
    assert page.get_by_text("laura@example.org").first.is_visible()
    screenshot(page, "07-care-team")
    link = re.search(r"https?://\S+/accounts/invitations/\S+", mail.outbox[-1].body).group(0)
    link = live_server.url + link[link.index("/accounts/"):]  # the email names the site as the request saw it

    therapist = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    reader = therapist.new_page()
    reader.set_default_timeout(30_000)
    reader.on("pageerror", lambda exc: errors.append(str(exc)))
    reader.goto(link)
    reader.get_by_role("link", name="Create an account").click()
    sign_up(reader, reader.url, "laura", "Laura")
    with reader.expect_navigation():  # back on the invitation: joining is her own choice
        reader.get_by_role("button", name="Join Juan’s care team").click()
    reader.goto(live_server.url + "/")
    reader.get_by_role("link", name="Read the book").first.click()
    reader.wait_for_function("() => document.querySelector('[data-position]').textContent === '1 of 2'")
    assert reader.get_by_role("heading", name="Dancing at the fiesta").is_visible()
    screenshot(reader, "08-carousel")
    reader.keyboard.press("ArrowRight")
    reader.wait_for_function("() => document.querySelector('[data-position]').textContent === '2 of 2'")
    assert reader.get_by_role("heading", name="Grandchildren").is_visible()
    reader.keyboard.press("Home")
    reader.wait_for_function("() => document.querySelector('[data-position]').textContent === '1 of 2'")
    reader.keyboard.press("End")
    reader.wait_for_function("() => document.querySelector('[data-position]').textContent === '2 of 2'")
    # A therapist reads but never edits.
    reader.goto(book_url)
    assert reader.get_by_role("link", name="Edit details").count() == 0
    assert reader.get_by_role("link", name="Write a memory").count() == 0

    # 9. The large-print PDF: a cover, a title page per chapter, one page per memory.
    with reader.expect_download() as download:
        reader.get_by_role("link", name="Large-print PDF").click()
    pdf = PdfReader(download.value.path())
    assert len(pdf.pages) == 1 + 2 + 2
    assert "Dancing at the fiesta" in pdf.pages[2].extract_text()
    therapist.close()

    assert not errors, errors
