import io
import os
import shutil
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests import factories


@pytest.fixture(autouse=True)
def fresh_cache():
    """Rendered book pages are cached per patient id and version; ids can repeat across tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def private_media_root(settings, tmp_path):
    """Every test writes its files to its own folder, never to var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SENDFILE_ROOT = str(settings.MEDIA_ROOT)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.MEDIA_ROOT


CHROMIUM = os.environ.get("LIFEBOOK_CHROMIUM", "/usr/bin/chromium")


def require_chromium():
    """Browser tests use Debian's Chromium. Missing, they skip, saying why; where LIFEBOOK_REQUIRE_BROWSER is set
    (.ci/run sets it) they fail instead, so CI cannot pass without having run them."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        message = f"browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
        if os.environ.get("LIFEBOOK_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def browser_problems():
    """What the browser reported during a test; a test that causes an error on purpose removes it from here."""
    return []


@pytest.fixture
def chromium(monkeypatch, browser_problems):
    """Debian's Chromium, launched once per browser test (headless, no network chatter).

    Every context made from it (however a test makes it) is watched: a console error (a CSP violation is one,
    so is a failed load) or an uncaught page error fails the test when it ends."""
    require_chromium()
    from playwright.sync_api import Browser, sync_playwright

    def on_console(message):
        if message.type == "error":
            browser_problems.append(f"console error: {message.text} ({message.location.get('url')})")

    def watch(context):
        context.on("console", on_console)
        context.on("weberror", lambda error: browser_problems.append(f"page error: {error.error}"))
        return context

    # Patched on the class, so page.context.browser.new_context() is watched as well.
    new_context, new_page = Browser.new_context, Browser.new_page
    monkeypatch.setattr(Browser, "new_context", lambda self, *args, **kwargs: watch(new_context(self, *args, **kwargs)))

    def watched_page(self, *args, **kwargs):
        page = new_page(self, *args, **kwargs)
        watch(page.context)
        return page

    monkeypatch.setattr(Browser, "new_page", watched_page)
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()
    if browser_problems:
        pytest.fail("the browser reported errors:\n" + "\n".join(browser_problems), pytrace=False)


def image_upload(name="photo.jpg", size=(640, 480), color=(200, 120, 40), fmt="JPEG", mode="RGB", **save_kwargs):
    """An uploaded file holding a real image (the content decides, not the name)."""
    image = Image.new(mode, size, color)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_kwargs)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/octet-stream")


@pytest.fixture
def owner(db):
    return factories.UserFactory(username="marta")


@pytest.fixture
def patient(owner):
    patient = factories.PatientFactory()
    factories.MembershipFactory(patient=patient, user=owner, role="owner")
    return patient


@pytest.fixture
def stranger(db):
    """A caregiver with a patient of their own, and no business with `patient`."""
    user = factories.UserFactory(username="stranger")
    factories.MembershipFactory(patient=factories.PatientFactory(name="Someone Else"), user=user, role="owner")
    return user


@pytest.fixture
def therapist(patient):
    user = factories.UserFactory(username="laura")
    factories.MembershipFactory(patient=patient, user=user, role="therapist")
    return user
