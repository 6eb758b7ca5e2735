"""The whole product in a real browser, as a caregiver and then a therapist would use it.

Each step leaves a screenshot in var/screenshots/ (ignored by git): look at them after a change to the pages.
"""

import io
import re

import numpy as np
import pytest
from django.core import mail
from PIL import Image

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


def sign_up(page, url, username, first_name, email):
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Your first name").fill(first_name)
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


def test_a_caregiver_makes_a_book_and_a_therapist_reads_it(chromium, page, live_server, worker, screenshot, tmp_path):
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
    page.wait_for_function("document.querySelectorAll('#photos .photo').length === 10")
    assert page.locator(".uploads li.error").count() == 0
    screenshot(page, "02-subject-photos")

    # 4. Teach Lifebook what Ana looks like, follow the progress, pick a stage.
    page.reload()
    page.get_by_role("button", name="Teach Lifebook what Ana looks like").click()
    choose = page.get_by_role("button", name=re.compile("This one looks most like Ana"))
    choose.first.wait_for(timeout=180_000)
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

    assert not errors, errors
