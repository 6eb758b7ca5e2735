"""Every main page, checked by axe-core in Chromium against WCAG 2.1 A and AA (contrast, labels, names,
landmarks, lists...). axe cannot judge everything (focus order, plain words), but what it finds is real."""

import pytest
from django.urls import reverse

from lifebook.demo import load_demo
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def violations(page):
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, options=WCAG).response["violations"]
    return [f"{v['id']}: {v['help']} ({', '.join(' '.join(n['target']) for n in v['nodes'][:3])})" for v in found]


def test_the_main_pages_meet_wcag_21_aa(chromium, live_server, client):
    patient = load_demo()
    owner = patient.care_team.get(role="owner").user
    memory = factories.MemoryFactory(chapter=patient.chapters.first(), title="At the fiesta")
    picture = factories.MemoryImageFactory(memory=memory, from_demo_model=True)
    memory.chosen_image = picture
    memory.save()
    subject = patient.subjects.first()

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = {}
    for url in (reverse("login"), reverse("signup")):
        page.goto(live_server.url + url)
        problems[url] = violations(page)

    client.force_login(owner)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    urls = [
        reverse("dashboard"), reverse("patient_book", args=[patient.pk]), reverse("patient_edit", args=[patient.pk]),
        reverse("care_team", args=[patient.pk]), reverse("chapter_create", args=[patient.pk]),
        reverse("memory_create", args=[patient.pk]), reverse("memory_page", args=[patient.pk, memory.pk]),
        reverse("memory_fix_part", args=[patient.pk, memory.pk, picture.pk]),
        reverse("subject_page", args=[patient.pk, subject.pk]), reverse("account"), reverse("account_delete"),
        reverse("book_carousel", args=[patient.pk]),
    ]
    for url in urls:
        page.goto(live_server.url + url)
        page.wait_for_load_state("load")
        # A fade-in half done would read as low contrast: judge the page as it settles.
        page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
        problems[url] = violations(page)
    # The reader in high contrast, as a therapist may switch it on.
    page.get_by_role("button", name="High contrast").click()
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    problems["reader, high contrast"] = violations(page)
    context.close()
    assert not {url: found for url, found in problems.items() if found}
