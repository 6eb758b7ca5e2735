"""In production (DEBUG off) the API answers JSON only, and its schema and docs page need a login (a session or
an API token). OPTIONS on the docs page is an answer, not a 500."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def token_client(user):
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def test_the_schema_needs_a_login_and_says_so_in_json(client):
    for accept in ("*/*", "application/vnd.oai.openapi", "application/vnd.oai.openapi+json"):
        response = client.get("/api/schema/", HTTP_ACCEPT=accept)
        assert response.status_code in (401, 403), accept
        assert response["Content-Type"].startswith("application/json"), accept
        assert json.loads(response.content)["detail"]


def test_the_schema_is_served_to_a_session_or_a_token(client, owner):
    client.force_login(owner)
    assert client.get("/api/schema/", {"format": "json"}).status_code == 200
    by_token = token_client(owner).get("/api/schema/", {"format": "json"})
    assert by_token.status_code == 200 and json.loads(by_token.content)["openapi"].startswith("3.")


def test_the_docs_page_sends_a_visitor_to_log_in(client):
    response = client.get("/api/docs/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/api/docs/"
    bad_token = Client(HTTP_AUTHORIZATION="Token not-a-key").get("/api/docs/")
    assert bad_token.status_code == 302 and bad_token["Location"].startswith(reverse("login"))


def test_the_docs_page_is_served_to_a_session_or_a_token(client, owner):
    client.force_login(owner)
    assert client.get("/api/docs/").status_code == 200
    assert token_client(owner).get("/api/docs/").status_code == 200


def test_options_on_the_docs_page_is_not_a_server_error(owner):
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    response = client.options("/api/docs/")
    assert response.status_code == 200
    assert set(response["Allow"].replace(" ", "").split(",")) >= {"GET", "OPTIONS"}
    assert Client(raise_request_exception=False).options("/api/docs/").status_code == 302  # not logged in


def test_with_debug_off_a_browser_gets_json_not_the_browsable_api(client, owner):
    client.force_login(owner)
    for url in ("/api/", "/api/patients/", "/api/memories/"):
        response = client.get(url, HTTP_ACCEPT=BROWSER_ACCEPT)
        assert response.status_code == 200 and response["Content-Type"] == "application/json", url
    assert client.get("/api/patients/", {"format": "api"}).status_code == 404  # no such renderer to ask for


def _renderers(debug):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG"))}
    env.update(DEBUG=debug, DJANGO_SETTINGS_MODULE="lifebook.settings")
    code = "from django.conf import settings; print(','.join(settings.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


def test_the_browsable_api_is_on_only_with_debug():
    assert _renderers("0") == ["rest_framework.renderers.JSONRenderer"]
    assert "rest_framework.renderers.BrowsableAPIRenderer" in _renderers("1")
