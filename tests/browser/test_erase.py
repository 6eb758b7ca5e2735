"""An owner erases a book in a real browser: the confirmation says what will go, and afterwards nothing is left.

Screenshots: var/screenshots/erase-*.png.
"""

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from lifebook.models import AuditEvent, Patient
from tests.browser.test_accessibility import violations
from tests.test_erase import files_under, make_full_book

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(chromium, screenshot, request, live_server, client, owner):
    """A browser tab logged in as the book's owner."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    client.force_login(owner)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        screenshot(page, "erase-failure")
    context.close()


def test_an_owner_erases_a_book_after_seeing_what_will_go(page, live_server, screenshot, patient, owner, settings,
                                                          tmp_path, browser_problems):
    settings.LIFEBOOK_TRAINING_DIR = tmp_path / "training"
    book = make_full_book(patient, owner)
    number = book.patient.pk
    assert len(files_under(Path(settings.MEDIA_ROOT))) == 12
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def console(message):  # the browser asks for /favicon.ico by itself; the site has none (not this page's doing)
        if message.type == "error" and "favicon.ico" not in message.location.get("url", ""):
            problems.append(message.text)

    page.on("console", console)

    page.goto(live_server.url + reverse("patient_book", args=[number]))
    page.get_by_role("link", name="Who has looked at it").click()
    assert page.get_by_role("heading", name="Who has looked at Juan’s book").is_visible()
    assert page.get_by_text("marta (owner) looked at the book").first.is_visible()
    screenshot(page, "erase-01-who-looked")
    assert violations(page) == []

    page.goto(live_server.url + reverse("care_team", args=[number]))
    page.get_by_role("link", name="Erase this book…").click()
    assert page.get_by_role("heading", name="Erase Juan Pacheco’s book for good?").is_visible()
    what = page.get_by_role("list", name="What will be erased").inner_text()
    for words in ("2 chapters", "2 memories", "2 pictures", "4 photos", "1 trained likeness",
                  "The care team of 3 people", "carmen (caregiver)", "laura (therapist)"):
        assert words in what, words
    screenshot(page, "erase-02-confirm")
    assert violations(page) == []

    erase = page.get_by_role("button", name="Erase Juan’s book for good")
    with page.expect_navigation():
        erase.click()  # without the name: refused, nothing erased
    assert page.get_by_text("Type the name shown above to erase the book.").is_visible()
    assert Patient.objects.filter(pk=number).exists()

    page.get_by_label("Type Juan Pacheco to confirm").fill("Juan Pacheco")
    with page.expect_navigation():
        page.get_by_role("button", name="Erase Juan’s book for good").click()
    assert page.url == live_server.url + reverse("dashboard")
    assert page.get_by_text("Juan Pacheco’s book was erased, with every photo and picture in it.").is_visible()
    assert page.get_by_role("link", name="Juan Pacheco").count() == 0
    screenshot(page, "erase-03-dashboard")

    assert not Patient.objects.filter(pk=number).exists()
    assert files_under(Path(settings.MEDIA_ROOT)) == [] and files_under(settings.LIFEBOOK_TRAINING_DIR) == []
    assert AuditEvent.objects.filter(patient_number=number, action=AuditEvent.Action.ERASED).count() == 1
    assert problems == []  # no script errors, nothing refused on the way
    response = page.goto(live_server.url + reverse("patient_book", args=[number]))
    assert response.status == 404
    # That 404 is the point: the browser logs it as a failed load, which is no problem here.
    browser_problems[:] = [problem for problem in browser_problems if "status of 404" not in problem]
