"""The Content-Security-Policy in Chromium: it blocks inline code, and the pages that third-party code draws
(Swagger UI, Django's admin) run under it without a single console error (the chromium fixture fails a test
on any)."""

import pytest
from django.urls import reverse

from lifebook.demo import load_demo
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Inline code added to a page at run time, as an injected script or markup would be.
INJECT = """() => {
  window.violations = [];
  document.addEventListener("securitypolicyviolation", (event) => window.violations.push(event.effectiveDirective));
  const script = document.createElement("script");
  script.textContent = "window.inlineRan = true;";
  document.body.append(script);
  document.body.insertAdjacentHTML("beforeend", '<p id="styled" style="color: rgb(255, 0, 0)">styled</p>');
}"""


def logged_in_context(chromium, client, live_server, user):
    client.force_login(user)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    return context


def test_chromium_refuses_inline_script_and_style_on_our_pages(chromium, browser_problems, live_server, client):
    patient = load_demo()
    page = logged_in_context(chromium, client, live_server, patient.care_team.get(role="owner").user).new_page()
    page.goto(live_server.url + reverse("patient_book", args=[patient.pk]))
    assert not browser_problems  # the page itself is clean

    page.evaluate(INJECT)
    page.wait_for_function("() => window.violations.length >= 2")
    assert set(page.evaluate("window.violations")) == {"script-src-elem", "style-src-attr"}
    assert page.evaluate("window.inlineRan === undefined")
    assert page.locator("#styled").evaluate("p => getComputedStyle(p).color") != "rgb(255, 0, 0)"
    # The two refusals were console errors, which would fail any other test; they were expected here.
    assert len(browser_problems) == 2 and all("Content Security Policy" in p for p in browser_problems)
    browser_problems.clear()


def test_the_api_docs_and_the_admin_work_under_the_policy(chromium, browser_problems, live_server, client):
    patient = load_demo()
    memory = factories.MemoryFactory(chapter=patient.chapters.first(), title="At the fiesta")
    memory.chosen_image = factories.MemoryImageFactory(memory=memory)
    memory.save()
    staff = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    page = logged_in_context(chromium, client, live_server, staff).new_page()

    # Swagger UI draws the operations from our schema with its own scripts (the init script is a file).
    page.goto(live_server.url + reverse("api:docs"))
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 40

    # The admin: its lists with thumbnails, and a change form with inlines and search-as-you-type selects.
    page.goto(live_server.url + reverse("admin:lifebook_memory_changelist"))
    thumbnail = page.locator("img.lifebook-thumb").first
    assert thumbnail.evaluate("img => getComputedStyle(img).maxWidth") == "60px"  # admin.css, not style=""
    page.goto(live_server.url + reverse("admin:lifebook_memory_change", args=[memory.pk]))
    page.locator(".select2-selection").first.click()  # the autocomplete opens and asks the server
    page.locator(".select2-results__option").first.wait_for()
    page.goto(live_server.url + reverse("admin:lifebook_patient_change", args=[patient.pk]))
    rows = page.locator("#care_team-group tr.dynamic-care_team").count()
    page.locator("#care_team-group .add-row a").click()  # inlines.js adds a row
    assert page.locator("#care_team-group tr.dynamic-care_team").count() == rows + 1
