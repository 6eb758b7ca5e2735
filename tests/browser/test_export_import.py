"""In a real browser: an owner downloads a copy of a book, opens its page from the unzipped folder, and brings
the copy back in from the dashboard as a new book.

Screenshots land in var/screenshots/ (export-*.png)."""

import zipfile

import pytest

from lifebook.models import Patient
from tests.book_copies import build_book
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_downloads_a_copy_and_brings_it_back_in_as_a_new_book(chromium, live_server, client, screenshot,
                                                                       tmp_path):
    owner = UserFactory(username="marta")
    book = build_book(owner)
    client.force_login(owner)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(message):
        # The browser asks for /favicon.ico by itself; the site has none (not this test's business).
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", console)

    # 1. The book page's "Download a copy" gives a ZIP.
    page.goto(f"{live_server.url}/patients/{book.pk}/")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download a copy").click()
    download = download_info.value
    assert download.suggested_filename == "juan-pacheco-ruiz-life-book.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    screenshot(page, "export-1-book-page")

    # 2. Unzipped, its page opens straight from the folder and shows the book with every picture.
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(saved) as archive:
        archive.extractall(folder)
    page.goto((folder / "README.html").as_uri())
    assert page.get_by_role("heading", name="Juan Pacheco Ruiz’s life book").is_visible()
    assert page.get_by_role("heading", name="Summer at La Caleta").is_visible()
    page.locator("details").evaluate_all("all => all.forEach(d => d.open = true)")
    page.locator("img").evaluate_all("all => all.forEach(img => img.loading = 'eager')")  # load the lazy ones now
    images = page.locator("img")
    assert images.count() == 10
    page.wait_for_function("[...document.images].every(img => img.complete)")
    assert page.evaluate("[...document.images].filter(img => img.naturalWidth === 0).length") == 0
    screenshot(page, "export-2-readme-offline")

    # 3. From the dashboard, the copy becomes a new book.
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Bring in a book from a downloaded copy").click()
    page.get_by_label("The downloaded copy (a ZIP file)").set_input_files(saved)
    screenshot(page, "export-3-import-page")
    with page.expect_navigation():
        page.get_by_role("button", name="Bring in the book").click()

    new_book = Patient.objects.exclude(pk=book.pk).get()
    assert page.url == f"{live_server.url}/patients/{new_book.pk}/"
    assert page.get_by_text("Juanito’s book is here, and you are its owner.").is_visible()
    assert page.get_by_role("heading", name="Juan Pacheco Ruiz’s life book").is_visible()
    for chapter in ("Growing up in Cádiz", "The shop", "Still to write"):
        assert page.get_by_role("heading", name=chapter).first.is_visible(), chapter
    for memory in ("Summer at La Caleta", "The night of the flood", "Opening day", "No picture yet"):
        assert page.get_by_text(memory, exact=True).first.is_visible(), memory
    page.wait_for_function("[...document.images].every(img => img.complete)")
    assert page.evaluate("[...document.images].filter(img => img.naturalWidth === 0).length") == 0
    screenshot(page, "export-4-new-book")

    page.goto(f"{live_server.url}/")
    assert page.get_by_role("link", name="Juan Pacheco Ruiz", exact=True).count() == 2  # the book and its copy
    context.close()
    assert not errors, errors
