"""Every HTML page carries the Content-Security-Policy (django-csp): only our own files may run or style a page."""

import pytest
from django.contrib import admin
from django.urls import path, reverse

from accounts.models import Invitation
from tests import factories
from tests.test_privacy import _named_patterns, book, patient_scoped_urls  # noqa: F401 (book is a fixture)

pytestmark = pytest.mark.django_db

EXPECTED = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:", "blob:"},  # step previews are data: URLs; canvases may make blob: ones
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
}


def policy(response):
    """The response's policy as {directive: {sources}}, or None without the header."""
    header = response.get("Content-Security-Policy")
    if header is None:
        return None
    parts = (part.split() for part in header.split(";") if part.strip())
    return {name: set(sources) for name, *sources in parts}


def is_html(response):
    return response.get("Content-Type", "").startswith("text/html")


def test_the_policy_allows_nothing_inline_and_no_eval(client):
    found = policy(client.get(reverse("login")))
    assert found == EXPECTED
    everything = set().union(*found.values())
    assert not everything & {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "http:", "https:"}


def test_every_html_page_carries_the_policy(client, owner, book):
    pages = {}

    def visit(url, **extra):
        response = client.get(url, **extra)
        if is_html(response):
            pages[url] = policy(response)

    plain = [route for _, route in _named_patterns() if "<" not in route]
    for url in plain:  # as a visitor: login, sign-up, password reset...
        visit("/" + url)
    token_invitation = Invitation.objects.create(patient=book["api"]["patient"], email="new@example.org")
    visit(reverse("invitation", args=[token_invitation.token]))
    visit(reverse("invitation", args=["not-a-token"]))

    client.force_login(owner)
    for url in plain + patient_scoped_urls(book):
        visit(url if url.startswith("/") else "/" + url)
        visit(url if url.startswith("/") else "/" + url, HTTP_HX_REQUEST="true")  # htmx fragments too
    visit(f"/patients/{book['patient_id'] + 1000}/")  # the 404 page

    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    visit(reverse("admin:index"))
    for model in admin.site._registry:
        meta = model._meta
        visit(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        visit(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))

    assert len(pages) > 40, sorted(pages)  # the walk really reached the pages
    wrong = {url: found for url, found in pages.items() if found != EXPECTED}
    assert not wrong


def test_the_api_docs_page_needs_no_inline_script(client, owner):
    client.force_login(owner)
    response = client.get(reverse("api:docs"))
    assert policy(response) == EXPECTED
    assert b"<script>" not in response.content and b"<style" not in response.content


def test_the_too_large_page_carries_the_policy(client, settings):
    settings.LIFEBOOK_MAX_REQUEST_BYTES = 10
    response = client.post(reverse("login"), {"username": "x" * 100})
    assert response.status_code == 413
    assert policy(response) == EXPECTED


def broken_view(request):
    raise RuntimeError("a bug")


urlpatterns = [path("broken/", broken_view)]


def test_the_server_error_page_carries_the_policy_and_its_stylesheet(client, settings):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    response = client.get("/broken/")
    assert response.status_code == 500
    assert policy(response) == EXPECTED
    assert b"/static/css/error.css" in response.content


def test_pictures_on_another_origin_are_allowed_only_when_named(tmp_path):
    from tests.test_settings import _manage

    code = "from csp.utils import build_policy; print(build_policy())"
    named = _manage("shell", "--no-imports", "-c", code, tmp_path=tmp_path,
                    env_overrides={"LIFEBOOK_CSP_MEDIA_ORIGINS": "https://lifebook.s3.amazonaws.com"})
    assert named.returncode == 0, named.stderr
    assert "img-src 'self' data: blob: https://lifebook.s3.amazonaws.com" in named.stdout
